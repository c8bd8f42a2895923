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
  GradConfig,
  KernelConfig,
  KernelFunc,
  NamedAttrMap,
  NamedTensorInfoMap,
  Tensor,
  TensorInfo,
  backend_util as BackendUtil,
} from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { activeNative as native, type NativeAddon } from './native.js';

export { setNativeKernels } from './native.js';

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

// ---------------------------------------------------------------------------------------
// Native kernels (native/medpipe.cc): convolutions and matrix products computed in place on
// the wasm heap by the N-API addon, multi-threaded, when it is built. Switchable at run
// time so tests and benchmarks can compare both paths.

/** Float index of a tensor's data in the wasm heap. */
function heapIndex(be: BackendWasm, info: TensorInfo): number {
  const d = be.dataIdMap.get(info.dataId);
  if (d === undefined) throw new Error('wasm kernel: tensor data not found');
  return d.memoryOffset / 4;
}

/** heapIndex, or -1 (the addon's "none") for an absent optional operand. */
function heapIndexOrNone(be: BackendWasm, info: TensorInfo | undefined): number {
  return info === undefined ? -1 : heapIndex(be, info);
}

/** The heap's current buffer: read after every allocation (growth replaces it). */
function heapOf(be: BackendWasm): ArrayBufferLike {
  return (be.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8.buffer;
}

function geometry(ci: Conv2DInfo): Int32Array {
  return Int32Array.from([
    ci.batchSize, ci.inHeight, ci.inWidth, ci.inChannels, ci.outChannels, ci.filterHeight, ci.filterWidth,
    ci.strideHeight, ci.strideWidth, ci.dilationHeight, ci.dilationWidth, ci.padInfo.top, ci.padInfo.left,
    ci.outHeight, ci.outWidth,
  ]);
}

const emptyConv = (ci: Conv2DInfo): boolean =>
  [ci.batchSize, ci.inHeight, ci.inWidth, ci.inChannels, ci.outChannels, ci.outHeight, ci.outWidth].some((v) => v <= 0);

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

/** Conv2D and FusedConv2D (bias, linear or relu) on the native addon; else the original. */
function conv2D(tf: Tf, kernel: 'Conv2D' | 'FusedConv2D'): KernelFunc {
  return ({ inputs, backend, attrs }: KernelArgs) => {
    const c = makeCtx(tf, backend);
    const nat = native();
    const x = need(inputs, 'x');
    const filter = need(inputs, 'filter');
    const { bias, preluActivationWeights } = inputs;
    const activation = attr<string | undefined>(attrs, 'activation') ?? 'linear';
    const format = attr<string | undefined>(attrs, 'dataFormat');
    if (nat === undefined || x.dtype !== 'float32' || (format !== undefined && format !== 'NHWC') ||
      preluActivationWeights !== undefined || (activation !== 'linear' && activation !== 'relu')) {
      return c.run(kernel, inputs, attrs);
    }
    const ci = tf.backend_util.computeConv2DInfo(
      x.shape as Shape4, filter.shape as Shape4, attr(attrs, 'strides'), attr(attrs, 'dilations') ?? 1,
      attr<Pad>(attrs, 'pad'), attr<Rounding>(attrs, 'dimRoundingMode'),
    );
    if (emptyConv(ci) || (bias !== undefined && tf.util.sizeFromShape(bias.shape) !== ci.outChannels)) {
      return c.run(kernel, inputs, attrs);
    }
    const out = c.be.makeOutput(ci.outShape, 'float32');
    const b = heapIndexOrNone(c.be, bias);
    nat.conv(0, heapOf(c.be), heapIndex(c.be, x), heapIndex(c.be, filter), heapIndex(c.be, out), b,
      activation === 'relu' ? 1 : 0, geometry(ci));
    return out;
  };
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
    const nat = native();
    if (nat !== undefined && x.dtype === 'float32' && !emptyConv(ci)) {
      const out = c.be.makeOutput(filterShape, 'float32');
      nat.conv(2, heapOf(c.be), heapIndex(c.be, x), heapIndex(c.be, dy), heapIndex(c.be, out), -1, 0, geometry(ci));
      return out;
    }
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
    const nat = native();
    if (nat !== undefined && dy.dtype === 'float32' && !emptyConv(ci)) {
      const out = c.be.makeOutput(inputShape, 'float32');
      nat.conv(1, heapOf(c.be), heapIndex(c.be, dy), heapIndex(c.be, filter), heapIndex(c.be, out), -1, 0, geometry(ci));
      return out;
    }
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

/**
 * Visits every (output position, filter tap) pair of a depthwise convolution whose input pixel
 * lies inside the image, in one fixed order: offsets of dy, of x, and of the tap in the filter.
 */
function forEachTap(ci: ReturnType<typeof depthwiseInfo>, visit: (dyBase: number, xBase: number, tapBase: number) => void): void {
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = ci;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sh, strideWidth: sw } = ci;
  const { dilationHeight: dh, dilationWidth: dw, outChannels: OC } = ci;
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
            visit(dyBase, ((n * H + ih) * W + iw) * C, (kh * KW + kw) * OC);
          }
        }
      }
    }
  }
}

