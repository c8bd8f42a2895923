// Softmax cross-entropy as one kernel each way: loss = -scale * sum(labels * logSoftmax(z))
// over [N, K] logits and label weights (one-hot or soft). The composed form (logSoftmax's
// max, subtract, exp, sum, log, subtract, then multiply, sum, negate, scale, and the
// gradients of each) is ~25 dispatches and ~10 saved copies for the few hundred values of a
// classifier's output. Plain loops over heap views, float64 inside each row.

import type { KernelFunc } from '@tensorflow/tfjs-core';
import { attr, makeCtx, need, type KernelArgs, type Tf } from './context.js';

/** [loss (scalar), logSoftmax(logits)] for inputs logits, labels [N, K]; attr scale. */
export function softmaxCrossEntropy(tf: Tf): KernelFunc {
  return ({ inputs, backend, attrs }: KernelArgs) => {
    const c = makeCtx(tf, backend);
    const logits = need(inputs, 'logits');
    const labels = need(inputs, 'labels');
    const [N, K] = logits.shape as [number, number];
    const scale = attr<number>(attrs, 'scale');
    const loss = c.be.makeOutput([], 'float32');
    const logp = c.be.makeOutput([N, K], 'float32');
    // Views after the allocations (growth moves the heap).
    const z = c.f32(logits);
    const y = c.f32(labels);
    const lp = c.f32(logp);
    let total = 0;
    for (let n = 0, o = 0; n < N; n++, o += K) {
      let max = -Infinity;
      for (let k = 0; k < K; k++) max = Math.max(max, z[o + k]!);
      let sum = 0;
      for (let k = 0; k < K; k++) sum += Math.exp(z[o + k]! - max);
      const lse = max + Math.log(sum);
      for (let k = 0; k < K; k++) {
        lp[o + k] = z[o + k]! - lse;
        if (y[o + k] !== 0) total += y[o + k]! * lp[o + k]!;
      }
    }
    c.f32(loss)[0] = -scale * total;
    return [loss, logp];
  };
}

/** [dlogits, dlabels] of softmaxCrossEntropy for inputs dy (scalar), logp, labels. */
export function softmaxCrossEntropyGrad(tf: Tf): KernelFunc {
  return ({ inputs, backend, attrs }: KernelArgs) => {
    const c = makeCtx(tf, backend);
    const logpInfo = need(inputs, 'logp');
    const labels = need(inputs, 'labels');
    const [N, K] = logpInfo.shape as [number, number];
    const dz = c.be.makeOutput([N, K], 'float32');
    const dlabels = c.be.makeOutput([N, K], 'float32');
    const g = c.f32(need(inputs, 'dy'))[0]! * attr<number>(attrs, 'scale');
    const lp = c.f32(logpInfo);
    const y = c.f32(labels);
    const dzs = c.f32(dz);
    const dys = c.f32(dlabels);
    // d/dz_k = g (softmax_k * sum(labels of the row) - labels_k); d/dlabels_k = -g logp_k.
    for (let n = 0, o = 0; n < N; n++, o += K) {
      let w = 0;
      for (let k = 0; k < K; k++) w += y[o + k]!;
      for (let k = 0; k < K; k++) {
        dzs[o + k] = g * (Math.exp(lp[o + k]!) * w - y[o + k]!);
        dys[o + k] = -g * lp[o + k]!;
      }
    }
    return [dz, dlabels];
  };
}
