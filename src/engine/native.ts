// Loads medpipe's native kernels (native/medpipe.cc, built at `npm install` by
// native/build.mjs into native/build/medpipe_native.node). Optional: when the addon is
// absent or MEDPIPE_NATIVE=0, everything runs on the pure-wasm path.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NativeAddon {
  /** kind 0: conv forward (a = x, b = filter, out = y); 1: input gradient (a = dy, b =
   *  filter, out = dx); 2: filter gradient (a = x, b = dy, out = dW). Offsets are float
   *  indices into `heap`; bias -1 for none; act 0 none, 1 relu. geom: N, H, W, C, OC, KH, KW,
   *  sh, sw, dh, dw, padTop, padLeft, OH, OW. */
  conv(kind: number, heap: ArrayBufferLike, a: number, b: number, out: number, bias: number, act: number, geom: Int32Array): void;
  /** Row-major products C = op(A) op(B) for each (a, b, c) offset triple. */
  matmul(heap: ArrayBufferLike, M: number, N: number, K: number, transA: boolean, transB: boolean, offsets: Float64Array): void;
  /** BatchNorm gradient sums over [rows x C]: out[c] = sum dy, out[C + c] = sum dy (x - mean[c]). */
  bnReduce(heap: ArrayBufferLike, rows: number, C: number, dy: number, x: number, mean: number, out: number): void;
  /** out[c] = scale * sum over rows of x[rows x C] (float64 accumulation). */
  colReduce(heap: ArrayBufferLike, rows: number, C: number, x: number, out: number, scale: number): void;
  /** args [kind, op, mode, n, C, a, b, out]: kind 0 binary (op add/sub/mul/div; mode 0 same
   *  shape, 1 b one row of C, 2 a one row, 3 b scalar, 4 a scalar), kind 1 unary (op exp,
   *  erf, relu gradient (dy = a, x = b), gelu, gelu gradient (dy = a, x = b)). */
  elementwise(heap: ArrayBufferLike, args: Float64Array): void;
  /** args [rows, C, x, mean, variance, scale (-1: none), offset (-1: none), eps, out]. */
  batchNorm(heap: ArrayBufferLike, args: Float64Array): void;
  /** BatchNorm in training: args [rows, C, x, scale (-1), offset (-1), eps, y, mean, variance]. */
  bnTrain(heap: ArrayBufferLike, args: Float64Array): void;
  /** Its gradient: args [rows, C, dy, x, mean, variance, scale (-1), eps, dx, dscale, doffset]. */
  bnTrainGrad(heap: ArrayBufferLike, args: Float64Array): void;
  /** LayerNorm over the last axis: args [rows, D, x, scale, offset, eps, y, mean, rstd]. */
  layerNorm(heap: ArrayBufferLike, args: Float64Array): void;
  /** Its gradient: args [rows, D, dy, x, mean, rstd, scale, dx, dscale, doffset]. */
  layerNormGrad(heap: ArrayBufferLike, args: Float64Array): void;
  /** geom: N, H, W, C, OH, OW, KH, KW (effective), sh, sw, dh, dw, padTop, padLeft. */
  maxPoolGrad(heap: ArrayBufferLike, x: number, dy: number, dx: number, geom: Int32Array): void;
  /** Adam/AdamW in place: entries [p, m, v, g, n, mode] per tensor (float offsets; mode 0
   *  plain, 1 L2, 2 decoupled), scalars [b1, 1-b1, b2, 1-b2, bc2, eps, lr/bc1, wd, 1-lr*wd]. */
  adam(heap: ArrayBufferLike, entries: Float64Array, scalars: Float64Array): void;
  setThreads(n: number): void;
  info(): { isa: string; threads: number };
  /** One non-blocking turn of Node's event loop (synchronous WebGPU reads wait with it);
   *  absent from an addon built before it existed. */
  pumpEvents?(): boolean;
}

let cached: { addon?: NativeAddon; reason: string } | undefined;

/** Where the built addon lives (repo root/native/build), from src/engine or dist/src/engine. */
export function nativeAddonPath(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const p = join(dir, 'native', 'build', 'medpipe_native.node');
    if (existsSync(p)) return p;
    dir = dirname(dir);
  }
  return undefined;
}

/** The addon, or undefined with the reason in nativeStatus(). Loaded once. */
export function loadNative(): NativeAddon | undefined {
  if (cached) return cached.addon;
  if (process.env.MEDPIPE_NATIVE === '0') {
    cached = { reason: 'disabled by MEDPIPE_NATIVE=0' };
    return undefined;
  }
  const path = nativeAddonPath();
  if (!path) {
    cached = { reason: 'not built (run `node native/build.mjs`; needs a C++ compiler)' };
    return undefined;
  }
  try {
    const addon = createRequire(import.meta.url)(path) as NativeAddon;
    const env = Number(process.env.MEDPIPE_THREADS);
    addon.setThreads(Number.isInteger(env) && env > 0 ? env : availableParallelism());
    cached = { addon, reason: `loaded (${addon.info().isa})` };
  } catch (e) {
    cached = { reason: `failed to load: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}` };
  }
  return cached.addon;
}

let wanted = true;

/** Turns medpipe's native kernels on or off at run time (tests and benchmarks compare both
 *  paths); returns whether they are now in use. */
export function setNativeKernels(on: boolean): boolean {
  wanted = on;
  return activeNative() !== undefined;
}

/** The addon when it is loaded and switched on. */
export function activeNative(): NativeAddon | undefined {
  return wanted ? loadNative() : undefined;
}

export function nativeStatus(): string {
  loadNative();
  return cached?.reason ?? 'unknown';
}