function depthwiseBackpropFilter(tf: Tf): KernelFunc {
  return ({ inputs, backend, attrs }: KernelArgs) => {
    const c = makeCtx(tf, backend);
    const x = need(inputs, 'x');
    const dy = need(inputs, 'dy');
    const ci = depthwiseInfo(tf, x.shape as Shape4, attrs);
    const { inChannels: C, filterHeight: KH, filterWidth: KW, outChannels: OC } = ci;
    const mul = OC / C;
    const out = c.be.makeOutput(ci.filterShape, 'float32');
    const xs = c.f32(x);
    const ds = c.f32(dy);
    // Accumulate in float64 per filter tap, then store: one deterministic order.
    const acc = new Float64Array(KH * KW * OC);
    forEachTap(ci, (dyBase, xBase, aBase) => {
      for (let ch = 0; ch < C; ch++) {
        const xv = xs[xBase + ch];
        for (let m = 0; m < mul; m++) acc[aBase + ch * mul + m] += xv * ds[dyBase + ch * mul + m];
      }
    });
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
    const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outChannels: OC } = ci;
    const mul = OC / C;
    const out = c.be.makeOutput(inputShape, 'float32');
    const ds = c.f32(dy);
    const fs = c.f32(filter);
    const acc = new Float64Array(N * H * W * C);
    forEachTap(ci, (dyBase, xBase, fBase) => {
      for (let ch = 0; ch < C; ch++) {
        let s = 0;
        for (let m = 0; m < mul; m++) s += ds[dyBase + ch * mul + m] * fs[fBase + ch * mul + m];
        acc[xBase + ch] += s;
      }
    });
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
    const nat = native();
    if (nat !== undefined && dy.dtype === 'float32' && N * H * W * C * OH * OW > 0) {
      const geom = Int32Array.from([N, H, W, C, OH, OW, KH, KW, sh, sw, dh, dw, ci.padInfo.top, ci.padInfo.left]);
      nat.maxPoolGrad(heapOf(c.be), heapIndex(c.be, input), heapIndex(c.be, dy), heapIndex(c.be, dx), geom);
      return dx;
    }
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

/** op(a) . op(b) with numpy batch broadcasting, on the native addon, in place. */
function nativeMatMul(c: Ctx, nat: NativeAddon, a: TensorInfo, b: TensorInfo, tA: boolean, tB: boolean): TensorInfo {
  const ra = a.shape.length;
  const rb = b.shape.length;
  const M = tA ? a.shape[ra - 1] : a.shape[ra - 2];
  const K = tA ? a.shape[ra - 2] : a.shape[ra - 1];
  const N = tB ? b.shape[rb - 2] : b.shape[rb - 1];
  const Kb = tB ? b.shape[rb - 1] : b.shape[rb - 2];
  if (K !== Kb) {
    throw new Error(`Error in matMul: inner shapes ${K} and ${Kb} of shapes [${a.shape}] and [${b.shape}] ` +
      `and transposeA=${tA} and transposeB=${tB} must match.`);
  }
  const aBatch = a.shape.slice(0, -2);
  const bBatch = b.shape.slice(0, -2);
  const outBatch = c.tf.broadcast_util.assertAndGetBroadcastShape(aBatch, bBatch);
  const nA = c.tf.util.sizeFromShape(aBatch);
  const nB = c.tf.util.sizeFromShape(bBatch);
  const nOut = c.tf.util.sizeFromShape(outBatch);
  const out = c.be.makeOutput([...outBatch, M, N], 'float32');
  if (nOut * M * N === 0) return out;
  const oa = heapIndex(c.be, a);
  const ob = heapIndex(c.be, b);
  const oo = heapIndex(c.be, out);
  if (nB === 1 && !tA && nA === nOut) {
    // A shared right operand: one [batch*M, K] x [K, N] product.
    nat.matmul(heapOf(c.be), nOut * M, N, K, false, tB, Float64Array.from([oa, ob, oo]));
    return out;
  }
  const offsets = new Float64Array(3 * nOut);
  for (let o = 0; o < nOut; o++) {
    offsets[3 * o] = oa + (nA === nOut ? o : broadcastIndex(outBatch, aBatch, o)) * M * K;
    offsets[3 * o + 1] = ob + (nB === nOut ? o : broadcastIndex(outBatch, bBatch, o)) * K * N;
    offsets[3 * o + 2] = oo + o * M * N;
  }
  nat.matmul(heapOf(c.be), M, N, K, tA, tB, offsets);
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
    const nat = native();
    if (nat !== undefined) return nativeMatMul(c, nat, a0, b0, attr<boolean>(attrs, 'transposeA'), attr<boolean>(attrs, 'transposeB'));
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
// Tile and BatchNorm gradients
//
// tfjs's FusedBatchNorm gradient tiles 1/sqrt(var) to the input's full shape and runs a
// dozen full-size element-wise ops and reductions; its Mean gradient multiplies by a full
// tensor of ones. On wasm (one thread, generic index arithmetic in Tile) these took more of
// a ResNet50 step than all its convolutions once those run natively. So: a Tile made of
// block copies, and (wasm only; other backends keep tfjs's own) gradients for
// FusedBatchNorm (one fused pass for the four per-channel sums, a broadcast product for
// dx) and Mean (tile of dy / n: the same values as tfjs's dy * 1 / n).

function tile(tf: Tf): KernelFunc {
  return ({ inputs, backend, attrs }: KernelArgs) => {
    const c = makeCtx(tf, backend);
    const x = need(inputs, 'x');
    const reps = attr<number[]>(attrs, 'reps');
    if ((x.dtype !== 'float32' && x.dtype !== 'int32' && x.dtype !== 'bool') || reps.length !== x.shape.length) {
      return c.run('Tile', inputs, attrs);
    }
    const s = x.shape;
    const r = s.length;
    const o = s.map((d, i) => d * reps[i]);
    const out = c.be.makeOutput(o, x.dtype);
    const n = tf.util.sizeFromShape(o);
    if (n === 0) return out;
    const dst = c.be.typedArrayFromHeap(out) as Float32Array | Int32Array | Uint8Array;
    const src = c.be.typedArrayFromHeap(x) as Float32Array | Int32Array | Uint8Array;
    if (r === 0) {
      dst[0] = src[0];
      return out;
    }
    const oStride = new Array<number>(r).fill(1);
    for (let i = r - 2; i >= 0; i--) oStride[i] = oStride[i + 1] * o[i + 1];
    // Replicates dst[at, at + len) to fill dst[at, at + len * times), doubling each copy.
    const replicate = (at: number, len: number, times: number): void => {
      let have = len;
      const total = len * times;
      while (have < total) {
        const m = Math.min(have, total - have);
        dst.copyWithin(at + have, at, at + m);
        have += m;
      }
    };
    // Input rows into place, each repeated along the last axis.
    const inner = s[r - 1];
    const rows = tf.util.sizeFromShape(s.slice(0, -1));
    const idx = new Array<number>(r - 1).fill(0);
    for (let row = 0; row < rows; row++) {
      let at = 0;
      for (let i = 0; i < r - 1; i++) at += idx[i] * oStride[i];
      dst.set(src.subarray(row * inner, (row + 1) * inner), at);
      replicate(at, inner, reps[r - 1]);
      for (let i = r - 2; i >= 0; i--) {
        if (++idx[i] < s[i]) break;
        idx[i] = 0;
      }
    }
    // Then each axis from the innermost outwards: the filled block of s[d] entries is
    // repeated reps[d] times, for every filled position of the axes before it.
    for (let d = r - 2; d >= 0; d--) {
      if (reps[d] === 1) continue;
      const len = s[d] * oStride[d];
      const outer = tf.util.sizeFromShape(s.slice(0, d));
      const pos = new Array<number>(d).fill(0);
      for (let k = 0; k < outer; k++) {
        let at = 0;
        for (let i = 0; i < d; i++) at += pos[i] * oStride[i];
        replicate(at, len, reps[d]);
        for (let i = d - 1; i >= 0; i--) {
          if (++pos[i] < s[i]) break;
          pos[i] = 0;
        }
      }
    }
    return out;
  };
}

/** Sum / Mean over every axis but the last (BatchNorm statistics and their gradients): a
 *  native column reduction; any other reduction goes to the wasm kernel. */
function columnReduce(tf: Tf, kernel: 'Sum' | 'Mean'): KernelFunc {
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
    nat.colReduce(heapOf(c.be), rows, C, heapIndex(c.be, x), heapIndex(c.be, out), kernel === 'Mean' ? 1 / rows : 1);
    return out;
  };
}

/** [2, C]: per channel sum(dy) and sum(dy * (x - mean)) over every other axis. */
function batchNormReduce(tf: Tf): KernelFunc {
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
      nat.bnReduce(heapOf(c.be), rows, C, heapIndex(c.be, dy), heapIndex(c.be, x), heapIndex(c.be, mean), heapIndex(c.be, out));
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

const BN_REDUCE = 'MedpipeBatchNormReduce';
type GradFunc = GradConfig['gradFunc'];

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
        const t = tf.engine().runKernel(BN_REDUCE, { dy, x, mean }) as Tensor;
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
    return { x: () => tf.engine().runKernel(RELU_GRAD, { dy, x }) as Tensor };
  };
}

