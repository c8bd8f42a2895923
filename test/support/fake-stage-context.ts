// An in-memory StageContext for running a stage's run() in tests without the framework:
// inputs are given as values, outputs are collected, records live in arrays.
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type {
  DataRecord,
  FingerprintContext,
  InputEntry,
  JSONObject,
  JSONValue,
  RecordReader,
  RecordWriter,
  StageContext,
  StageKind,
} from '../../src/contract.js';

export class MemoryRecords implements RecordReader {
  constructor(
    readonly records: DataRecord[],
    readonly meta: JSONObject,
  ) {}

  get count(): number {
    return this.records.length;
  }

  get(index: number): DataRecord {
    const r = this.records[index];
    if (!r) throw new RangeError(`record ${index} out of range (${this.records.length})`);
    return r;
  }

  *iterate(start = 0, end = this.records.length): Iterable<DataRecord> {
    for (let i = start; i < end; i++) yield this.get(i);
  }
}

export interface FakeInputs {
  json?: Record<string, JSONValue>;
  records?: Record<string, RecordReader>;
  files?: Record<string, string>;
  dirs?: Record<string, string>;
}

export interface FakeRun<P> {
  ctx: StageContext<P>;
  json: Map<string, JSONValue>;
  records: Map<string, MemoryRecords>;
  files: Map<string, string>;
  dirs: Map<string, string>;
  progress: string[];
  logs: string[];
  provenance: JSONObject;
  reports: string[];
}

export function fakeFingerprintContext(baseDir: string): FingerprintContext & { hashed: string[] } {
  const hashed: string[] = [];
  return {
    baseDir,
    hashed,
    async hashFiles(paths) {
      const out: Record<string, string> = {};
      for (const p of paths) {
        hashed.push(p);
        out[p] = createHash('sha256').update(await fs.readFile(p)).digest('hex');
      }
      return out;
    },
  };
}

export async function fakeContext<P>(params: P, baseDir: string, inputs: FakeInputs = {}): Promise<FakeRun<P>> {
  const workdir = await fs.mkdtemp(path.join(os.tmpdir(), 'medpipe-work-'));
  const json = new Map<string, JSONValue>();
  const records = new Map<string, MemoryRecords>();
  const files = new Map<string, string>();
  const dirs = new Map<string, string>();
  const progress: string[] = [];
  const logs: string[] = [];
  const provenance: JSONObject = {};
  const reports: string[] = [];
  const saved = new Map<string, Uint8Array>();
  const missing = (kind: string, name: string): never => {
    throw new Error(`fake context: no ${kind} input ${name}`);
  };
  const ctx: StageContext<P> = {
    node: 'test-node',
    key: 'test-key',
    axes: {},
    params,
    baseDir,
    workdir,
    signal: new AbortController().signal,
    inputs: {
      has: (name) => name in (inputs.json ?? {}) || name in (inputs.records ?? {}) || name in (inputs.files ?? {}) || name in (inputs.dirs ?? {}),
      json: <T>(name: string) => (inputs.json?.[name] ?? missing('json', name)) as T,
      file: async (name) => inputs.files?.[name] ?? missing('file', name),
      records: (name) => inputs.records?.[name] ?? missing('records', name),
      jsonList: <T>(name: string): InputEntry<T>[] => [{ axes: {}, node: 'upstream', value: (inputs.json?.[name] ?? missing('json', name)) as T }],
      fileList: async (name) => [{ axes: {}, node: 'upstream', value: inputs.files?.[name] ?? missing('file', name) }],
      dir: async (name) => inputs.dirs?.[name] ?? missing('dir', name),
    },
    outputs: {
      json: (name, value) => {
        json.set(name, JSON.parse(JSON.stringify(value)) as JSONValue);
      },
      file: async (name, p) => {
        files.set(name, p);
      },
      dir: async (name, p) => {
        // Kept after the workdir goes, as the store would keep it.
        const kept = await fs.mkdtemp(path.join(os.tmpdir(), 'medpipe-dir-'));
        await fs.cp(path.resolve(workdir, p), kept, { recursive: true });
        dirs.set(name, kept);
      },
      records: async (name, meta, fill) => {
        const list: DataRecord[] = [];
        const writer: RecordWriter = {
          async append(record) {
            // Copy, as a real store would persist the bytes: a stage must not rely on aliasing.
            list.push({ data: new Uint8Array(record.data), meta: JSON.parse(JSON.stringify(record.meta)) as JSONObject });
          },
          get count() {
            return list.length;
          },
        };
        await fill(writer);
        records.set(name, new MemoryRecords(list, meta()));
      },
    },
    checkpoint: {
      save: async (name, data) => {
        saved.set(name, new Uint8Array(data));
      },
      restore: async (name) => saved.get(name),
    },
    progress: (text) => progress.push(text),
    log: (text) => logs.push(text),
    provenance: (info) => Object.assign(provenance, info),
    report: (text) => reports.push(text),
  };
  return { ctx, json, records, files, dirs, progress, logs, provenance, reports };
}

/** Runs a stage kind's run() in a fake context and returns what it produced. */
export async function runStage<P>(kind: StageKind<P>, params: P, baseDir: string, inputs: FakeInputs = {}): Promise<FakeRun<P>> {
  const run = await fakeContext(params, baseDir, inputs);
  try {
    await kind.run(run.ctx);
  } finally {
    await fs.rm(run.ctx.workdir, { recursive: true, force: true });
  }
  return run;
}
