// The inference Conv2D + BatchNorm kernel (MedpipeConv2DBatchNorm: the BatchNorm, identity
// and ReLU applied in the conv's output blocks) against the two kernels it replaces, Conv2D
// then MedpipeBatchNormRelu / FusedBatchNorm: equal bit for bit on random shapes (1x1 and
// 3x3, stride 1 and 2, with and without residual and ReLU, odd channel counts, sizes past
// the GEMM's k- and row-blocks and both of its pool splits, 1 and 2 threads), and ResNet's
// eval logits with and without it. Skipped, with the reason, when the addon is not built.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { initBackend } from '../src/engine/backend.js';
import { loadNative, nativeStatus } from '../src/engine/native.js';
import { BN_RELU, CONV_BN, NATIVE_MIN_ELEMENTS, registerWasmKernels, setNativeKernels } from '../src/engine/wasm-kernels.js';
import { forward } from '../src/ml/models/forward.js';
import { createParams, disposeParams } from '../src/ml/models/params.js';
import { modelSpec } from '../src/ml/models/registry.js';
import { initState } from '../src/ml/models/state.js';
import { Random } from './support/backend-compare.js';

const addon = loadNative();
const skip = addon === undefined ? `native kernels not available: ${nativeStatus()}` : false;
if (skip) console.log(`# engine-conv-bn: SKIPPED — ${skip}`);

before(async () => {
  const info = await initBackend({ prefer: 'wasm' });
  assert.equal(info.backend, 'wasm');
  if (!skip) assert.equal(setNativeKernels(true), true);
});

const rng = new Random(2020);
const { int, pick, rand } = rng;
const EPS = 1e-5;

/** The index of the first element whose bits differ, -1 when none does. */
function firstDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return i;
  return -1;
}

interface Shape { n: number; h: number; w: number; c: number; oc: number; k: 1 | 3; s: 1 | 2 }

function check(sh: Shape, relu: boolean, residual: boolean, affine: boolean): void {
  const what = `x [${sh.n},${sh.h},${sh.w},${sh.c}] ${sh.k}x${sh.k}/${sh.s} oc ${sh.oc} relu ${relu} res ${residual} affine ${affine}`;
  tf.tidy(() => {
    const pad = sh.k === 3 ? 1 : 0;
    const x = tf.tensor4d(rng.values(sh.n * sh.h * sh.w * sh.c), [sh.n, sh.h, sh.w, sh.c]);
    const filter = tf.tensor4d(rng.values(sh.k * sh.k * sh.c * sh.oc), [sh.k, sh.k, sh.c, sh.oc]);
    const oh = Math.floor((sh.h + 2 * pad - sh.k) / sh.s) + 1;
    const ow = Math.floor((sh.w + 2 * pad - sh.k) / sh.s) + 1;
    const stats: Record<string, tf.Tensor> = {
      mean: tf.tensor1d(rng.values(sh.oc)),
      // Some variances tiny (a large 1/std): the product's rounding matters there.
      variance: tf.tensor1d(rng.values(sh.oc, () => (rand() < 0.2 ? rand() * 1e-4 : rand() * 3))),
    };
    if (affine) {
      stats['scale'] = tf.tensor1d(rng.values(sh.oc, () => rand() * 4 - 2));
      stats['offset'] = tf.tensor1d(rng.values(sh.oc));
    }
    if (residual) stats['residual'] = tf.tensor4d(rng.values(sh.n * oh * ow * sh.oc), [sh.n, oh, ow, sh.oc]);
    // Below NATIVE_MIN_ELEMENTS FusedBatchNorm is tfjs's own kernel (other rounding), and
    // ResNet's eval forward keeps the two kernels there.
    if (!relu && sh.n * oh * ow * sh.oc < NATIVE_MIN_ELEMENTS) return;
    const conv = { strides: sh.s, pad, dataFormat: 'NHWC', dilations: [1, 1] };
    const a = tf.engine().runKernel('Conv2D', { x, filter }, conv) as tf.Tensor;
    const want = tf.engine().runKernel(relu ? BN_RELU : 'FusedBatchNorm', { x: a, ...stats }, { varianceEpsilon: EPS }) as tf.Tensor;
    const got = tf.engine().runKernel(CONV_BN, { x, filter, ...stats }, { ...conv, varianceEpsilon: EPS, relu }) as tf.Tensor;
    assert.deepEqual(got.shape, want.shape, what);
    const g = got.dataSync() as Float32Array, w = want.dataSync() as Float32Array;
    const at = firstDiff(g, w);
    assert.equal(at, -1, `${what}: element ${at}: ${g[at]} != ${w[at]}`);
  });
}

