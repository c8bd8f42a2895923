// One entry point over both families: logits [B, num_classes] from NHWC images.

import * as tf from '@tensorflow/tfjs';
import type { ForwardOptions } from './layers.js';
import type { ParamMap } from './params.js';
import { resnetActivations, resnetFeatures, resnetForward, resnetHead } from './resnet.js';
import type { ModelSpec } from './types.js';
import { vitFeatures, vitForward, vitLastAttention } from './vit.js';

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

/** A ResNet's last-block activations [B, h, w, C] (Grad-CAM's layer); other families throw. */
export function convActivations(spec: ModelSpec, params: ParamMap, x: tf.Tensor4D, opts: ForwardOptions): tf.Tensor4D {
  checkInput(spec, x);
  const cfg = spec.config;
  if (cfg.family !== 'resnet') throw new Error(`${spec.name}: Grad-CAM needs a convolutional model (resnet family), this one is ${cfg.family}`);
  return resnetActivations(cfg, params, x, opts);
}

/** Logits from convActivations' output: forward() = classifyActivations(convActivations()). */
export function classifyActivations(spec: ModelSpec, params: ParamMap, activations: tf.Tensor4D): tf.Tensor2D {
  if (spec.config.family !== 'resnet') throw new Error(`${spec.name}: not a resnet`);
  return resnetHead(params, activations);
}

/** A ViT's last-block attention from CLS to all tokens, [B, heads, 1 + patches]; others throw. */
export function clsAttention(spec: ModelSpec, params: ParamMap, x: tf.Tensor4D): tf.Tensor3D {
  checkInput(spec, x);
  const cfg = spec.config;
  if (cfg.family !== 'vit') throw new Error(`${spec.name}: attention maps need a transformer (vit family), this one is ${cfg.family}`);
  return vitLastAttention(cfg, params, x);
}