const GRADIENTS: Record<string, (tf: Tf, original: GradFunc) => GradFunc> = {
  FusedBatchNorm: fusedBatchNormGrad,
  Mean: meanGrad,
  Relu: reluGradient,
};
const gradOriginals = new Map<string, GradConfig>();

function registerGradients(tf: Tf): void {
  for (const [name, make] of Object.entries(GRADIENTS)) {
    const existing = tf.getGradient(name) as (GradConfig & { [WRAPPED]?: true }) | undefined;
    if (existing === undefined || existing[WRAPPED]) continue;
    gradOriginals.set(name, existing);
    const config: GradConfig & { [WRAPPED]: true } = { ...existing, gradFunc: make(tf, existing.gradFunc), [WRAPPED]: true };
    tf.registerGradient(config);
  }
}

// ---------------------------------------------------------------------------------------
// Element-wise ops, BatchNorm forward and the ReLU gradient on both cores
//
// With convolutions native, wasm's single-threaded element-wise kernels were a third of a
// ResNet50 step. Large float32 operands of the common layouts (same shape, one row of C
// broadcast down the last axis, a scalar) go native; everything else (small, other
// broadcasts, other dtypes) stays with wasm. Float32 IEEE arithmetic, one rounding per op:
// the same values as wasm's kernels (exp within 2 ulp, erf within 5e-7 of tfjs's).

