// Convolution kernels on wasm. Conv2D / FusedConv2D and both gradients go to the native
// addon when it is built; without it, Conv2DBackpropFilter (missing from wasm) is im2col
// written straight into the heap and one XNNPACK matmul (dW = cols^T . dy), and
// Conv2DBackpropInput (present but 5-10x slower than the forward conv) is, for stride 1, a
// forward conv of dy with the flipped, in/out-swapped filter. The depthwise gradients
// (missing) are direct loops over heap views: on no hot path of our models.

import type { KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { attr, checkNHWC, heapIndex, heapIndexOrNone, heapOf, KERNELS, makeCtx, native, nativeOnly, need, type Conv2DInfo, type Ctx, type KernelArgs, type Pad, type Rounding, type Shape4, type Tf } from './context.js';

/** The addon's convolution geometry: N H W C OC KH KW sh sw dh dw padTop padLeft OH OW. */
function geometry(ci: Conv2DInfo): number[] {
  return [
    ci.batchSize, ci.inHeight, ci.inWidth, ci.inChannels, ci.outChannels, ci.filterHeight, ci.filterWidth,
    ci.strideHeight, ci.strideWidth, ci.dilationHeight, ci.dilationWidth, ci.padInfo.top, ci.padInfo.left,
    ci.outHeight, ci.outWidth,
  ];
}

const emptyConv = (ci: Conv2DInfo): boolean =>
  [ci.batchSize, ci.inHeight, ci.inWidth, ci.inChannels, ci.outChannels, ci.outHeight, ci.outWidth].some((v) => v <= 0);


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
export function conv2D(tf: Tf, kernel: 'Conv2D' | 'FusedConv2D'): KernelFunc {
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
    const act = activation === 'relu' ? nat.codes.activation.relu : nat.codes.activation.none;
    nat.run('conv2d', heapOf(c.be), [heapIndex(c.be, x), heapIndex(c.be, filter), heapIndex(c.be, out), b, act, ...geometry(ci)]);
    return out;
  };
}

/**
 * Inference Conv2D then BatchNorm with given statistics (+ residual, then ReLU when the
 * `relu` attr is set): the bits of Conv2D followed by MedpipeBatchNormRelu (relu) or
 * FusedBatchNorm (neither), with the BatchNorm applied to each output block while the conv
 * has it in cache instead of a second pass over the whole output. Native only (NHWC fp32).
 */
export function conv2DBatchNorm(tf: Tf): KernelFunc {
  return ({ inputs, backend, attrs }: KernelArgs) => {
    const c = makeCtx(tf, backend);
    const nat = nativeOnly(KERNELS.convBn);
    const x = need(inputs, 'x');
    const filter = need(inputs, 'filter');
    const format = attr<string | undefined>(attrs, 'dataFormat');
    const relu = attr<boolean | undefined>(attrs, 'relu') ?? false;
    const { residual, scale, offset } = inputs;
    if (x.dtype !== 'float32' || (format !== undefined && format !== 'NHWC')) {
      throw new Error(`${KERNELS.convBn}: float32 NHWC only`);
    }
    // As the native op (conv.cc): a residual is only ever added before the ReLU.
    if (residual !== undefined && !relu) {
      throw new Error(`${KERNELS.convBn}: the residual input needs the relu attr (bn(conv) + residual without the ReLU is not implemented)`);
    }
    const ci = tf.backend_util.computeConv2DInfo(
      x.shape as Shape4, filter.shape as Shape4, attr(attrs, 'strides'), attr(attrs, 'dilations') ?? 1,
      attr<Pad>(attrs, 'pad'), attr<Rounding>(attrs, 'dimRoundingMode'),
    );
    const perChannel = (t: TensorInfo | undefined): boolean =>
      t === undefined || (t.dtype === 'float32' && tf.util.sizeFromShape(t.shape) === ci.outChannels);
    if (emptyConv(ci) || ![inputs['mean'], inputs['variance'], scale, offset].every(perChannel) ||
      (residual !== undefined && (residual.dtype !== 'float32' || !tf.util.arraysEqual(residual.shape, ci.outShape)))) {
      throw new Error(`${KERNELS.convBn}: bad shapes`);
    }
    const out = c.be.makeOutput(ci.outShape, 'float32');
    const at = (t: TensorInfo | undefined): number => heapIndexOrNone(c.be, t);
    nat.run('conv2dBn', heapOf(c.be), [
      heapIndex(c.be, x), heapIndex(c.be, filter), heapIndex(c.be, out), heapIndex(c.be, need(inputs, 'mean')),
      heapIndex(c.be, need(inputs, 'variance')), at(scale), at(offset), at(residual),
      attr<number>(attrs, 'varianceEpsilon'), relu ? 1 : 0, ...geometry(ci),
    ]);
    return out;
  };
}

export function conv2DBackpropFilter(tf: Tf): KernelFunc {
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
      nat.run('conv2dGradFilter', heapOf(c.be), [heapIndex(c.be, x), heapIndex(c.be, dy), heapIndex(c.be, out), ...geometry(ci)]);
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

export function conv2DBackpropInput(tf: Tf): KernelFunc {
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
      nat.run('conv2dGradInput', heapOf(c.be), [heapIndex(c.be, dy), heapIndex(c.be, filter), heapIndex(c.be, out), ...geometry(ci)]);
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

export function depthwiseBackpropFilter(tf: Tf): KernelFunc {
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

export function depthwiseBackpropInput(tf: Tf): KernelFunc {
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
