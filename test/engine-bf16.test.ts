// precision: bf16 (GEMMs with bf16 operands and fp32 accumulation) against references computed
// outside the bf16 kernel: the cpu backend's fp32 products of the same operands rounded to
// bf16 (what the kernel must equal up to fp32 summation order), the unrounded fp32 products
// (what bf16 costs), and PyTorch's CPU bf16 matmul (a checked-in fixture,
// test/fixtures/reference/make_bf16_matmul.py), on one and two native threads. The kernel is
// the one this CPU picks (AMX tiles where it has them, else vdpbf16ps); on an AMX CPU the
// file runs again in a child forced onto vdpbf16ps (MEDPIPE_NATIVE_BF16), so both are tested.
// Skips where the CPU or the addon lacks bf16.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { initBackend } from '../src/engine/backend.js';
import { loadNative, nativeStatus, tableMismatch } from '../src/engine/native.js';
import { bf16Missing, withPrecision } from '../src/engine/precision.js';
import { setNativeKernels } from '../src/engine/wasm-kernels.js';
import { on, Random, relErr, z4, type In, type T } from './support/backend-compare.js';

const addon = loadNative();
// The reason names a kernel switched off by MEDPIPE_NATIVE_ISA / MEDPIPE_NATIVE_BF16 as such,
// not as missing from the CPU.
const skip = addon === undefined ? `native kernels not available: ${nativeStatus()}` : bf16Missing(addon.info()) ?? false;
if (skip) console.log(`# engine-bf16: SKIPPED — ${skip}`);
else console.log(`# engine-bf16: bf16 kernel ${addon!.info().bf16Kernel}`);

/** fn on one native thread, then on two (the pool's workers run the AMX tiles too). */
function onThreads(fn: () => void): void {
  const had = addon!.info().threads;
  try {
    for (const n of [1, 2]) {
      addon!.setThreads(n);
      fn();
    }
  } finally {
    addon!.setThreads(had);
  }
}

const { int, F } = new Random(4242);

/** fp32 -> nearest-even bf16 -> fp32 (as torch's .bfloat16().float()). */
function bf16(x: Float32Array): Float32Array {
  const u = new Uint32Array(Float32Array.from(x).buffer);
  for (let i = 0; i < u.length; i++) {
    const v = u[i]!;
    u[i] = (v & 0x7fffffff) > 0x7f800000 ? (v | 0x400000) & 0xffff0000 : (((v + 0x7fff + ((v >>> 16) & 1)) >>> 16) << 16) >>> 0;
  }
  return new Float32Array(u.buffer);
}
const rounded = (i: In): In => ({ shape: i.shape, data: bf16(i.data as Float32Array) });

function inBf16<R>(fn: () => R): R {
  assert.ok(addon!.setPrecision('bf16'));
  try {
    return fn();
  } finally {
    addon!.setPrecision('fp32');
  }
}

/**
 * `fn` in bf16 on the native engine equals the cpu backend on bf16-rounded operands within
 * fp32 summation error (tight), and the unrounded fp32 result within bf16's error (loose,
 * but visibly not fp32: proof the bf16 path ran).
 */
function bf16Case(what: string, inputs: In[], fn: (...xs: T[]) => T | T[]): void {
  const exact = on('cpu', inputs.map(rounded), fn);
  const fp32 = on('cpu', inputs, fn);
  const got = inBf16(() => on('wasm', inputs, fn));
  got.forEach((g, i) => {
    const e = relErr(g, exact[i]!, what);
    assert.ok(e <= 2e-5, `${what} output ${i}: ${e.toExponential(2)} from the product of bf16-rounded operands`);
    const cost = relErr(g, fp32[i]!, what);
    assert.ok(cost <= 2e-2, `${what} output ${i}: ${cost.toExponential(2)} from fp32`);
    assert.ok(cost >= 1e-4, `${what} output ${i}: only ${cost.toExponential(2)} from fp32: was bf16 used?`);
  });
}

before(async () => {
  const info = await initBackend({ prefer: 'wasm' });
  assert.equal(info.backend, 'wasm');
  if (!skip) assert.equal(setNativeKernels(true), true);
  await tf.setBackend('cpu');
});

after(() => addon?.setPrecision('fp32'));

