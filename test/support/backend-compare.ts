// Kernels of one backend against the reference cpu backend: a seeded generator of random
// shapes and values (the same cases on every run), and `same`, which runs one function on
// both backends and bounds the largest difference relative to the largest reference value.
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';

export type T = tf.Tensor;
export interface In {
  shape: number[];
  data: Float32Array | Int32Array;
}
export type Pad = 'same' | 'valid' | [[0, 0], [number, number], [number, number], [0, 0]];

export const size = (s: number[]): number => s.reduce((a, b) => a * b, 1);
export const z4 = (shape: number[]): tf.Tensor4D => tf.zeros(shape as [number, number, number, number]);

/** A linear congruential generator; its methods may be destructured. */
export class Random {
  constructor(public seed: number) {}

  /**
   * Restarts the sequence at a seed derived from `key` (FNV-1a of a test's name): a file whose
   * tests share one generator then gives each test the same cases whether it runs alone
   * (--test-name-pattern) or after the others, so a failure of the whole file reproduces alone.
   */
  reseed = (key: string): void => {
    let h = 0x811c9dc5;
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193) >>> 0;
    this.seed = h;
  };

  rand = (): number => {
    this.seed = (this.seed * 1664525 + 1013904223) >>> 0;
    return this.seed / 2 ** 32;
  };

  int = (lo: number, hi: number): number => lo + Math.floor(this.rand() * (hi - lo + 1));

  pick = <X>(xs: readonly X[]): X => xs[Math.floor(this.rand() * xs.length)]!;

  /** n values of f (default: uniform in [-1, 1)), drawn in order. */
  values = (n: number, f: () => number = () => this.rand() * 2 - 1): Float32Array => {
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) v[i] = f();
    return v;
  };

  F = (shape: number[], f?: () => number): In & { data: Float32Array } => ({ shape, data: this.values(size(shape), f) });

  /** 'same' with chance pSame, 'valid' with pValid, else explicit padding up to the kernel size. */
  pad = (kh: number, kw: number, pSame: number, pValid: number): Pad => {
    const r = this.rand();
    if (r < pSame) return 'same';
    if (r < pSame + pValid) return 'valid';
    return [[0, 0], [this.int(0, kh), this.int(0, kh)], [this.int(0, kw), this.int(0, kw)], [0, 0]];
  };
}

/** Runs `fn` on a backend over fresh tensors built from plain arrays; returns plain arrays. */
export function on(backend: 'cpu' | 'wasm' | 'webgpu', inputs: In[], fn: (...xs: T[]) => T | T[]): Float32Array[] {
  tf.setBackend(backend);
  return tf.tidy(() => {
    const xs = inputs.map((i) => tf.tensor(i.data, i.shape, i.data instanceof Int32Array ? 'int32' : 'float32'));
    const out = fn(...xs);
    return (Array.isArray(out) ? out : [out]).map((o) => Float32Array.from(o.dataSync()));
  });
}

/** max |a - b| / max |b| (b the reference). */
export function relErr(a: Float32Array, b: Float32Array, what = ''): number {
  assert.equal(a.length, b.length, `${what}: length`);
  let num = 0;
  let den = 1e-6;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!));
    den = Math.max(den, Math.abs(b[i]!));
  }
  return num / den;
}

/** `fn` on `backend` (default wasm) agrees with the cpu backend within `tol` (relErr), output by output. */
export function same(what: string, inputs: In[], fn: (...xs: T[]) => T | T[], tol = 1e-4, backend: 'wasm' | 'webgpu' = 'wasm'): void {
  const want = on('cpu', inputs, fn);
  const got = on(backend, inputs, fn);
  want.forEach((w, i) => {
    const e = relErr(got[i]!, w, what);
    assert.ok(e <= tol, `${what} output ${i}: rel. error ${e.toExponential(2)}`);
  });
}
