// The native kernels (native/src via the N-API addon) on the wasm backend, against
// the reference cpu backend on randomised shapes: convolutions (strides, explicit and
// asymmetric padding, dilation, odd sizes, fused bias + relu), their input and filter
// gradients, matrix products (every transpose, batch and broadcast layout, sizes past the
// GEMM's blocking), BatchNorm gradient sums; and bit-identical results for 1 and 2 threads.
// Skipped, with the reason, when the addon is not built (the wasm path is tested in
// engine-wasm-kernels.test.ts either way).
import { readFileSync } from 'node:fs';
import { test, before, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { initBackend } from '../src/engine/backend.js';
import { loadNative, nativeStatus } from '../src/engine/native.js';
import { BN_RELU_TRAIN, BN_RELU_TRAIN_GRAD, BN_TRAIN, LINEAR, MERGE_HEADS, setNativeKernels, SPLIT_HEADS } from '../src/engine/wasm-kernels.js';
import { batchNormReluInference, batchNormReluTraining, batchNormTraining, gelu, layerNorm, softmaxCrossEntropy } from '../src/engine/fused-ops.js';
import { forward } from '../src/ml/models/forward.js';
import { createParams, disposeParams, trainableVariables } from '../src/ml/models/params.js';
import { modelSpec } from '../src/ml/models/registry.js';
import { initState } from '../src/ml/models/state.js';
import { on, Random, relErr, same, z4, type In, type Pad, type T } from './support/backend-compare.js';

// One generator for the file, restarted per test from its name (beforeEach below): each test's
// cases do not depend on which tests ran before it.
const rng = new Random(777);
const { rand, int, pick, F } = rng;
const randomPad = (kh: number, kw: number): Pad => rng.pad(kh, kw, 0.3, 0.3);

const addon = loadNative();
const skip = addon === undefined ? `native kernels not available: ${nativeStatus()}` : false;
if (skip) console.log(`# engine-native: SKIPPED — ${skip}`);

before(async () => {
  const info = await initBackend({ prefer: 'wasm' });
  assert.equal(info.backend, 'wasm');
  if (!skip) assert.equal(setNativeKernels(true), true);
  await tf.setBackend('cpu');
});

beforeEach((t) => rng.reseed(t.name));

test('each test draws its own cases: the generator restarts from the test\'s name, whatever ran before', (t) => {
  const first = [rand(), rand(), int(1, 1000)];
  rng.seed = 12345;
  rand();
  rng.reseed(t.name);
  assert.deepEqual([rand(), rand(), int(1, 1000)], first);
  rng.reseed('another test');
  assert.notDeepEqual([rand(), rand(), int(1, 1000)], first);
});

test('native Conv2D / FusedConv2D forward matches cpu (strides, padding, dilation, odd sizes)', { skip }, () => {
  for (let i = 0; i < 30; i++) {
    const kh = int(1, 5);
    const kw = int(1, 5);
    const dil: [number, number] = rand() < 0.3 ? [int(1, 2), int(1, 2)] : [1, 1];
    const strides: [number, number] = dil[0] > 1 || dil[1] > 1 ? [1, 1] : [pick([1, 2, 3]), pick([1, 2])];
    const pad = randomPad(kh, kw);
    const xShape = [int(1, 3), int(kh * dil[0] + 1, 13), int(kw * dil[1] + 1, 13), int(1, 19)];
    const fShape = [kh, kw, xShape[3], int(1, 37)];
    const what = `x ${xShape} f ${fShape} s ${strides} d ${dil} pad ${JSON.stringify(pad)}`;
    same(`${what} conv`, [F(xShape), F(fShape)], (x, f) => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, strides, pad, 'NHWC', dil));
    same(`${what} fused`, [F(xShape), F(fShape), F([fShape[3]])], (x, f, b) =>
      tf.fused.conv2d({ x: x as tf.Tensor4D, filter: f as tf.Tensor4D, strides, pad, dilations: dil, bias: b, activation: 'relu' }));
  }
});

