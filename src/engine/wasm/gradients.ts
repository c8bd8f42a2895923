// Gradient overrides, wasm only (other backends keep tfjs's own). tfjs's FusedBatchNorm
// gradient tiles 1/sqrt(var) to the input's full shape and runs a dozen full-size
// element-wise ops and reductions; its Mean gradient multiplies by a full tensor of ones; its
// ReLU gradient is Step, Cast and Multiply. On wasm these took more of a ResNet50 step than
// all its convolutions once those ran natively. So: FusedBatchNorm's through one fused pass
// for the four per-channel sums and a broadcast product for dx, Mean's as a tile of dy / n
// (the same values as tfjs's dy * 1 / n), ReLU's as one kernel.

import type { GradConfig, Tensor } from '@tensorflow/tfjs-core';
import { BACKEND, KERNELS, WRAPPED, attr, sameShape, type GradFunc, type Tf } from './context.js';

function fusedBatchNormGrad(tf: Tf, original: GradFunc): GradFunc {
  return (dyIn, saved, attrs) => {
    const [x, mean, variance, scale] = saved;
    const dy = Array.isArray(dyIn) ? dyIn[0] : dyIn;
    if (tf.getBackend() !== BACKEND || mean.rank !== 1 || variance.rank !== 1 || x.dtype !== 'float32' ||
      x.shape[x.rank - 1] !== mean.shape[0] || (scale != null && scale.rank !== 1)) {
      return original(dyIn, saved, attrs);
    }
    const eps = attr<number>(attrs, 'varianceEpsilon');
    const C = mean.shape[0];
    let sums: Float32Array | undefined;
    let rs: Float64Array | undefined;
    let sc: Float32Array | undefined;
    const reduce = (): Float32Array => {
      if (sums === undefined) {
        const t = tf.engine().runKernel(KERNELS.bnReduce, { dy, x, mean }) as Tensor;
        sums = t.dataSync() as Float32Array;
        t.dispose();
      }
      return sums;
    };
    const rsqrt = (): Float64Array => (rs ??= Float64Array.from(variance.dataSync(), (v) => 1 / Math.sqrt(v + eps)));
    const gamma = (): Float32Array => (sc ??= scale == null ? new Float32Array(C).fill(1) : (scale.dataSync() as Float32Array));
    const perChannel = (f: (ch: number) => number): Tensor => tf.tensor1d(Float32Array.from({ length: C }, (_, ch) => f(ch)));
    return {
      x: () => tf.mul(dy, scale == null ? tf.rsqrt(tf.add(variance, eps)) : tf.mul(tf.rsqrt(tf.add(variance, eps)), scale)),
      mean: () => perChannel((ch) => -gamma()[ch] * rsqrt()[ch] * reduce()[ch]),
      variance: () => perChannel((ch) => -0.5 * rsqrt()[ch] ** 3 * gamma()[ch] * reduce()[C + ch]),
      scale: () => perChannel((ch) => rsqrt()[ch] * reduce()[C + ch]),
      offset: () => perChannel((ch) => reduce()[ch]),
    };
  };
}

function meanGrad(tf: Tf, original: GradFunc): GradFunc {
  return (dyIn, saved, attrs) => {
    const [x] = saved;
    const dy = Array.isArray(dyIn) ? dyIn[0] : dyIn;
    if (tf.getBackend() !== BACKEND || dy.dtype !== 'float32') return original(dyIn, saved, attrs);
    const axes = tf.util.parseAxisParam(attr<number | number[]>(attrs, 'axis'), x.shape);
    const expanded = x.shape.slice();
    const reps = x.shape.map(() => 1);
    let n = 1;
    for (const a of axes) {
      expanded[a] = 1;
      reps[a] = x.shape[a];
      n *= x.shape[a];
    }
    return { x: () => tf.tile(tf.div(tf.reshape(dy, expanded), n), reps) };
  };
}

function reluGradient(tf: Tf, original: GradFunc): GradFunc {
  return (dyIn, saved, attrs) => {
    const [x] = saved;
    const dy = Array.isArray(dyIn) ? dyIn[0] : dyIn;
    if (tf.getBackend() !== BACKEND || dy.dtype !== 'float32' || x.dtype !== 'float32' || !sameShape(dy.shape, x.shape)) {
      return original(dyIn, saved, attrs);
    }
    return { x: () => tf.engine().runKernel(KERNELS.reluGrad, { dy, x }) as Tensor };
  };
}

const GRADIENTS: Record<string, (tf: Tf, original: GradFunc) => GradFunc> = {
  FusedBatchNorm: fusedBatchNormGrad,
  Mean: meanGrad,
  Relu: reluGradient,
};
const gradOriginals = new Map<string, GradConfig>();

export function registerGradients(tf: Tf): void {
  for (const [name, make] of Object.entries(GRADIENTS)) {
    const existing = tf.getGradient(name) as (GradConfig & { [WRAPPED]?: true }) | undefined;
    if (existing === undefined || existing[WRAPPED]) continue;
    gradOriginals.set(name, existing);
    const config: GradConfig & { [WRAPPED]: true } = { ...existing, gradFunc: make(tf, existing.gradFunc), [WRAPPED]: true };
    tf.registerGradient(config);
  }
}


/** Puts tfjs's own gradients back (registerGradients wrapped them). */
export function restoreGradients(tf: Tf): void {
  for (const [, config] of gradOriginals) tf.registerGradient(config);
  gradOriginals.clear();
}
