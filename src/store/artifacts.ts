import type { JSONObject, JSONValue } from '../contract.js';
import type { KeyMaterial } from '../keys.js';

export type Artifact =
  | { type: 'json'; digest: string; value: JSONValue }
  | { type: 'file'; digest: string; size: number; filename: string }
  /** A tree of files, stored as one tar blob (store/trees.ts). */
  | { type: 'dir'; digest: string; size: number; files: number }
  | { type: 'records'; digest: string; count: number; set: string; meta: JSONObject };

export interface Provenance {
  started: string;
  duration_s: number;
  host: string;
  pid: number;
  /** Log file, relative to the cache directory. */
  log: string;
  versions: Record<string, string>;
  /** Git commit of the pipeline file's repository and whether its tracked files were changed;
   *  null outside a repository (absent in manifests written before it was recorded). */
  repository?: { commit: string; dirty: boolean } | null;
  /** Engine, backend, threads and whatever else the stage reported. */
  reported: JSONObject;
  /** Digest of the kind's code (its module and local imports) and how many files it covers. */
  code?: { digest: string; files: number };
}

/** What a finished node leaves in the store: written once, atomically, addressed by its key. */
export interface Manifest {
  key: string;
  pipeline: string;
  node: string;
  stage: string;
  kind: string;
  version: number;
  material: KeyMaterial;
  outputs: Record<string, Artifact>;
  provenance: Provenance;
  /** What the stage asked `pipeline run` to print (ctx.report). */
  report?: string;
}

/** Last key a named node had, so `status` can say why it would rerun. */
export interface NameRecord {
  key: string;
  material: KeyMaterial;
}

export class CorruptArtifactError extends Error {
  constructor(
    readonly what: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`corrupt cache entry: ${what} has digest ${actual.slice(0, 12)}…, expected ${expected.slice(0, 12)}… (run \`pipeline cache verify\` to drop broken entries; they are recomputed on the next run)`);
    this.name = 'CorruptArtifactError';
  }
}
