// Layers as one kernel forward and one backward on the native engine, where tfjs composes
// them from many small ops: BatchNorm in training mode is ~10 ops forward and ~25 backward
// (moments, their gradients, tiles of per-channel values), LayerNorm about as many, exact
// GELU ~5 and ~10; each op a full pass over the activations and a dispatch with its own
// fixed cost. Callers fall back to the composed form (the same function, within float32
// rounding) when these return undefined: other backends, including tfjs-node(-gpu), keep
// their own kernels. On webgpu all three are WGSL (src/engine/webgpu-kernels.ts), and the
// BatchNorm running estimates are updated on the device.

import type * as tfTypes from '@tensorflow/tfjs';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { ownData } from './in-place.js';
import { activeNative } from './native.js';
import { BN_RELU, BN_RELU_TRAIN, BN_RELU_TRAIN_GRAD, BN_TRAIN, BN_TRAIN_GRAD, GELU, GELU_GRAD, LN, LN_GRAD, SOFTMAX_CE, SOFTMAX_CE_GRAD } from './wasm-kernels.js';
import { RUNNING_STAT } from './webgpu-kernels.js';

type Tf = typeof tfTypes;
type Tensor = tfTypes.Tensor;

function fusedAvailable(tf: Tf, kernel: string): boolean {
  const backend = tf.getBackend();
  // On webgpu, those medpipe registered in WGSL (src/engine/webgpu-kernels.ts).
  if (backend === 'webgpu') return tf.getKernel(kernel, 'webgpu') !== undefined;
  return backend === 'wasm' && activeNative() !== undefined && tf.getKernel(kernel, 'wasm') !== undefined;
}

type Saved = (tensors: Tensor[]) => void;

/** A differentiable op from a forward kernel and a gradient kernel. */
function fusedOp(
  tf: Tf,
  forward: (inputs: Tensor[], save: Saved) => Tensor,
  backward: (dy: Tensor, saved: Tensor[]) => Tensor[],
): (...inputs: Tensor[]) => Tensor {
  const fn = (...args: unknown[]) => {
    const save = args.pop() as Saved;
    return { value: forward(args as Tensor[], save), gradFunc: backward };
  };
  return tf.customGrad(fn as unknown as Parameters<Tf['customGrad']>[0]);
}

export interface BatchNormTraining {
  y: Tensor;
  /** Batch mean and biased variance per channel: the caller disposes them. */
  mean: Tensor;
  variance: Tensor;
}

/** torch's running estimates, moved toward the batch's statistics. */
export interface RunningStats {
  mean: tfTypes.Variable;
  variance: tfTypes.Variable;
  /** num_batches_tracked (int32), incremented. */
  count: tfTypes.Variable;
  /** new = (1 - momentum) * old + momentum * batch (unbiased variance). */
  momentum: number;
}

/**
 * The running estimates' update in host arithmetic, with the float32 rounding of each tfjs op
 * the composed form uses, written in place into the variables' data on the wasm heap (host
 * memory). As tfjs ops recorded on the gradient tape it was ~10 dispatches and ~20 saved
 * copies per layer; as fresh tensors assigned, three allocations and frees per layer.
 */
export function updateRunningStats(tf: Tf, r: RunningStats, mean: TensorInfo, variance: TensorInfo, n: number): void {
  const be = tf.backend() as BackendWasm;
  for (const v of [r.mean, r.variance, r.count]) ownData(tf, be, v);
  // Views taken after ownData's copies: an allocation may have grown (replaced) the heap.
  const heap = (t: TensorInfo) => be.typedArrayFromHeap(t);
  const f = Math.fround;
  const m = r.momentum;
  const mix = (old: ArrayLike<number> & { [i: number]: number }, batch: ArrayLike<number>, scale: number): void => {
    for (let i = 0; i < old.length; i++) old[i] = f(f(old[i]! * f(1 - m)) + f(f(batch[i]! * f(scale)) * f(m)));
  };
  mix(heap(r.mean), heap(mean), 1);
  mix(heap(r.variance), heap(variance), n / (n - 1));
  heap(r.count)[0]! += 1;
}

/** The same update as device kernels: on a GPU a host read per layer would stall the queue. */
function updateRunningStatsOnDevice(tf: Tf, r: RunningStats, mean: Tensor, variance: Tensor, n: number): void {
  tf.tidy(() => {
    const move = (old: tfTypes.Variable, batch: Tensor, scale: number) =>
      tf.engine().runKernel(RUNNING_STAT, { old, batch }, { momentum: r.momentum, scale }) as Tensor;
    r.mean.assign(move(r.mean, mean, 1));
    r.variance.assign(move(r.variance, variance, n / (n - 1)));
    r.count.assign(tf.add(r.count, tf.scalar(1, 'int32')));
  });
}