/** Below this many output elements the N-API call and thread hand-off cost more than they save. */
const NATIVE_MIN_ELEMENTS = 4096;

const sameShape = (s: number[], t: number[]): boolean => s.length === t.length && s.every((d, i) => d === t[i]);
/** [..., 1, C] or [C]: one row broadcast down every leading axis of `out`. */
const isRow = (s: number[], out: number[]): boolean =>
  s.length >= 1 && s.length <= out.length && s[s.length - 1] === out[out.length - 1] && s.slice(0, -1).every((d) => d === 1);

function binaryMode(a: number[], b: number[], out: number[]): number | undefined {
  const aFull = sameShape(a, out);
  const bFull = sameShape(b, out);
  if (aFull && bFull) return 0;
  const size = (s: number[]): number => s.reduce((x, y) => x * y, 1);
  if (aFull && size(b) === 1) return 3;
  if (bFull && size(a) === 1) return 4;
  if (aFull && isRow(b, out)) return 1;
  if (bFull && isRow(a, out)) return 2;
  return undefined;
}

const BINARY_OPS = { Add: 0, Sub: 1, Multiply: 2, RealDiv: 3 } as const;

function binaryOp(tf: Tf, kernel: keyof typeof BINARY_OPS): KernelFunc {
  return ({ inputs, backend, attrs }: KernelArgs) => {
    const c = makeCtx(tf, backend);
    const a = need(inputs, 'a');
    const b = need(inputs, 'b');
    const nat = native();
    if (nat === undefined || a.dtype !== 'float32' || b.dtype !== 'float32') return c.run(kernel, inputs, attrs);
    const outShape = tf.broadcast_util.assertAndGetBroadcastShape(a.shape, b.shape);
    const n = tf.util.sizeFromShape(outShape);
    const mode = n >= NATIVE_MIN_ELEMENTS ? binaryMode(a.shape, b.shape, outShape) : undefined;
    if (mode === undefined) return c.run(kernel, inputs, attrs);
    const out = c.be.makeOutput(outShape, 'float32');
    const C = outShape[outShape.length - 1] ?? 1;
    nat.elementwise(heapOf(c.be), Float64Array.from([0, BINARY_OPS[kernel], mode, n, C, heapIndex(c.be, a), heapIndex(c.be, b), heapIndex(c.be, out)]));
    return out;
  };
}

