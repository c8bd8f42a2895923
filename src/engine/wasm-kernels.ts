// Kernels registered on tfjs-backend-wasm 4.22 so that ResNet / ViT training steps run there
// (see ../shared/ENGINE-NOTES.md for the measurements behind each choice):
//
// - Conv2DBackpropFilter: missing. im2col written straight into the wasm heap, then one
//   XNNPACK matmul (dW = cols^T . dy) over the whole batch.
// - Conv2DBackpropInput: present but 5-10x slower than the forward conv. For stride 1 it is
//   a forward conv of dy with the flipped, in/out-swapped filter (XNNPACK); else the original.
// - DepthwiseConv2dNativeBackpropFilter / Input, UnsortedSegmentSum (gather's gradient):
//   missing. Direct loops over heap views; not on any hot path of our models.
// - MaxPoolGrad: the wasm kernel starts its running max at FLT_MIN (the smallest positive
//   float), so a window whose values are all negative loses its gradient, and it breaks ties
//   towards the last element. Replaced by a loop that matches the cpu kernel (first maximum).
// - BatchMatMul / _FusedMatMul: wasm reaches XNNPACK only for untransposed operands with a
//   batch of 1; everything else runs a scalar loop at 1-3 GFLOP/s. The wrappers transpose
//   operands explicitly, fold a broadcast right operand into one 2-D matmul, and split true
//   batches into per-batch XNNPACK matmuls.
//
// Every kernel reads inputs through heap views and allocates outputs with makeOutput, never
// calling tf ops, so nothing is recorded on the gradient tape and nothing leaks into scopes.

import type {
  KernelConfig,
  KernelFunc,
  NamedAttrMap,
  NamedTensorInfoMap,
  TensorInfo,
  backend_util as BackendUtil,
} from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

type Tf = typeof import('@tensorflow/tfjs');
type Conv2DInfo = BackendUtil.Conv2DInfo;
type Pad = 'valid' | 'same' | number | BackendUtil.ExplicitPadding;
type Rounding = 'floor' | 'round' | 'ceil' | undefined;
type Shape4 = [number, number, number, number];
type KernelArgs = { inputs: NamedTensorInfoMap; backend: {}; attrs?: NamedAttrMap };

const BACKEND = 'wasm';
const WRAPPED = Symbol.for('medpipe.wasm-kernel-wrapper');

interface Ctx {
  tf: Tf;
  be: BackendWasm;
  /** The kernel as wasm registered it (before our wrappers), for ops we delegate to. */
  run(name: string, inputs: NamedTensorInfoMap, attrs?: NamedAttrMap): TensorInfo;
  free(...infos: TensorInfo[]): void;
  f32(info: TensorInfo): Float32Array;
}

const originals = new Map<string, KernelConfig>();

function makeCtx(tf: Tf, backend: {}): Ctx {
  const be = backend as BackendWasm;
  return {
    tf,
    be,
    run(name, inputs, attrs) {
      const k = originals.get(name) ?? tf.getKernel(name, BACKEND);
      const out = k.kernelFunc({ inputs, backend, attrs });
      if (Array.isArray(out)) throw new Error(`wasm kernel ${name} returned several outputs`);
      return out;
    },
    free(...infos) {
      for (const i of infos) be.disposeData(i.dataId);
    },
    // A fresh view every time: any allocation may grow (and so move) the wasm memory.
    f32(info) {
      return be.typedArrayFromHeap(info) as Float32Array;
    },
  };
}

function attr<T>(attrs: NamedAttrMap | undefined, name: string): T {
  return (attrs ?? {})[name] as unknown as T;
}

function need(inputs: NamedTensorInfoMap, name: string): TensorInfo {
  const t = inputs[name];
  if (t === undefined) throw new Error(`wasm kernel: input '${name}' missing`);
  return t;
}

function checkNHWC(dataFormat: string | undefined, kernel: string): void {
  if (dataFormat !== undefined && dataFormat !== 'NHWC') {
    throw new Error(`${kernel} on wasm supports NHWC only, got ${dataFormat}`);
  }
}

// ---------------------------------------------------------------------------------------
// Convolutions

