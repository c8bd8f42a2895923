// Train/val/test splits over record indices. Pure functions: labels in, index lists out.
import { PyRandom } from './pyrandom.js';

export type SplitName = 'train' | 'val' | 'test';
export const SPLIT_NAMES: readonly SplitName[] = ['train', 'val', 'test'];

export interface Split {
  train: number[];
  val: number[];
  test: number[];
}

export interface Ratios {
  train: number;
  val: number;
  test: number;
}

/**
 * The authors' split, index for index: `idx = list(range(n)); random.Random(seed).shuffle(idx)`,
 * the first int(n * heldOut) indices are held out, the first half of those is validation and
 * the rest test; everything after them is training. Orders are kept as the shuffle left them.
 */
export function paperSplit(n: number, heldOut: number, seed = 42): Split {
  if (!Number.isInteger(n) || n < 0) throw new Error(`paper split: n must be a non-negative integer, got ${n}`);
  if (!(heldOut >= 0 && heldOut <= 1)) throw new Error(`paper split: held_out must be in [0, 1], got ${heldOut}`);
  const idx = Array.from({ length: n }, (_, i) => i);
  new PyRandom(seed).shuffle(idx);
  // Same float product and truncation as Python's int(N * held_out).
  const held = Math.trunc(n * heldOut);
  const half = Math.floor(held / 2);
  return { val: idx.slice(0, half), test: idx.slice(half, held), train: idx.slice(held) };
}

export function normaliseRatios(r: Ratios): Ratios {
  const values = [r.train, r.val, r.test];
  if (values.some((v) => !(v >= 0))) throw new Error(`split ratios must be non-negative, got ${JSON.stringify(r)}`);
  const sum = values[0] + values[1] + values[2];
  if (!(sum > 0)) throw new Error('split ratios must not all be zero');
  return { train: r.train / sum, val: r.val / sum, test: r.test / sum };
}

/**
 * Seeded stratified split. The overall val/test sizes are round(n * ratio); they are shared out
 * over the classes by cumulative rounding, so every class gets its fair share (within one) and
 * the totals are exact. Each class's indices are shuffled with Python's Random(seed), classes
 * in label order, so the split can be recomputed outside medpipe. Lists come back sorted.
 */
export function stratifiedSplit(labels: readonly number[], ratios: Ratios, seed: number): Split {
  const r = normaliseRatios(ratios);
  const n = labels.length;
  const byClass = new Map<number, number[]>();
  labels.forEach((label, i) => {
    const list = byClass.get(label);
    if (list) list.push(i);
    else byClass.set(label, [i]);
  });
  const classes = [...byClass.keys()].sort((a, b) => a - b);
  const target = { val: Math.round(n * r.val), test: Math.round(n * r.test) };
  const quota = (split: 'val' | 'test'): Map<number, number> => {
    const out = new Map<number, number>();
    let cumulative = 0;
    let given = 0;
    for (const c of classes) {
      cumulative += (byClass.get(c)?.length ?? 0) * (n > 0 ? target[split] / n : 0);
      const upTo = Math.round(cumulative);
      out.set(c, upTo - given);
      given = upTo;
    }
    return out;
  };
  const valQuota = quota('val');
  const testQuota = quota('test');
  const rng = new PyRandom(seed);
  const split: Split = { train: [], val: [], test: [] };
  for (const c of classes) {
    const members = rng.shuffle([...(byClass.get(c) ?? [])]);
    const nVal = Math.min(valQuota.get(c) ?? 0, members.length);
    const nTest = Math.min(testQuota.get(c) ?? 0, members.length - nVal);
    split.val.push(...members.slice(0, nVal));
    split.test.push(...members.slice(nVal, nVal + nTest));
    split.train.push(...members.slice(nVal + nTest));
  }
  for (const name of SPLIT_NAMES) split[name].sort((a, b) => a - b);
  return split;
}

export interface ListsResult {
  split: Split;
  /** Ids named in a list that no record carries. */
  unknown: string[];
  /** Ids named in more than one list. */
  duplicated: string[];
  /** Records named by no list (left out of every split). */
  unassigned: number;
}

/** Fixed lists of record ids (e.g. DDSM's train/val/test.txt), mapped to record indices. */
export function listsSplit(ids: readonly string[], lists: Record<SplitName, readonly string[]>): ListsResult {
  const indexOf = new Map<string, number>();
  ids.forEach((id, i) => indexOf.set(id, i));
  const seen = new Set<string>();
  const duplicated = new Set<string>();
  const unknown: string[] = [];
  const split: Split = { train: [], val: [], test: [] };
  for (const name of SPLIT_NAMES) {
    for (const id of lists[name]) {
      if (seen.has(id)) {
        duplicated.add(id);
        continue;
      }
      seen.add(id);
      const i = indexOf.get(id);
      if (i === undefined) unknown.push(id);
      else split[name].push(i);
    }
  }
  const assigned = split.train.length + split.val.length + split.test.length;
  return { split, unknown, duplicated: [...duplicated], unassigned: ids.length - assigned };
}

/** Per-split class counts, keyed by class name. */
export function splitCounts(
  split: Split,
  labels: readonly number[],
  classes: readonly string[],
): Record<SplitName, Record<string, number>> {
  const count = (indices: readonly number[]): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const c of classes) out[c] = 0;
    for (const i of indices) {
      const name = classes[labels[i]] ?? String(labels[i]);
      out[name] = (out[name] ?? 0) + 1;
    }
    return out;
  };
  return { train: count(split.train), val: count(split.val), test: count(split.test) };
}
