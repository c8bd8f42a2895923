// Matrix products on wasm. wasm reaches XNNPACK only for untransposed operands with a batch
// of 1; everything else runs a scalar loop at 1-3 GFLOP/s. With the addon, every
// BatchMatMul is native (all transposes, batches, broadcasting); without it the wrappers
// transpose operands explicitly, fold a broadcast right operand into one 2-D matmul, and
// split true batches into per-batch XNNPACK matmuls.

import type { KernelFunc, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../native.js';
import { KERNELS, attr, heapIndex, heapOf, makeCtx, native, nativeOnly, need, type Ctx, type KernelArgs, type Tf } from './context.js';

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
    nat.run('matmul', heapOf(c.be), [nOut * M, N, K, 0, tB ? 1 : 0, oa, ob, oo]);
    return out;
  }
  // [M, N, K, transA, transB] then one (a, b, out) offset triple per product.
  const args = new Float64Array(5 + 3 * nOut);
  args.set([M, N, K, tA ? 1 : 0, tB ? 1 : 0]);
  for (let o = 0; o < nOut; o++) {
    args[5 + 3 * o] = oa + (nA === nOut ? o : broadcastIndex(outBatch, aBatch, o)) * M * K;
    args[5 + 3 * o + 1] = ob + (nB === nOut ? o : broadcastIndex(outBatch, bBatch, o)) * K * N;
    args[5 + 3 * o + 2] = oo + o * M * N;
  }
  nat.run('matmul', heapOf(c.be), args);
  return out;
}

export function batchMatMul(tf: Tf): KernelFunc {
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

export function fusedMatMul(tf: Tf): KernelFunc {
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

/** a [M, K] . b [K, N] + bias [N] (layers.linear's matMul then Add, the same bits: each
 *  element's full dot product, then its bias added once) with the add in the native GEMM's
 *  epilogue instead of its own pass. Native only (the ViT step graph's kernel). */
export function linearKernel(tf: Tf): KernelFunc {
  return ({ inputs, backend }: KernelArgs) => {
    const nat = nativeOnly(KERNELS.linear);
    const c = makeCtx(tf, backend);
    const a = need(inputs, 'a');
    const b = need(inputs, 'b');
    const bias = need(inputs, 'bias');
    const [M, K] = a.shape as [number, number];
    const N = b.shape[1]!;
    if (a.shape.length !== 2 || b.shape.length !== 2 || b.shape[0] !== K || bias.shape.length !== 1 || bias.shape[0] !== N ||
        a.dtype !== 'float32' || b.dtype !== 'float32' || bias.dtype !== 'float32') {
      throw new Error(`${KERNELS.linear}: needs float32 a [M, K], b [K, N], bias [N]; got [${a.shape}], [${b.shape}], [${bias.shape}]`);
    }
    const out = c.be.makeOutput([M, N], 'float32');
    if (M * N === 0) return out;
    nat.run('linear', heapOf(c.be), [M, N, K, heapIndex(c.be, a), heapIndex(c.be, b), heapIndex(c.be, bias), heapIndex(c.be, out)]);
    return out;
  };
}
