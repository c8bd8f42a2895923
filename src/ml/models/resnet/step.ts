// ResNet's training step (forward, softmax cross-entropy, backward) and its eval-mode forward
// as fixed sequences of kernel calls, built from the module's unit lists (./spec.ts): the same kernels, inputs and
// order of float32 operations as the tfjs path (forward() under tf.variableGrads with the
// fused cross-entropy), so the same loss and gradients, bit for bit (tested), without the
// gradient tape. For resnet_demo at 48 px the tape, its saved copies and the engine's
// tracking of ~190 kernel calls were about a third of a step. Wasm with the native kernels
// only; undefined (nothing done) elsewhere, and the caller takes the tfjs path.

import * as tf from '@tensorflow/tfjs';
import type { NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { DirectKernels, directKernelsAvailable } from '../../../engine/direct-kernels.js';
import { updateRunningStats } from '../../../engine/fused-ops.js';
import { BN_RELU, BN_RELU_TRAIN, BN_RELU_TRAIN_GRAD, BN_TRAIN, BN_TRAIN_GRAD, CONV_BN, NATIVE_MIN_ELEMENTS, SOFTMAX_CE, SOFTMAX_CE_GRAD } from '../../../engine/wasm-kernels.js';
import { BN_EPS } from '../layers.js';
import type { TrainStepOptions, TrainStepResult } from '../net.js';
import { param, type ParamMap } from '../params.js';
import { blockShapes, blockUnits, downsampleUnit, RESNET, STEM, STEM_POOL, type ConvBn, type ResNetConfig } from './spec.js';

const KERNELS = [
  'Conv2D', 'Conv2DBackpropFilter', 'Conv2DBackpropInput', 'MaxPool', 'MaxPoolGrad', 'Mean', 'BatchMatMul', 'Add', 'Sum',
  BN_RELU_TRAIN, BN_RELU_TRAIN_GRAD, BN_TRAIN, BN_TRAIN_GRAD, SOFTMAX_CE, SOFTMAX_CE_GRAD,
];
const INFER_KERNELS = ['Conv2D', 'MaxPool', 'Mean', 'BatchMatMul', 'Add', 'FusedBatchNorm', BN_RELU];

/** A unit's forward values that its backward pass reads. */
interface Saved {
  u: ConvBn;
  input: TensorInfo;
  a: TensorInfo;
  y: TensorInfo;
  mean: TensorInfo;
  variance: TensorInfo;
  relu: boolean;
}

const outSize = (n: number, k: number, s: number, p: number) => Math.floor((n + 2 * p - k) / s) + 1;

/** Every BatchNorm sees more than one value per channel (the tfjs path's condition too). */
function bnSizesOk(cfg: ResNetConfig, params: ParamMap, x: tf.Tensor4D): boolean {
  const [B, H, W] = x.shape;
  let h = H;
  let w = W;
  const conv = (u: ConvBn, hi: number, wi: number): [number, number] => {
    const [kh, kw] = param(params, u.conv).shape;
    return [outSize(hi, kh!, u.stride, u.pad), outSize(wi, kw!, u.stride, u.pad)];
  };
  [h, w] = conv(STEM, h, w);
  if (B * h * w < 2) return false;
  h = outSize(h, STEM_POOL.size, STEM_POOL.stride, STEM_POOL.pad);
  w = outSize(w, STEM_POOL.size, STEM_POOL.stride, STEM_POOL.pad);
  for (const b of blockShapes(cfg)) {
    for (const u of blockUnits(cfg, b)) {
      [h, w] = conv(u, h, w);
      if (B * h * w < 2) return false;
    }
  }
  return true;
}

/**
 * Loss (scale * cross-entropy summed over the batch; scale 1 / N is the mean) and the
 * gradients of every trainable parameter for one batch in training mode, or undefined where
 * the step graph does not apply (another backend, no native kernels, a single-logit head,
 * a BatchNorm with one value per channel).
 */
export function resnetTrainStep(
  cfg: ResNetConfig, params: ParamMap, x: tf.Tensor4D, onehot: tf.Tensor2D, scale: number, opts: TrainStepOptions = {},
): TrainStepResult | undefined {
  if (!directKernelsAvailable(tf, KERNELS) || x.dtype !== 'float32' || onehot.dtype !== 'float32') return undefined;
  if (cfg.numClasses < 2 || onehot.shape[0] !== x.shape[0] || onehot.shape[1] !== cfg.numClasses || x.shape[0] === 0) return undefined;
  if (!bnSizesOk(cfg, params, x)) return undefined;
  const k = new DirectKernels(tf);
  const momentum = opts.bnMomentum ?? 0.1;
  const update = opts.updateStats !== false;
  const grads: tf.NamedTensorMap = {};
  // As tf.variableGrads over the trainable variables: a frozen one gets no gradient.
  const keep = (v: tf.Variable, g: TensorInfo, shape: number[] = v.shape): void => {
    if (v.trainable) grads[v.name] = k.tensor(g, shape);
    else k.free(g);
  };
  // tfjs's conv2d attributes, and those of its two gradients.
  const convAttrs = (u: ConvBn): NamedAttrMap => ({ strides: u.stride, pad: u.pad, dataFormat: 'NHWC', dilations: [1, 1] });
  const poolAttrs: NamedAttrMap = { filterSize: STEM_POOL.size, strides: STEM_POOL.stride, pad: STEM_POOL.pad };

  const unit = (u: ConvBn, input: TensorInfo, relu: boolean, residual?: TensorInfo): Saved => {
    const [a] = k.run('Conv2D', { x: input, filter: param(params, u.conv) }, convAttrs(u));
    const bn = { x: a!, scale: param(params, `${u.bn}.weight`), offset: param(params, `${u.bn}.bias`), ...(residual ? { residual } : {}) };
    const [y, mean, variance] = k.run(relu ? BN_RELU_TRAIN : BN_TRAIN, bn, { varianceEpsilon: BN_EPS });
    if (update) {
      const running = {
        mean: param(params, `${u.bn}.running_mean`), variance: param(params, `${u.bn}.running_var`),
        count: param(params, `${u.bn}.num_batches_tracked`), momentum,
      };
      const C = a!.shape[3]!;
      updateRunningStats(tf, running, mean!, variance!, tf.util.sizeFromShape(a!.shape) / C);
    }
    return { u, input, a: a!, y: y!, mean: mean!, variance: variance!, relu };
  };
  // Backward through one unit from the gradient of its output: the BN's (+ ReLU's) gradient,
  // then the conv's filter and (unless `needInput` is false) input gradients. The gradient
  // of the unit's output is dy, or dy + dy2 (a block input's two gradients: the BN+ReLU
  // gradient adds them in its first pass, the bits of an Add before it). Returns
  // [d input, d residual]; the unit's saved values are freed.
  const unitBack = (
    s: Saved, dy: TensorInfo, residual: boolean, needInput = true, dy2?: TensorInfo,
  ): [TensorInfo | undefined, TensorInfo | undefined] => {
    // Only the BN+ReLU gradient takes dy2: a unit without ReLU would drop it silently.
    if (dy2 && !s.relu) throw new Error(`resnet step graph: unit ${s.u.bn} has no ReLU to take a second gradient`);
    const g = param(params, `${s.u.bn}.weight`);
    const b = param(params, `${s.u.bn}.bias`);
    const outs = s.relu
      ? k.run(BN_RELU_TRAIN_GRAD, { dy, ...(dy2 ? { dy2 } : {}), x: s.a, y: s.y, mean: s.mean, variance: s.variance, scale: g }, { varianceEpsilon: BN_EPS, residual })
      : k.run(BN_TRAIN_GRAD, { dy, x: s.a, mean: s.mean, variance: s.variance, scale: g }, { varianceEpsilon: BN_EPS });
    const [da, dg, db, dres] = outs;
    keep(g, dg!);
    keep(b, db!);
    k.free(s.a, s.mean, s.variance);
    const W = param(params, s.u.conv);
    const [dW] = k.run('Conv2DBackpropFilter', { x: s.input, dy: da! }, { ...convAttrs(s.u), filterShape: W.shape });
    keep(W, dW!);
    const dIn = needInput ? k.run('Conv2DBackpropInput', { dy: da!, filter: W }, { ...convAttrs(s.u), inputShape: s.input.shape })[0] : undefined;
    k.free(da!);
    return [dIn, dres];
  };

  try {
    // Forward.
    const stem = unit(STEM, x, true);
    const [pooled] = k.run('MaxPool', { x: stem.y }, poolAttrs);
    let h = pooled!;
    const blocks: { main: Saved[]; ds?: Saved }[] = [];
    for (const b of blockShapes(cfg)) {
      const units = blockUnits(cfg, b);
      const main: Saved[] = [];
      let out = h;
      for (const u of units.slice(0, -1)) {
        const saved = unit(u, out, true);
        main.push(saved);
        out = saved.y;
      }
      const dsu = downsampleUnit(b);
      const ds = dsu ? unit(dsu, h, false) : undefined;
      main.push(unit(units[units.length - 1]!, out, true, ds ? ds.y : h));
      blocks.push({ main, ds });
      h = main[main.length - 1]!.y;
    }
    const [B, ph, pw, F] = h.shape as [number, number, number, number];
    const [feat] = k.run('Mean', { x: h }, { axis: [1, 2], keepDims: false });
    const fcW = param(params, `${RESNET.classifier}.weight`);
    const fcB = param(params, `${RESNET.classifier}.bias`);
    const K = fcW.shape[1]!;
    const feat3 = k.reshaped(feat!, [1, B, F]);
    const fcW3 = k.reshaped(fcW, [1, F, K]);
    const [z3] = k.run('BatchMatMul', { a: feat3, b: fcW3 }, { transposeA: false, transposeB: false });
    const [logits] = k.run('Add', { a: k.reshaped(z3!, [B, K]), b: fcB });
    k.free(z3!);
    const [loss, logp] = k.run(SOFTMAX_CE, { logits: logits!, labels: onehot }, { scale });
    k.free(logits!);

    // Backward: the loss's seed, then the head, then the blocks in reverse.
    const one = k.output([]);
    k.f32(one)[0] = 1;
    const [dz, dlabels] = k.run(SOFTMAX_CE_GRAD, { dy: one, logp: logp!, labels: onehot }, { scale });
    k.free(one, logp!, dlabels!);
    const [dbias] = k.run('Sum', { x: dz! }, { axis: [0], keepDims: false });
    keep(fcB, dbias!);
    const dz3 = k.reshaped(dz!, [1, B, K]);
    const [dW3] = k.run('BatchMatMul', { a: feat3, b: dz3 }, { transposeA: true, transposeB: false });
    keep(fcW, dW3!, fcW.shape);
    const [dfeat3] = k.run('BatchMatMul', { a: dz3, b: fcW3 }, { transposeA: false, transposeB: true });
    k.free(dz!, feat!);
    // The mean's gradient: dy / n at every pixel (float32 division, as tfjs's tile(dy / n)).
    let dh = k.output([B, ph, pw, F]);
    {
      const src = k.f32(dfeat3!);
      const dst = k.f32(dh);
      const n = ph * pw;
      for (let bi = 0, o = 0; bi < B; bi++) {
        for (let p = 0; p < n; p++, o += F) for (let c = 0; c < F; c++) dst[o + c] = Math.fround(src[bi * F + c]! / n);
      }
    }
    k.free(dfeat3!);
    // A unit's output is freed after its own backward pass, by which time the units that
    // read it (the next unit, the next block) are done. A block input's gradient is the sum
    // of two (main path and identity): dh + dh2, added by the BN+ReLU gradient of the block
    // before, or by an Add before the stem's max pool.
    let dh2: TensorInfo | undefined;
    for (let i = blocks.length - 1; i >= 0; i--) {
      const { main, ds } = blocks[i]!;
      const last = main[main.length - 1]!;
      let [d, dres] = unitBack(last, dh, true, true, dh2);
      k.free(dh, last.y);
      if (dh2) k.free(dh2);
      for (let j = main.length - 2; j >= 0; j--) {
        const s = main[j]!;
        const [dIn] = unitBack(s, d!, false);
        k.free(d!, s.y);
        d = dIn;
      }
      let dIdentity = dres!;
      if (ds) {
        [dIdentity] = unitBack(ds, dres!, false) as [TensorInfo, undefined];
        k.free(dres!, ds.y);
      }
      if (i > 0) {
        dh = d!;
        dh2 = dIdentity;
      } else {
        // The stem's pooled output's two gradients (tfjs's tape adds them the same way).
        const [dx] = k.run('Add', { a: d!, b: dIdentity });
        k.free(d!, dIdentity);
        dh = dx!;
      }
    }
    const [dStem] = k.run('MaxPoolGrad', { dy: dh, input: stem.y, output: pooled! }, poolAttrs);
    k.free(dh, pooled!);
    unitBack(stem, dStem!, false, false);
    k.free(dStem!, stem.y);
    return { value: k.tensor<tf.Scalar>(loss!), grads };
  } catch (e) {
    tf.dispose(Object.values(grads));
    throw e;
  } finally {
    k.dispose();
  }
}

/**
 * Eval-mode logits [B, numClasses] (BatchNorm with the running estimates), the same kernels
 * as forward() with training off, or undefined where that does not apply: another backend,
 * no native kernels, or a gradient tape recording (Grad-CAM and gradient checks
 * differentiate the eval forward; these calls would not be on the tape).
 */
export function resnetInferLogits(cfg: ResNetConfig, params: ParamMap, x: tf.Tensor4D): tf.Tensor2D | undefined {
  if (!directKernelsAvailable(tf, INFER_KERNELS) || x.dtype !== 'float32' || x.shape[0] === 0) return undefined;
  if (tf.engine().isTapeOn()) return undefined;
  const k = new DirectKernels(tf);
  const convAttrs = (u: ConvBn): NamedAttrMap => ({ strides: u.stride, pad: u.pad, dataFormat: 'NHWC', dilations: [1, 1] });
  // The conv with its BatchNorm (+ identity, ReLU) in its output blocks, the same bits as
  // the two kernels below without their second pass over the activation.
  const fused = directKernelsAvailable(tf, [CONV_BN]);
  const unit = (u: ConvBn, input: TensorInfo, relu: boolean, residual?: TensorInfo): TensorInfo => {
    const stats = {
      mean: param(params, `${u.bn}.running_mean`), variance: param(params, `${u.bn}.running_var`),
      scale: param(params, `${u.bn}.weight`), offset: param(params, `${u.bn}.bias`), ...(residual ? { residual } : {}),
    };
    const w = param(params, u.conv);
    const [N, H, W] = input.shape as [number, number, number, number];
    const [KH, KW, , OC] = w.shape as [number, number, number, number];
    const outSize = N * (Math.floor((H + 2 * u.pad - KH) / u.stride) + 1) * (Math.floor((W + 2 * u.pad - KW) / u.stride) + 1) * OC;
    // FusedBatchNorm runs tfjs's own kernel (other rounding) below NATIVE_MIN_ELEMENTS.
    if (fused && (relu || outSize >= NATIVE_MIN_ELEMENTS)) {
      const [y] = k.run(CONV_BN, { x: input, filter: w, ...stats }, { ...convAttrs(u), varianceEpsilon: BN_EPS, relu });
      return y!;
    }
    const [a] = k.run('Conv2D', { x: input, filter: w }, convAttrs(u));
    const [y] = k.run(relu ? BN_RELU : 'FusedBatchNorm', { x: a!, ...stats }, { varianceEpsilon: BN_EPS });
    k.free(a!);
    return y!;
  };
  try {
    const stem = unit(STEM, x, true);
    let [h] = k.run('MaxPool', { x: stem }, { filterSize: STEM_POOL.size, strides: STEM_POOL.stride, pad: STEM_POOL.pad });
    k.free(stem);
    for (const b of blockShapes(cfg)) {
      const units = blockUnits(cfg, b);
      let out = h!;
      for (const u of units.slice(0, -1)) {
        const next = unit(u, out, true);
        if (out !== h) k.free(out);
        out = next;
      }
      const dsu = downsampleUnit(b);
      const identity = dsu ? unit(dsu, h!, false) : h!;
      const y = unit(units[units.length - 1]!, out, true, identity);
      k.free(h!, identity);
      if (out !== h) k.free(out);
      h = y;
    }
    const [B, , , F] = h!.shape as [number, number, number, number];
    const [feat] = k.run('Mean', { x: h! }, { axis: [1, 2], keepDims: false });
    const fcW = param(params, `${RESNET.classifier}.weight`);
    const K = fcW.shape[1]!;
    const [z3] = k.run('BatchMatMul', { a: k.reshaped(feat!, [1, B, F]), b: k.reshaped(fcW, [1, F, K]) }, { transposeA: false, transposeB: false });
    const [logits] = k.run('Add', { a: k.reshaped(z3!, [B, K]), b: param(params, `${RESNET.classifier}.bias`) });
    return k.tensor<tf.Tensor2D>(logits!);
  } finally {
    k.dispose();
  }
}
