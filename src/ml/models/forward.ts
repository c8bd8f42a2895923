// One entry point over both families: logits [B, num_classes] from NHWC images.

import * as tf from '@tensorflow/tfjs';
import type { ForwardOptions } from './layers.js';
import type { ParamMap } from './params.js';
import { resnetFeatures, resnetForward } from './resnet.js';
import type { ModelSpec } from './types.js';
import { vitFeatures, vitForward } from './vit.js';

export type { ForwardOptions } from './layers.js';

function checkInput(spec: ModelSpec, x: tf.Tensor4D): void {
  if (x.rank !== 4) throw new Error(`${spec.name}: input must be NHWC [B, H, W, C], got rank ${x.rank}`);
  const c = x.shape[3];
  if (c !== spec.config.channels) throw new Error(`${spec.name}: input has ${c} channels, the model takes ${spec.config.channels}`);
}

export function forward(spec: ModelSpec, params: ParamMap, x: tf.Tensor4D, opts: ForwardOptions): tf.Tensor2D {
  checkInput(spec, x);
  const cfg = spec.config;
  return cfg.family === 'resnet' ? resnetForward(cfg, params, x, opts) : vitForward(cfg, params, x, opts);
}

/** Features before the head (pooled for ResNet, normed CLS for ViT), for DINO or probing. */
export function features(spec: ModelSpec, params: ParamMap, x: tf.Tensor4D, opts: ForwardOptions): tf.Tensor2D {
  checkInput(spec, x);
  const cfg = spec.config;
  return cfg.family === 'resnet' ? resnetFeatures(cfg, params, x, opts) : vitFeatures(cfg, params, x, opts);
}