/** The addon's one-pass element-wise functions (elementwise kind 1); b is the second input
 *  of the two gradients (x), else absent. */
const NATIVE_UNARY = { exp: 0, erf: 1, reluGrad: 2, gelu: 3, geluGrad: 4 } as const;

function nativeUnary(c: Ctx, nat: NativeAddon, op: keyof typeof NATIVE_UNARY, a: TensorInfo, b: TensorInfo | undefined, out: TensorInfo): void {
  const n = c.tf.util.sizeFromShape(out.shape);
  nat.elementwise(heapOf(c.be), Float64Array.from([
    1, NATIVE_UNARY[op], 0, n, 1, heapIndex(c.be, a), heapIndexOrNone(c.be, b), heapIndex(c.be, out),
  ]));
}

const UNARY_OPS = { Exp: 'exp', Erf: 'erf' } as const;

function unaryOp(tf: Tf, kernel: keyof typeof UNARY_OPS): KernelFunc {
  return ({ inputs, backend, attrs }: KernelArgs) => {
    const c = makeCtx(tf, backend);
    const x = need(inputs, 'x');
    const nat = native();
    const n = tf.util.sizeFromShape(x.shape);
    if (nat === undefined || x.dtype !== 'float32' || n < NATIVE_MIN_ELEMENTS) return c.run(kernel, inputs, attrs);
    const out = c.be.makeOutput(x.shape, 'float32');
    nativeUnary(c, nat, UNARY_OPS[kernel], x, undefined, out);
    return out;
  };
}

function fusedBatchNorm(tf: Tf): KernelFunc {
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
    nat.batchNorm(heapOf(c.be), Float64Array.from([
      n / C, C, at(x), at(mean), at(variance), at(scale), at(offset), attr<number>(attrs, 'varianceEpsilon'), at(out),
    ]));
    return out;
  };
}

/** Names of the fused training kernels (src/engine/fused-ops.ts calls them). */
export const BN_TRAIN = 'MedpipeBatchNormTrain';
export const BN_TRAIN_GRAD = 'MedpipeBatchNormTrainGrad';

function nativeOnly(kernel: string): NativeAddon {
  const nat = native();
  if (nat === undefined) throw new Error(`${kernel} needs medpipe's native kernels, which are off or not built`);
  return nat;
}