/** im2col of x for convInfo: rows (n, oh, ow), columns (kh, kw, c); zero outside the image. */
function im2col(c: Ctx, x: TensorInfo, ci: Conv2DInfo): TensorInfo {
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = ci;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sh, strideWidth: sw } = ci;
  const { dilationHeight: dh, dilationWidth: dw } = ci;
  const pt = ci.padInfo.top;
  const pl = ci.padInfo.left;
  const K = KH * KW * C;
  const cols = c.be.makeOutput([N * OH * OW, K], 'float32');
  const xs = c.f32(x);
  const cs = c.f32(cols);
  let o = 0;
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        for (let kh = 0; kh < KH; kh++) {
          const ih = oh * sh - pt + kh * dh;
          for (let kw = 0; kw < KW; kw++, o += C) {
            const iw = ow * sw - pl + kw * dw;
            if (ih < 0 || ih >= H || iw < 0 || iw >= W) cs.fill(0, o, o + C);
            else {
              const b = ((n * H + ih) * W + iw) * C;
              cs.set(xs.subarray(b, b + C), o);
            }
          }
        }
      }
    }
  }
  return cols;
}

function conv2DBackpropFilter(tf: Tf): KernelFunc {
  return ({ inputs, backend, attrs }: KernelArgs) => {
    const c = makeCtx(tf, backend);
    const x = need(inputs, 'x');
    const dy = need(inputs, 'dy');
    checkNHWC(attr<string>(attrs, 'dataFormat'), 'Conv2DBackpropFilter');
    const filterShape = attr<Shape4>(attrs, 'filterShape');
    const ci = tf.backend_util.computeConv2DInfo(
      x.shape as Shape4, filterShape, attr(attrs, 'strides'), 1, attr<Pad>(attrs, 'pad'),
      attr<Rounding>(attrs, 'dimRoundingMode'),
    );
    const M = ci.batchSize * ci.outHeight * ci.outWidth;
    const K = ci.filterHeight * ci.filterWidth * ci.inChannels;
    const p = ci.padInfo;
    const pointwise = K === ci.inChannels && ci.strideHeight === 1 && ci.strideWidth === 1 &&
      p.top === 0 && p.left === 0 && p.bottom === 0 && p.right === 0;
    // A 1x1 stride-1 unpadded conv's im2col is x itself.
    const cols = pointwise ? c.run('Reshape', { x }, { shape: [M, K] }) : im2col(c, x, ci);
    const colsT = c.run('Transpose', { x: cols }, { perm: [1, 0] });
    const a = c.run('Reshape', { x: colsT }, { shape: [1, K, M] });
    const b = c.run('Reshape', { x: dy }, { shape: [1, M, ci.outChannels] });
    // Untransposed, batch 1: the XNNPACK path. dy is the packed operand (the smaller one).
    const dw = c.run('BatchMatMul', { a, b }, { transposeA: false, transposeB: false });
    const out = c.run('Reshape', { x: dw }, { shape: filterShape });
    c.free(cols, colsT, a, b, dw);
    return out;
  };
}

function conv2DBackpropInput(tf: Tf): KernelFunc {
  return ({ inputs, backend, attrs }: KernelArgs) => {
    const c = makeCtx(tf, backend);
    const dy = need(inputs, 'dy');
    const filter = need(inputs, 'filter');
    checkNHWC(attr<string>(attrs, 'dataFormat'), 'Conv2DBackpropInput');
    const inputShape = attr<Shape4>(attrs, 'inputShape');
    const ci = tf.backend_util.computeConv2DInfo(
      inputShape, filter.shape as Shape4, attr(attrs, 'strides'), 1, attr<Pad>(attrs, 'pad'),
      attr<Rounding>(attrs, 'dimRoundingMode'),
    );
    const KH = ci.filterHeight;
    const KW = ci.filterWidth;
    const p = ci.padInfo;
    const full = [KH - 1 - p.top, KH - 1 - p.bottom, KW - 1 - p.left, KW - 1 - p.right];
    if (ci.strideHeight !== 1 || ci.strideWidth !== 1 || full.some((v) => v < 0)) {
      return c.run('Conv2DBackpropInput', inputs, attrs);
    }
    // dx = full correlation of dy with the filter rotated 180 degrees, in/out channels swapped.
    const flipped = c.run('Reverse', { x: filter }, { dims: [0, 1] });
    const swapped = c.run('Transpose', { x: flipped }, { perm: [0, 1, 3, 2] });
    const out = c.run('Conv2D', { x: dy, filter: swapped }, {
      strides: [1, 1],
      pad: [[0, 0], [full[0], full[1]], [full[2], full[3]], [0, 0]],
      dataFormat: 'NHWC',
      dilations: [1, 1],
    } as unknown as NamedAttrMap);
    c.free(flipped, swapped);
    return out;
  };
}

