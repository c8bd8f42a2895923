// torchvision ResNet forward over NHWC: conv7x7/2 - BN - ReLU - maxpool3x3/2, residual
// stages, global average pool (then the registry's fc). Bottleneck v1.5 (stride on the 3x3).

import * as tf from '@tensorflow/tfjs';
import { batchNorm, batchNormRelu, conv2d, type ForwardOptions } from '../layers.js';
import type { FamilyNet } from '../net.js';
import type { ParamMap } from '../params.js';
import { blockShapes, type BlockShape, type ResNetConfig } from './spec.js';

function block(cfg: ResNetConfig, params: ParamMap, b: BlockShape, x: tf.Tensor4D, opts: ForwardOptions): tf.Tensor4D {
  const p = b.prefix;
  let out: tf.Tensor4D;
  let last: string;
  if (cfg.block === 'basic') {
    out = batchNormRelu(params, `${p}.bn1`, conv2d(params, `${p}.conv1.weight`, x, b.stride, 1), opts);
    out = conv2d(params, `${p}.conv2.weight`, out, 1, 1);
    last = 'bn2';
  } else {
    out = batchNormRelu(params, `${p}.bn1`, conv2d(params, `${p}.conv1.weight`, x, 1, 0), opts);
    out = batchNormRelu(params, `${p}.bn2`, conv2d(params, `${p}.conv2.weight`, out, b.stride, 1), opts);
    out = conv2d(params, `${p}.conv3.weight`, out, 1, 0);
    last = 'bn3';
  }
  const identity = b.downsample
    ? batchNorm(params, `${p}.downsample.1`, conv2d(params, `${p}.downsample.0.weight`, x, b.stride, 0), opts)
    : x;
  // relu(bn(out) + identity): one kernel each way on the native engine.
  return batchNormRelu(params, `${p}.${last}`, out, opts, identity);
}

/** The last residual block's output, [B, h, w, C]: everything before the global pool. */
function activations(cfg: ResNetConfig, params: ParamMap, x: tf.Tensor4D, opts: ForwardOptions): tf.Tensor4D {
  return tf.tidy(() => {
    let h = batchNormRelu(params, 'bn1', conv2d(params, 'conv1.weight', x, 2, 3), opts);
    // Padding 1 of a max pool counts as -inf in torch; tfjs pools over in-bounds values only.
    h = tf.maxPool(h, 3, 2, 1);
    for (const b of blockShapes(cfg)) h = block(cfg, params, b, h, opts);
    return h;
  });
}

const pool = (_cfg: ResNetConfig, _params: ParamMap, a: tf.Tensor4D) => tf.mean(a, [1, 2]) as tf.Tensor2D;

export const RESNET_NET: FamilyNet<ResNetConfig> = {
  features: (cfg, params, x, opts) => tf.tidy(() => pool(cfg, params, activations(cfg, params, x, opts))),
  gradCam: { activations, pool },
};