/** [y, mean, variance] of a BatchNorm over every axis but the last, batch statistics. */
function batchNormTrain(tf: Tf): KernelFunc {
  return ({ inputs, backend, attrs }: KernelArgs) => {
    const c = makeCtx(tf, backend);
    const nat = nativeOnly(BN_TRAIN);
    const x = need(inputs, 'x');
    const { scale, offset } = inputs;
    const C = x.shape[x.shape.length - 1]!;
    const y = c.be.makeOutput(x.shape, 'float32');
    const mean = c.be.makeOutput([C], 'float32');
    const variance = c.be.makeOutput([C], 'float32');
    const at = (t: TensorInfo | undefined): number => heapIndexOrNone(c.be, t);
    nat.bnTrain(heapOf(c.be), Float64Array.from([
      tf.util.sizeFromShape(x.shape) / C, C, at(x), at(scale), at(offset), attr<number>(attrs, 'varianceEpsilon'), at(y), at(mean), at(variance),
    ]));
    return [y, mean, variance];
  };
}

/** [dx, dscale, doffset] of batchNormTrain, through the batch statistics. */
function batchNormTrainGrad(tf: Tf): KernelFunc {
  return ({ inputs, backend, attrs }: KernelArgs) => {
    const c = makeCtx(tf, backend);
    const nat = nativeOnly(BN_TRAIN_GRAD);
    const dy = need(inputs, 'dy');
    const x = need(inputs, 'x');
    const { scale } = inputs;
    const C = x.shape[x.shape.length - 1]!;
    const dx = c.be.makeOutput(x.shape, 'float32');
    const dscale = c.be.makeOutput([C], 'float32');
    const doffset = c.be.makeOutput([C], 'float32');
    const at = (t: TensorInfo | undefined): number => heapIndexOrNone(c.be, t);
    nat.bnTrainGrad(heapOf(c.be), Float64Array.from([
      tf.util.sizeFromShape(x.shape) / C, C, at(dy), at(x), at(need(inputs, 'mean')), at(need(inputs, 'variance')), at(scale),
      attr<number>(attrs, 'varianceEpsilon'), at(dx), at(dscale), at(doffset),
    ]));
    return [dx, dscale, doffset];
  };
}

export const LN = 'MedpipeLayerNorm';
export const LN_GRAD = 'MedpipeLayerNormGrad';
export const GELU = 'MedpipeGelu';
export const GELU_GRAD = 'MedpipeGeluGrad';

/** [y, mean, rstd] of a LayerNorm over the last axis (mean and 1/sqrt(var + eps) per row). */
function layerNormKernel(tf: Tf): KernelFunc {
  return ({ inputs, backend, attrs }: KernelArgs) => {
    const c = makeCtx(tf, backend);
    const nat = nativeOnly(LN);
    const x = need(inputs, 'x');
    const D = x.shape[x.shape.length - 1]!;
    const rows = tf.util.sizeFromShape(x.shape) / D;
    const y = c.be.makeOutput(x.shape, 'float32');
    const mean = c.be.makeOutput([rows], 'float32');
    const rstd = c.be.makeOutput([rows], 'float32');
    const at = (t: TensorInfo): number => heapIndex(c.be, t);
    nat.layerNorm(heapOf(c.be), Float64Array.from([
      rows, D, at(x), at(need(inputs, 'scale')), at(need(inputs, 'offset')), attr<number>(attrs, 'epsilon'), at(y), at(mean), at(rstd),
    ]));
    return [y, mean, rstd];
  };
}

/** [dx, dscale, doffset] of layerNormKernel. */
function layerNormGradKernel(tf: Tf): KernelFunc {
  return ({ inputs, backend }: KernelArgs) => {
    const c = makeCtx(tf, backend);
    const nat = nativeOnly(LN_GRAD);
    const x = need(inputs, 'x');
    const D = x.shape[x.shape.length - 1]!;
    const dx = c.be.makeOutput(x.shape, 'float32');
    const dscale = c.be.makeOutput([D], 'float32');
    const doffset = c.be.makeOutput([D], 'float32');
    const at = (t: TensorInfo): number => heapIndex(c.be, t);
    nat.layerNormGrad(heapOf(c.be), Float64Array.from([
      tf.util.sizeFromShape(x.shape) / D, D, at(need(inputs, 'dy')), at(x), at(need(inputs, 'mean')), at(need(inputs, 'rstd')),
      at(need(inputs, 'scale')), at(dx), at(dscale), at(doffset),
    ]));
    return [dx, dscale, doffset];
  };
}

