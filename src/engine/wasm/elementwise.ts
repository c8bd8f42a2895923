// Element-wise ops on both cores. With convolutions native, wasm's single-threaded
// element-wise kernels were a third of a ResNet50 step. Large float32 operands of the common
// layouts (same shape, one row of C broadcast down the last axis, a scalar) go native;
// everything else (small, other broadcasts, other dtypes) stays with wasm. Float32 IEEE
// arithmetic, one rounding per op: the same values as wasm's kernels (exp within 2 ulp, erf
// within 5e-7 of tfjs's). Also exact GELU and the ReLU gradient in one pass each.

import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { NativeAddon, NativeCodes } from '../native.js';
import { KERNELS, NATIVE_MIN_ELEMENTS, heapIndex, heapIndexOrNone, heapOf, isRow, makeCtx, native, nativeOnly, need, sameShape, type Ctx, type KernelArgs, type Tf } from './context.js';

type Broadcast = keyof NativeCodes['broadcast'];
type Unary = keyof NativeCodes['unary'];

function binaryMode(a: number[], b: number[], out: number[]): Broadcast | undefined {
  const aFull = sameShape(a, out);
  const bFull = sameShape(b, out);
  if (aFull && bFull) return 'same';
  const size = (s: number[]): number => s.reduce((x, y) => x * y, 1);
  if (aFull && size(b) === 1) return 'bScalar';
  if (bFull && size(a) === 1) return 'aScalar';
  if (aFull && isRow(b, out)) return 'bRow';
  if (bFull && isRow(a, out)) return 'aRow';
  return undefined;
}

const BINARY_OPS = { Add: 'add', Sub: 'sub', Multiply: 'mul', RealDiv: 'div' } as const;

export function binaryOp(tf: Tf, kernel: keyof typeof BINARY_OPS): KernelFunc {
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
    nat.run('binary', heapOf(c.be), [
      nat.codes.binary[BINARY_OPS[kernel]], nat.codes.broadcast[mode], n, C, heapIndex(c.be, a), heapIndex(c.be, b), heapIndex(c.be, out),
    ]);
    return out;
  };
}

/** One of the addon's one-pass element-wise functions; b is the second input of the two
 *  gradients (x, with a = dy), else absent. */
export function nativeUnary(c: Ctx, nat: NativeAddon, op: Unary, a: TensorInfo, b: TensorInfo | undefined, out: TensorInfo): void {
  const n = c.tf.util.sizeFromShape(out.shape);
  nat.run('unary', heapOf(c.be), [nat.codes.unary[op], n, heapIndex(c.be, a), heapIndexOrNone(c.be, b), heapIndex(c.be, out)]);
}

const UNARY_OPS = { Exp: 'exp', Erf: 'erf' } as const;

export function unaryOp(tf: Tf, kernel: keyof typeof UNARY_OPS): KernelFunc {
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

/** Exact GELU and its gradient (inputs dy and x). */
export function geluKernel(tf: Tf, grad: boolean): KernelFunc {
  return ({ inputs, backend }: KernelArgs) => {
    const c = makeCtx(tf, backend);
    const nat = nativeOnly(grad ? KERNELS.geluGrad : KERNELS.gelu);
    const x = need(inputs, 'x');
    const out = c.be.makeOutput(x.shape, 'float32');
    if (grad) nativeUnary(c, nat, 'geluGrad', need(inputs, 'dy'), x, out);
    else nativeUnary(c, nat, 'gelu', x, undefined, out);
    return out;
  };
}

/** dy * (x > 0), the ReLU gradient in one pass (tfjs: Step, Cast and Multiply). */
export function reluGrad(tf: Tf): KernelFunc {
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