function depthwiseInfo(tf: Tf, xShape: Shape4, attrs: NamedAttrMap | undefined): Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    xShape, attr<Shape4>(attrs, 'filterShape'), attr(attrs, 'strides'), attr(attrs, 'dilations'),
    attr<Pad>(attrs, 'pad'), attr<Rounding>(attrs, 'dimRoundingMode'), true,
  );
}

function depthwiseBackpropFilter(tf: Tf): KernelFunc {
  return ({ inputs, backend, attrs }: KernelArgs) => {
    const c = makeCtx(tf, backend);
    const x = need(inputs, 'x');
    const dy = need(inputs, 'dy');
    const ci = depthwiseInfo(tf, x.shape as Shape4, attrs);
    const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = ci;
    const { filterHeight: KH, filterWidth: KW, strideHeight: sh, strideWidth: sw } = ci;
    const { dilationHeight: dh, dilationWidth: dw, outChannels: OC } = ci;
    const mul = OC / C;
    const out = c.be.makeOutput(ci.filterShape, 'float32');
    const xs = c.f32(x);
    const ds = c.f32(dy);
    // Accumulate in float64 per filter tap, then store: one deterministic order.
    const acc = new Float64Array(KH * KW * OC);
    for (let n = 0; n < N; n++) {
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++) {
          const dyBase = ((n * OH + oh) * OW + ow) * OC;
          for (let kh = 0; kh < KH; kh++) {
            const ih = oh * sh - ci.padInfo.top + kh * dh;
            if (ih < 0 || ih >= H) continue;
            for (let kw = 0; kw < KW; kw++) {
              const iw = ow * sw - ci.padInfo.left + kw * dw;
              if (iw < 0 || iw >= W) continue;
              const xBase = ((n * H + ih) * W + iw) * C;
              const aBase = (kh * KW + kw) * OC;
              for (let ch = 0; ch < C; ch++) {
                const xv = xs[xBase + ch];
                for (let m = 0; m < mul; m++) acc[aBase + ch * mul + m] += xv * ds[dyBase + ch * mul + m];
              }
            }
          }
        }
      }
    }
    c.f32(out).set(acc);
    return out;
  };
}

function depthwiseBackpropInput(tf: Tf): KernelFunc {
  return ({ inputs, backend, attrs }: KernelArgs) => {
    const c = makeCtx(tf, backend);
    const dy = need(inputs, 'dy');
    const filter = need(inputs, 'filter');
    const inputShape = attr<Shape4>(attrs, 'inputShape');
    const ci = depthwiseInfo(tf, inputShape, { ...attrs, filterShape: filter.shape });
    const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = ci;
    const { filterHeight: KH, filterWidth: KW, strideHeight: sh, strideWidth: sw } = ci;
    const { dilationHeight: dh, dilationWidth: dw, outChannels: OC } = ci;
    const mul = OC / C;
    const out = c.be.makeOutput(inputShape, 'float32');
    const ds = c.f32(dy);
    const fs = c.f32(filter);
    const acc = new Float64Array(N * H * W * C);
    for (let n = 0; n < N; n++) {
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++) {
          const dyBase = ((n * OH + oh) * OW + ow) * OC;
          for (let kh = 0; kh < KH; kh++) {
            const ih = oh * sh - ci.padInfo.top + kh * dh;
            if (ih < 0 || ih >= H) continue;
            for (let kw = 0; kw < KW; kw++) {
              const iw = ow * sw - ci.padInfo.left + kw * dw;
              if (iw < 0 || iw >= W) continue;
              const xBase = ((n * H + ih) * W + iw) * C;
              const fBase = (kh * KW + kw) * OC;
              for (let ch = 0; ch < C; ch++) {
                let s = 0;
                for (let m = 0; m < mul; m++) s += ds[dyBase + ch * mul + m] * fs[fBase + ch * mul + m];
                acc[xBase + ch] += s;
              }
            }
          }
        }
      }
    }
    c.f32(out).set(acc);
    return out;
  };
}

// ---------------------------------------------------------------------------------------
// Pooling and segment sums