/** Exact GELU (op 3) and its gradient (op 4, inputs dy and x). */
function geluKernel(tf: Tf, grad: boolean): KernelFunc {
  return ({ inputs, backend }: KernelArgs) => {
    const c = makeCtx(tf, backend);
    const nat = nativeOnly(grad ? GELU_GRAD : GELU);
    const x = need(inputs, 'x');
    const out = c.be.makeOutput(x.shape, 'float32');
    if (grad) nativeUnary(c, nat, 'geluGrad', need(inputs, 'dy'), x, out);
    else nativeUnary(c, nat, 'gelu', x, undefined, out);
    return out;
  };
}

const RELU_GRAD = 'MedpipeReluGrad';

/** dy * (x > 0), the ReLU gradient in one pass (tfjs: Step, Cast and Multiply). */
function reluGrad(tf: Tf): KernelFunc {
  return ({ inputs, backend }: KernelArgs) => {
    const c = makeCtx(tf, backend);
    const dy = need(inputs, 'dy');
    const x = need(inputs, 'x');
    const n = tf.util.sizeFromShape(x.shape);
    const out = c.be.makeOutput(x.shape, 'float32');
    const nat = native();
    if (nat !== undefined) {
      nativeUnary(c, nat, 'reluGrad', dy, x, out);
      return out;
    }
    const d = c.f32(dy);
    const v = c.f32(x);
    const o = c.f32(out);
    for (let i = 0; i < n; i++) o[i] = Number.isNaN(v[i]) ? v[i] : d[i] * (v[i] > 0 ? 1 : 0);
    return out;
  };
}

// ---------------------------------------------------------------------------------------
// Slice and SplitV
//
// wasm's Slice copies the WHOLE input out of the heap (readSync) before taking its part, and
// SplitV does that once per piece: splitting a ViT's fused qkv projection cost more than its
// attention. Here: views of the heap and one block copy per run of contiguous elements.

type HeapArray = Float32Array | Int32Array | Uint8Array;

/** Copies the box [begin, begin + size) of `src` (row-major `shape`) into `dst`. */
function copyBox(src: HeapArray, shape: number[], begin: number[], size: number[], dst: HeapArray): void {
  const r = shape.length;
  if (r === 0) {
    dst[0] = src[0]!;
    return;
  }
  const stride = new Array<number>(r).fill(1);
  for (let i = r - 2; i >= 0; i--) stride[i] = stride[i + 1]! * shape[i + 1]!;
  // Axes after d are whole: each box row along axes 0..d-1 is one contiguous run.
  let d = r - 1;
  while (d > 0 && begin[d] === 0 && size[d] === shape[d]) d--;
  const run = size[d]! * stride[d]!;
  let rows = 1;
  for (let i = 0; i < d; i++) rows *= size[i]!;
  const idx = begin.slice(0, d);
  for (let k = 0, o = 0; k < rows; k++, o += run) {
    let at = begin[d]! * stride[d]!;
    for (let i = 0; i < d; i++) at += idx[i]! * stride[i]!;
    dst.set(src.subarray(at, at + run), o);
    for (let i = d - 1; i >= 0; i--) {
      if (++idx[i]! < begin[i]! + size[i]!) break;
      idx[i] = begin[i]!;
    }
  }
}

function sliceInfo(c: Ctx, x: TensorInfo, begin: number[], size: number[]): TensorInfo {
  const out = c.be.makeOutput(size, x.dtype);
  if (c.tf.util.sizeFromShape(size) > 0) {
    copyBox(c.be.typedArrayFromHeap(x) as HeapArray, x.shape, begin, size, c.be.typedArrayFromHeap(out) as HeapArray);
  }
  return out;
}

function slice(tf: Tf): KernelFunc {
  return ({ inputs, backend, attrs }: KernelArgs) => {
    const c = makeCtx(tf, backend);
    const x = need(inputs, 'x');
    if (x.dtype === 'string' || x.dtype === 'complex64') return c.run('Slice', inputs, attrs);
    const [begin, size] = tf.slice_util.parseSliceParams(x as Tensor, attr(attrs, 'begin'), attr(attrs, 'size'));
    return sliceInfo(c, x, begin, size);
  };
}

