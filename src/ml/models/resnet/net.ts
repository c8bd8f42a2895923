// torchvision ResNet forward over NHWC: conv7x7/2 - BN - ReLU - maxpool3x3/2, residual
// stages, global average pool (then the registry's fc). Bottleneck v1.5 (stride on the 3x3).

import * as tf from '@tensorflow/tfjs';
import { batchNorm, batchNormRelu, conv2d, type ForwardOptions } from '../layers.js';
import type { FamilyNet } from '../net.js';
import type { ParamMap } from '../params.js';
import { resnetInferLogits, resnetTrainStep } from './step.js';
import { blockShapes, blockUnits, downsampleUnit, STEM, STEM_POOL, type BlockShape, type ResNetConfig } from './spec.js';

function block(cfg: ResNetConfig, params: ParamMap, b: BlockShape, x: tf.Tensor4D, opts: ForwardOptions): tf.Tensor4D {
  const units = blockUnits(cfg, b);
  const last = units[units.length - 1]!;
  let out = x;
  for (const u of units.slice(0, -1)) out = batchNormRelu(params, u.bn, conv2d(params, u.conv, out, u.stride, u.pad), opts);
  out = conv2d(params, last.conv, out, last.stride, last.pad);
  const ds = downsampleUnit(b);
  const identity = ds ? batchNorm(params, ds.bn, conv2d(params, ds.conv, x, ds.stride, ds.pad), opts) : x;
  // relu(bn(out) + identity): one kernel each way on the native engine.
  return batchNormRelu(params, last.bn, out, opts, identity);
}

/** The last residual block's output, [B, h, w, C]: everything before the global pool. */
function activations(cfg: ResNetConfig, params: ParamMap, x: tf.Tensor4D, opts: ForwardOptions): tf.Tensor4D {
  return tf.tidy(() => {
    let h = batchNormRelu(params, STEM.bn, conv2d(params, STEM.conv, x, STEM.stride, STEM.pad), opts);
    // Padding 1 of a max pool counts as -inf in torch; tfjs pools over in-bounds values only.
    h = tf.maxPool(h, STEM_POOL.size, STEM_POOL.stride, STEM_POOL.pad);
    for (const b of blockShapes(cfg)) h = block(cfg, params, b, h, opts);
    return h;
  });
}

const pool = (_cfg: ResNetConfig, _params: ParamMap, a: tf.Tensor4D) => tf.mean(a, [1, 2]) as tf.Tensor2D;

export const RESNET_NET: FamilyNet<ResNetConfig> = {
  features: (cfg, params, x, opts) => tf.tidy(() => pool(cfg, params, activations(cfg, params, x, opts))),
  gradCam: { activations, pool },
  trainStep: resnetTrainStep,
  inferLogits: resnetInferLogits,
};
