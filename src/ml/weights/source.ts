// Where an init's weights come from: `random` (seeded), `file:<path>` (relative to the
// pipeline file), `hf:<owner>/<repo>[@rev]/<file>` (the Hugging Face cache, else downloaded into it), or `node` (the weights
// input, produced by another stage). All end as a complete state dict for the model.

import { isAbsolute, resolve } from 'node:path';
import { initState } from '../models/state.js';
import type { ModelSpec } from '../models/types.js';
import { readWeightsFile } from './checkpoint.js';
import { fetchHf, parseHfSource, sha256OfFile, type DownloadOptions } from './download.js';
import { mapWeights, type MappedWeights } from './map.js';

export type WeightSource =
  | { kind: 'random' }
  | { kind: 'file'; path: string }
  | { kind: 'hf'; source: string }
  | { kind: 'node' };

export function parseSource(s: string): WeightSource {
  if (s === 'random') return { kind: 'random' };
  if (s === 'node') return { kind: 'node' };
  if (s.startsWith('file:') && s.length > 5) return { kind: 'file', path: s.slice(5) };
  if (s.startsWith('hf:')) {
    parseHfSource(s);
    return { kind: 'hf', source: s };
  }
  throw new Error(`bad weights source '${s}': expected random, node, file:<path> or hf:<owner>/<repo>/<file>`);
}

export interface LoadOptions {
  seed: number;
  /** file: paths are relative to this (the pipeline file's directory). */
  baseDir: string;
  /** Expected sha256 of the file (file: and hf: sources). */
  sha256?: string;
  /** The weights file of a `node` source. */
  nodeFile?: string;
  download?: Omit<DownloadOptions, 'sha256'>;
}

export interface LoadedWeights extends MappedWeights {
  /** The file read, if any, and its digest. */
  file?: { path: string; sha256: string; url?: string; fetched?: boolean; commit?: string };
}

export async function loadSource(spec: ModelSpec, source: string, opts: LoadOptions): Promise<LoadedWeights> {
  const src = parseSource(source);
  if (src.kind === 'random') {
    return { state: initState(spec, opts.seed), reinitialised: spec.params.map((p) => p.name), skipped: [], notes: [`random init, seed ${opts.seed}`] };
  }
  let path: string;
  let digest: string;
  let extra: { url?: string; fetched?: boolean; commit?: string } = {};
  if (src.kind === 'hf') {
    const got = await fetchHf(src.source, { ...opts.download, sha256: opts.sha256 });
    ({ path, sha256: digest } = got);
    extra = { url: got.url, fetched: got.fetched, commit: got.commit };
  } else {
    if (src.kind === 'node') {
      if (opts.nodeFile === undefined) throw new Error(`source 'node' needs the weights input (the output of another stage)`);
      path = opts.nodeFile;
    } else {
      path = isAbsolute(src.path) ? src.path : resolve(opts.baseDir, src.path);
    }
    digest = await sha256OfFile(path).catch((e: unknown) => {
      throw new Error(`cannot read weights ${path}: ${e instanceof Error ? e.message : String(e)}`);
    });
    const pin = opts.sha256?.toLowerCase();
    if (pin !== undefined && digest !== pin) throw new Error(`${path} has sha256 ${digest}, but ${pin} was pinned`);
  }
  const mapped = mapWeights(spec, await readWeightsFile(path), opts.seed);
  return { ...mapped, file: { path, sha256: digest, ...extra } };
}