test('Conv2D + BatchNorm in the conv epilogue equals Conv2D then the BatchNorm kernel, bit for bit', { skip }, () => {
  tf.setBackend('wasm');
  const shapes: Shape[] = [
    // Past the fp32 GEMM's k-block (K = 9 * 37 > 256) and row block (M > 144), both splits.
    { n: 2, h: 14, w: 13, c: 37, oc: 45, k: 3, s: 1 },
    { n: 1, h: 7, w: 7, c: 33, oc: 301, k: 1, s: 1 }, // N > M: the split by columns
    { n: 3, h: 17, w: 21, c: 300, oc: 17, k: 1, s: 2 },
    { n: 2, h: 28, w: 28, c: 16, oc: 64, k: 3, s: 2 },
    { n: 1, h: 3, w: 5, c: 3, oc: 5, k: 3, s: 1 }, // one small block, one thread
  ];
  for (let i = 0; i < 10; i++) {
    shapes.push({ n: int(1, 3), h: int(2, 23), w: int(2, 23), c: int(1, 41) | 1, oc: int(1, 67) | 1, k: pick([1, 3] as const), s: pick([1, 2] as const) });
  }
  const threads = addon!.info().threads;
  try {
    for (const t of [1, 2]) {
      addon!.setThreads(t);
      for (const sh of shapes) {
        check(sh, true, false, true);
        check(sh, true, true, true);
        check(sh, false, false, true);
        check(sh, pick([true, false]), false, false);
      }
    }
  } finally {
    addon!.setThreads(threads);
  }
});

test('a residual without ReLU is refused, by the kernel and by the native op, nothing written', { skip }, () => {
  tf.setBackend('wasm');
  tf.tidy(() => {
    const x = tf.tensor4d(rng.values(2 * 4 * 4 * 3), [2, 4, 4, 3]);
    const filter = tf.tensor4d(rng.values(3 * 5), [1, 1, 3, 5]);
    const stats = { mean: tf.tensor1d(rng.values(5)), variance: tf.ones([5]), residual: tf.tensor4d(rng.values(2 * 4 * 4 * 5), [2, 4, 4, 5]) };
    const attrs = { strides: 1, pad: 0, dataFormat: 'NHWC', dilations: [1, 1], varianceEpsilon: EPS };
    assert.throws(() => tf.engine().runKernel(CONV_BN, { x, filter, ...stats }, { ...attrs, relu: false }),
      /MedpipeConv2DBatchNorm: the residual input needs the relu attr/);
    // With relu the same inputs run (the refusal is of that combination alone).
    assert.deepEqual((tf.engine().runKernel(CONV_BN, { x, filter, ...stats }, { ...attrs, relu: true }) as tf.Tensor).shape, [2, 4, 4, 5]);
  });
  // The op itself, past the kernel: x [1, 2, 2, 1], 1x1 filter, OC 1, floats at 0 .. 12.
  const heap = new ArrayBuffer(64);
  new Float32Array(heap).set([1, 2, 3, 4, 0.5, 0, 0, 0, 0, 0.1, 1, 0.2, 0.3, 0.4, 0.5, 0.6]);
  const before = new Float32Array(heap).slice();
  const args = (residual: number, relu: number): number[] => [0, 4, 5, 9, 10, -1, -1, residual, EPS, relu, 1, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 2, 2];
  assert.throws(() => addon!.run('conv2dBn', heap, args(12, 0)), /conv2dBn: a residual \(arg 7\) needs relu = 1 \(arg 9\)/);
  assert.deepEqual(new Float32Array(heap), before);
  addon!.run('conv2dBn', heap, args(12, 1));
  // max(0, (x * 0.5 - 0.1) / sqrt(1 + eps) + residual)
  const y = new Float32Array(heap, 5 * 4, 4);
  [0.7, 1.3, 1.9, 2.5].forEach((want, i) => assert.ok(Math.abs(y[i]! - want) < 1e-5, `y[${i}] = ${y[i]}, want ~${want}`));
});

test('ResNet eval logits are the same bits with and without the fused conv + BatchNorm kernel', { skip }, async () => {
  tf.setBackend('wasm');
  for (const [model, size] of [['resnet_demo', 40], ['resnet50', 32]] as const) {
    const spec = modelSpec(model, { numClasses: 3, imageSize: size });
    const params = createParams(spec, initState(spec, 5));
    const x = tf.tensor4d(new Random(size).values(2 * size * size * 3), [2, size, size, 3]);
    try {
      // Running estimates off their initial 0 / 1, so the BatchNorms do something.
      tf.dispose(forward(spec, params, x, { training: true }));
      const logits = (): Float32Array => tf.tidy(() => Float32Array.from(forward(spec, params, x, { training: false }).dataSync()));
      const fused = logits();
      tf.unregisterKernel(CONV_BN, 'wasm');
      let plain: Float32Array;
      try {
        plain = logits();
      } finally {
        await registerWasmKernels([CONV_BN]);
      }
      assert.equal(firstDiff(fused, plain), -1, `${model}: fused and unfused eval logits differ`);
    } finally {
      x.dispose();
      disposeParams(params);
    }
  }
});