/** BatchNorm over every axis but the last with the batch's statistics (differentiable in
 *  x, scale and offset), updating `running` when given; undefined (nothing done) where no
 *  fused kernel exists. */
export function batchNormTraining(tf: Tf, x: Tensor, scale: Tensor, offset: Tensor, eps: number, running?: RunningStats): BatchNormTraining | undefined {
  if (!fusedAvailable(tf, BN_TRAIN) || [x, scale, offset].some((t) => t.dtype !== 'float32')) return undefined;
  const C = x.shape[x.rank - 1];
  if (scale.size !== C || offset.size !== C || x.size === 0) return undefined;
  const attrs = { varianceEpsilon: eps };
  let stats: Tensor[] = [];
  const y = fusedOp(tf,
    ([xs, g, b], save) => {
      const [out, mean, variance] = tf.engine().runKernel(BN_TRAIN, { x: xs!, scale: g!, offset: b! }, attrs) as Tensor[];
      save([xs!, mean!, variance!, g!]);
      // Kept past customGrad's own scope; the caller disposes them.
      stats = [tf.keep(mean!), tf.keep(variance!)];
      return out!;
    },
    (dy, [sx, mean, variance, g]) => tf.engine().runKernel(BN_TRAIN_GRAD, { dy, x: sx!, mean: mean!, variance: variance!, scale: g! }, attrs) as Tensor[],
  )(x, scale, offset);
  const [mean, variance] = stats;
  if (running) (tf.getBackend() === 'webgpu' ? updateRunningStatsOnDevice : updateRunningStats)(tf, running, mean!, variance!, x.size / C);
  return { y, mean: mean!, variance: variance! };
}

/**
 * max(0, BatchNorm(x) + residual) with the batch's statistics (residual optional):
 * ResNet's "BN -> ReLU" and "BN + identity -> ReLU" as one kernel each way, where the
 * composed form is BN, Add and ReLU forward and their three gradients backward, each a pass
 * over the activations (the ReLU gradient alone was 14% of a ResNet50 step). The ReLU's
 * mask is read from the output's sign, so nothing more is saved than for BatchNorm alone.
 * Wasm with the addon only (undefined elsewhere: the caller composes).
 */
export function batchNormReluTraining(
  tf: Tf, x: Tensor, scale: Tensor, offset: Tensor, eps: number, residual?: Tensor, running?: RunningStats,
): BatchNormTraining | undefined {
  if (tf.getBackend() !== 'wasm' || !fusedAvailable(tf, BN_RELU_TRAIN)) return undefined;
  if ([x, scale, offset, ...(residual ? [residual] : [])].some((t) => t.dtype !== 'float32')) return undefined;
  const C = x.shape[x.rank - 1];
  if (scale.size !== C || offset.size !== C || x.size === 0) return undefined;
  if (residual && !tf.util.arraysEqual(residual.shape, x.shape)) return undefined;
  const attrs = { varianceEpsilon: eps };
  let stats: Tensor[] = [];
  const inputs = residual ? [x, scale, offset, residual] : [x, scale, offset];
  const y = fusedOp(tf,
    ([xs, g, b, r], save) => {
      const [out, mean, variance] = tf.engine().runKernel(BN_RELU_TRAIN, { x: xs!, scale: g!, offset: b!, ...(r ? { residual: r } : {}) }, attrs) as Tensor[];
      save([xs!, out!, mean!, variance!, g!]);
      stats = [tf.keep(mean!), tf.keep(variance!)];
      return out!;
    },
    (dy, [sx, out, mean, variance, g]) => tf.engine().runKernel(
      BN_RELU_TRAIN_GRAD, { dy, x: sx!, y: out!, mean: mean!, variance: variance!, scale: g! }, { ...attrs, residual: residual !== undefined },
    ) as Tensor[],
  )(...inputs);
  const [mean, variance] = stats;
  if (running) updateRunningStats(tf, running, mean!, variance!, x.size / C);
  return { y, mean: mean!, variance: variance! };
}

/**
 * max(0, BatchNorm(x) + residual) with given statistics (eval mode; residual optional): one
 * native pass forward where FusedBatchNorm, Add and Relu are three. Differentiable in every
 * input (Grad-CAM differentiates eval-mode ResNets); the backward pass is composed tfjs
 * ops, the gradient of the composed form. Wasm with the addon only (undefined elsewhere).
 */
