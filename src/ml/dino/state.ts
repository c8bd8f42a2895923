// Student and teacher networks (backbone + DINO head) and their round trip through a resumable
// checkpoint: every tensor in PyTorch layout under `student.` / `teacher.`, the Adam moments,
// the centre, and the loop's progress as JSON metadata.
import * as tf from '@tensorflow/tfjs';
import type { ParamMap } from '../models/params.js';
import type { ModelSpec, ParamSpec } from '../models/types.js';
import { deserialize, fromFloat32, serialize, toFloat32, type Tensor } from '../safetensors.js';
import { tfToTorch, torchToTf } from '../weights/layout.js';
import type { Adam } from '../train/adam.js';

export interface Net {
  backbone: ParamMap;
  head: ParamMap;
}

/** One named group of variables and the specs that say their PyTorch names and layouts. */
interface Part {
  prefix: string;
  specs: readonly ParamSpec[];
  params: ParamMap;
}

export function netParts(role: 'student' | 'teacher', spec: ModelSpec, headSpecs: readonly ParamSpec[], net: Net): Part[] {
  return [
    { prefix: `${role}.backbone.`, specs: spec.params, params: net.backbone },
    { prefix: `${role}.`, specs: headSpecs, params: net.head },
  ];
}

/** A copy that no optimiser can touch: every variable non-trainable. */
export function frozenCopy(params: ParamMap): ParamMap {
  const out: ParamMap = new Map();
  for (const [name, v] of params) out.set(name, tf.tidy(() => tf.variable(v.clone(), false)));
  return out;
}

/** Keys of the parameters DINO trains and averages: the backbone's (without its classifier,
 *  replaced by nn.Identity in DINO) as `backbone.<name>`, and the head's trainable ones (the
 *  frozen weight_g is 1 in student and teacher alike, so its EMA would be the identity). */
export function trainedParams(spec: ModelSpec, headSpecs: readonly ParamSpec[], net: Net): Map<string, tf.Variable> {
  const out = new Map<string, tf.Variable>();
  for (const p of spec.params) if (p.trainable && !p.head) out.set(`backbone.${p.name}`, net.backbone.get(p.name)!);
  for (const p of headSpecs) if (p.trainable) out.set(p.name, net.head.get(p.name)!);
  return out;
}

async function readPart(part: Part, out: Map<string, Tensor>): Promise<void> {
  for (const p of part.specs) {
    const v = part.params.get(p.name);
    if (!v) throw new Error(`${part.prefix}${p.name} is missing`);
    const raw = await v.data();
    const values = raw instanceof Float32Array ? raw : Float32Array.from(raw as ArrayLike<number>);
    out.set(part.prefix + p.name, fromFloat32(tfToTorch(p.layout, p.shape, values), [...p.shape]));
  }
}

function assignPart(part: Part, tensors: Map<string, Tensor>, source: string): void {
  for (const p of part.specs) {
    const t = tensors.get(part.prefix + p.name);
    const v = part.params.get(p.name);
    if (!t || !v) throw new Error(`${source}: checkpoint lacks ${part.prefix}${p.name}; it belongs to another model or head`);
    const values = torchToTf(p.layout, p.shape, toFloat32(t));
    v.assign(p.dtype === 'I64' ? tf.tensor(Int32Array.from(values), v.shape, 'int32') : tf.tensor(values, v.shape));
  }
}

export async function packState<P>(parts: Part[], adam: Adam, center: tf.Tensor, progress: P): Promise<Uint8Array> {
  const tensors = new Map<string, Tensor>();
  for (const part of parts) await readPart(part, tensors);
  for (const [name, t] of adam.state()) tensors.set(name, fromFloat32(Float32Array.from(await t.data()), t.shape));
  tensors.set('center', fromFloat32(Float32Array.from(await center.data()), center.shape));
  return serialize(tensors, { progress: JSON.stringify(progress), ...adam.metadata() });
}

/** Restores variables and moments in place; returns the progress and the centre. */
export function unpackState<P>(bytes: Uint8Array, source: string, parts: Part[], adam: Adam): { progress: P; center: tf.Tensor } {
  const { metadata, tensors } = deserialize(bytes, source);
  for (const part of parts) assignPart(part, tensors, source);
  const moments = new Map<string, tf.Tensor>();
  for (const [name, t] of tensors) if (name.startsWith('adam.')) moments.set(name, tf.tensor(toFloat32(t), t.shape));
  adam.restore(metadata, moments);
  for (const t of moments.values()) t.dispose();
  const c = tensors.get('center');
  if (!c) throw new Error(`${source}: checkpoint lacks the centre`);
  return { progress: JSON.parse(metadata['progress']!) as P, center: tf.tensor(toFloat32(c), c.shape) };
}
