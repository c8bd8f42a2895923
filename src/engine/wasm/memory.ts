// Data movement on wasm, with or without the addon: Tile as block copies (wasm's generic
// index arithmetic was slow enough to matter in BatchNorm's gradient), Slice / SplitV as
// heap views with block copies, Identity and same-dtype Cast sharing data.

import type { KernelFunc, Tensor, TensorInfo } from '@tensorflow/tfjs-core';
import { BACKEND, KERNELS, attr, heapIndex, heapOf, makeCtx, nativeOnly, need, originals, sameShape, type Ctx, type KernelArgs, type Tf } from './context.js';

export function tile(tf: Tf): KernelFunc {
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

export function slice(tf: Tf): KernelFunc {
  return ({ inputs, backend, attrs }: KernelArgs) => {
    const c = makeCtx(tf, backend);
    const x = need(inputs, 'x');
    if (x.dtype === 'string' || x.dtype === 'complex64') return c.run('Slice', inputs, attrs);
    const [begin, size] = tf.slice_util.parseSliceParams(x as Tensor, attr(attrs, 'begin'), attr(attrs, 'size'));
    return sliceInfo(c, x, begin, size);
  };
}

export function splitV(tf: Tf): KernelFunc {
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


// wasm copies the data for both. The engine clones every tensor it saves for the backward
// pass through Identity, and Relu's gradient casts a float32 mask to float32, so a ResNet50
// step made ~2,800 full copies (13% of it). Sharing the data with a reference count is what
// the cpu and webgl backends do; nothing writes into a tensor's data after it is made (the
// fused Adam, which updates variables in place, first gives any shared one its own copy).

export function identity(tf: Tf): KernelFunc {
  return ({ inputs, backend, attrs }: KernelArgs) => {
    const c = makeCtx(tf, backend);
    const x = need(inputs, 'x');
    if (x.dtype === 'string') return c.run('Identity', inputs, attrs);
    c.be.incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
}

export function cast(tf: Tf): KernelFunc {
  return ({ inputs, backend, attrs }: KernelArgs) => {
    const x = need(inputs, 'x');
    if (attr<string>(attrs, 'dtype') !== x.dtype) return makeCtx(tf, backend).run('Cast', inputs, attrs);
    return identity(tf)({ inputs, backend, attrs }) as TensorInfo;
  };
}

// The attention's heads split and merge (torch's reshape(B, T, H, hd).permute(0, 2, 1, 3)
// and back) as native strided copies: as JS loops of one subarray copy per head row they
// were a fifth of a small ViT's inference step. Native only (the ViT step graph's kernels).

/** x [B*T, P*H*hd] (attrs batch B, heads H, parts P) as P head tensors [B*H, T, hd], the
 *  first times `scale` (1: a plain copy; another, the bits of a Multiply by that float32). */
export function splitHeads(tf: Tf): KernelFunc {
  return ({ inputs, backend, attrs }: KernelArgs) => {
    const nat = nativeOnly(KERNELS.splitHeads);
    const c = makeCtx(tf, backend);
    const x = need(inputs, 'x');
    const B = attr<number>(attrs, 'batch');
    const H = attr<number>(attrs, 'heads');
    const P = attr<number>(attrs, 'parts');
    const scale = attr<number | undefined>(attrs, 'scale') ?? 1;
    const [rows, cols] = x.shape as [number, number];
    if (x.dtype !== 'float32' || x.shape.length !== 2 || rows % B !== 0 || cols % (P * H) !== 0) {
      throw new Error(`${KERNELS.splitHeads}: bad input [${x.shape}] for batch ${B}, heads ${H}, parts ${P}`);
    }
    const T = rows / B;
    const hd = cols / (P * H);
    const outs: TensorInfo[] = [];
    for (let p = 0; p < P; p++) outs.push(c.be.makeOutput([B * H, T, hd], 'float32'));
    const ox = heapIndex(c.be, x);
    for (let p = 0; p < P; p++) {
      nat.run('heads', heapOf(c.be), [B, T, H, hd, cols, p * H * hd, ox, heapIndex(c.be, outs[p]!), 1, p === 0 ? Math.fround(scale) : 1]);
    }
    return outs;
  };
}

/** Inputs x0 (times `scale`), x1, ... each [B*H, T, hd] (attrs batch B) side by side as
 *  one [B*T, P*H*hd]: the inverse of splitHeads. */
export function mergeHeads(tf: Tf): KernelFunc {
  return ({ inputs, backend, attrs }: KernelArgs) => {
    const nat = nativeOnly(KERNELS.mergeHeads);
    const c = makeCtx(tf, backend);
    const B = attr<number>(attrs, 'batch');
    const scale = attr<number | undefined>(attrs, 'scale') ?? 1;
    const parts: TensorInfo[] = [];
    for (let p = 0; inputs[`x${p}`] !== undefined; p++) parts.push(inputs[`x${p}`]!);
    const s0 = parts[0]?.shape;
    if (s0 === undefined || s0.length !== 3 || s0[0]! % B !== 0 || parts.some((t) => t.dtype !== 'float32' || !sameShape(t.shape, s0))) {
      throw new Error(`${KERNELS.mergeHeads}: needs inputs x0, x1, ... of one shape [B*H, T, hd], float32`);
    }
    const [BH, T, hd] = s0 as [number, number, number];
    const H = BH / B;
    const cols = parts.length * H * hd;
    const out = c.be.makeOutput([B * T, cols], 'float32');
    const oo = heapIndex(c.be, out);
    parts.forEach((t, p) => {
      nat.run('heads', heapOf(c.be), [B, T, H, hd, cols, p * H * hd, oo, heapIndex(c.be, t), 0, p === 0 ? Math.fround(scale) : 1]);
    });
    return out;
  };
}
