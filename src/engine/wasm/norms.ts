// Norm kernels on wasm: BatchNorm (inference, and the fused training kernels with batch
// statistics, one pass each way), LayerNorm (fused, one pass each way), and the reductions
// BatchNorm's gradients need: Sum / Mean over every axis but the last, and the per-channel
// sums of the FusedBatchNorm gradient (gradients.ts). Native where built, except the
// reductions' pure-JS fallbacks.

import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { NativeOp } from '../native.js';
import { KERNELS, NATIVE_MIN_ELEMENTS, attr, heapIndex, heapIndexOrNone, heapOf, isRow, makeCtx, native, nativeOnly, need, type KernelArgs, type Tf } from './context.js';

/** Sum / Mean over every axis but the last (BatchNorm statistics and their gradients): a
 *  native column reduction; any other reduction goes to the wasm kernel. */
export function columnReduce(tf: Tf, kernel: 'Sum' | 'Mean'): KernelFunc {
  return ({ inputs, backend, attrs }: KernelArgs) => {
    const c = makeCtx(tf, backend);
    const x = need(inputs, 'x');
    const nat = native();
    const r = x.shape.length;
    if (nat === undefined || x.dtype !== 'float32' || r < 2) return c.run(kernel, inputs, attrs);
    const axes = tf.util.parseAxisParam(attr<number | number[]>(attrs, 'axis'), x.shape);
    const sorted = [...new Set(axes)].sort((p, q) => p - q);
    if (sorted.length !== r - 1 || sorted.some((a, i) => a !== i)) return c.run(kernel, inputs, attrs);
    const C = x.shape[r - 1];
    const rows = tf.util.sizeFromShape(x.shape) / Math.max(C, 1);
    if (C === 0 || rows === 0) return c.run(kernel, inputs, attrs);
    const keep = attr<boolean | undefined>(attrs, 'keepDims') === true;
    const out = c.be.makeOutput(keep ? [...x.shape.slice(0, -1).map(() => 1), C] : [C], 'float32');
    nat.run('colReduce', heapOf(c.be), [rows, C, heapIndex(c.be, x), heapIndex(c.be, out), kernel === 'Mean' ? 1 / rows : 1]);
    return out;
  };
}

/** [2, C]: per channel sum(dy) and sum(dy * (x - mean)) over every other axis. */
export function batchNormReduce(tf: Tf): KernelFunc {
  return ({ inputs, backend }: KernelArgs) => {
    const c = makeCtx(tf, backend);
    const dy = need(inputs, 'dy');
    const x = need(inputs, 'x');
    const mean = need(inputs, 'mean');
    const C = mean.shape[0];
    const rows = tf.util.sizeFromShape(x.shape) / C;
    const out = c.be.makeOutput([2, C], 'float32');
    const nat = native();
    if (nat !== undefined && rows > 0) {
      nat.run('bnReduce', heapOf(c.be), [rows, C, heapIndex(c.be, dy), heapIndex(c.be, x), heapIndex(c.be, mean), heapIndex(c.be, out)]);
      return out;
    }
    const d = c.f32(dy);
    const v = c.f32(x);
    const m = Float64Array.from(c.f32(mean));
    const s1 = new Float64Array(C);
    const s2 = new Float64Array(C);
    for (let r = 0, i = 0; r < rows; r++) {
      for (let ch = 0; ch < C; ch++, i++) {
        s1[ch] += d[i];
        s2[ch] += d[i] * (v[i] - m[ch]);
      }
    }
    const o = c.f32(out);
    o.set(s1);
    o.set(s2, C);
    return out;
  };
}



