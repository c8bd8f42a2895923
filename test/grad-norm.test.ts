// The clipping norm's float64 sums read in place from the wasm heap against the copy-out
// path they replace (dataSync): the same elements in the same order, so equal bit for bit,
// which keeps every clipped step (and so the fine-tuned weights) unchanged.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { initBackend } from '../src/engine/backend.js';
import { clipByGlobalNorm } from '../src/ml/train/adam.js';
import { sumsOfSquares } from '../src/ml/train/grad-norm.js';
import { Rng } from '../src/data/rng.js';

before(async () => {
  const info = await initBackend({ prefer: 'wasm' });
  assert.equal(info.backend, 'wasm');
});

function randomTensor(shape: number[], rng: Rng): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) values[i] = rng.uniform(-1, 1) * 10 ** rng.intIn(-6, 3);
  // An op's output, so the data sits where kernels leave gradients, not only at upload.
  return tf.tidy(() => tf.tensor(values, shape).mul(1));
}

/** The reference: the old path's copy, summed in float64 in element order. */
function copiedSum(t: tf.Tensor): number {
  const v = Float32Array.from(t.dataSync() as Float32Array);
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return s;
}

test('sums of squares on the wasm heap equal the copied float64 sums bit for bit', () => {
  const rng = new Rng(7, 1);
  const tensors = [[1], [3, 5], [384, 1536], [7], [16, 3, 8, 8], [197, 384]].map((s) => randomTensor(s, rng));
  const inPlace = sumsOfSquares(tensors, tf);
  const copied = sumsOfSquares(tensors);
  tensors.forEach((t, i) => {
    assert.ok(Object.is(inPlace[i], copiedSum(t)), `tensor ${i}: ${inPlace[i]} vs ${copiedSum(t)}`);
    assert.ok(Object.is(copied[i], inPlace[i]));
  });
  // A float32 sum would not give these: the float64 sum is what clipping relies on.
  assert.ok(inPlace[2]! > 0);
  tf.dispose(tensors);
});

test('clipping on wasm reports the same norm and clipped values as on the cpu backend copy', async () => {
  const rng = new Rng(11, 2);
  const shapes = [[64, 64], [10], [3, 3, 3, 16]];
  const wasmGrads = new Map(shapes.map((s, i) => [`g${i}`, randomTensor(s, rng)]));
  const hostValues = [...wasmGrads.values()].map((t) => Float32Array.from(t.dataSync() as Float32Array));
  const wasmNorm = clipByGlobalNorm(tf, wasmGrads, 0.5);
  await tf.setBackend('cpu');
  try {
    const cpuGrads = new Map(shapes.map((s, i) => [`g${i}`, tf.tensor(hostValues[i]!, s)]));
    const cpuNorm = clipByGlobalNorm(tf, cpuGrads, 0.5);
    assert.ok(Object.is(wasmNorm, cpuNorm), `${wasmNorm} vs ${cpuNorm}`);
    assert.ok(wasmNorm > 0.5, 'the case clips');
    tf.dispose([...cpuGrads.values()]);
  } finally {
    await tf.setBackend('wasm');
  }
  tf.dispose([...wasmGrads.values()]);
});

test('a tensor the wasm backend does not hold is read by copy', async () => {
  await tf.setBackend('cpu');
  const t = tf.tensor1d([3, 4]);
  await tf.setBackend('wasm');
  try {
    assert.deepEqual(sumsOfSquares([t], tf), [25]);
  } finally {
    t.dispose();
  }
});
