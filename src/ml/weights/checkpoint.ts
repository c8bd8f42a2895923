// medpipe checkpoints: safetensors in PyTorch naming and layout (torchvision / timm load
// them with load_state_dict), float32, num_batches_tracked as int64 as torch stores it,
// and `__metadata__` saying what the weights are for.

import { readSafetensorsFile, toFloat32, writeSafetensorsFile, type Tensor } from '../safetensors.js';
import type { StateDict } from '../models/state.js';
import type { ModelSpec } from '../models/types.js';

export const CHECKPOINT_FORMAT = 'medpipe-checkpoint/1';

export interface CheckpointMeta {
  model: string;
  num_classes: number;
  channels: number;
  image_size: number;
  /** Where the weights came from: random:<seed>, file:<name>, hf:<repo>/<file>, node, ... */
  source: string;
  /** Anything else a stage wants to record (strings only, as safetensors requires). */
  extra?: Record<string, string>;
}

export function metaFor(spec: ModelSpec, source: string, extra?: Record<string, string>): CheckpointMeta {
  const c = spec.config;
  return { model: spec.name, num_classes: c.numClasses, channels: c.channels, image_size: c.imageSize, source, extra };
}

/** Writes a complete state dict of `spec` (atomically: temp file + rename). */
export async function writeCheckpoint(path: string, spec: ModelSpec, state: StateDict, meta: CheckpointMeta): Promise<void> {
  const tensors = new Map<string, Tensor>();
  for (const p of spec.params) {
    const t = state.get(p.name);
    if (!t) throw new Error(`${path}: cannot save ${spec.name}: '${p.name}' is missing from the state`);
    tensors.set(p.name, p.dtype === 'I64'
      ? { dtype: 'I64', shape: p.shape, data: BigInt64Array.from(t.data, (v) => BigInt(Math.round(v))) }
      : { dtype: 'F32', shape: p.shape, data: t.data });
  }
  const metadata: Record<string, string> = {
    ...meta.extra,
    format: CHECKPOINT_FORMAT,
    model: meta.model,
    num_classes: String(meta.num_classes),
    channels: String(meta.channels),
    image_size: String(meta.image_size),
    source: meta.source,
  };
  await writeSafetensorsFile(path, tensors, metadata);
}

/** Parses a medpipe checkpoint's metadata; undefined for other safetensors files. */
export function parseMeta(metadata: Record<string, string>): CheckpointMeta | undefined {
  if (metadata.format !== CHECKPOINT_FORMAT) return undefined;
  const int = (k: string): number => {
    const v = Number(metadata[k]);
    if (!Number.isInteger(v)) throw new Error(`checkpoint metadata '${k}' is not an integer: ${metadata[k]}`);
    return v;
  };
  const { format: _f, model, num_classes: _n, channels: _c, image_size: _i, source, ...extra } = metadata;
  return { model, num_classes: int('num_classes'), channels: int('channels'), image_size: int('image_size'), source, extra };
}

export interface WeightsFile {
  /** For messages: the file as the user named it. */
  path: string;
  metadata: Record<string, string>;
  /** Every tensor as float32 (F16/BF16/int64 converted), PyTorch layout. */
  tensors: StateDict;
}

/** Reads any safetensors file of weights (medpipe's, torchvision's or timm's). */
export async function readWeightsFile(path: string): Promise<WeightsFile> {
  const { metadata, tensors } = await readSafetensorsFile(path);
  const out: StateDict = new Map();
  for (const [name, t] of tensors) out.set(name, { shape: t.shape, data: toFloat32(t) });
  return { path, metadata, tensors: out };
}
