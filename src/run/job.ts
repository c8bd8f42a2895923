import type { JSONObject } from '../contract.js';
import type { Coords, NodeInstance } from '../config/expand.js';
import type { KeyMaterial } from '../keys.js';
import type { Artifact, Manifest } from '../store/artifacts.js';

export interface JobInputEntry {
  node: string;
  axes: Coords;
  artifact: Artifact;
}

/** Everything a worker needs to run one node, anywhere that can reach the cache. Plain JSON. */
export interface Job {
  cacheDir: string;
  pipeline: string;
  baseDir: string;
  node: { id: string; stage: string; kind: string; axes: Coords; params: JSONObject };
  kindModule: string;
  key: string;
  material: KeyMaterial;
  /** The kind's code digest where the job was prepared, for the result's provenance. */
  code?: { digest: string; files: number };
  inputs: Record<string, { many: boolean; entries: JobInputEntry[] }>;
  /** Relative to cacheDir. */
  log: string;
  /** The remote cache (as openRemote takes it), where checkpoints are mirrored for a resume elsewhere. */
  remote?: string;
  /** The stage kind asks for a process of its own (StageKind.isolate): no worker reuse. */
  isolate?: boolean;
  /** A forced rerun: the new manifest replaces the one under this key (committed only once it succeeded). */
  replace?: boolean;
  /** GPU slots this node holds (--resources gpu=N): the worker's MEDPIPE_GPUS / CUDA_VISIBLE_DEVICES. */
  gpus?: number[];
}

export type WorkerMessage =
  | { type: 'progress'; text: string }
  /** The worker's event loop still turns (sent every second while a node runs). */
  | { type: 'alive' }
  /** rss: the worker's resident memory after the node, so an overgrown one is replaced. */
  | { type: 'done'; key: string; rss: number }
  | { type: 'failed'; error: string; rss: number };

export type ParentMessage = { type: 'job'; job: Job } | { type: 'abort' };

/** The Job of a node whose parents' manifests are known. Pure: the same for every executor. */
export function jobFor(args: {
  node: NodeInstance;
  kindModule: string;
  key: string;
  material: KeyMaterial;
  code?: { digest: string; files: number };
  parents: (id: string) => Manifest;
  cacheDir: string;
  pipeline: string;
  baseDir: string;
  log: string;
  remote?: string;
  isolate?: boolean;
  replace?: boolean;
  gpus?: number[];
}): Job {
  const { node } = args;
  return {
    cacheDir: args.cacheDir,
    pipeline: args.pipeline,
    baseDir: args.baseDir,
    node: { id: node.id, stage: node.stage, kind: node.kind, axes: node.axes, params: node.params },
    kindModule: args.kindModule,
    key: args.key,
    material: args.material,
    ...(args.code ? { code: args.code } : {}),
    inputs: Object.fromEntries(
      Object.entries(node.inputs).map(([name, input]) => [
        name,
        { many: input.many, entries: input.upstream.map((u) => ({ node: u.node, axes: u.axes, artifact: args.parents(u.node).outputs[u.output]! })) },
      ]),
    ),
    log: args.log,
    ...(args.remote ? { remote: args.remote } : {}),
    ...(args.isolate ? { isolate: true } : {}),
    ...(args.replace ? { replace: true } : {}),
    ...(args.gpus ? { gpus: args.gpus } : {}),
  };
}