export function batchNormReluInference(
  tf: Tf, x: Tensor, mean: Tensor, variance: Tensor, scale: Tensor, offset: Tensor, eps: number, residual?: Tensor,
): Tensor | undefined {
  if (tf.getBackend() !== 'wasm' || !fusedAvailable(tf, BN_RELU)) return undefined;
  const perChannel = [mean, variance, scale, offset];
  if ([x, ...perChannel, ...(residual ? [residual] : [])].some((t) => t.dtype !== 'float32')) return undefined;
  const C = x.shape[x.rank - 1];
  if (perChannel.some((t) => t.rank !== 1 || t.size !== C) || x.size === 0) return undefined;
  if (residual && !tf.util.arraysEqual(residual.shape, x.shape)) return undefined;
  const axes = x.shape.slice(0, -1).map((_, i) => i);
  const inputs = residual ? [x, mean, variance, scale, offset, residual] : [x, mean, variance, scale, offset];
  return fusedOp(tf,
    ([xs, m, v, g, b, r], save) => {
      const y = tf.engine().runKernel(BN_RELU, { x: xs!, mean: m!, variance: v!, scale: g!, offset: b!, ...(r ? { residual: r } : {}) }, { varianceEpsilon: eps }) as Tensor;
      save([xs!, m!, v!, g!, y]);
      return y;
    },
    (dy, [sx, m, v, g, y]) => {
      // gy: the gradient past the ReLU (and the residual's); xhat = (x - mean) * rstd.
      const gy = tf.mul(dy, tf.cast(tf.greater(y!, 0), 'float32'));
      const rstd = tf.rsqrt(tf.add(v!, eps));
      const centred = tf.sub(sx!, m!);
      const gSum = tf.sum(gy, axes);
      const gxSum = tf.sum(tf.mul(gy, centred), axes);
      const dx = tf.mul(gy, tf.mul(g!, rstd));
      const dmean = tf.neg(tf.mul(gSum, tf.mul(g!, rstd)));
      const dvar = tf.mul(tf.mul(gxSum, g!), tf.mul(-0.5, tf.pow(rstd, 3)));
      const dscale = tf.mul(gxSum, rstd);
      return residual ? [dx, dmean, dvar, dscale, gSum, gy] : [dx, dmean, dvar, dscale, gSum];
    },
  )(...inputs);
}

/** nn.LayerNorm over the last axis (biased variance), or undefined where no fused kernel exists. */
export function layerNorm(tf: Tf, x: Tensor, scale: Tensor, offset: Tensor, eps: number): Tensor | undefined {
  if (!fusedAvailable(tf, LN) || [x, scale, offset].some((t) => t.dtype !== 'float32')) return undefined;
  const D = x.shape[x.rank - 1];
  if (scale.size !== D || offset.size !== D || x.size === 0) return undefined;
  return fusedOp(tf,
    ([xs, g, b], save) => {
      const [y, mean, rstd] = tf.engine().runKernel(LN, { x: xs!, scale: g!, offset: b! }, { epsilon: eps }) as Tensor[];
      save([xs!, mean!, rstd!, g!]);
      return y!;
    },
    (dy, [sx, mean, rstd, g]) => tf.engine().runKernel(LN_GRAD, { dy, x: sx!, mean: mean!, rstd: rstd!, scale: g! }) as Tensor[],
  )(x, scale, offset);
}

/** Exact (erf) GELU, or undefined where no fused kernel exists. */
export function gelu(tf: Tf, x: Tensor): Tensor | undefined {
  if (!fusedAvailable(tf, GELU) || x.dtype !== 'float32') return undefined;
  return fusedOp(tf,
    ([xs], save) => {
      save([xs!]);
      return tf.engine().runKernel(GELU, { x: xs! }) as Tensor;
    },
    (dy, [sx]) => [tf.engine().runKernel(GELU_GRAD, { dy, x: sx! }) as Tensor],
  )(x);
}

/**
 * -scale * sum(labels * logSoftmax(logits)) over [N, K] (differentiable in both), one kernel
 * each way on wasm (plain loops: no addon needed); undefined elsewhere (the caller composes).
 * scale 1 / N is tf.losses.softmaxCrossEntropy's mean and torch's F.cross_entropy.
 */
export function softmaxCrossEntropy(tf: Tf, logits: Tensor, labels: Tensor, scale: number): tfTypes.Scalar | undefined {
  if (tf.getBackend() !== 'wasm' || tf.getKernel(SOFTMAX_CE, 'wasm') === undefined) return undefined;
  if (logits.rank !== 2 || !tf.util.arraysEqual(logits.shape, labels.shape) || [logits, labels].some((t) => t.dtype !== 'float32')) return undefined;
  if (logits.size === 0) return undefined;
  return fusedOp(tf,
    ([z, y], save) => {
      const [loss, logp] = tf.engine().runKernel(SOFTMAX_CE, { logits: z!, labels: y! }, { scale }) as Tensor[];
      save([logp!, y!]);
      return loss!;
    },
    (dy, [logp, y]) => tf.engine().runKernel(SOFTMAX_CE_GRAD, { dy, logp: logp!, labels: y! }, { scale }) as Tensor[],
  )(logits, labels) as tfTypes.Scalar;
}