test('bf16 matMul equals the fp32 product of bf16-rounded operands: transposes, batches, K odd and past the blocking, 1 and 2 threads', { skip }, () => {
  onThreads(() => {
    for (const [ba, bb] of [[[], []], [[3], [3]], [[2], []]] as [number[], number[]][]) {
      for (const tA of [false, true]) {
        for (const tB of [false, true]) {
          const [m, k, n] = [int(20, 150), int(257, 301) | 1, int(20, 70)];
          const aShape = [...ba, ...(tA ? [k, m] : [m, k])];
          const bShape = [...bb, ...(tB ? [n, k] : [k, n])];
          bf16Case(`matMul [${aShape}] x [${bShape}] tA ${tA} tB ${tB}`, [F(aShape), F(bShape)], (a, b) => tf.matMul(a, b, tA, tB));
        }
      }
    }
  });
});

test('bf16 matMul on shapes at the edges of the kernels\' blocks (1, 15-17, 31-33 rows/cols; K of 1, 33, 63 and past 512)', { skip }, () => {
  const shapes: [number, number, number][] = [[1, 1, 1], [1, 63, 1], [17, 33, 15], [33, 31, 47], [16, 32, 32], [31, 513, 33], [3, 600, 2], [129, 35, 65]];
  onThreads(() => {
    for (const [m, k, n] of shapes) {
      for (const tA of [false, true]) {
        const aShape = tA ? [k, m] : [m, k];
        const inputs = [F(aShape), F([k, n])];
        const exact = on('cpu', inputs.map(rounded), (a, b) => tf.matMul(a, b, tA));
        const [got] = inBf16(() => on('wasm', inputs, (a, b) => tf.matMul(a, b, tA)));
        const e = relErr(got!, exact[0]!, `[${m}x${k}]x[${k}x${n}]`);
        assert.ok(e <= 2e-5, `[${m}x${k}]x[${k}x${n}] tA ${tA}: ${e.toExponential(2)} from the product of bf16-rounded operands`);
      }
    }
  });
});

test('bf16 convolutions (forward with bias and relu, input and filter gradients) equal fp32 on bf16-rounded operands, 1 and 2 threads', { skip }, () => {
  const cases: [number[], number[], number, 'same' | 'valid'][] = [
    [[2, 13, 11, 3], [3, 3, 3, 24], 1, 'same'], // the stem's C = 3 packing
    [[2, 9, 9, 40], [3, 3, 40, 33], 2, 'same'],
    [[1, 8, 8, 70], [1, 1, 70, 50], 1, 'valid'], // pointwise
  ];
  onThreads(() => { for (const [xShape, fShape, s, pad] of cases) {
    const what = `x ${xShape} f ${fShape} s ${s} ${pad}`;
    const yShape = tf.conv2d(z4(xShape), z4(fShape), s, pad).shape;
    bf16Case(`${what} conv`, [F(xShape), F(fShape)], (x, f) => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, s, pad));
    // The bias is added in fp32 after the product: give the test fp32-exact bias values.
    const bias = rounded(F([fShape[3]!]));
    bf16Case(`${what} fused`, [F(xShape), F(fShape), bias], (x, f, b) =>
      tf.fused.conv2d({ x: x as tf.Tensor4D, filter: f as tf.Tensor4D, strides: s, pad, bias: b, activation: 'relu' }));
    const attrs = { strides: s, pad, dataFormat: 'NHWC' };
    bf16Case(`${what} bpInput`, [F(yShape), F(fShape)], (dy, f) =>
      tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: f }, { ...attrs, inputShape: xShape }) as T);
    bf16Case(`${what} bpFilter`, [F(xShape), F(yShape)], (x, dy) =>
      tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { ...attrs, filterShape: fShape }) as T);
  } });
});

test("bf16 matMul agrees with PyTorch's CPU bf16 matmul (fixture) to the last bf16 bit", { skip }, () => {
  const ref = JSON.parse(readFileSync(new URL('../../test/fixtures/reference/bf16_matmul.json', import.meta.url), 'utf8')) as
    { M: number; K: number; N: number; bf16: number[]; fp32: number[] };
  const { M, K, N } = ref;
  // The fixture's integer formulas: exact in float32.
  const A = Float32Array.from({ length: M * K }, (_, i) => (((i * 7919) % 2003) - 1001) / 1024);
  const B = Float32Array.from({ length: K * N }, (_, j) => (((j * 104729) % 1999) - 999) / 512);
  const [got] = inBf16(() => on('wasm', [{ shape: [M, K], data: A }, { shape: [K, N], data: B }], (a, b) => tf.matMul(a, b)));
  const ours = bf16(got!);
  let equal = 0;
  for (let i = 0; i < M * N; i++) {
    const want = ref.bf16[i]!;
    // One bf16 ulp at this magnitude: fp32 sums in another order may round the other way.
    const ulp = 2 ** (Math.floor(Math.log2(Math.max(Math.abs(want), 2 ** -126))) - 7);
    assert.ok(Math.abs(ours[i]! - want) <= ulp, `element ${i}: ${ours[i]} vs torch ${want}`);
    if (ours[i] === want) equal++;
  }
  assert.ok(equal >= 0.95 * M * N, `only ${equal} of ${M * N} elements equal torch's bits`);
  // And fp32 (the default) is torch's fp32 product, not the bf16 one.
  const [f32] = on('wasm', [{ shape: [M, K], data: A }, { shape: [K, N], data: B }], (a, b) => tf.matMul(a, b));
  assert.ok(relErr(f32!, Float32Array.from(ref.fp32)) <= 1e-6);
});

