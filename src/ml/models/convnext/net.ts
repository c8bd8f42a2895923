// torchvision ConvNeXt forward over NHWC. Channels-last is ConvNeXt's own layout: its
// LayerNorms and MLPs already run over the last axis, so NHWC needs no permutes.
// Stochastic depth ("row" mode) in training: each block's residual branch is kept per image
// with probability 1 - p and then scaled by 1 / (1 - p), the masks drawn from opts.random;
// without it the forward is deterministic (as a model built with stochastic_depth_prob 0, e.g.
// DINO's teacher).

import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../../../data/rng.js';
import { depthwiseConvSame } from '../../../engine/depthwise-conv.js';
import { conv2d, gelu, layerNorm, linear, type ForwardOptions } from '../layers.js';
import type { FamilyNet } from '../net.js';
import { param, type ParamMap } from '../params.js';
import { blockShapes, stageIndex, type CNBlockShape, type ConvNeXtConfig } from './spec.js';

/** LayerNorm over the channels of NHWC (torchvision's LayerNorm2d and the block's norm). */
function channelNorm(params: ParamMap, prefix: string, x: tf.Tensor4D, eps: number): tf.Tensor4D {
  const [B, H, W, C] = x.shape;
  return tf.reshape(layerNorm(params, prefix, tf.reshape(x, [B * H * W, C]) as tf.Tensor2D, eps), [B, H, W, C]) as tf.Tensor4D;
}

function convBias(params: ParamMap, prefix: string, x: tf.Tensor4D, stride: number): tf.Tensor4D {
  return tf.add(conv2d(params, `${prefix}.weight`, x, stride, 0), param(params, `${prefix}.bias`)) as tf.Tensor4D;
}

/**
 * Per block, the scale each image's residual branch gets in training: 0 (dropped) or
 * 1 / (1 - p); undefined for a block with p = 0 (nothing drawn). Draws come in block order,
 * then image order, so a test can replay them from an Rng of the same seed.
 */
export function dropPathScales(cfg: ConvNeXtConfig, batch: number, rng: Rng): (Float32Array | undefined)[] {
  return blockShapes(cfg).map(({ dropPath: p }) => (p > 0 ? Float32Array.from({ length: batch }, () => (rng.bool(1 - p) ? 1 / (1 - p) : 0)) : undefined));
}

function block(cfg: ConvNeXtConfig, params: ParamMap, b: CNBlockShape, x: tf.Tensor4D, keep: Float32Array | undefined): tf.Tensor4D {
  const [B, H, W, C] = x.shape;
  // The PyTorch [C, 1, k, k] weight is HWIO [k, k, 1, C] here: the same values as
  // depthwiseConv2d's [k, k, C, 1] (channel multiplier 1).
  const w = param(params, `${b.prefix}.block.0.weight`);
  const k = w.shape[0];
  const dw = tf.add(depthwiseConvSame(tf, x, tf.reshape(w, [k, k, C, 1]) as tf.Tensor4D, (k - 1) / 2), param(params, `${b.prefix}.block.0.bias`));
  let t = layerNorm(params, `${b.prefix}.block.2`, tf.reshape(dw, [B * H * W, C]) as tf.Tensor2D, cfg.eps);
  t = linear(params, `${b.prefix}.block.5`, gelu(linear(params, `${b.prefix}.block.3`, t)));
  let branch = tf.reshape(tf.mul(t, tf.reshape(param(params, `${b.prefix}.layer_scale`), [C])), [B, H, W, C]) as tf.Tensor4D;
  if (keep) branch = tf.mul(branch, tf.tensor4d(keep, [B, 1, 1, 1]));
  return tf.add(x, branch) as tf.Tensor4D;
}

/** The last stage's output, [B, h, w, C] (`features.7` of ConvNeXt-T). */
function activations(cfg: ConvNeXtConfig, params: ParamMap, x: tf.Tensor4D, opts: ForwardOptions): tf.Tensor4D {
  const blocks = blockShapes(cfg);
  const scales = opts.training && opts.random ? dropPathScales(cfg, x.shape[0], opts.random) : [];
  return tf.tidy(() => {
    let h = channelNorm(params, 'features.0.1', convBias(params, 'features.0.0', x, 4), cfg.eps);
    let i = 0;
    cfg.depths.forEach((n, s) => {
      if (s > 0) h = convBias(params, `features.${stageIndex(s) - 1}.1`, channelNorm(params, `features.${stageIndex(s) - 1}.0`, h, cfg.eps), 2);
      for (let j = 0; j < n; j++, i++) h = block(cfg, params, blocks[i], h, scales[i]);
    });
    return h;
  });
}

/** Global average pool, then the classifier's LayerNorm (classifier.0; classifier.2 is the head). */
function pool(cfg: ConvNeXtConfig, params: ParamMap, a: tf.Tensor4D): tf.Tensor2D {
  return tf.tidy(() => layerNorm(params, 'classifier.0', tf.mean(a, [1, 2]) as tf.Tensor2D, cfg.eps));
}

export const CONVNEXT_NET: FamilyNet<ConvNeXtConfig> = {
  features: (cfg, params, x, opts) => tf.tidy(() => pool(cfg, params, activations(cfg, params, x, opts))),
  gradCam: { activations, pool },
};
