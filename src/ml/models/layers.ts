// The building blocks of the families, over NHWC tensors and the parameter map, with
// PyTorch semantics (symmetric padding, BatchNorm running statistics, exact GELU).

import * as tf from '@tensorflow/tfjs';
import { batchNormReluInference, batchNormReluTraining, batchNormTraining, gelu as fusedGelu, layerNorm as fusedLayerNorm } from '../../engine/fused-ops.js';
import type { Rng } from '../../data/rng.js';
import { param, type ParamMap } from './params.js';

export interface ForwardOptions {
  /** BatchNorm uses batch statistics (and, by default, updates its running estimates). */
  training: boolean;
  /** Update BatchNorm running statistics when training (default true). Off for e.g. a
   *  second micro-batch that should not count twice, or for gradient checks. */
  updateStats?: boolean;
  /** torch's BatchNorm momentum: new = (1 - m) * old + m * batch. */
  bnMomentum?: number;
  /** Draws the training-time randomness a family has (ConvNeXt's stochastic depth masks),
   *  so that a seed decides every mask; without it training is deterministic (no drop path). */
  random?: Rng;
}

export const BN_EPS = 1e-5;

/** nn.Conv2d(k, stride, padding=pad) without bias; the weight is HWIO. */
export function conv2d(params: ParamMap, name: string, x: tf.Tensor4D, stride: number, pad: number): tf.Tensor4D {
  // A number pads both sides equally (PyTorch), where 'same' would pad TF-style (more after).
  return tf.conv2d(x, param(params, name) as tf.Tensor4D, stride, pad);
}

/**
 * nn.BatchNorm2d over NHWC. Training: normalises with the batch's (biased) variance and
 * moves running_var toward the unbiased one, as torch does; eval: running statistics.
 */
export function batchNorm(params: ParamMap, prefix: string, x: tf.Tensor4D, opts: ForwardOptions): tf.Tensor4D {
  const gamma = param(params, `${prefix}.weight`) as tf.Tensor1D;
  const beta = param(params, `${prefix}.bias`) as tf.Tensor1D;
  const runningMean = param(params, `${prefix}.running_mean`);
  const runningVar = param(params, `${prefix}.running_var`);
  if (!opts.training) return tf.batchNorm(x, runningMean as tf.Tensor1D, runningVar as tf.Tensor1D, beta, gamma, BN_EPS);
  const [b, h, w] = x.shape;
  const n = b * h * w;
  if (n < 2) throw new Error(`${prefix}: BatchNorm in training needs more than 1 value per channel, got input [${x.shape}]`);
  const m = opts.bnMomentum ?? 0.1;
  const tracked = param(params, `${prefix}.num_batches_tracked`);
  // One fused kernel each way on the native engine; tfjs's composed ops elsewhere.
  const running = { mean: runningMean, variance: runningVar, count: tracked, momentum: m };
  const fused = batchNormTraining(tf, x, gamma, beta, BN_EPS, opts.updateStats !== false ? running : undefined);
  if (fused) {
    tf.dispose([fused.mean, fused.variance]);
    return fused.y as tf.Tensor4D;
  }
  const { mean, variance } = tf.moments(x, [0, 1, 2]);
  if (opts.updateStats !== false) {
    tf.tidy(() => {
      // Values only: the running estimates are not part of the loss's graph.
      const bv = tf.mul(variance, n / (n - 1));
      runningMean.assign(tf.add(tf.mul(runningMean, 1 - m), tf.mul(mean, m)));
      runningVar.assign(tf.add(tf.mul(runningVar, 1 - m), tf.mul(bv, m)));
      tracked.assign(tf.add(tracked, tf.scalar(1, 'int32')));
    });
  }
  return tf.batchNorm(x, mean as tf.Tensor1D, variance as tf.Tensor1D, beta, gamma, BN_EPS);
}

/** relu(batchNorm(x) + residual) (residual optional): one fused kernel each way when
 *  training on the native engine, one fused kernel forward in eval mode, the composed ops
 *  elsewhere. */
export function batchNormRelu(params: ParamMap, prefix: string, x: tf.Tensor4D, opts: ForwardOptions, residual?: tf.Tensor4D): tf.Tensor4D {
  if (!opts.training) {
    const fused = batchNormReluInference(tf, x, param(params, `${prefix}.running_mean`), param(params, `${prefix}.running_var`),
      param(params, `${prefix}.weight`), param(params, `${prefix}.bias`), BN_EPS, residual);
    if (fused) return fused as tf.Tensor4D;
  }
  if (opts.training && x.shape[0] * x.shape[1] * x.shape[2] >= 2) {
    const running = {
      mean: param(params, `${prefix}.running_mean`), variance: param(params, `${prefix}.running_var`),
      count: param(params, `${prefix}.num_batches_tracked`), momentum: opts.bnMomentum ?? 0.1,
    };
    const fused = batchNormReluTraining(tf, x, param(params, `${prefix}.weight`), param(params, `${prefix}.bias`), BN_EPS,
      residual, opts.updateStats !== false ? running : undefined);
    if (fused) {
      tf.dispose([fused.mean, fused.variance]);
      return fused.y as tf.Tensor4D;
    }
  }
  const y = batchNorm(params, prefix, x, opts);
  return tf.relu(residual ? tf.add(y, residual) : y);
}

/** nn.Linear over rows: x [N, in], weight [in, out]. Always 2-D: tfjs 4.22's matMul
 *  gradient does not reduce over a broadcast batch, so token-wise layers flatten first. */
export function linear(params: ParamMap, prefix: string, x: tf.Tensor2D, bias = true): tf.Tensor2D {
  const y = tf.matMul(x, param(params, `${prefix}.weight`) as tf.Tensor2D) as tf.Tensor2D;
  return bias ? (tf.add(y, param(params, `${prefix}.bias`)) as tf.Tensor2D) : y;
}

/** nn.LayerNorm over the last axis of [N, D] (biased variance, as torch). */
export function layerNorm(params: ParamMap, prefix: string, x: tf.Tensor2D, eps: number): tf.Tensor2D {
  const fused = fusedLayerNorm(tf, x, param(params, `${prefix}.weight`), param(params, `${prefix}.bias`), eps);
  if (fused) return fused as tf.Tensor2D;
  const { mean, variance } = tf.moments(x, 1, true);
  const normed = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
  return tf.add(tf.mul(normed, param(params, `${prefix}.weight`)), param(params, `${prefix}.bias`)) as tf.Tensor2D;
}

/** nn.GELU() default: the exact erf form, not the tanh approximation. */
export function gelu(x: tf.Tensor2D): tf.Tensor2D {
  const fused = fusedGelu(tf, x);
  if (fused) return fused as tf.Tensor2D;
  return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));
}
