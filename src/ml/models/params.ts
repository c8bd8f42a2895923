// The parameter map a model's forward reads: tf.Variables keyed by PyTorch state_dict
// names, in tfjs layouts (HWIO conv, [in, out] linear). Buffers are non-trainable
// variables, so optimisers and tf.variableGrads leave them alone.

import * as tf from '@tensorflow/tfjs';
import { tfShape, tfToTorch, torchToTf } from '../weights/layout.js';
import type { StateDict } from './state.js';
import type { ModelSpec } from './types.js';

export type ParamMap = Map<string, tf.Variable>;

/** Variables for every tensor of `spec`, from a complete state dict in PyTorch layout. */
export function createParams(spec: ModelSpec, state: StateDict): ParamMap {
  const missing = spec.params.filter((p) => !state.has(p.name)).map((p) => p.name);
  if (missing.length > 0) throw new Error(`${spec.name}: state dict lacks ${missing.length} tensors: ${missing.join(', ')}`);
  const params: ParamMap = new Map();
  for (const p of spec.params) {
    const t = state.get(p.name);
    if (!t) continue;
    if (t.shape.join(',') !== p.shape.join(',')) throw new Error(`${spec.name}: '${p.name}' has shape [${t.shape}], the model needs [${p.shape}]`);
    const values = torchToTf(p.layout, p.shape, t.data);
    // Unnamed: tfjs names must be unique per process, and two models may coexist.
    // In a tidy: the initial tensor shares its data with the variable and must not outlive
    // it, or disposing the variable would never free the data.
    const v = tf.tidy(() => p.dtype === 'I64'
      ? tf.variable(tf.tensor(Int32Array.from(values), tfShape(p.layout, p.shape), 'int32'), false)
      : tf.variable(tf.tensor(values, tfShape(p.layout, p.shape), 'float32'), p.trainable));
    params.set(p.name, v);
  }
  return params;
}

/** Reads variables back into a PyTorch-layout state dict (e.g. to save a checkpoint). */
export async function readState(spec: ModelSpec, params: ParamMap): Promise<StateDict> {
  const state: StateDict = new Map();
  for (const p of spec.params) {
    const v = params.get(p.name);
    if (!v) throw new Error(`${spec.name}: parameter map lacks '${p.name}'`);
    const raw = await v.data();
    const values = raw instanceof Float32Array ? raw : Float32Array.from(raw as ArrayLike<number>);
    state.set(p.name, { shape: [...p.shape], data: tfToTorch(p.layout, p.shape, values) });
  }
  return state;
}

export function trainableVariables(params: ParamMap): tf.Variable[] {
  return [...params.values()].filter((v) => v.trainable);
}

export function disposeParams(params: ParamMap): void {
  for (const v of params.values()) v.dispose();
  params.clear();
}

export function param(params: ParamMap, name: string): tf.Variable {
  const v = params.get(name);
  if (!v) throw new Error(`parameter '${name}' is missing from the parameter map`);
  return v;
}