function maxPoolGrad(tf: Tf): KernelFunc {
  return ({ inputs, backend, attrs }: KernelArgs) => {
    const c = makeCtx(tf, backend);
    const dy = need(inputs, 'dy');
    const input = need(inputs, 'input');
    const ci = tf.backend_util.computePool2DInfo(
      input.shape as Shape4, attr(attrs, 'filterSize'), attr(attrs, 'strides'), 1,
      attr<Pad>(attrs, 'pad'), attr<Rounding>(attrs, 'dimRoundingMode'),
    );
    const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = ci;
    const { effectiveFilterHeight: KH, effectiveFilterWidth: KW, strideHeight: sh, strideWidth: sw } = ci;
    const { dilationHeight: dh, dilationWidth: dw } = ci;
    const dx = c.be.makeOutput(input.shape, 'float32');
    const xs = c.f32(input);
    const ds = c.f32(dy);
    const out = c.f32(dx);
    out.fill(0);
    const best = new Float32Array(C);
    const where = new Int32Array(C);
    for (let n = 0; n < N; n++) {
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++) {
          best.fill(-Infinity);
          where.fill(-1);
          // Row-major window order with a strict '>' keeps the first maximum, as the cpu
          // kernel (and PyTorch) do; padding never wins because it is never visited.
          for (let ih = oh * sh - ci.padInfo.top, kh = 0; kh < KH; kh += dh, ih += dh) {
            if (ih < 0 || ih >= H) continue;
            for (let iw = ow * sw - ci.padInfo.left, kw = 0; kw < KW; kw += dw, iw += dw) {
              if (iw < 0 || iw >= W) continue;
              const base = ((n * H + ih) * W + iw) * C;
              for (let ch = 0; ch < C; ch++) {
                const v = xs[base + ch];
                if (v > best[ch]) {
                  best[ch] = v;
                  where[ch] = base + ch;
                }
              }
            }
          }
          const dyBase = ((n * OH + oh) * OW + ow) * C;
          for (let ch = 0; ch < C; ch++) if (where[ch] >= 0) out[where[ch]] += ds[dyBase + ch];
        }
      }
    }
    return dx;
  };
}

function unsortedSegmentSum(tf: Tf): KernelFunc {
  return ({ inputs, backend, attrs }: KernelArgs) => {
    const c = makeCtx(tf, backend);
    const x = need(inputs, 'x');
    const segmentIds = need(inputs, 'segmentIds');
    const numSegments = attr<number>(attrs, 'numSegments');
    if (x.dtype !== 'float32' && x.dtype !== 'int32') {
      throw new Error(`UnsortedSegmentSum on wasm: unsupported dtype ${x.dtype}`);
    }
    const idsCount = tf.util.sizeFromShape(segmentIds.shape);
    const inner = tf.util.sizeFromShape(x.shape.slice(segmentIds.shape.length));
    const out = c.be.makeOutput([numSegments, ...x.shape.slice(segmentIds.shape.length)], x.dtype);
    const xs = c.be.typedArrayFromHeap(x) as Float32Array | Int32Array;
    const ids = c.be.typedArrayFromHeap(segmentIds) as Int32Array;
    const os = c.be.typedArrayFromHeap(out) as Float32Array | Int32Array;
    os.fill(0);
    for (let i = 0; i < idsCount; i++) {
      const s = ids[i];
      if (s < 0 || s >= numSegments) continue; // TensorFlow drops out-of-range ids
      const src = i * inner;
      const dst = s * inner;
      for (let j = 0; j < inner; j++) os[dst + j] += xs[src + j];
    }
    return out;
  };
}

// ---------------------------------------------------------------------------------------
// Matrix products

function swapLast(c: Ctx, t: TensorInfo): TensorInfo {
  const r = t.shape.length;
  const perm = t.shape.map((_, i) => i);
  perm[r - 2] = r - 1;
  perm[r - 1] = r - 2;
  return c.run('Transpose', { x: t }, { perm });
}

/** Flat batch index of `a` for output batch index `o` under numpy broadcasting. */
function broadcastIndex(outBatch: number[], aBatch: number[], o: number): number {
  let idx = 0;
  let stride = 1;
  let rem = o;
  const offset = outBatch.length - aBatch.length;
  const coords = new Array<number>(outBatch.length);
  for (let d = outBatch.length - 1; d >= 0; d--) {
    coords[d] = rem % outBatch[d];
    rem = Math.floor(rem / outBatch[d]);
  }
  for (let d = aBatch.length - 1; d >= 0; d--) {
    const size = aBatch[d];
    idx += (size === 1 ? 0 : coords[d + offset]) * stride;
    stride *= size;
  }
  return idx;
}

/**
 * A true batch as one XNNPACK product per matrix (each creates and drops its packed
 * operator): several times faster than the wasm kernel's scalar loop. `extra` inputs
 * (bias, PReLU weights) are shared by every matrix.
 */
