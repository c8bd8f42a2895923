import { rm } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import type { CheckpointMirror } from '../remote/checkpoint-mirror.js';
import type { FingerprintContext, InputEntry, JSONObject, JSONValue, RecordReader, StageContext } from '../contract.js';
import type { Artifact } from '../store/artifacts.js';
import type { Store } from '../store/store.js';
import { digestJSON } from '../util/hash.js';
import type { Job, JobInputEntry } from './job.js';
import { watchedSignal } from './watched-signal.js';

export interface ContextHooks {
  progress(text: string): void;
  log(text: string): void;
  signal: AbortSignal;
}

export interface BuiltContext {
  ctx: StageContext;
  /** Artifacts produced so far; complete once run() resolves. */
  produced: Map<string, Artifact>;
  provenance: JSONObject;
  report: { text?: string };
  /** The stage saw the run's abort (see watched-signal.ts): a run() that then returns may have stopped early. */
  noticedAbort(): boolean;
  cleanup(): Promise<void>;
}

function describe(job: Job, input: string, entry: JobInputEntry): string {
  return `input ${input} of ${job.node.id} (from ${entry.node})`;
}

export function fingerprintContext(store: Store, baseDir: string): FingerprintContext {
  return {
    baseDir,
    async hashFiles(paths) {
      const out: Record<string, string> = {};
      for (const p of paths) out[p] = await store.hashFile(resolve(baseDir, p));
      return out;
    },
  };
}

/** The StageContext a stage sees: inputs read lazily from the store, outputs staged until commit. */
export async function buildContext(job: Job, store: Store, declaredOutputs: Record<string, Artifact['type']>, hooks: ContextHooks, mirror?: CheckpointMirror): Promise<BuiltContext> {
  // Made on first use: most stages write no scratch file, and a mkdir and an rm for each node
  // were a good part of a small node's cost in its worker.
  let workdir: string | undefined;
  const scratch = () => (workdir ??= store.makeWorkdir());
  const produced = new Map<string, Artifact>();
  const provenance: JSONObject = {};
  const report: { text?: string } = {};
  const readers = new Map<string, RecordReader>();
  const watched = watchedSignal(hooks.signal);

  const entriesOf = (name: string, type: Artifact['type']): JobInputEntry[] => {
    const input = job.inputs[name];
    if (!input) throw new Error(`${job.node.id}: no input named "${name}" (inputs: ${Object.keys(job.inputs).join(', ') || 'none'})`);
    for (const e of input.entries) {
      if (e.artifact.type !== type) throw new Error(`${describe(job, name, e)} is ${e.artifact.type}, read as ${type}`);
    }
    return input.entries;
  };
  const single = (name: string, type: Artifact['type']): JobInputEntry => {
    const entries = entriesOf(name, type);
    if (entries.length !== 1) throw new Error(`${job.node.id}: input ${name} gathers ${entries.length} instances; read it with a *List method`);
    return entries[0]!;
  };
  const filePath = (name: string, e: JobInputEntry) => {
    const a = e.artifact as Extract<Artifact, { type: 'file' }>;
    return store.blobs.verified(a.digest, describe(job, name, e));
  };
  const jsonValue = (e: JobInputEntry) => (e.artifact as Extract<Artifact, { type: 'json' }>).value;
  const claim = (name: string, type: Artifact['type']) => {
    const declared = declaredOutputs[name];
    if (!declared) throw new Error(`${job.node.id}: kind ${job.node.kind} declares no output "${name}" (outputs: ${Object.keys(declaredOutputs).join(', ')})`);
    if (declared !== type) throw new Error(`${job.node.id}: output "${name}" is declared ${declared}, written as ${type}`);
    if (produced.has(name)) throw new Error(`${job.node.id}: output "${name}" written twice`);
  };

  const ctx: StageContext = {
    node: job.node.id,
    key: job.key,
    axes: job.node.axes,
    params: job.node.params,
    get workdir() {
      return scratch();
    },
    baseDir: job.baseDir,
    signal: watched.signal,
    progress: hooks.progress,
    log: hooks.log,
    provenance(info) {
      Object.assign(provenance, info);
    },
    report(text) {
      report.text = text;
    },
    inputs: {
      has: (name) => name in job.inputs,
      json: <T = JSONValue>(name: string) => jsonValue(single(name, 'json')) as T,
      file: (name) => filePath(name, single(name, 'file')),
      records(name) {
        const e = single(name, 'records');
        const a = e.artifact as Extract<Artifact, { type: 'records' }>;
        let reader = readers.get(a.set);
        if (!reader) {
          reader = store.records.reader(a.set, describe(job, name, e));
          readers.set(a.set, reader);
        }
        return reader;
      },
      jsonList: <T = JSONValue>(name: string) => entriesOf(name, 'json').map((e): InputEntry<T> => ({ axes: e.axes, node: e.node, value: jsonValue(e) as T })),
      dir(name) {
        const e = single(name, 'dir');
        return store.trees.materialize(e.artifact.digest, describe(job, name, e));
      },
      fileList: async (name) => Promise.all(entriesOf(name, 'file').map(async (e) => ({ axes: e.axes, node: e.node, value: await filePath(name, e) }))),
    },
    outputs: {
      json(name, value) {
        claim(name, 'json');
        produced.set(name, { type: 'json', digest: digestJSON(value), value });
      },
      async file(name, path, options) {
        claim(name, 'file');
        const { digest, size } = await store.blobs.put(resolve(scratch(), path), { move: true });
        produced.set(name, { type: 'file', digest, size, filename: options?.filename ?? basename(path) });
      },
      async dir(name, path) {
        claim(name, 'dir');
        const { digest, size, files } = await store.trees.put(resolve(scratch(), path));
        produced.set(name, { type: 'dir', digest, size, files });
      },
      async records(name, meta, fill) {
        claim(name, 'records');
        const { set, digest, count, meta: m } = await store.records.write(meta, fill);
        produced.set(name, { type: 'records', digest, count, set, meta: m });
      },
    },
    checkpoint: {
      // Local first (the fast, certain copy); the mirror uploads it in the background.
      async save(name, data) {
        await store.saveCheckpoint(job.key, name, data);
        await mirror?.save(name, data);
      },
      restore: async (name) => (await store.restoreCheckpoint(job.key, name)) ?? mirror?.restore(name),
    },
  };
  const cleanup = async () => {
    watched.dispose();
    if (workdir) await rm(workdir, { recursive: true, force: true });
  };
  return { ctx, produced, provenance, report, noticedAbort: watched.noticed, cleanup };
}
