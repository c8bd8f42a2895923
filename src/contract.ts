// The stage contract: the only surface through which a stage kind (in stages/ or a user's
// plugin) reaches the framework. A stage never touches LMDB, cache paths or another stage.

export type JSONValue = null | boolean | number | string | JSONValue[] | { [key: string]: JSONValue };
export type JSONObject = { [key: string]: JSONValue };
/** A JSON Schema (draft 2020-12 subset that ajv understands). */
export type JSONSchema = { [key: string]: unknown };

export type ArtifactType = 'json' | 'file' | 'dir' | 'records';

/** Resources one node of a kind holds while it runs; the scheduler never oversubscribes them. */
export interface Resources {
  cpus?: number;
  gpu?: number;
  memory_gb?: number;
}

export interface InputSpec {
  type: ArtifactType;
  optional?: boolean;
  /** The input gathers every matching upstream instance (e.g. all seeds) instead of exactly one. */
  many?: boolean;
  description?: string;
}

export interface StageKind<P = JSONObject> {
  kind: string;
  /** Bump when results would change for the same parameters and inputs: it is part of every key. */
  version: number;
  description?: string;
  /** ajv validates the YAML `with:` block against this; errors point at the YAML line. */
  params: JSONSchema;
  /** Parameters that cannot change results (thread counts, progress intervals): left out of the key. */
  unkeyed?: string[];
  /**
   * Parameters added after results were cached without them, each with the value a node that
   * leaves it unset gets: at that value the parameter is left out of the key, so writing the
   * default out keys as leaving it unset and the old results stay valid. (A schema `default`,
   * which ajv fills in before keying, would change the key of every node that never said it.)
   */
  unkeyedDefaults?: JSONObject;
  inputs?: Record<string, InputSpec>;
  outputs: Record<string, ArtifactType>;
  resources?: Resources;
  /**
   * Run each node of this kind in a fresh process of its own instead of a reused worker (a
   * stage that changes process-wide state, or whose memory use would outlast it).
   */
  isolate?: boolean;
  /**
   * Key material from outside the cache (e.g. digests of raw data files a stage reads from
   * disk). Called at planning time; must be cheap on a second call (use ctx.hashFiles, which
   * remembers digests by path, size and mtime). Relative paths only: no absolute path may
   * enter a key.
   */
  fingerprint?(params: P, ctx: FingerprintContext): Promise<JSONValue>;
  /** Problems with external inputs (missing files and where to get them), for `pipeline status`. */
  check?(params: P, ctx: FingerprintContext): Promise<string[]>;
  run(ctx: StageContext<P>): Promise<void>;
}

export interface FingerprintContext {
  /** Directory relative paths in params are resolved against (the pipeline file's directory). */
  baseDir: string;
  /** sha256 of each file, remembered by (path, size, mtime) so re-planning does not re-read data. */
  hashFiles(paths: string[]): Promise<Record<string, string>>;
}

/** One image-sized (or any) record of a record set: raw bytes plus small metadata. */
export interface DataRecord {
  data: Uint8Array;
  meta: JSONObject;
}

export interface RecordReader {
  readonly count: number;
  /** Set-level metadata (shape, channel mean/std, class names, ...). */
  readonly meta: JSONObject;
  get(index: number): DataRecord;
  /** Streams records in index order without holding them all in memory. */
  iterate(start?: number, end?: number): Iterable<DataRecord>;
}

export interface RecordWriter {
  append(record: DataRecord): Promise<void>;
  /** Records written so far. */
  readonly count: number;
}

export interface InputEntry<T> {
  /** Axis values of the upstream instance this entry came from. */
  axes: Record<string, string | number>;
  node: string;
  value: T;
}

export interface StageInputs {
  has(name: string): boolean;
  json<T = JSONValue>(name: string): T;
  /** Local path to a verified copy of a file input. */
  file(name: string): Promise<string>;
  records(name: string): RecordReader;
  /** For `many` inputs: every gathered upstream instance. */
  jsonList<T = JSONValue>(name: string): InputEntry<T>[];
  fileList(name: string): Promise<InputEntry<string>[]>;
  /** A directory input, unpacked read-only; the path stays valid while the node runs. */
  dir(name: string): Promise<string>;
}

export interface StageOutputs {
  json(name: string, value: JSONValue): void;
  /** Takes ownership of a file written in ctx.workdir (moved into the store on commit). */
  file(name: string, path: string, options?: { filename?: string }): Promise<void>;
  records(name: string, meta: () => JSONObject, fill: (writer: RecordWriter) => Promise<void>): Promise<void>;
  /** Takes ownership of a directory written in ctx.workdir: its tree of files is the output. */
  dir(name: string, path: string): Promise<void>;
}

export interface Checkpoints {
  /** Persists bytes under this node's key, so a killed run can resume here or on another machine. */
  save(name: string, data: Uint8Array): Promise<void>;
  restore(name: string): Promise<Uint8Array | undefined>;
}

export interface StageContext<P = JSONObject> {
  node: string;
  key: string;
  axes: Record<string, string | number>;
  params: P;
  inputs: StageInputs;
  outputs: StageOutputs;
  checkpoint: Checkpoints;
  /** A private scratch directory, removed after the node ends. */
  workdir: string;
  /** Directory relative paths in params are resolved against. */
  baseDir: string;
  /**
   * Aborted on Ctrl-C; long loops should check it between steps and throw. A run() that returns
   * after reading it as aborted (or listening to it) may have stopped early: nothing is stored.
   * One that never looked finished its work, and its result is stored.
   */
  signal: AbortSignal;
  /** One line of live status for the progress view (e.g. `epoch 3/25 loss 0.41`). */
  progress(text: string): void;
  /** A line in the node's log file. */
  log(text: string): void;
  /** Recorded in the manifest's provenance, not in the key (engine, backend, threads...). */
  provenance(info: JSONObject): void;
  /** A few lines `pipeline run` prints when this node ends a run (e.g. the results table); kept with the result. */
  report(text: string): void;
}

export function defineStage<P = JSONObject>(kind: StageKind<P>): StageKind<P> {
  return kind;
}