function splitV(tf: Tf): KernelFunc {
  return ({ inputs, backend, attrs }: KernelArgs) => {
    const c = makeCtx(tf, backend);
    const x = need(inputs, 'x');
    if (x.dtype === 'string' || x.dtype === 'complex64') {
      return (originals.get('SplitV') ?? tf.getKernel('SplitV', BACKEND)).kernelFunc({ inputs, backend, attrs });
    }
    const axis = tf.util.parseAxisParam(attr<number>(attrs, 'axis'), x.shape)[0]!;
    const sizes = tf.backend_util.prepareSplitSize(x as Tensor, attr<number | number[]>(attrs, 'numOrSizeSplits'), axis);
    const begin = x.shape.map(() => 0);
    return sizes.map((n) => {
      const size = x.shape.slice();
      size[axis] = n;
      const out = sliceInfo(c, x, begin, size);
      begin[axis]! += n;
      return out;
    });
  };
}

// ---------------------------------------------------------------------------------------
// Identity and same-dtype Cast
//
// wasm copies the data for both. The engine clones every tensor it saves for the backward
// pass through Identity, and Relu's gradient casts a float32 mask to float32, so a ResNet50
// step made ~2,800 full copies (13% of it). Sharing the data with a reference count is what
// the cpu and webgl backends do; nothing writes into a tensor's data after it is made (the
// fused Adam, which updates variables in place, first gives any shared one its own copy).

function identity(tf: Tf): KernelFunc {
  return ({ inputs, backend, attrs }: KernelArgs) => {
    const c = makeCtx(tf, backend);
    const x = need(inputs, 'x');
    if (x.dtype === 'string') return c.run('Identity', inputs, attrs);
    c.be.incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
}

function cast(tf: Tf): KernelFunc {
  return ({ inputs, backend, attrs }: KernelArgs) => {
    const x = need(inputs, 'x');
    if (attr<string>(attrs, 'dtype') !== x.dtype) return makeCtx(tf, backend).run('Cast', inputs, attrs);
    return identity(tf)({ inputs, backend, attrs }) as TensorInfo;
  };
}

// ---------------------------------------------------------------------------------------
// Registration

const FACTORIES: Record<string, (tf: Tf) => KernelFunc> = {
  Conv2D: (tf) => conv2D(tf, 'Conv2D'),
  FusedConv2D: (tf) => conv2D(tf, 'FusedConv2D'),
  Conv2DBackpropFilter: conv2DBackpropFilter,
  Conv2DBackpropInput: conv2DBackpropInput,
  DepthwiseConv2dNativeBackpropFilter: depthwiseBackpropFilter,
  DepthwiseConv2dNativeBackpropInput: depthwiseBackpropInput,
  MaxPoolGrad: maxPoolGrad,
  UnsortedSegmentSum: unsortedSegmentSum,
  Tile: tile,
  Sum: (tf) => columnReduce(tf, 'Sum'),
  Mean: (tf) => columnReduce(tf, 'Mean'),
  [BN_REDUCE]: batchNormReduce,
  BatchMatMul: batchMatMul,
  _FusedMatMul: fusedMatMul,
  Identity: identity,
  Cast: cast,
  Slice: slice,
  SplitV: splitV,
  Add: (tf) => binaryOp(tf, 'Add'),
  Sub: (tf) => binaryOp(tf, 'Sub'),
  Multiply: (tf) => binaryOp(tf, 'Multiply'),
  RealDiv: (tf) => binaryOp(tf, 'RealDiv'),
  Exp: (tf) => unaryOp(tf, 'Exp'),
  Erf: (tf) => unaryOp(tf, 'Erf'),
  FusedBatchNorm: fusedBatchNorm,
  [RELU_GRAD]: reluGrad,
  [BN_TRAIN]: batchNormTrain,
  [BN_TRAIN_GRAD]: batchNormTrainGrad,
  [LN]: layerNormKernel,
  [LN_GRAD]: layerNormGradKernel,
  [GELU]: (tf) => geluKernel(tf, false),
  [GELU_GRAD]: (tf) => geluKernel(tf, true),
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
  registerGradients(tf);
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
  for (const [, config] of gradOriginals) tf.registerGradient(config);
  gradOriginals.clear();
}