test('native conv gradients (input and filter) match cpu', { skip }, () => {
  for (let i = 0; i < 30; i++) {
    const kh = int(1, 4);
    const kw = int(1, 4);
    const strides: [number, number] = [pick([1, 2]), pick([1, 2])];
    const pad = randomPad(kh, kw);
    const xShape = [int(1, 3), int(kh + 1, 12), int(kw + 1, 12), int(1, 21)];
    const fShape = [kh, kw, xShape[3], int(1, 35)];
    const yShape = tf.conv2d(z4(xShape), z4(fShape), strides, pad).shape;
    const what = `x ${xShape} f ${fShape} s ${strides} pad ${JSON.stringify(pad)}`;
    const attrs = { strides, pad, dataFormat: 'NHWC' };
    same(`${what} bpFilter`, [F(xShape), F(yShape)], (x, dy) =>
      tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { ...attrs, filterShape: fShape }) as T);
    same(`${what} bpInput`, [F(yShape), F(fShape)], (dy, f) =>
      tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: f }, { ...attrs, inputShape: xShape }) as T);
    same(`${what} grads`, [F(xShape), F(fShape), F(yShape)], (x, f, w) =>
      tf.grads((a: T, b: T) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, strides, pad), w)))([x, f]));
  }
  // One case past the GEMM's blocking (K > 256, several row blocks) and ResNet's shapes.
  same('pointwise 1x1 large', [F([2, 14, 14, 300]), F([1, 1, 300, 70])], (x, f) =>
    tf.grads((a: T, b: T) => tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'valid'))))([x, f]));
  // Stride 1 with 64 channels: the input gradient as a forward conv of dy over the taps
  // backwards, 8-channel strips packed whole (and K = 9 x 48 past one k-block).
  same('3x3 stride 1 64 channels', [F([2, 11, 10, 64]), F([3, 3, 64, 48])], (x, f) =>
    tf.grads((a: T, b: T) => tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same'))))([x, f]));
  // 16 channels: the 16 x 16 tile over two row strips, in every pass (forward N = OC, input
  // gradient N = C, filter gradient N = OC), an odd number of strips, K = 9 x 32 past one
  // k-block (the tile adds into C).
  same('3x3 16 channels', [F([3, 17, 19, 32]), F([3, 3, 32, 16])], (x, f) =>
    tf.grads((a: T, b: T) => tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same'))))([x, f]));
  same('3x3 16 to 16 channels', [F([2, 9, 13, 16]), F([3, 3, 16, 16])], (x, f) =>
    tf.grads((a: T, b: T) => tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same'))))([x, f]));
  // The stem: C = 3, 7x7 / 2, padding 3 (whole filter rows as one run, assembled with their
  // zeros at the border; dW^T = dy^T . cols).
  same('stem 7x7 stride 2', [F([2, 30, 29, 3]), F([7, 7, 3, 16])], (x, f) =>
    tf.grads((a: T, b: T) => tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 3))))([x, f]));
  // The direct filter gradient (C a multiple of 8, OC >= 32, small channel counts): several
  // pixel parts summed (16 blocks of output rows), masked output columns (40 = 32 + 8), 1x1
  // stride 2, unequal strides with asymmetric padding, a dW past 256 KiB (groups of tiles,
  // no parts). Then C = 256 at stride 2: the GEMM
  // over two parts of the images, summed.
  same('filter gradient direct, pixel parts', [F([4, 24, 24, 16]), F([3, 3, 16, 40])], (x, f) =>
    tf.grads((a: T, b: T) => tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same'))))([x, f]));
  same('filter gradient direct, 1x1 stride 2', [F([2, 21, 21, 24]), F([1, 1, 24, 64])], (x, f) =>
    tf.grads((a: T, b: T) => tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'valid'))))([x, f]));
  same('filter gradient direct, strides 2 x 1, asymmetric padding', [F([2, 15, 13, 8]), F([3, 4, 8, 32])], (x, f) =>
    tf.grads((a: T, b: T) => tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, [2, 1], [[0, 0], [2, 0], [0, 3], [0, 0]]))))([x, f]));
  same('filter gradient direct, tile groups', [F([2, 6, 6, 64]), F([3, 3, 64, 192])], (x, f) =>
    tf.grads((a: T, b: T) => tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same'))))([x, f]));
  same('filter gradient over two parts of the images', [F([2, 7, 7, 256]), F([3, 3, 256, 72])], (x, f) =>
    tf.grads((a: T, b: T) => tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same'))))([x, f]));
  same('3x3 stride 2 large', [F([2, 15, 15, 40]), F([3, 3, 40, 33])], (x, f) =>
    tf.grads((a: T, b: T) => tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, [[0, 0], [1, 1], [1, 1], [0, 0]]))))([x, f]));
});

test('native matMul matches cpu: transposes, batches, broadcasting, sizes past the blocking', { skip }, () => {
  const layouts: [number[], number[]][] = [[[], []], [[3], []], [[], [3]], [[4], [4]], [[2, 3], [2, 3]], [[1], [5]]];
  for (const [ba, bb] of layouts) {
    for (const tA of [false, true]) {
      for (const tB of [false, true]) {
        const big = rand() < 0.25;
        const [m, k, n] = big ? [int(140, 160), int(250, 300), int(30, 70)] : [int(1, 19), int(1, 19), int(1, 40)];
        const aShape = [...ba, ...(tA ? [k, m] : [m, k])];
        const bShape = [...bb, ...(tB ? [n, k] : [k, n])];
        if (aShape.length < 2 || bShape.length < 2) continue;
        const what = `matMul [${aShape}] x [${bShape}] tA ${tA} tB ${tB}`;
        same(what, [F(aShape), F(bShape)], (a, b) => tf.matMul(a, b, tA, tB));
        if (ba.join() === bb.join()) {
          same(`${what} grads`, [F(aShape), F(bShape)], (a, b) =>
            tf.grads((p: T, q: T) => tf.sum(tf.square(tf.matMul(p, q, tA, tB))))([a, b]));
        }
      }
    }
  }
  same('empty inner dimension', [F([3, 0]), F([0, 4])], (a, b) => tf.matMul(a, b));
  same('wide N', [F([5, 7]), F([7, 2100])], (a, b) => tf.matMul(a, b));
});

test('native Sum / Mean over leading axes (and the others, delegated) match cpu', { skip }, () => {
  for (let i = 0; i < 8; i++) {
    const shape = [int(1, 4), int(1, 7), int(1, 7), int(1, 40)];
    for (const keepDims of [false, true]) {
      same(`sum/mean ${shape} keep ${keepDims}`, [F(shape)], (x) => [
        tf.sum(x, [0, 1, 2], keepDims), tf.mean(x, [2, 0, 1], keepDims), tf.mean(x, [1, 2], keepDims), tf.sum(x, -1, keepDims),
      ]);
    }
  }
  same('2-D column mean', [F([300, 17])], (x) => tf.mean(x, 0));
});

