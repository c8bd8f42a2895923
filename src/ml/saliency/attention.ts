// DeiT self-attention maps as DINO's visualize_attention.py draws them: the last block's
// attention from the CLS token to the patches, per head; per head only the patches holding
// the top `threshold` share of the mass are kept; each patch becomes a patch-size square
// (nearest upsampling). The figure shows the mean over heads of the kept attention.

import * as tf from '@tensorflow/tfjs';
import { familyOf } from '../models/families.js';
import { clsAttention, forward } from '../models/forward.js';
import type { ParamMap } from '../models/params.js';
import type { ModelSpec } from '../models/types.js';
import { classProbabilities, predictedClass, type ClassMap } from './gradcam.js';
import { upsampleNearest } from './resample.js';
import { topMassMask } from './threshold.js';

export interface HeadMap {
  /** The head's CLS->patch attention, normalised over patches, [g, g]. */
  attention: Float32Array;
  /** 1 for kept patches, [g, g]. */
  mask: Uint8Array;
  /** The share of the head's mass the kept patches hold (>= threshold). */
  kept: number;
  /** The kept attention upsampled to the input, [H, W]: attention where kept, 0 elsewhere. */
  map: Float32Array;
}

export interface AttentionResult extends Omit<ClassMap, 'target'> {
  /** `map` (inherited): mean over heads of the heads' kept attention, [H, W]. */
  heads: HeadMap[];
  grid: number;
  patch: number;
  threshold: number;
}

/**
 * Attention maps for every image of `x` (NHWC, normalised as the model was trained). The
 * attention does not depend on a class; the prediction is reported beside it.
 */
export async function attentionMaps(spec: ModelSpec, params: ParamMap, x: tf.Tensor4D, threshold: number): Promise<AttentionResult[]> {
  const layout = familyOf(spec.config).attention?.(spec.config);
  if (!layout) throw new Error(`${spec.name}: attention maps need a transformer, this one is ${spec.config.family}`);
  const [B, H, W] = x.shape;
  const attn = tf.tidy(() => clsAttention(spec, params, x));
  const logitsT = tf.tidy(() => forward(spec, params, x, { training: false }));
  const T = attn.shape[2];
  const all = await attn.data();
  const logits = await logitsT.array();
  attn.dispose();
  logitsT.dispose();
  const heads = layout.heads;
  const n = T - 1;
  const g = Math.round(Math.sqrt(n));
  if (g * g !== n) throw new Error(`${spec.name}: ${n} patches do not form a square grid`);
  const p = layout.patch;
  return Array.from({ length: B }, (_, b) => {
    const perHead: HeadMap[] = [];
    const mean = new Float32Array(H * W);
    for (let k = 0; k < heads; k++) {
      const at = (b * heads + k) * T;
      // Index 0 is the CLS attending to itself; DINO drops it: attentions[0, :, 0, 1:].
      const row = all.subarray(at + 1, at + T);
      let total = 0;
      for (const v of row) total += v;
      const attention = Float32Array.from(row, (v) => (total > 0 ? v / total : 0));
      const { mask, kept } = topMassMask(attention, threshold);
      const masked = attention.map((v, i) => (mask[i] ? v : 0));
      const map = upsampleNearest(masked, g, g, p);
      for (let i = 0; i < map.length; i++) mean[i] += map[i] / heads;
      perHead.push({ attention, mask, kept, map });
    }
    return {
      map: mean,
      height: H,
      width: W,
      predicted: predictedClass(logits[b]),
      probs: classProbabilities(logits[b]),
      heads: perHead,
      grid: g,
      patch: p,
      threshold,
    };
  });
}