export function fusedBatchNorm(tf: Tf): KernelFunc {
  return ({ inputs, backend, attrs }: KernelArgs) => {
    const c = makeCtx(tf, backend);
    const x = need(inputs, 'x');
    const mean = need(inputs, 'mean');
    const variance = need(inputs, 'variance');
    const { scale, offset } = inputs;
    const nat = native();
    const C = x.shape[x.shape.length - 1] ?? 0;
    const n = tf.util.sizeFromShape(x.shape);
    const perChannel = (t: TensorInfo | undefined): boolean =>
      t === undefined || (t.dtype === 'float32' && tf.util.sizeFromShape(t.shape) === C && isRow(t.shape, x.shape));
    if (nat === undefined || x.dtype !== 'float32' || C === 0 || n < NATIVE_MIN_ELEMENTS ||
      ![mean, variance, scale, offset].every(perChannel)) {
      return c.run('FusedBatchNorm', inputs, attrs);
    }
    const out = c.be.makeOutput(x.shape, 'float32');
    const at = (t: TensorInfo | undefined): number => heapIndexOrNone(c.be, t);
    nat.run('batchNorm', heapOf(c.be), [
      n / C, C, at(x), at(mean), at(variance), at(scale), at(offset), attr<number>(attrs, 'varianceEpsilon'), at(out),
    ]);
    return out;
  };
}

/**
 * What each native BatchNorm kernel starts from: the addon (these kernels have no fallback), x
 * with its channels (the last axis) and rows (all the others), epsilon, heap indices (-1 for
 * an absent tensor), and outputs shaped like x or one value per channel.
 */
function batchNormSetup(tf: Tf, { inputs, backend, attrs }: KernelArgs, kernel: string) {
  const c = makeCtx(tf, backend);
  const nat = nativeOnly(kernel);
  const x = need(inputs, 'x');
  const C = x.shape[x.shape.length - 1]!;
  return {
    x,
    C,
    rows: tf.util.sizeFromShape(x.shape) / C,
    eps: attr<number>(attrs, 'varianceEpsilon'),
    at: (t: TensorInfo | undefined): number => heapIndexOrNone(c.be, t),
    likeX: (): TensorInfo => c.be.makeOutput(x.shape, 'float32'),
    perChannel: (): TensorInfo => c.be.makeOutput([C], 'float32'),
    // The heap is read at the call, after the outputs were made: an allocation may grow (replace) it.
    run: (op: NativeOp, args: number[]): void => nat.run(op, heapOf(c.be), args),
  };
}

/** max(0, BatchNorm(x) + residual) with given statistics (inference; residual optional),
 *  one native pass where FusedBatchNorm, Add and Relu are three. */
export function batchNormRelu(tf: Tf): KernelFunc {
  return (args: KernelArgs) => {
    const { x, C, rows, eps, at, likeX, run } = batchNormSetup(tf, args, KERNELS.bnRelu);
    const { inputs } = args;
    const y = likeX();
    run('bnRelu', [rows, C, at(x), at(need(inputs, 'mean')), at(need(inputs, 'variance')), at(inputs['scale']), at(inputs['offset']), at(inputs['residual']), eps, at(y)]);
    return y;
  };
}

/** [y, mean, variance] of a BatchNorm over every axis but the last, batch statistics. */
export function batchNormTrain(tf: Tf): KernelFunc {
  return (args: KernelArgs) => {
    const { x, C, rows, eps, at, likeX, perChannel, run } = batchNormSetup(tf, args, KERNELS.bnTrain);
    const { inputs } = args;
    const [y, mean, variance] = [likeX(), perChannel(), perChannel()];
    run('bnTrain', [rows, C, at(x), at(inputs['scale']), at(inputs['offset']), eps, at(y), at(mean), at(variance)]);
    return [y, mean, variance];
  };
}

/** [dx, dscale, doffset] of batchNormTrain, through the batch statistics. */
export function batchNormTrainGrad(tf: Tf): KernelFunc {
  return (args: KernelArgs) => {
    const { x, C, rows, eps, at, likeX, perChannel, run } = batchNormSetup(tf, args, KERNELS.bnTrainGrad);
    const { inputs } = args;
    const [dx, dscale, doffset] = [likeX(), perChannel(), perChannel()];
    run('bnTrainGrad', [
      rows, C, at(need(inputs, 'dy')), at(x), at(need(inputs, 'mean')), at(need(inputs, 'variance')), at(inputs['scale']),
      eps, at(dx), at(dscale), at(doffset),
    ]);
    return [dx, dscale, doffset];
  };
}

/** [y, mean, variance] of max(0, BatchNorm(x) + residual) (residual optional), batch
 *  statistics: ResNet's "BN -> ReLU" and "BN + identity -> ReLU" as one kernel. */
