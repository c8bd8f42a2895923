// A family's tfjs half: its forward over NHWC images and the parameter map. The classifier
// is the family's `classifier` linear layer on `features`, for every family (./forward.ts).

import type * as tf from '@tensorflow/tfjs';
import type { ForwardOptions } from './layers.js';
import type { ParamMap } from './params.js';

export interface FamilyNet<C> {
  /** Features before the classifier, [B, featureSize] (pooled, or the normed CLS token). */
  features(cfg: C, params: ParamMap, x: tf.Tensor4D, opts: ForwardOptions): tf.Tensor2D;
  /** A CNN's Grad-CAM split: features = pool(activations), activations [B, h, w, C] being
   *  the output of the description's `gradCamLayer`. */
  gradCam?: {
    activations(cfg: C, params: ParamMap, x: tf.Tensor4D, opts: ForwardOptions): tf.Tensor4D;
    pool(cfg: C, params: ParamMap, activations: tf.Tensor4D): tf.Tensor2D;
  };
  /** A transformer's last-block attention from the CLS token to all tokens, [B, heads, T]. */
  clsAttention?(cfg: C, params: ParamMap, x: tf.Tensor4D): tf.Tensor3D;
}
