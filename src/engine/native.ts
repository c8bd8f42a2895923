// Loads medpipe's native kernels (native/src/*.cc, built at `npm install` by native/build.mjs
// into native/build/medpipe_native.node; see native/README.md). Optional: when the addon is
// absent, disabled (MEDPIPE_NATIVE=0) or built from other sources than this code expects,
// everything runs on the pure-wasm path and nativeStatus() says why.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The ops this code calls, with their fixed arity and tail group (0: no tail), checked at
 *  load against the table the addon exports (native/src/ops.cc). Argument layouts are
 *  documented there, next to each op's code. */
const OPS = {
  conv2d: [20, 0],
  conv2dGradInput: [18, 0],
  conv2dGradFilter: [18, 0],
  matmul: [5, 3],
  binary: [7, 0],
  unary: [5, 0],
  colReduce: [5, 0],
  bnReduce: [6, 0],
  batchNorm: [9, 0],
  bnRelu: [10, 0],
  bnTrain: [9, 0],
  bnTrainGrad: [11, 0],
  bnReluTrain: [10, 0],
  bnReluTrainGrad: [14, 0],
  layerNorm: [9, 0],
  layerNormGrad: [10, 0],
  maxPoolGrad: [17, 0],
  adam: [9, 6],
  conv2dBn: [25, 0],
  heads: [10, 0],
  linear: [7, 0],
} as const satisfies Record<string, readonly [number, number]>;

/** The enum members this code uses; their codes are read from the addon. */
const ENUMS = {
  binary: ['add', 'sub', 'mul', 'div'],
  broadcast: ['same', 'bRow', 'aRow', 'bScalar', 'aScalar'],
  unary: ['exp', 'erf', 'reluGrad', 'gelu', 'geluGrad'],
  activation: ['none', 'relu'],
  adamMode: ['plain', 'l2', 'decoupled'],
  precision: ['fp32', 'bf16'],
} as const;

export type NativeOp = keyof typeof OPS;
type Enums = typeof ENUMS;
export type NativeCodes = { [E in keyof Enums]: Record<Enums[E][number], number> };
export type Precision = Enums['precision'][number];

export interface NativeInfo {
  isa: string;
  threads: number;
  /** Whether bf16 GEMMs run here (AMX-BF16 tiles or AVX512_BF16). */
  bf16: boolean;
  /** Their kernel: 'amx' (TDPBF16PS), 'avx512bf16' (vdpbf16ps), '' where bf16 is false.
   *  MEDPIPE_NATIVE_BF16=amx|avx512bf16 forces one at load. */
  bf16Kernel: string;
  /** Whether this build holds the AMX / vdpbf16ps kernels: native/build.mjs leaves one out
   *  (its build line says so) where the compiler lacks that target, e.g. AMX before g++ 11. */
  amxBuilt: boolean;
  avx512bf16Built: boolean;
  precision: Precision;
}

/** The addon as this code uses it: every op through one calling convention. */
export interface NativeAddon {
  /** Runs `op` in place on `heap` (the wasm memory); offsets and sizes in floats, -1 for an
   *  absent optional operand. Throws the addon's error (naming the op) on a bad call. */
  run(op: NativeOp, heap: ArrayBufferLike, args: ArrayLike<number>): void;
  codes: NativeCodes;
  setThreads(n: number): void;
  /** The GEMM arithmetic of convolutions and matmuls; false (unchanged) where the CPU
   *  lacks bf16 dot products. */
  setPrecision(p: Precision): boolean;
  info(): NativeInfo;
  /** One non-blocking turn of Node's event loop (synchronous WebGPU reads wait with it). */
  pumpEvents(): boolean;
}

/** What the compiled addon exports (native/src/addon.cc). */
interface RawAddon {
  call(code: number, heap: ArrayBufferLike, args: Float64Array): void;
  ops: { name: string; code: number; arity: number; group: number }[];
  enums: Record<string, string[]>;
  setThreads(n: number): void;
  setPrecision(code: number): boolean;
  info(): { isa: string; threads: number; bf16: boolean; bf16Kernel?: string; amxBuilt?: boolean; avx512bf16Built?: boolean; precision: number };
  pumpEvents(): boolean;
}

/** The addon's op table and enums against what this code expects: the first mismatch, or
 *  undefined when they agree. */
export function tableMismatch(raw: Pick<RawAddon, 'ops' | 'enums'>): string | undefined {
  if (!Array.isArray(raw.ops) || typeof raw.enums !== 'object' || raw.enums === null) return 'it exports no op table (built from older sources)';
  for (const [name, [arity, group]] of Object.entries(OPS)) {
    const op = raw.ops.find((o) => o.name === name);
    if (!op) return `it has no op '${name}'`;
    if (op.arity !== arity || op.group !== group) {
      return `op '${name}' takes ${op.arity} args + groups of ${op.group} there, ${arity} + groups of ${group} here`;
    }
  }
  for (const [name, members] of Object.entries(ENUMS)) {
    const have = raw.enums[name];
    if (!Array.isArray(have)) return `it has no enum '${name}'`;
    const missing = members.filter((m) => !have.includes(m));
    if (missing.length > 0) return `its enum '${name}' lacks ${missing.join(', ')}`;
  }
  return undefined;
}

function wrap(raw: RawAddon): NativeAddon {
  const code = new Map(raw.ops.map((o) => [o.name, o.code]));
  const codes = Object.fromEntries(
    Object.entries(ENUMS).map(([e, members]) => [e, Object.fromEntries(members.map((m) => [m, raw.enums[e]!.indexOf(m)]))]),
  ) as NativeCodes;
  const precisions = raw.enums.precision!;
  return {
    run(op, heap, args) {
      raw.call(code.get(op)!, heap, args instanceof Float64Array ? args : Float64Array.from(args));
    },
    codes,
    setThreads: (n) => raw.setThreads(n),
    setPrecision: (p) => raw.setPrecision(codes.precision[p]),
    info() {
      const i = raw.info();
      return { isa: i.isa, threads: i.threads, bf16: i.bf16, bf16Kernel: i.bf16Kernel ?? (i.bf16 ? 'avx512bf16' : ''),
        // An addon older than these fields was built with both kernels (its build failed otherwise).
        amxBuilt: i.amxBuilt ?? true, avx512bf16Built: i.avx512bf16Built ?? true, precision: precisions[i.precision] as Precision };
    },
    pumpEvents: () => raw.pumpEvents(),
  };
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
    const raw = createRequire(import.meta.url)(path) as RawAddon;
    const mismatch = tableMismatch(raw);
    if (mismatch !== undefined) {
      cached = { reason: `not used: ${path} does not match this code (${mismatch}); rebuild it with \`node native/build.mjs\`` };
      return undefined;
    }
    const addon = wrap(raw);
    const env = Number(process.env.MEDPIPE_THREADS);
    addon.setThreads(Number.isInteger(env) && env > 0 ? env : availableParallelism());
    const info = addon.info();
    cached = { addon, reason: `loaded (${info.isa}${info.bf16 ? `, bf16 on ${info.bf16Kernel}` : ''})` };
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