test('native results are bit-identical for 1, 2 and 4 threads, run to run', { skip }, () => {
  if (!addon) return;
  const cases: [string, In[], (...xs: T[]) => T | T[]][] = [
    ['conv grads', [F([2, 13, 13, 24]), F([3, 3, 24, 40]), F([2, 7, 7, 40])], (x, f, w) =>
      tf.grads((a: T, b: T) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same'), w)))([x, f])],
    // Stride 1 (the input gradient over the taps backwards) and a stem (C = 3, 7x7 / 2: the
    // materialised im2col and dW^T).
    ['conv grads stride 1', [F([2, 12, 11, 16]), F([3, 3, 16, 40]), F([2, 12, 11, 40])], (x, f, w) =>
      tf.grads((a: T, b: T) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same'), w)))([x, f])],
    ['conv grads stem', [F([2, 40, 40, 3]), F([7, 7, 3, 16]), F([2, 20, 20, 16])], (x, f, w) =>
      tf.grads((a: T, b: T) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 3), w)))([x, f])],
    // The direct filter gradient's pixel parts (each its own dW, summed in part order).
    ['conv grads direct parts', [F([4, 24, 24, 16]), F([3, 3, 16, 40]), F([4, 24, 24, 40])], (x, f, w) =>
      tf.grads((a: T, b: T) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same'), w)))([x, f])],
    ['conv grads image parts', [F([2, 7, 7, 256]), F([3, 3, 256, 72]), F([2, 4, 4, 72])], (x, f, w) =>
      tf.grads((a: T, b: T) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same'), w)))([x, f])],
    ['matmul', [F([6, 90, 300]), F([6, 300, 70])], (a, b) => tf.matMul(a, b)],
    ['matmul tB', [F([333, 65]), F([129, 65])], (a, b) => tf.matMul(a, b, false, true)],
    ['bn grads', [F([2, 9, 9, 40]), F([40]), F([40])], (x, g, b) =>
      tf.grads((a: T, gamma: T, beta: T) => {
        const m = tf.moments(a, [0, 1, 2]);
        return tf.sum(tf.square(tf.batchNorm(a, m.mean, m.variance, beta as tf.Tensor1D, gamma as tf.Tensor1D, 1e-5)));
      })([x, g, b])],
    // The fused layers' reductions run over fixed chunks of rows on every thread count.
    ['fused bn grads', [F([8, 30, 30, 24]), F([24]), F([24]), F([8, 30, 30, 24])], (x, g, b, w) =>
      tf.grads((a: T, gamma: T, beta: T) => {
        const f = batchNormTraining(tf, a, gamma, beta, 1e-5)!;
        tf.dispose([f.mean, f.variance]);
        return tf.sum(tf.mul(f.y, w));
      })([x, g, b])],
    ['fused bn + residual + relu grads', [F([8, 30, 30, 24]), F([24]), F([24]), F([8, 30, 30, 24]), F([8, 30, 30, 24])], (x, g, b, r, w) =>
      tf.grads((a: T, gamma: T, beta: T, res: T) => {
        const f = batchNormReluTraining(tf, a, gamma, beta, 1e-5, res)!;
        tf.dispose([f.mean, f.variance]);
        return tf.sum(tf.mul(f.y, w));
      })([x, g, b, r])],
    ['fused layerNorm + gelu grads', [F([700, 96]), F([96]), F([96]), F([700, 96])], (x, g, b, w) =>
      tf.grads((a: T, gamma: T, beta: T) => tf.sum(tf.mul(gelu(tf, layerNorm(tf, a, gamma, beta, 1e-6)!)!, w)))([x, g, b])],
  ];
  try {
    for (const [what, inputs, fn] of cases) {
      addon.setThreads(2);
      const a = on('wasm', inputs, fn);
      const b = on('wasm', inputs, fn);
      addon.setThreads(1);
      const c = on('wasm', inputs, fn);
      // More threads than the filter gradient's image parts: each part's GEMM is split too.
      addon.setThreads(4);
      const d = on('wasm', inputs, fn);
      a.forEach((x, i) => {
        assert.deepEqual(Buffer.from(x.buffer), Buffer.from(b[i].buffer), `${what}: run to run`);
        assert.deepEqual(Buffer.from(x.buffer), Buffer.from(c[i].buffer), `${what}: 1 vs 2 threads`);
        assert.deepEqual(Buffer.from(x.buffer), Buffer.from(d[i].buffer), `${what}: 4 vs 2 threads`);
      });
    }
  } finally {
    addon.setThreads(2);
  }
});

test('native and pure-wasm paths agree on a small conv net step', { skip }, () => {
  const inputs = [F([2, 12, 12, 3]), F([3, 3, 3, 8]), F([8]), F([8]), F([1, 1, 8, 16]), F([16, 5])];
  const step = (x: T, ...p: T[]): T[] =>
    tf.grads((c1: T, g: T, b: T, c2: T, fc: T) => {
      let h = tf.conv2d(x as tf.Tensor4D, c1 as tf.Tensor4D, 2, 'same');
      const m = tf.moments(h, [0, 1, 2]);
      h = tf.relu(tf.batchNorm(h, m.mean, m.variance, b as tf.Tensor1D, g as tf.Tensor1D, 1e-5)) as tf.Tensor4D;
      h = tf.conv2d(h as tf.Tensor4D, c2 as tf.Tensor4D, 1, 'valid');
      return tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d([1, 3], 'int32'), 5), tf.matMul(tf.mean(h, [1, 2]), fc));
    })(p);
  const nat = on('wasm', inputs, step);
  setNativeKernels(false);
  try {
    const plain = on('wasm', inputs, step);
    nat.forEach((g, i) => assert.ok(relErr(g, plain[i]) <= 1e-4, `grad ${i}`));
  } finally {
    setNativeKernels(true);
  }
});

test('fused native Adam / AdamW gives bit for bit the composed tfjs ops\' parameters and moments', { skip }, async () => {
  const { Adam } = await import('../src/ml/train/adam.js');
  // 40,000 elements spans several of the native step's chunks; 'frozen' has no gradient.
  const shapes: Record<string, number[]> = { w: [200, 200], b: [7], n: [3, 5], frozen: [4] };
  const train = async (fused: boolean, options: ConstructorParameters<typeof Adam>[1]) => {
    tf.setBackend('wasm');
    setNativeKernels(fused);
    try {
      rng.seed = 4242;
      const source = tf.tensor(F(shapes.w).data, shapes.w);
      // 'w' shares its data with a live tensor: the in-place step must leave that alone.
      const params = new Map(Object.entries(shapes).map(([k, s]) => [k, k === 'w' ? tf.variable(source) : tf.variable(tf.tensor(F(s).data, s))]));
      const before = Float32Array.from(source.dataSync());
      const adam = new Adam(tf, options);
      for (let t = 0; t < 5; t++) {
        const grads = new Map([...params].filter(([k]) => k !== 'frozen').map(([k, p]) => [k, tf.tidy(() => tf.sin(tf.mul(p, 3 + t)))]));
        const info = await tf.profile(() => adam.apply(params, grads, 0.01 * (t + 1)));
        if (t > 0) assert.equal(info.kernelNames.includes('Sqrt'), !fused, 'fused: no tfjs kernels but the one-time copy');
        tf.dispose([...grads.values()]);
      }
      assert.deepEqual(source.dataSync(), before, 'the tensor the variable was made from is unchanged');
      const out = [...params.values(), ...adam.state().values()].map((x) => Float32Array.from(x.dataSync()));
      adam.dispose();
      tf.dispose([source, ...params.values()]);
      return out;
    } finally {
      setNativeKernels(true);
      tf.setBackend('cpu');
    }
  };
  const modes = [
    undefined,
    { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.05, noDecay: (n: string) => n === 'b' },
    { beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.04, decoupled: true, noDecay: (n: string) => n === 'b' },
  ];
  for (const o of modes) {
    const composed = await train(false, o);
    const fused = await train(true, o);
    assert.equal(fused.length, composed.length);
    fused.forEach((f, i) => assert.deepEqual(f, composed[i], `tensor ${i} (${o?.decoupled ? 'AdamW' : o ? 'L2' : 'plain'})`));
    assert.notDeepEqual(fused[0], F(shapes.w).data, 'parameters moved');
  }
});

test('wasm Identity and same-dtype Cast share data that outlives the original', () => {
  tf.setBackend('wasm');
  try {
    const x = tf.tensor1d([1.5, -2, 3]);
    const y = tf.clone(x);
    const z = tf.cast(x, 'float32');
    const i = tf.cast(x, 'int32');
    x.dispose();
    assert.deepEqual(Array.from(y.dataSync()), [1.5, -2, 3]);
    assert.deepEqual(Array.from(z.dataSync()), [1.5, -2, 3]);
    assert.deepEqual(Array.from(i.dataSync()), [1, -2, 3]);
    assert.equal(i.dtype, 'int32');
    const before = tf.memory().numBytes;
    tf.dispose([y, z, i]);
    assert.ok(tf.memory().numBytes < before);
  } finally {
    tf.setBackend('cpu');
  }
});

test('native element-wise ops, BatchNorm forward, ReLU and max-pool gradients match cpu on large tensors', { skip }, () => {
  // Every operand past the size where the native path takes over (32,768 elements).
  const shapes = [[4, 32, 33, 9], [70000], [2, 150, 130]];
  for (const s of shapes) {
    const C = s[s.length - 1];
    const row = [...s.slice(0, -1).map(() => 1), C];
    for (const [name, fn] of [['add', tf.add], ['sub', tf.sub], ['mul', tf.mul], ['div', tf.div]] as const) {
      same(`${name} ${s}`, [F(s), F(s)], (a, b) => fn(a, b));
      same(`${name} ${s} by a row`, [F(s), F(row)], (a, b) => fn(a, b));
      same(`${name} a row by ${s}`, [F([C]), F(s)], (a, b) => fn(a, b));
      same(`${name} ${s} by a scalar`, [F(s), F([])], (a, b) => fn(a, b));
      same(`${name} a scalar by ${s}`, [F([1]), F(s)], (a, b) => fn(a, b));
    }
    same(`exp ${s}`, [F(s)], (x) => tf.exp(tf.mul(x, 8)), 1e-6);
    same(`erf ${s}`, [F(s)], (x) => tf.erf(tf.mul(x, 3)), 1e-6);
    same(`relu gradient ${s}`, [F(s), F(s)], (x, w) => tf.grad((v: T) => tf.sum(tf.mul(tf.relu(v), w)))(x));
    same(`batchNorm ${s}`, [F(s), F([C]), F([C]), F([C]), F([C])], (x, m, v, o, g) => tf.batchNorm(x, m, tf.add(tf.abs(v), 0.1), o, g, 1e-3));
    same(`batchNorm ${s}, no scale or offset, row-shaped statistics`, [F(s), F(row), F(row)],
      (x, m, v) => tf.batchNorm(x, m, tf.add(tf.abs(v), 0.1), undefined, undefined, 1e-5));
  }
  for (let i = 0; i < 8; i++) {
    const k = int(1, 4);
    const stride = int(1, 3);
    const x = F([int(1, 3), int(k, 40), int(k, 40), int(3, 40)]) as In & { shape: [number, number, number, number] };
    // All-negative inputs: wasm's own kernel dropped these windows' gradients.
    if (i % 2 === 0) x.data.forEach((v, j) => { x.data[j] = -Math.abs(v) - 1; });
    const pad = pick(['same', 'valid'] as const);
    const yShape = tf.tidy(() => tf.maxPool(tf.zeros(x.shape) as tf.Tensor4D, k, stride, pad).shape) as number[];
    same(`maxPool grad ${x.shape} k${k} s${stride} ${pad}`, [x, F(yShape)], (v, w) =>
      tf.grad((t: T) => tf.sum(tf.mul(tf.maxPool(t as tf.Tensor4D, k, stride, pad), w)))(v));
  }
});

test('fused BatchNorm training (one kernel each way) matches the composed ops on cpu: output, batch statistics, gradients', { skip }, () => {
  const composed = (x: T, g: T, b: T): T[] => {
    const m = tf.moments(x, [0, 1, 2]);
    return [tf.batchNorm(x, m.mean, m.variance, b, g, 1e-5), m.mean, m.variance];
  };
  const bn = (x: T, g: T, b: T): T[] => {
    const f = batchNormTraining(tf, x, g, b, 1e-5);
    assert.equal(f !== undefined, tf.getBackend() === 'wasm', 'fused on wasm only');
    if (f === undefined) return composed(x, g, b);
    // Out of the caller's tidy by design: copy them into it and free the originals.
    const stats = [tf.clone(f.mean), tf.clone(f.variance)];
    tf.dispose([f.mean, f.variance]);
    return [f.y, ...stats];
  };
  for (const shape of [[2, 5, 7, 3], [4, 40, 40, 48], [3, 9, 1, 130], [1, 3, 1, 2]]) {
    const C = shape[3]!;
    // A channel offset far from zero: the variance must not cancel.
    const x = F(shape);
    x.data.forEach((v, i) => { x.data[i] = v * 3 + (i % C) * 10; });
    const inputs = [x, F([C]), F([C]), F(shape)];
    // The cpu reference's statistics are float32 sums around means up to 1,290: ~1e-4.
    same(`bn forward ${shape}`, inputs, (xs, g, b) => bn(xs, g, b), 1e-4);
    same(`bn gradients ${shape}`, inputs, (xs, g, b, w) =>
      tf.grads((a: T, c: T, d: T) => tf.sum(tf.mul(bn(a, c, d)[0]!, w)))([xs, g, b]), 2e-4);
  }
});

test('fused BatchNorm + residual + ReLU (one kernel each way) matches relu(bn(x) + r) on cpu: output, gradients of x, scale, offset, residual', { skip }, () => {
  const fused = (x: T, g: T, b: T, r?: T): T => {
    const f = batchNormReluTraining(tf, x, g, b, 1e-5, r);
    assert.equal(f !== undefined, tf.getBackend() === 'wasm', 'fused on wasm only');
    if (f === undefined) {
      const m = tf.moments(x, [0, 1, 2]);
      const y = tf.batchNorm(x, m.mean, m.variance, b, g, 1e-5);
      return tf.relu(r ? tf.add(y, r) : y);
    }
    tf.dispose([f.mean, f.variance]);
    return f.y;
  };
  for (const shape of [[2, 5, 7, 3], [4, 17, 19, 48], [3, 9, 1, 130], [1, 3, 1, 2], [8, 6, 6, 64]]) {
    const C = shape[3]!;
    const x = F(shape);
    x.data.forEach((v, i) => { x.data[i] = v * 3 + (i % C) * 10; });
    // Offsets around zero: a good share of each channel is cut by the ReLU.
    const inputs = [x, F([C]), F([C]), F(shape), F(shape)];
    same(`bn+relu forward ${shape}`, inputs, (xs, g, b) => fused(xs, g, b), 1e-4);
    same(`bn+residual+relu forward ${shape}`, inputs, (xs, g, b, r) => fused(xs, g, b, r), 1e-4);
    same(`bn+relu gradients ${shape}`, inputs, (xs, g, b, _r, w) =>
      tf.grads((a: T, c: T, d: T) => tf.sum(tf.mul(fused(a, c, d), w)))([xs, g, b]), 2e-4);
    same(`bn+residual+relu gradients ${shape}`, inputs, (xs, g, b, r, w) =>
      tf.grads((a: T, c: T, d: T, e: T) => tf.sum(tf.mul(fused(a, c, d, e), w)))([xs, g, b, r]), 2e-4);
  }
});

test('BatchNorm training statistics of channels with a far mean and a tiny spread, a constant channel and a first-row outlier are PyTorch\'s float64 ones rounded to float32', { skip }, () => {
  // test/fixtures/reference/make_bn_stats.py: the same formulas, torch.var_mean in float64.
  // mean^2 / var reaches 3e12: a one-read E[x^2] - E[x]^2 without its shift loses ~1e-4 here.
  const ref = JSON.parse(readFileSync(new URL('../../test/fixtures/reference/bn_stats.json', import.meta.url), 'utf8')) as
    { shape: number[]; mean: number[]; var: number[] };
  const C = ref.shape[3]!;
  const data = new Float32Array(ref.shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) {
    const r = Math.floor(i / C);
    const c = i % C;
    const j = ((r * 7919) % 17) - 8;
    data[i] = [2 ** 20 + j / 8, 2 ** 24 + 2 * j, 12345.6787109375, j / 64, r === 0 ? 1e4 : 1000 + j / 1024, -3e5 + j / 4][c]!;
  }
  tf.setBackend('wasm');
  try {
    const x = tf.tensor(data, ref.shape);
    for (const kernel of [BN_TRAIN, BN_RELU_TRAIN]) {
      const [y, mean, variance] = tf.engine().runKernel(kernel, { x }, { varianceEpsilon: 1e-5 }) as tf.Tensor[];
      const m = mean!.dataSync();
      const v = variance!.dataSync();
      for (let c = 0; c < C; c++) {
        assert.ok(Math.abs(m[c]! - ref.mean[c]!) <= 1e-7 * Math.abs(ref.mean[c]!) + 1e-12, `${kernel} mean[${c}] ${m[c]} vs torch ${ref.mean[c]}`);
        assert.ok(Math.abs(v[c]! - ref.var[c]!) <= 2e-7 * ref.var[c]!, `${kernel} variance[${c}] ${v[c]} vs torch ${ref.var[c]}`);
      }
      // The constant channel normalises to exactly 0 (no offset given).
      const out = y!.dataSync();
      for (let i = 2; i < out.length; i += C) assert.equal(out[i], 0, `${kernel} y of the constant channel at ${i}`);
      tf.dispose([y!, mean!, variance!]);
    }
    x.dispose();
  } finally {
    tf.setBackend('cpu');
  }
});

test('BN+ReLU training gradient with dy2 (a block input\'s two gradients) equals the gradient of Add(dy, dy2), bit for bit', { skip }, () => {
  tf.setBackend('wasm');
  try {
    // [8, 12, 12, 64] spans several row chunks of both passes; [3, 9, 1, 130] a ragged C.
    for (const shape of [[2, 5, 7, 3], [8, 12, 12, 64], [3, 9, 1, 130]]) {
      const C = shape[3]!;
      const [x, dyA, dyB] = [F(shape), F(shape), F(shape)].map((a) => tf.tensor(a.data, a.shape));
      const [scale, offset] = [F([C]), F([C])].map((a) => tf.tensor(a.data, a.shape));
      const attrs = { varianceEpsilon: 1e-5 };
      const [y, mean, variance] = tf.engine().runKernel(BN_RELU_TRAIN, { x: x!, scale: scale!, offset: offset! }, attrs) as tf.Tensor[];
      for (const residual of [false, true]) {
        const saved = { x: x!, y: y!, mean: mean!, variance: variance!, scale: scale! };
        const sum = tf.add(dyA!, dyB!);
        const ref = tf.engine().runKernel(BN_RELU_TRAIN_GRAD, { dy: sum, ...saved }, { ...attrs, residual }) as tf.Tensor[];
        const got = tf.engine().runKernel(BN_RELU_TRAIN_GRAD, { dy: dyA!, dy2: dyB!, ...saved }, { ...attrs, residual }) as tf.Tensor[];
        assert.equal(got.length, residual ? 4 : 3);
        got.forEach((g, i) => assert.deepEqual(g.dataSync(), ref[i]!.dataSync(), `${shape} residual ${residual} output ${i}`));
        tf.dispose([sum, ...ref, ...got]);
      }
      tf.dispose([x!, dyA!, dyB!, scale!, offset!, y!, mean!, variance!]);
    }
  } finally {
    tf.setBackend('cpu');
  }
});

test('eval-mode BatchNorm (+ residual) + ReLU (one native pass forward) matches relu(batchNorm(x) + r) on cpu: output, gradients of x, mean, variance, scale, offset, residual', { skip }, () => {
  const fused = (x: T, m: T, v: T, g: T, b: T, r?: T): T => {
    const f = batchNormReluInference(tf, x, m, v, g, b, 1e-5, r);
    assert.equal(f !== undefined, tf.getBackend() === 'wasm', 'fused on wasm only');
    if (f !== undefined) return f;
    const y = tf.batchNorm(x, m as tf.Tensor1D, v as tf.Tensor1D, b as tf.Tensor1D, g as tf.Tensor1D, 1e-5);
    return tf.relu(r ? tf.add(y, r) : y);
  };
  for (const shape of [[2, 5, 7, 3], [4, 17, 19, 48], [3, 9, 1, 130], [1, 3, 1, 2], [8, 6, 6, 64]]) {
    const C = shape[3]!;
    const x = F(shape);
    const mean = F([C]);
    x.data.forEach((v, i) => { x.data[i] = v * 3 + (i % C) * 10; });
    mean.data.forEach((v, i) => { mean.data[i] = v + i * 10; });
    const variance = F([C], () => 0.5 + rand() * 9);
    // Offsets around zero: a good share of each channel is cut by the ReLU.
    const inputs = [x, mean, variance, F([C]), F([C]), F(shape), F(shape)];
    same(`eval bn+relu forward ${shape}`, inputs, (xs, m, v, g, b) => fused(xs, m, v, g, b), 1e-4);
    same(`eval bn+residual+relu forward ${shape}`, inputs, (xs, m, v, g, b, r) => fused(xs, m, v, g, b, r), 1e-4);
    same(`eval bn+relu gradients ${shape}`, inputs, (xs, m, v, g, b, _r, w) =>
      tf.grads((a: T, c: T, d: T, e: T, h: T) => tf.sum(tf.mul(fused(a, c, d, e, h), w)))([xs, m, v, g, b]), 2e-4);
    same(`eval bn+residual+relu gradients ${shape}`, inputs, (xs, m, v, g, b, r, w) =>
      tf.grads((a: T, c: T, d: T, e: T, h: T, k: T) => tf.sum(tf.mul(fused(a, c, d, e, h, k), w)))([xs, m, v, g, b, r]), 2e-4);
  }
});

test('fused BatchNorm + ReLU moves the running estimates as the plain fused BatchNorm does', { skip }, () => {
  tf.setBackend('wasm');
  const xin = F([2, 4, 3, 5]);
  try {
    const stats = (relu: boolean): Float32Array[] => tf.tidy(() => {
      const mean = tf.variable(tf.zeros([5]));
      const variance = tf.variable(tf.ones([5]));
      const count = tf.variable(tf.scalar(0, 'int32'));
      const x = tf.tensor(xin.data, xin.shape);
      const run = { mean, variance, count, momentum: 0.2 };
      const f = relu ? batchNormReluTraining(tf, x, tf.ones([5]), tf.zeros([5]), 1e-5, undefined, run)! : batchNormTraining(tf, x, tf.ones([5]), tf.zeros([5]), 1e-5, run)!;
      tf.dispose([f.mean, f.variance]);
      const out = [mean, variance, count].map((t) => Float32Array.from(t.dataSync()));
      tf.dispose([mean, variance, count]);
      return out;
    });
    assert.deepEqual(stats(true), stats(false));
    assert.deepEqual(stats(true)[2], Float32Array.from([1]));
  } finally {
    tf.setBackend('cpu');
  }
});

test('a ResNet training step on the native engine (fused BN + ReLU blocks, fused cross-entropy) gives the cpu backend\'s loss, gradients and running statistics', { skip }, () => {
  const spec = modelSpec('resnet_demo', { numClasses: 3, imageSize: 32 });
  const img = F([2, 32, 32, 3]);
  const run = (backend: 'cpu' | 'wasm'): Map<string, Float32Array> => {
    tf.setBackend(backend);
    const params = createParams(spec, initState(spec, 5));
    try {
      const out = new Map<string, Float32Array>();
      const { value, grads } = tf.variableGrads(() => tf.tidy(() => {
        const logits = forward(spec, params, tf.tensor4d(img.data, img.shape as [number, number, number, number]), { training: true });
        // finetune's loss (the fused cross-entropy on wasm) plus a term on every logit.
        const onehot = tf.oneHot(tf.tensor1d([2, 0], 'int32'), 3).toFloat();
        const ce = softmaxCrossEntropy(tf, logits, onehot, 1 / 2) ?? tf.losses.softmaxCrossEntropy(onehot, logits);
        return tf.add(ce, tf.mean(tf.square(logits))) as tf.Scalar;
      }), trainableVariables(params));
      out.set('loss', Float32Array.from(value.dataSync()));
      for (const [name, v] of params) {
        const g = grads[v.name];
        if (g) out.set(`grad ${name}`, Float32Array.from(g.dataSync()));
        if (name.includes('running')) out.set(name, Float32Array.from(v.dataSync()));
      }
      tf.dispose([value, ...Object.values(grads)]);
      return out;
    } finally {
      disposeParams(params);
      tf.setBackend('cpu');
    }
  };
  const want = run('cpu');
  const got = run('wasm');
  assert.equal(got.size, want.size);
  for (const [name, w] of want) {
    const e = relErr(got.get(name)!, w, name);
    // Eight BatchNorms deep: float32 sums in another order compound to ~1e-4.
    assert.ok(e < 2e-3, `${name}: rel. error ${e.toExponential(2)}`);
  }
});

test('fused BatchNorm moves the running estimates (unbiased variance, momentum) as the composed ops do', { skip }, () => {
  const x = F([3, 6, 5, 7]);
  const rm0 = F([7]);
  const rv0 = F([7]);
  rv0.data.forEach((v, i) => { rv0.data[i] = Math.abs(v) + 0.5; });
  const run = (backend: 'cpu' | 'wasm'): Float32Array[] => {
    tf.setBackend(backend);
    const mean = tf.variable(tf.tensor(rm0.data));
    const variance = tf.variable(tf.tensor(rv0.data));
    const count = tf.variable(tf.scalar(4, 'int32'));
    tf.tidy(() => {
      const xs = tf.tensor(x.data, x.shape);
      const [g, b] = [tf.ones([7]), tf.zeros([7])];
      const f = batchNormTraining(tf, xs, g, b, 1e-5, { mean, variance, count, momentum: 0.3 });
      if (f) return tf.dispose([f.mean, f.variance]);
      const m = tf.moments(xs, [0, 1, 2]);
      const n = 3 * 6 * 5;
      mean.assign(tf.add(tf.mul(mean, 0.7), tf.mul(m.mean, 0.3)));
      variance.assign(tf.add(tf.mul(variance, 0.7), tf.mul(tf.mul(m.variance, n / (n - 1)), 0.3)));
      count.assign(tf.add(count, tf.scalar(1, 'int32')));
    });
    const out = [mean, variance, count].map((t) => Float32Array.from(t.dataSync()));
    tf.dispose([mean, variance, count]);
    tf.setBackend('cpu');
    return out;
  };
  const want = run('cpu');
  const got = run('wasm');
  assert.ok(relErr(got[0]!, want[0]!) < 1e-5 && relErr(got[1]!, want[1]!) < 1e-5, 'running mean and variance');
  assert.deepEqual(got[2], Float32Array.from([5]), 'num_batches_tracked + 1');
});

test('fused LayerNorm and GELU (one kernel each way) match the composed ops on cpu, values and gradients', { skip }, () => {
  const fusedOr = (fused: T | undefined, composed: () => T): T => {
    assert.equal(fused !== undefined, tf.getBackend() === 'wasm', 'fused on wasm only');
    return fused ?? composed();
  };
  const ln = (x: T, g: T, b: T): T => fusedOr(layerNorm(tf, x, g, b, 1e-6), () => {
    const m = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.mul(tf.sub(x, m.mean), tf.rsqrt(tf.add(m.variance, 1e-6))), g), b);
  });
  const ge = (x: T): T => fusedOr(gelu(tf, x), () => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))));
  for (const shape of [[5, 7], [530, 192], [3, 4, 1]]) {
    const D = shape[shape.length - 1]!;
    const x = F(shape);
    x.data.forEach((v, i) => { x.data[i] = v * 4 + (i % 3); });
    const inputs = [x, F([D]), F([D]), F(shape)];
    same(`layerNorm ${shape}`, inputs, (xs, g, b) => ln(xs, g, b), 1e-5);
    same(`layerNorm gradients ${shape}`, inputs, (xs, g, b, w) => tf.grads((a: T, c: T, d: T) => tf.sum(tf.mul(ln(a, c, d), w)))([xs, g, b]), 1e-4);
    same(`gelu ${shape}`, [x], (xs) => ge(xs), 1e-6);
    same(`gelu gradient ${shape}`, [x, F(shape)], (xs, w) => tf.grad((a: T) => tf.sum(tf.mul(ge(a), w)))(xs), 1e-5);
  }
});