function perBatch(
  c: Ctx, kernel: string, a: TensorInfo, b: TensorInfo, aBatch: number[], bBatch: number[],
  outBatch: number[], extra: NamedTensorInfoMap, attrs: NamedAttrMap,
): TensorInfo {
  const M = a.shape[a.shape.length - 2];
  const K = a.shape[a.shape.length - 1];
  const N = b.shape[b.shape.length - 1];
  const nOut = c.tf.util.sizeFromShape(outBatch);
  const out = c.be.makeOutput([...outBatch, M, N], 'float32');
  const ai = c.be.makeOutput([1, M, K], 'float32');
  for (let o = 0; o < nOut; o++) {
    const ia = broadcastIndex(outBatch, aBatch, o);
    const ib = broadcastIndex(outBatch, bBatch, o);
    c.f32(ai).set(c.f32(a).subarray(ia * M * K, (ia + 1) * M * K));
    // A fresh b each time: XNNPACK caches its packed weights by tensor id.
    const bi = c.be.makeOutput([1, K, N], 'float32');
    c.f32(bi).set(c.f32(b).subarray(ib * K * N, (ib + 1) * K * N));
    const oi = c.run(kernel, { ...extra, a: ai, b: bi }, attrs);
    c.f32(out).set(c.f32(oi), o * M * N);
    c.free(oi, bi);
  }
  c.free(ai);
  return out;
}

function batchMatMul(tf: Tf): KernelFunc {
  return ({ inputs, backend, attrs }: KernelArgs) => {
    const c = makeCtx(tf, backend);
    const a0 = need(inputs, 'a');
    const b0 = need(inputs, 'b');
    if (a0.dtype !== 'float32' || b0.dtype !== 'float32') {
      return c.run('BatchMatMul', inputs, attrs);
    }
    const temps: TensorInfo[] = [];
    const a = attr<boolean>(attrs, 'transposeA') ? swapLast(c, a0) : a0;
    const b = attr<boolean>(attrs, 'transposeB') ? swapLast(c, b0) : b0;
    if (a !== a0) temps.push(a);
    if (b !== b0) temps.push(b);
    const M = a.shape[a.shape.length - 2];
    const K = a.shape[a.shape.length - 1];
    const N = b.shape[b.shape.length - 1];
    if (b.shape[b.shape.length - 2] !== K) {
      throw new Error(`Error in matMul: inner shapes ${K} and ${b.shape[b.shape.length - 2]} of shapes ` +
        `[${a0.shape}] and [${b0.shape}] do not match`);
    }
    const aBatch = a.shape.slice(0, -2);
    const bBatch = b.shape.slice(0, -2);
    const outBatch = tf.broadcast_util.assertAndGetBroadcastShape(aBatch, bBatch);
    const nA = tf.util.sizeFromShape(aBatch);
    const nB = tf.util.sizeFromShape(bBatch);
    const nOut = tf.util.sizeFromShape(outBatch);
    const plain = { transposeA: false, transposeB: false };
    let out: TensorInfo;
    if (nB === 1 || nOut === 1) {
      // b is shared by every batch: one [batch*M, K] x [K, N] product on XNNPACK.
      const a2 = c.run('Reshape', { x: a }, { shape: [1, nA * M, K] });
      const b2 = c.run('Reshape', { x: b }, { shape: [1, K, N] });
      const o = c.run('BatchMatMul', { a: a2, b: b2 }, plain);
      out = c.run('Reshape', { x: o }, { shape: [...outBatch, M, N] });
      temps.push(a2, b2, o);
    } else {
      out = perBatch(c, 'BatchMatMul', a, b, aBatch, bBatch, outBatch, {}, plain);
    }
    c.free(...temps);
    return out;
  };
}

