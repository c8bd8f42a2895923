import type { JSONObject } from '../contract.js';
import type { Coords } from '../config/expand.js';
import type { KeyMaterial } from '../keys.js';
import type { Artifact } from '../store/artifacts.js';

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
  inputs: Record<string, { many: boolean; entries: JobInputEntry[] }>;
  /** Relative to cacheDir. */
  log: string;
  /** The remote cache (as openRemote takes it), where checkpoints are mirrored for a resume elsewhere. */
  remote?: string;
  /** GPU slots this node holds (--resources gpu=N): the worker's MEDPIPE_GPUS / CUDA_VISIBLE_DEVICES. */
  gpus?: number[];
}

export type WorkerMessage =
  | { type: 'progress'; text: string }
  | { type: 'done'; key: string }
  | { type: 'failed'; error: string };

export type ParentMessage = { type: 'job'; job: Job } | { type: 'abort' };
