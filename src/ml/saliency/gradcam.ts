// Grad-CAM (Selvaraju et al. 2017) on a CNN's last block (the family's gradCamLayer: a
// ResNet's layer4[-1], a ConvNeXt's last stage), as pytorch-grad-cam
// computes it: the target is the class's raw logit; each channel is weighted by the spatial
// mean of that logit's gradient; the weighted sum of the activations goes through a ReLU and
// is upsampled (bilinear) to the input size.

import * as tf from '@tensorflow/tfjs';
import { classifyActivations, convActivations } from '../models/forward.js';
import type { ParamMap } from '../models/params.js';
import type { ModelSpec } from '../models/types.js';
import { resizeBilinear } from './resample.js';

export interface ClassMap {
  /** The map at the input's size, row-major [H, W]; non-negative, not normalised. */
  map: Float32Array;
  height: number;
  width: number;
  /** The class the map explains. */
  target: number;
  /** The model's prediction and its class probabilities (softmax, or sigmoid for one logit). */
  predicted: number;
  probs: number[];
}

export interface GradCamResult extends ClassMap {
  /** The map before upsampling, [h, w] at the last block's resolution. */
  coarse: Float32Array;
  grid: [number, number];
  /** The explained class's score (its logit; minus the logit for class 0 of a one-logit head). */
  score: number;
}

/** argmax for several logits; logit > 0 for a single (sigmoid) one. */
export function predictedClass(logits: ArrayLike<number>): number {
  if (logits.length === 1) return logits[0] > 0 ? 1 : 0;
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

export function classProbabilities(logits: ArrayLike<number>): number[] {
  if (logits.length === 1) {
    const p = 1 / (1 + Math.exp(-logits[0]));
    return [1 - p, p];
  }
  const m = Math.max(...Array.from(logits));
  const e = Array.from(logits, (z) => Math.exp(z - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/**
 * The score whose gradient Grad-CAM follows, per image: the target class's logit. A one-logit
 * (binary, sigmoid) head has no logit for class 0, so class 0 follows the negated logit: the
 * log-odds of class 0, which is what "evidence for class 0" means there.
 */
function targetScores(logits: tf.Tensor2D, targets: readonly number[]): tf.Tensor1D {
  const [B, K] = logits.shape;
  if (K === 1) {
    const sign = tf.tensor2d(targets.map((t) => (t === 0 ? -1 : 1)), [B, 1]);
    return tf.reshape(tf.mul(logits, sign), [B]) as tf.Tensor1D;
  }
  return tf.sum(tf.mul(logits, tf.oneHot(tf.tensor1d([...targets], 'int32'), K)), 1) as tf.Tensor1D;
}

/**
 * Grad-CAM for every image of `x` (NHWC, normalised as the model was trained). `target`
 * picks the explained class per image; by default the model's prediction.
 */
export async function gradCam(
  spec: ModelSpec,
  params: ParamMap,
  x: tf.Tensor4D,
  target?: (predicted: number, image: number) => number,
): Promise<GradCamResult[]> {
  const [B, H, W] = x.shape;
  const K = spec.config.numClasses;
  const acts = tf.tidy(() => convActivations(spec, params, x, { training: false }));
  try {
    const logits = await tf.tidy(() => classifyActivations(spec, params, acts)).array();
    const predicted = logits.map(predictedClass);
    const targets = predicted.map((p, i) => (target ? target(p, i) : p));
    for (const t of targets) {
      if (!Number.isInteger(t) || t < 0 || t >= Math.max(2, K)) throw new Error(`Grad-CAM: class ${t} is outside the model's ${Math.max(2, K)} classes`);
    }
    // Images are independent in eval mode (BatchNorm uses running statistics), so the gradient
    // of the summed scores gives each image its own score's gradient.
    const [cams, scores] = tf.tidy((): tf.Tensor[] => {
      const grads = tf.grad((a: tf.Tensor) => tf.sum(targetScores(classifyActivations(spec, params, a as tf.Tensor4D), targets)))(acts);
      const weights = tf.mean(grads, [1, 2], true); // [B, 1, 1, C]: alpha_k^c
      const cam = tf.relu(tf.sum(tf.mul(acts, weights), 3)); // [B, h, w]
      return [cam, targetScores(classifyActivations(spec, params, acts), targets)];
    });
    const [, h, w] = cams.shape;
    const camData = await cams.data();
    const scoreData = await scores.data();
    cams.dispose();
    scores.dispose();
    return Array.from({ length: B }, (_, i) => {
      const coarse = Float32Array.from(camData.subarray(i * h * w, (i + 1) * h * w));
      return {
        map: resizeBilinear(coarse, h, w, 1, H, W),
        height: H,
        width: W,
        coarse,
        grid: [h, w] as [number, number],
        target: targets[i],
        predicted: predicted[i],
        probs: classProbabilities(logits[i]),
        score: scoreData[i],
      };
    });
  } finally {
    acts.dispose();
  }
}
