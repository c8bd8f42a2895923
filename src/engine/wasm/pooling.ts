// Pooling and segment sums on wasm. MaxPoolGrad: the wasm kernel starts its running max at
// FLT_MIN (the smallest positive float), so a window whose values are all negative loses
// its gradient, and it breaks ties towards the last element; replaced by the addon's kernel
// or a loop that matches the cpu kernel (first maximum). UnsortedSegmentSum (gather's
// gradient) is missing from wasm: a direct loop.

import type { KernelFunc } from '@tensorflow/tfjs-core';
import { attr, heapIndex, heapOf, makeCtx, native, need, type KernelArgs, type Pad, type Rounding, type Shape4, type Tf } from './context.js';

export function maxPoolGrad(tf: Tf): KernelFunc {
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
      const geom = [N, H, W, C, OH, OW, KH, KW, sh, sw, dh, dw, ci.padInfo.top, ci.padInfo.left];
      nat.run('maxPoolGrad', heapOf(c.be), [heapIndex(c.be, input), heapIndex(c.be, dy), heapIndex(c.be, dx), ...geom]);
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

export function unsortedSegmentSum(tf: Tf): KernelFunc {
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
