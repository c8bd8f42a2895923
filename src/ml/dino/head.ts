// DINOHead (Caron et al., vision_transformer.py): Linear-GELU-Linear-GELU-Linear to a bottleneck,
// L2-normalised, then a weight-normalised Linear without bias whose norm (weight_g) is fixed at
// 1 (norm_last_layer=True). Names are DINO's state_dict names under `head.`; values are made
// in PyTorch layout by the shared seeded initialiser, as DINO's _init_weights: trunc_normal
// (std .02) MLP weights, zero biases; the last layer keeps nn.Linear's default init.
import * as tf from '@tensorflow/tfjs';
import { initialValues } from '../models/init.js';
import { gelu, linear } from '../models/layers.js';
import { param, type ParamMap } from '../models/params.js';
import type { ParamSpec } from '../models/types.js';
import { tfShape, torchToTf } from '../weights/layout.js';

export interface HeadConfig {
  inDim: number;
  hiddenDim: number;
  bottleneckDim: number;
  outDim: number;
}

const MLP = ['head.mlp.0', 'head.mlp.2', 'head.mlp.4'] as const;
export const LAST_LAYER_PREFIX = 'head.last_layer.';

export function headParams(c: HeadConfig): ParamSpec[] {
  const p = (name: string, shape: number[], layout: ParamSpec['layout'], init: ParamSpec['init'], trainable = true): ParamSpec => ({
    name, shape, layout, init, trainable, dtype: 'F32', head: true,
  });
  const dims = [c.inDim, c.hiddenDim, c.hiddenDim, c.bottleneckDim];
  const out: ParamSpec[] = [];
  MLP.forEach((name, i) => {
    out.push(p(`${name}.weight`, [dims[i + 1]!, dims[i]!], 'linear', { kind: 'truncNormal', std: 0.02 }));
    out.push(p(`${name}.bias`, [dims[i + 1]!], 'plain', { kind: 'constant', value: 0 }));
  });
  // weight_g is [out, 1] in torch (weight_norm over dim 0); frozen at 1, so not trainable.
  out.push(p(`${LAST_LAYER_PREFIX}weight_g`, [c.outDim, 1], 'plain', { kind: 'constant', value: 1 }, false));
  out.push(p(`${LAST_LAYER_PREFIX}weight_v`, [c.outDim, c.bottleneckDim], 'linear', { kind: 'torchDefaultWeight' }));
  return out;
}

/** Variables from PyTorch-layout values (fresh from `seed` when `values` lacks a tensor). */
export function makeVariables(specs: readonly ParamSpec[], seed: number, values?: Map<string, Float32Array>): ParamMap {
  const params: ParamMap = new Map();
  for (const p of specs) {
    const torch = values?.get(p.name) ?? initialValues(p, seed);
    const data = torchToTf(p.layout, p.shape, torch);
    params.set(p.name, tf.tidy(() => tf.variable(tf.tensor(data, tfShape(p.layout, p.shape), 'float32'), p.trainable)));
  }
  return params;
}

/** [B, inDim] backbone features -> [B, outDim] logits. */
export function headForward(params: ParamMap, x: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    let h = gelu(linear(params, MLP[0], x));
    h = gelu(linear(params, MLP[1], h));
    h = linear(params, MLP[2], h);
    // F.normalize(dim=-1, p=2, eps=1e-12)
    const norm = tf.maximum(tf.sqrt(tf.sum(tf.square(h), 1, true)), 1e-12);
    const z = tf.div(h, norm) as tf.Tensor2D;
    // weight_norm(dim=0): each output unit's weight row over the inputs, i.e. a column of the
    // [in, out] tfjs matrix, scaled to length weight_g.
    const v = param(params, `${LAST_LAYER_PREFIX}weight_v`);
    const g = tf.reshape(param(params, `${LAST_LAYER_PREFIX}weight_g`), [1, -1]);
    const w = tf.mul(tf.div(v, tf.sqrt(tf.sum(tf.square(v), 0, true))), g) as tf.Tensor2D;
    return tf.matMul(z, w);
  });
}
