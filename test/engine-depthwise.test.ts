// The depthwise conv ConvNeXt uses (src/engine/depthwise-conv.ts): its value and both
// gradients, formed from depthwise convs, equal tfjs's op and its own gradient kernels on the
// cpu backend (tfjs's reference), on the wasm engine and on cpu itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend, type BackendChoice } from '../src/engine/backend.js';
import { depthwiseConvSame } from '../src/engine/depthwise-conv.js';
import { Rng } from '../src/data/rng.js';
import { relErr } from './support/torch-reference.js';

const CASES: [number[], number][] = [[[2, 9, 7, 5], 3], [[3, 6, 6, 4], 1], [[1, 5, 8, 3], 2]];

function values(shape: number[], seed: number): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r.normal());
}

async function run(backend: BackendChoice, mine: boolean, shape: number[], pad: number): Promise<Float32Array[]> {
  await initBackend({ prefer: backend });
  const k = 2 * pad + 1;
  const x = tf.tensor4d(values(shape, 1), shape as [number, number, number, number]);
  const w = tf.tensor4d(values([k, k, shape[3], 1], 2), [k, k, shape[3], 1]);
  const up = tf.tensor4d(values(shape, 3), shape as [number, number, number, number]);
  const f = (a: tf.Tensor4D, b: tf.Tensor4D) => (mine ? depthwiseConvSame(tf, a, b, pad) : tf.depthwiseConv2d(a, b, 1, pad));
  const y = f(x, w);
  // A weighted sum, so each output's gradient differs.
  const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(f(a as tf.Tensor4D, b as tf.Tensor4D), up)))([x, w]);
  const out = [await y.data(), await dx.data(), await dw.data()] as Float32Array[];
  tf.dispose([x, w, up, y, dx, dw]);
  return out;
}

test('depthwiseConvSame: value, input and filter gradients equal tfjs\'s on the cpu backend', async () => {
  for (const [shape, pad] of CASES) {
    const want = await run('cpu', false, shape, pad);
    for (const backend of ['wasm', 'cpu'] as BackendChoice[]) {
      const got = await run(backend, true, shape, pad);
      ['value', 'input gradient', 'filter gradient'].forEach((what, i) => {
        const err = relErr(got[i], want[i]);
        assert.ok(err <= 1e-5, `[${shape}] pad ${pad} on ${backend}: ${what} rel err ${err}`);
      });
    }
  }
  await initBackend({ prefer: 'cpu' });
  assert.throws(() => depthwiseConvSame(tf, tf.zeros([1, 4, 4, 2]) as tf.Tensor4D, tf.zeros([3, 3, 2, 1]) as tf.Tensor4D, 2), /not a same-size depthwise conv/);
});