test('native exp is within 2 ulp of exp everywhere a float has, erf within 5e-7 of the cpu backend\'s', { skip }, () => {
  const n = 100001;
  const xs = Float32Array.from({ length: n }, (_, i) => -87 + 175.7 * i / (n - 1));
  tf.setBackend('wasm');
  try {
    const e = tf.tidy(() => tf.exp(tf.tensor(xs)).dataSync());
    xs.forEach((x, i) => {
      const ref = Math.exp(x);
      assert.ok(Math.abs(e[i]! - ref) <= 1.2e-7 * ref, `exp(${x}) = ${e[i]}, want ${ref}`);
    });
    const edges = tf.tidy(() => Array.from(tf.exp(tf.tensor([89, -104, NaN, 0, ...new Array(40000).fill(1)])).dataSync().slice(0, 4)));
    assert.deepEqual(edges, [Infinity, 0, NaN, 1]);
  } finally {
    tf.setBackend('cpu');
  }
  const ys = F([60000]);
  ys.data.forEach((v, i) => { ys.data[i] = v * 5; });
  same('erf', [ys], (x) => tf.erf(x), 5e-7);
});

// The attention's many small products (per head [T x d] x [d x T] and [T x T] x [T x d])
// take the unpacked path of native/src/gemm_batched.cc, split by whole products over the
// pool: against cpu with odd token counts, several heads and every transpose (the backward
// pass's), on 1 and 2 threads, bit-identical across thread counts.
test('native batched small products (attention heads) match cpu on 1 and 2 threads, same bits on both', { skip }, () => {
  if (!addon) return;
  const shapes: [number, number, number][] = [[6, 17, 64], [9, 23, 16], [4, 49, 32], [12, 5, 3], [3, 64, 64]];
  try {
    for (const [bh, t, d] of shapes) {
      const q = F([bh, t, d]);
      const k = F([bh, t, d]);
      const v = F([bh, t, d]);
      const w = F([bh, t, d]);
      const attention = (qq: T, kk: T, vv: T, ww: T): T[] =>
        tf.grads((a: T, b: T, c: T) => tf.sum(tf.mul(tf.matMul(tf.softmax(tf.matMul(a, b, false, true)), c), ww)))([qq, kk, vv]);
      const out: Float32Array[][] = [];
      for (const threads of [1, 2]) {
        addon.setThreads(threads);
        same(`attention bh ${bh} T ${t} d ${d}, ${threads} threads`, [q, k, v, w], attention);
        for (const [tA, tB] of [[false, false], [true, false], [false, true], [true, true]]) {
          const a = F(tA ? [bh, d, t] : [bh, t, d]);
          const b = F(tB ? [bh, t, d] : [bh, d, t]);
          same(`[${bh},${t},${d}] tA ${tA} tB ${tB}, ${threads} threads`, [a, b], (x, y) => tf.matMul(x, y, tA, tB));
        }
        out.push(on('wasm', [q, k, v, w], attention));
      }
      out[0]!.forEach((x, i) => assert.deepEqual(Buffer.from(x.buffer), Buffer.from(out[1]![i]!.buffer), `bh ${bh} T ${t} d ${d}: 1 vs 2 threads`));
    }
  } finally {
    addon.setThreads(2);
  }
});