test('precision: bf16 is recorded in provenance, restores fp32 after the run (also on error), and is refused off the native CPU engine', { skip }, async () => {
  const seen: unknown[] = [];
  const during = await withPrecision('bf16', { backend: 'wasm' }, (p) => seen.push(p), async () => addon!.info().precision);
  assert.equal(during, 'bf16');
  assert.equal(addon!.info().precision, 'fp32');
  const rec = (seen[0] as { precision: { gemm: string; isa: string; how: string } }).precision;
  assert.equal(rec.gemm, 'bf16');
  // The kernel that computed is named: avx512+amx or avx512+avx512bf16.
  assert.equal(rec.isa, `${addon!.info().isa}+${addon!.info().bf16Kernel}`);
  assert.match(rec.how, addon!.info().bf16Kernel === 'amx' ? /AMX-BF16 TDPBF16PS/ : /vdpbf16ps/);
  await assert.rejects(withPrecision('bf16', { backend: 'wasm' }, () => {}, async () => { throw new Error('boom'); }), /boom/);
  assert.equal(addon!.info().precision, 'fp32');
  await assert.rejects(withPrecision('bf16', { backend: 'webgpu' }, () => {}, async () => 1), /precision: bf16 cannot run here: the webgpu backend computes in fp32 only/);
  setNativeKernels(false);
  try {
    await assert.rejects(withPrecision('bf16', { backend: 'wasm' }, () => {}, async () => 1), /native kernels are not in use/);
  } finally {
    setNativeKernels(true);
  }
});

