// A family's tfjs half: its forward over NHWC images and the parameter map. The classifier
// is the family's `classifier` linear layer on `features`, for every family (./forward.ts).

import type * as tf from '@tensorflow/tfjs';
import type { ForwardOptions } from './layers.js';
import type { ParamMap } from './params.js';

export interface TrainStepOptions {
  /** Move the BatchNorm running estimates (default true), as ForwardOptions.updateStats. */
  updateStats?: boolean;
  bnMomentum?: number;
}

/** What tf.variableGrads returns: the loss and the gradients keyed by variable name (a type,
 *  not an interface, so that tf.tidy accepts it as a tensor container). */
export type TrainStepResult = {
  value: tf.Scalar;
  grads: tf.NamedTensorMap;
};

export interface FamilyNet<C> {
  /** Features before the classifier, [B, featureSize] (pooled, or the normed CLS token). */
  features(cfg: C, params: ParamMap, x: tf.Tensor4D, opts: ForwardOptions): tf.Tensor2D;
  /** A CNN's Grad-CAM split: features = pool(activations), activations [B, h, w, C] being
   *  the output of the description's `gradCamLayer`. */
  gradCam?: {
    activations(cfg: C, params: ParamMap, x: tf.Tensor4D, opts: ForwardOptions): tf.Tensor4D;
    pool(cfg: C, params: ParamMap, activations: tf.Tensor4D): tf.Tensor2D;
  };
  /** A whole training step (forward, softmax cross-entropy scaled by `scale`, backward) without
   *  tfjs's gradient tape, where the family has one and the backend runs it; undefined
   *  otherwise. Same values as forward() under tf.variableGrads. */
  trainStep?(cfg: C, params: ParamMap, x: tf.Tensor4D, onehot: tf.Tensor2D, scale: number, opts: TrainStepOptions): TrainStepResult | undefined;
  /** Eval-mode logits computed without tfjs's engine bookkeeping, where the family has that
   *  and the backend runs it (never while a gradient tape records); undefined otherwise.
   *  Same values as the classifier on features() with training off. */
  inferLogits?(cfg: C, params: ParamMap, x: tf.Tensor4D): tf.Tensor2D | undefined;
  /** features() computed the same way, where the family has that, the options change
   *  nothing in its forward (a ViT's: no dropout, no BatchNorm) and the backend runs it; never
   *  while a gradient tape records. Undefined otherwise. */
  inferFeatures?(cfg: C, params: ParamMap, x: tf.Tensor4D, opts: ForwardOptions): tf.Tensor2D | undefined;
  /** A transformer's last-block attention from the CLS token to all tokens, [B, heads, T]. */
  clsAttention?(cfg: C, params: ParamMap, x: tf.Tensor4D): tf.Tensor3D;
}
