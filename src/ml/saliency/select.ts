// Which images to explain: N drawn by seed from a split's subset (the same N for every
// model and run with that seed), or the records a user lists by id.

import type { RecordReader } from '../../contract.js';
import { Rng } from '../../data/rng.js';

// Its own stream tag: the draw does not correlate with the loader's shuffles for that seed.
const PICK_STREAM = 0x5a1;

export function pickBySeed(subset: readonly number[], count: number, seed: number): number[] {
  if (subset.length === 0) throw new Error('saliency: the split subset is empty');
  const perm = new Rng(seed, PICK_STREAM).permutation(subset.length);
  return Array.from(perm.subarray(0, Math.min(count, subset.length)), (p) => subset[p]);
}

/** Record indices of `ids` (each record's meta.id, or its index when it has none), in the given order. */
export function indicesOfIds(reader: RecordReader, ids: readonly string[]): number[] {
  const wanted = new Map(ids.map((id) => [id, -1]));
  for (let i = 0; i < reader.count; i++) {
    const id = String(reader.get(i).meta['id'] ?? i);
    if (wanted.get(id) === -1) wanted.set(id, i);
  }
  const missing = ids.filter((id) => wanted.get(id) === -1);
  if (missing.length > 0) throw new Error(`saliency: no record has id ${missing.map((m) => JSON.stringify(m)).join(', ')} (${reader.count} records)`);
  return ids.map((id) => wanted.get(id) as number);
}