// A row of C depends on its row of A only: the first 17 rows of a 17-row product (the small
// path) and of an 80-row one (packed panels, the microkernel) must be the same floats.
test('native small products give the packed GEMM\'s bits (rows of a 17-row and an 80-row product)', { skip }, () => {
  for (const [kk, n, tB] of [[64, 17, true], [17, 64, false], [128, 50, true], [33, 1, false]] as [number, number, boolean][]) {
    const big = F([80, kk]);
    const small = { shape: [17, kk], data: big.data.slice(0, 17 * kk) };
    const b = F(tB ? [n, kk] : [kk, n]);
    const [s] = on('wasm', [small, b], (x, y) => tf.matMul(x, y, false, tB));
    const [l] = on('wasm', [big, b], (x, y) => tf.matMul(x, y, false, tB));
    assert.deepEqual(Buffer.from(s!.buffer), Buffer.from(l!.slice(0, 17 * n).buffer), `K ${kk} N ${n} tB ${tB}`);
  }
});

test('native linear (the bias in the GEMM epilogue) gives matMul then add\'s bits on wasm and the cpu backend\'s values, odd and blocked sizes', { skip }, () => {
  const linear = (a: T, w: T, b: T): T => tf.engine().runKernel(LINEAR, { a, b: w, bias: b }) as T;
  for (const [m, k, n] of [[1, 1, 1], [7, 5, 3], [17, 64, 33], [65, 200, 10], [530, 192, 576], [8, 384, 1000]] as [number, number, number][]) {
    const inputs = [F([m, k]), F([k, n]), F([n])];
    const [fused] = on('wasm', inputs, linear);
    const [composed] = on('wasm', inputs, (a, w, b) => tf.add(tf.matMul(a, w), b));
    assert.deepEqual(Buffer.from(fused!.buffer), Buffer.from(composed!.buffer), `linear [${m}, ${k}] x [${k}, ${n}]: the composed ops' bits`);
    const [want] = on('cpu', inputs, (a, w, b) => tf.add(tf.matMul(a, w), b));
    const e = relErr(fused!, want!, 'linear');
    assert.ok(e <= 1e-5, `linear [${m}, ${k}] x [${k}, ${n}] vs cpu: rel. error ${e.toExponential(2)}`);
  }
  assert.throws(() => on('wasm', [F([3, 4]), F([5, 2]), F([2])], linear), /MedpipeLinear/);
});

