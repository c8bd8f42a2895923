// One entry point over every family: logits [B, num_classes] from NHWC images. The nets are
// registered here (their descriptions in ./families.ts); the classifier is the family's
// `classifier` linear layer on `features` for all of them.

import * as tf from '@tensorflow/tfjs';
import { CONVNEXT_NET } from './convnext/net.js';
import { familyOf, type ConfigOf, type FamilyName } from './families.js';
import { linear, type ForwardOptions } from './layers.js';
import type { FamilyNet, TrainStepOptions, TrainStepResult } from './net.js';
import type { ParamMap } from './params.js';
import { RESNET_NET } from './resnet/net.js';
import type { ModelConfig, ModelSpec } from './types.js';
import { VIT_NET } from './vit/net.js';

export type { ForwardOptions } from './layers.js';

const NETS: { [F in FamilyName]: FamilyNet<ConfigOf<F>> } = { resnet: RESNET_NET, vit: VIT_NET, convnext: CONVNEXT_NET };

function netOf(spec: ModelSpec): FamilyNet<ModelConfig> {
  return NETS[spec.config.family] as FamilyNet<ModelConfig>;
}

/** The families' step graphs (trainStep, forward() in eval mode, features() off the tape) unless MEDPIPE_STEP_GRAPH=0. */
const stepGraphOn = (): boolean => process.env['MEDPIPE_STEP_GRAPH'] !== '0';

function checkInput(spec: ModelSpec, x: tf.Tensor4D): void {
  if (x.rank !== 4) throw new Error(`${spec.name}: input must be NHWC [B, H, W, C], got rank ${x.rank}`);
  const c = x.shape[3];
  if (c !== spec.config.channels) throw new Error(`${spec.name}: input has ${c} channels, the model takes ${spec.config.channels}`);
}

function classify(spec: ModelSpec, params: ParamMap, features: tf.Tensor2D): tf.Tensor2D {
  return linear(params, familyOf(spec.config).classifier, features);
}

export function forward(spec: ModelSpec, params: ParamMap, x: tf.Tensor4D, opts: ForwardOptions): tf.Tensor2D {
  checkInput(spec, x);
  if (!opts.training && stepGraphOn()) {
    const direct = netOf(spec).inferLogits?.(spec.config, params, x);
    if (direct) return direct;
  }
  return tf.tidy(() => classify(spec, params, netOf(spec).features(spec.config, params, x, opts)));
}

/**
 * One training step's loss (softmax cross-entropy of `onehot`, summed over the batch and
 * times `scale`: 1 / N is the mean) and gradients, keyed as tf.variableGrads keys them,
 * computed without tfjs's gradient tape where the family has a step graph and the backend
 * runs it (ResNet and ViT on wasm with the native kernels); undefined elsewhere, and the caller runs
 * forward() under tf.variableGrads. MEDPIPE_STEP_GRAPH=0 switches the step graphs off.
 */
export function trainStep(spec: ModelSpec, params: ParamMap, x: tf.Tensor4D, onehot: tf.Tensor2D, scale: number, opts: TrainStepOptions = {}): TrainStepResult | undefined {
  checkInput(spec, x);
  const step = netOf(spec).trainStep;
  if (step === undefined || !stepGraphOn()) return undefined;
  return step(spec.config, params, x, onehot, scale, opts);
}

/** Features before the head (pooled for CNNs, normed CLS for ViT), for DINO or probing. */
export function features(spec: ModelSpec, params: ParamMap, x: tf.Tensor4D, opts: ForwardOptions): tf.Tensor2D {
  checkInput(spec, x);
  if (stepGraphOn()) {
    const direct = netOf(spec).inferFeatures?.(spec.config, params, x, opts);
    if (direct) return direct;
  }
  return netOf(spec).features(spec.config, params, x, opts);
}

function gradCamNet(spec: ModelSpec): NonNullable<FamilyNet<ModelConfig>['gradCam']> {
  const g = netOf(spec).gradCam;
  if (!g) throw new Error(`${spec.name}: Grad-CAM needs a convolutional model, this one is ${spec.config.family}`);
  return g;
}

/** The output of the family's Grad-CAM layer, [B, h, w, C]; non-CNN families throw. */
export function convActivations(spec: ModelSpec, params: ParamMap, x: tf.Tensor4D, opts: ForwardOptions): tf.Tensor4D {
  checkInput(spec, x);
  return gradCamNet(spec).activations(spec.config, params, x, opts);
}

/** Logits from convActivations' output: forward() = classifyActivations(convActivations()). */
export function classifyActivations(spec: ModelSpec, params: ParamMap, activations: tf.Tensor4D): tf.Tensor2D {
  return tf.tidy(() => classify(spec, params, gradCamNet(spec).pool(spec.config, params, activations)));
}

/** A transformer's last-block attention from CLS to all tokens, [B, heads, 1 + patches]. */
export function clsAttention(spec: ModelSpec, params: ParamMap, x: tf.Tensor4D): tf.Tensor3D {
  checkInput(spec, x);
  const attention = netOf(spec).clsAttention;
  if (!attention) throw new Error(`${spec.name}: attention maps need a transformer, this one is ${spec.config.family}`);
  return attention(spec.config, params, x);
}