test('without a bf16 kernel, the reason names an environment switch where one caused it, else the CPU', () => {
  assert.equal(bf16Missing({ isa: 'avx512', bf16: true }, {}), undefined);
  assert.equal(bf16Missing({ isa: 'avx2', bf16: false }, { MEDPIPE_NATIVE_ISA: 'avx2' }), 'MEDPIPE_NATIVE_ISA=avx2 selects the avx2 GEMM, and both bf16 kernels run on the AVX-512 one');
  assert.match(bf16Missing({ isa: 'c', bf16: false }, { MEDPIPE_NATIVE_ISA: 'c' }) ?? '', /^MEDPIPE_NATIVE_ISA=c selects the c GEMM/);
  assert.equal(bf16Missing({ isa: 'avx512', bf16: false }, { MEDPIPE_NATIVE_BF16: 'amx' }), 'MEDPIPE_NATIVE_BF16=amx asks for a bf16 kernel this CPU or OS does not offer');
  // Unforced (or asking for the ISA the CPU lacks): the CPU is what lacks it.
  assert.equal(bf16Missing({ isa: 'avx2', bf16: false }, {}), 'this CPU has neither AMX-BF16 nor AVX512_BF16 (native GEMM: avx2)');
  assert.match(bf16Missing({ isa: 'avx2', bf16: false }, { MEDPIPE_NATIVE_ISA: 'avx512' }) ?? '', /^this CPU has neither/);
  assert.match(bf16Missing({ isa: 'avx512', bf16: false }, {}) ?? '', /^this CPU has neither/);
  assert.match(bf16Missing({ isa: 'avx512', bf16: false, amxBuilt: false, avx512bf16Built: true }, {}) ?? '', /^the native kernels were built without the AMX bf16 kernel \(the compiler lacked the target; rebuild/);
  assert.match(bf16Missing({ isa: 'avx512', bf16: false, amxBuilt: false, avx512bf16Built: false }, {}) ?? '', /without the AMX and avx512bf16 bf16 kernels/);
  assert.match(bf16Missing({ isa: 'avx512', bf16: false, amxBuilt: true, avx512bf16Built: true }, {}) ?? '', /^this CPU has neither/);
});

// Runs where the loaded kernels lack bf16 (MEDPIPE_NATIVE_ISA=avx2|c, or such a CPU): the
// refusal comes before anything is computed, precision stays fp32, and it gives the reason.
test('precision: bf16 is refused with the reason where the loaded native kernels have no bf16 GEMM', { skip: addon === undefined ? 'no addon' : addon.info().bf16 && 'this addon has a bf16 kernel (the next test runs the refusal in a child)' }, async () => {
  const why = bf16Missing(addon!.info())!;
  let ran = false;
  await assert.rejects(withPrecision('bf16', { backend: 'wasm' }, () => {}, async () => { ran = true; }),
    (e: Error) => e.message === `precision: bf16 cannot run here: ${why}; use precision: fp32 (the default)`);
  assert.equal(ran, false);
  assert.equal(addon!.setPrecision('bf16'), false);
  assert.equal(addon!.info().precision, 'fp32');
});

// Where the addon has a bf16 kernel (both CI machines), the refusal above would never run: run
// it in a child with the AVX-512 GEMM switched off, which leaves no bf16 kernel.
test('the refusal runs in a child under MEDPIPE_NATIVE_ISA=avx2 where this addon has bf16', { skip: addon === undefined ? 'no addon' : !addon.info().bf16 && 'the refusal ran above', timeout: 120_000 }, () => {
  const env: NodeJS.ProcessEnv = { ...process.env, MEDPIPE_NATIVE_ISA: 'avx2' };
  delete env.NODE_TEST_CONTEXT;
  delete env.MEDPIPE_NATIVE_BF16;
  const r = spawnSync(process.execPath, ['--test-reporter=tap', '--test-name-pattern=is refused with the reason where', fileURLToPath(import.meta.url)], { encoding: 'utf8', env });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const line = r.stdout.split('\n').find((l) => /^ok \d+ - precision: bf16 is refused with the reason/.test(l));
  assert.ok(line !== undefined && !line.includes('# SKIP'), r.stdout);
  assert.match(r.stdout, /# fail 0/);
});

const amx = !skip && addon!.info().bf16Kernel === 'amx';
test('the vdpbf16ps kernel passes the same tests, forced by MEDPIPE_NATIVE_BF16 in a child', { skip: skip || (!amx && 'this CPU picks vdpbf16ps already (no AMX): the tests above ran on it'), timeout: 300_000 }, () => {
  // Not as a subtest of this run: NODE_TEST_CONTEXT would make the child speak the runner's
  // binary protocol instead of TAP.
  const env: NodeJS.ProcessEnv = { ...process.env, MEDPIPE_NATIVE_BF16: 'avx512bf16' };
  delete env.NODE_TEST_CONTEXT;
  const r = spawnSync(process.execPath, ['--test-reporter=tap', fileURLToPath(import.meta.url)], { encoding: 'utf8', env });
  assert.match(r.stdout, /# engine-bf16: bf16 kernel avx512bf16/, r.stdout + r.stderr);
  assert.equal(r.status, 0, r.stdout.split('\n').filter((l) => /^not ok|Error|assert/i.test(l)).join('\n') || r.stderr);
  assert.match(r.stdout, /# pass [5-9]/);
  assert.match(r.stdout, /# fail 0/);
});

test('an addon whose op table differs from the one this code expects is named (the loader then stays on wasm)', () => {
  const ops = [{ name: 'conv2d', code: 0, arity: 21, group: 0 }];
  assert.match(tableMismatch({ ops, enums: {} }) ?? '', /op 'conv2d' takes 21 args \+ groups of 0 there, 20 \+ groups of 0 here/);
  assert.match(tableMismatch({ ops: [], enums: {} }) ?? '', /no op 'conv2d'/);
  assert.match(tableMismatch({ enums: {} } as never) ?? '', /no op table/);
});

test('a bad native call is refused with the op named, nothing written', { skip: addon === undefined }, () => {
  const heap = new ArrayBuffer(64);
  const before = new Float32Array(heap).slice();
  // binary add over 4 elements with the output past the heap's end.
  assert.throws(() => addon!.run('binary', heap, [addon!.codes.binary.add, addon!.codes.broadcast.same, 4, 4, 0, 4, 100]), /medpipe native binary: operand outside the heap/);
  assert.throws(() => addon!.run('binary', heap, [9, 0, 4, 4, 0, 4, 8]), /binary: unknown binary op code/);
  assert.throws(() => addon!.run('binary', heap, [0, 0, 4]), /binary: 3 args, expected 7/);
  assert.deepEqual(new Float32Array(heap), before);
});