export function batchNormReluTrain(tf: Tf): KernelFunc {
  return (args: KernelArgs) => {
    const { x, C, rows, eps, at, likeX, perChannel, run } = batchNormSetup(tf, args, KERNELS.bnReluTrain);
    const { inputs } = args;
    const [y, mean, variance] = [likeX(), perChannel(), perChannel()];
    run('bnReluTrain', [rows, C, at(x), at(inputs['scale']), at(inputs['offset']), at(inputs['residual']), eps, at(y), at(mean), at(variance)]);
    return [y, mean, variance];
  };
}

/** [dx, dscale, doffset] (and dresidual when attr `residual` is set) of batchNormReluTrain;
 *  y is its output, whose sign is the ReLU's mask. An optional input `dy2` is added to dy
 *  (float32, the bits of an Add before this kernel) in the kernel's first pass: the step
 *  graph's block-input gradients, without the Add's pass and buffer. */
export function batchNormReluTrainGrad(tf: Tf): KernelFunc {
  return (args: KernelArgs) => {
    const { x, C, rows, eps, at, likeX, perChannel, run } = batchNormSetup(tf, args, KERNELS.bnReluTrainGrad);
    const { inputs } = args;
    const [dx, dscale, doffset] = [likeX(), perChannel(), perChannel()];
    const dres = attr<boolean | undefined>(args.attrs, 'residual') === true ? likeX() : undefined;
    const dy2 = inputs['dy2'];
    // The kernel reads dy2 as x's values: a wrong shape would be read silently.
    if (dy2 && !tf.util.arraysEqual(dy2.shape, x.shape)) {
      throw new Error(`MedpipeBatchNormReluTrainGrad: dy2 has shape [${dy2.shape}], x has [${x.shape}]`);
    }
    run('bnReluTrainGrad', [
      rows, C, at(need(inputs, 'dy')), at(x), at(need(inputs, 'y')), at(need(inputs, 'mean')),
      at(need(inputs, 'variance')), at(inputs['scale']), eps, at(dx), at(dscale), at(doffset), at(dres), at(dy2),
    ]);
    return dres ? [dx, dscale, doffset, dres] : [dx, dscale, doffset];
  };
}

/** [y, mean, rstd] of a LayerNorm over the last axis (mean and 1/sqrt(var + eps) per row). */
export function layerNormKernel(tf: Tf): KernelFunc {
  return ({ inputs, backend, attrs }: KernelArgs) => {
    const c = makeCtx(tf, backend);
    const nat = nativeOnly(KERNELS.layerNorm);
    const x = need(inputs, 'x');
    const D = x.shape[x.shape.length - 1]!;
    const rows = tf.util.sizeFromShape(x.shape) / D;
    const y = c.be.makeOutput(x.shape, 'float32');
    const mean = c.be.makeOutput([rows], 'float32');
    const rstd = c.be.makeOutput([rows], 'float32');
    const at = (t: TensorInfo): number => heapIndex(c.be, t);
    nat.run('layerNorm', heapOf(c.be), [
      rows, D, at(x), at(need(inputs, 'scale')), at(need(inputs, 'offset')), attr<number>(attrs, 'epsilon'), at(y), at(mean), at(rstd),
    ]);
    return [y, mean, rstd];
  };
}

/** [dx, dscale, doffset] of layerNormKernel. */
export function layerNormGradKernel(tf: Tf): KernelFunc {
  return ({ inputs, backend }: KernelArgs) => {
    const c = makeCtx(tf, backend);
    const nat = nativeOnly(KERNELS.layerNormGrad);
    const x = need(inputs, 'x');
    const D = x.shape[x.shape.length - 1]!;
    const dx = c.be.makeOutput(x.shape, 'float32');
    const dscale = c.be.makeOutput([D], 'float32');
    const doffset = c.be.makeOutput([D], 'float32');
    const at = (t: TensorInfo): number => heapIndex(c.be, t);
    nat.run('layerNormGrad', heapOf(c.be), [
      tf.util.sizeFromShape(x.shape) / D, D, at(need(inputs, 'dy')), at(x), at(need(inputs, 'mean')), at(need(inputs, 'rstd')),
      at(need(inputs, 'scale')), at(dx), at(dscale), at(doffset),
    ]);
    return [dx, dscale, doffset];
  };
}