function fusedMatMul(tf: Tf): KernelFunc {
  return ({ inputs, backend, attrs }: KernelArgs) => {
    const c = makeCtx(tf, backend);
    const a0 = need(inputs, 'a');
    const b0 = need(inputs, 'b');
    const { bias, preluActivationWeights: prelu } = inputs;
    const temps: TensorInfo[] = [];
    const a = attr<boolean>(attrs, 'transposeA') ? swapLast(c, a0) : a0;
    const b = attr<boolean>(attrs, 'transposeB') ? swapLast(c, b0) : b0;
    if (a !== a0) temps.push(a);
    if (b !== b0) temps.push(b);
    const M = a.shape[a.shape.length - 2];
    const K = a.shape[a.shape.length - 1];
    const N = b.shape[b.shape.length - 1];
    const aBatch = a.shape.slice(0, -2);
    const bBatch = b.shape.slice(0, -2);
    const outBatch = tf.broadcast_util.assertAndGetBroadcastShape(aBatch, bBatch);
    const plain = { ...attrs, transposeA: false, transposeB: false };
    const extra: NamedTensorInfoMap = {};
    if (bias) extra.bias = bias;
    if (prelu) extra.preluActivationWeights = prelu;
    let out: TensorInfo;
    if (tf.util.sizeFromShape(bBatch) === 1) {
      // b shared by every batch: one XNNPACK product over [batch*M, K].
      const a2 = c.run('Reshape', { x: a }, { shape: [1, tf.util.sizeFromShape(aBatch) * M, K] });
      const b2 = c.run('Reshape', { x: b }, { shape: [1, K, N] });
      const o = c.run('_FusedMatMul', { ...extra, a: a2, b: b2 }, plain);
      out = c.run('Reshape', { x: o }, { shape: [...outBatch, M, N] });
      temps.push(a2, b2, o);
    } else {
      // The wasm scalar loop indexes a bias by the flat (row, column) position and adds it
      // once per 48-wide block of K, so a true batch with a bias must not go there.
      if (prelu && tf.util.sizeFromShape(prelu.shape) !== N && tf.util.sizeFromShape(prelu.shape) !== 1) {
        throw new Error(`_FusedMatMul on wasm: batched product with PReLU weights of shape [${prelu.shape}] is not supported`);
      }
      out = perBatch(c, '_FusedMatMul', a, b, aBatch, bBatch, outBatch, extra, plain);
    }
    c.free(...temps);
    return out;
  };
}

// ---------------------------------------------------------------------------------------
// Registration

const FACTORIES: Record<string, (tf: Tf) => KernelFunc> = {
  Conv2DBackpropFilter: conv2DBackpropFilter,
  Conv2DBackpropInput: conv2DBackpropInput,
  DepthwiseConv2dNativeBackpropFilter: depthwiseBackpropFilter,
  DepthwiseConv2dNativeBackpropInput: depthwiseBackpropInput,
  MaxPoolGrad: maxPoolGrad,
  UnsortedSegmentSum: unsortedSegmentSum,
  BatchMatMul: batchMatMul,
  _FusedMatMul: fusedMatMul,
};

export const WASM_KERNEL_NAMES = Object.keys(FACTORIES);

/**
 * Registers (or re-registers, wrapping the original) our kernels on the wasm backend.
 * Idempotent. Call before or after the backend initialises: the original setup functions
 * are kept so the wrapped kernels still find their wasm exports.
 */
export async function registerWasmKernels(only: string[] = WASM_KERNEL_NAMES): Promise<string[]> {
  const tf = await import('@tensorflow/tfjs');
  await import('@tensorflow/tfjs-backend-wasm'); // registers the wasm backend and its kernels
  const done: string[] = [];
  for (const name of only) {
    const factory = FACTORIES[name];
    if (!factory) throw new Error(`registerWasmKernels: no kernel named ${name} (have ${WASM_KERNEL_NAMES.join(', ')})`);
    const existing = tf.getKernel(name, BACKEND) as (KernelConfig & { [WRAPPED]?: true }) | undefined;
    if (existing?.[WRAPPED]) continue;
    if (existing) {
      originals.set(name, existing);
      tf.unregisterKernel(name, BACKEND);
    }
    const config: KernelConfig & { [WRAPPED]: true } = {
      kernelName: name,
      backendName: BACKEND,
      kernelFunc: factory(tf),
      setupFunc: existing?.setupFunc,
      disposeFunc: existing?.disposeFunc,
      [WRAPPED]: true,
    };
    tf.registerKernel(config);
    done.push(name);
  }
  return done;
}

/** Restores the wasm backend's own kernels (for before/after measurements and tests). */
export async function unregisterWasmKernels(): Promise<void> {
  const tf = await import('@tensorflow/tfjs');
  for (const name of WASM_KERNEL_NAMES) {
    const current = tf.getKernel(name, BACKEND) as (KernelConfig & { [WRAPPED]?: true }) | undefined;
    if (!current?.[WRAPPED]) continue;
    tf.unregisterKernel(name, BACKEND);
    const original = originals.get(name);
    if (original) tf.registerKernel(original);
  }
}
