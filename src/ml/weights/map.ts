// Maps a state dict from a file (torchvision resnet50 / convnext_tiny, timm
// deit_small_patch16_224, or a medpipe checkpoint: all use PyTorch's state_dict names) onto a
// model, tensor by tensor, shapes checked. Accepted differences, each reported in `notes`:
// - the classifier head (the family's `classifier`): a different size (another task) or
//   absent (a backbone-only file, e.g. DINO) -> initialised fresh from the seed;
// - the stem's input channels (the family's `stem`): a 1-channel model takes the first
//   input-channel slice of a 3-channel stem (e.g. conv1.weight[:, :1]), as the authors;
// - what the family's adaptWeight accepts (a ViT's pos_embed for another grid: resampled as
//   timm, bicubic, antialiased);
// - num_batches_tracked absent (torchvision's IMAGENET1K_V1 file predates it) -> 0;
// - a `module.` prefix (DataParallel) on every key -> stripped.
// Anything else (a missing or unexpected tensor, another shape) is collected, and all of it
// is thrown in one WeightMappingError naming the file.

import { familyOf } from '../models/families.js';
import { initState, type StateDict, type StateTensor } from '../models/state.js';
import type { ModelSpec, ParamSpec } from '../models/types.js';
import type { WeightsFile } from './checkpoint.js';

export class WeightMappingError extends Error {
  constructor(
    readonly file: string,
    readonly model: string,
    readonly missing: string[],
    readonly unexpected: string[],
    readonly mismatched: string[],
    fileModel?: string,
  ) {
    const lines = [`${file}: weights do not fit model ${model}${fileModel && fileModel !== model ? ` (the file says it holds ${fileModel})` : ''}`];
    if (missing.length) lines.push(`  missing from the file (${missing.length}): ${missing.join(', ')}`);
    if (unexpected.length) lines.push(`  in the file but not in the model (${unexpected.length}): ${unexpected.join(', ')}`);
    if (mismatched.length) lines.push(`  shape mismatches (${mismatched.length}):`, ...mismatched.map((m) => `    ${m}`));
    super(lines.join('\n'));
    this.name = 'WeightMappingError';
  }
}

export interface MappedWeights {
  /** Complete: every parameter and buffer of the model. */
  state: StateDict;
  /** Tensors that were not taken from the file and start fresh (the head, usually). */
  reinitialised: string[];
  /** File tensors deliberately left out (a head of another size). */
  skipped: string[];
  /** One human line per accepted difference. */
  notes: string[];
}

function same(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** The first `c` input channels of an [O, I, ...] tensor. */
function sliceInputChannels(t: StateTensor, c: number): StateTensor {
  const [O, I, ...rest] = t.shape;
  const inner = rest.reduce((a, b) => a * b, 1);
  const out = new Float32Array(O * c * inner);
  for (let o = 0; o < O; o++) out.set(t.data.subarray(o * I * inner, (o * I + c) * inner), o * c * inner);
  return { shape: [O, c, ...rest], data: out };
}

function fmt(s: readonly number[]): string {
  return `[${s.join(', ')}]`;
}

export function mapWeights(spec: ModelSpec, file: WeightsFile, seed: number): MappedWeights {
  const keys = [...file.tensors.keys()];
  const strip = keys.length > 0 && keys.every((k) => k.startsWith('module.'));
  const source = new Map<string, StateTensor>();
  for (const [k, t] of file.tensors) source.set(strip ? k.slice('module.'.length) : k, t);

  const state: StateDict = new Map();
  const fresh: ParamSpec[] = [];
  const used = new Set<string>();
  const missing: string[] = [];
  const mismatched: string[] = [];
  const skipped: string[] = [];
  const notes: string[] = [];
  if (strip) notes.push(`stripped the 'module.' prefix from every tensor name`);
  let headNote: string | undefined;
  const family = familyOf(spec.config);

  for (const p of spec.params) {
    const t = source.get(p.name);
    if (!t) {
      if (p.head) {
        fresh.push(p);
        headNote ??= 'the file has no classifier head: head initialised fresh';
      } else if (p.name.endsWith('.num_batches_tracked')) {
        state.set(p.name, { shape: [], data: new Float32Array(1) });
      } else missing.push(p.name);
      continue;
    }
    used.add(p.name);
    if (same(t.shape, p.shape)) {
      state.set(p.name, t);
      continue;
    }
    if (p.head) {
      fresh.push(p);
      // One note for the head, naming its weight (the first head tensor that differs).
      if (skipped.length === 0) headNote = `head skipped: the file's ${p.name} is ${fmt(t.shape)}, this task's is ${fmt(p.shape)}; initialised fresh`;
      skipped.push(p.name);
      continue;
    }
    if (p.name === family.stem && t.shape.length === p.shape.length && t.shape[1] > p.shape[1] && same([t.shape[0], ...t.shape.slice(2)], [p.shape[0], ...p.shape.slice(2)])) {
      state.set(p.name, sliceInputChannels(t, p.shape[1]));
      notes.push(`${p.name}: took the first ${p.shape[1]} of the file's ${t.shape[1]} input channels`);
      continue;
    }
    const adapted = family.adaptWeight?.(spec.config, p.name, t);
    if (adapted && same(adapted.tensor.shape, p.shape)) {
      state.set(p.name, adapted.tensor);
      notes.push(adapted.note);
      continue;
    }
    mismatched.push(`${p.name}: file ${fmt(t.shape)}, model ${fmt(p.shape)}`);
  }
  const unexpected = [...source.keys()].filter((k) => !used.has(k));
  if (missing.length || unexpected.length || mismatched.length) {
    throw new WeightMappingError(file.path, spec.name, missing, unexpected, mismatched, file.metadata.model);
  }
  if (headNote) notes.push(headNote);
  const absentCounters = spec.params.filter((p) => p.name.endsWith('.num_batches_tracked') && !source.has(p.name)).length;
  if (absentCounters > 0) notes.push(`${absentCounters} BatchNorm num_batches_tracked counters absent from the file: set to 0`);
  const init = initState(spec, seed, (p) => fresh.includes(p));
  for (const [k, t] of init) state.set(k, t);
  return { state, reinitialised: fresh.map((p) => p.name), skipped, notes };
}