test('native heads split and merge are torch\'s reshape(B, T, H, hd).permute(0, 2, 1, 3) and back, the scale the bits of a Multiply', { skip }, () => {
  for (const [B, T, H, hd, P] of [[1, 1, 1, 1, 1], [2, 5, 3, 4, 3], [3, 17, 2, 7, 1], [8, 65, 3, 64, 3], [1, 197, 6, 64, 2]]) {
    const x = F([B * T, P * H * hd]);
    const scale = 0.3;
    // The composed ops (cpu, and wasm for the bits of the scaled part).
    const heads = (t: T, p: number): T => tf.reshape(tf.transpose(tf.reshape(tf.slice(t, [0, p * H * hd], [B * T, H * hd]), [B, T, H, hd]), [0, 2, 1, 3]), [B * H, T, hd]);
    const composedSplit = (t: T): T[] => Array.from({ length: P }, (_, p) => (p === 0 ? tf.mul(heads(t, p), scale) : heads(t, p)));
    const split = (t: T): T[] => tf.engine().runKernel(SPLIT_HEADS, { x: t }, { batch: B, heads: H, parts: P, scale }) as unknown as T[];
    const got = on('wasm', [x], split);
    const bits = on('wasm', [x], composedSplit);
    const want = on('cpu', [x], composedSplit);
    got.forEach((g, i) => {
      assert.deepEqual(Buffer.from(g.buffer), Buffer.from(bits[i]!.buffer), `split B ${B} T ${T} H ${H} hd ${hd} part ${i}: wasm's bits`);
      assert.ok(relErr(g, want[i]!) <= 1e-7, `split part ${i} vs cpu`);
    });
    // Merge: heads [B*H, T, hd] back to [B*T, P*H*hd], the first part scaled.
    const parts = Array.from({ length: P }, () => F([B * H, T, hd]));
    const unheads = (t: T): T => tf.reshape(tf.transpose(tf.reshape(t, [B, H, T, hd]), [0, 2, 1, 3]), [B * T, H * hd]);
    const composedMerge = (...ts: T[]): T => tf.concat(ts.map((t, p) => unheads(p === 0 ? tf.mul(t, scale) : t)), 1);
    const merge = (...ts: T[]): T => {
      const inputs: Record<string, T> = {};
      ts.forEach((t, p) => { inputs[`x${p}`] = t; });
      return tf.engine().runKernel(MERGE_HEADS, inputs, { batch: B, scale }) as T;
    };
    const [m] = on('wasm', parts, merge);
    const [mBits] = on('wasm', parts, composedMerge);
    const [mWant] = on('cpu', parts, composedMerge);
    assert.deepEqual(Buffer.from(m!.buffer), Buffer.from(mBits!.buffer), `merge B ${B} T ${T} H ${H} hd ${hd}: wasm's bits`);
    assert.ok(relErr(m!, mWant!) <= 1e-7, 'merge vs cpu');
  }
  assert.throws(() => on('wasm', [F([5, 12])], (t) => tf.engine().runKernel(SPLIT_HEADS, { x: t }, { batch: 2, heads: 2, parts: 3 }) as T), /MedpipeSplitHeads/);
});
