// ResNet's tape-free training step (src/ml/models/resnet/step.ts) against the tfjs path it
// replaces: forward() under tf.variableGrads with the fused cross-entropy, on the same wasm
// backend (the same kernels in the same order: equal bit for bit) and on the reference cpu
// backend (float32 sums in another order: within the whole-step tolerance of
// engine-native.test.ts). Basic blocks (resnet_demo, resnet18's layout) and bottlenecks
// (resnet50) with downsampling; loss, every gradient, the running estimates.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { initBackend } from '../src/engine/backend.js';
import { softmaxCrossEntropy } from '../src/engine/fused-ops.js';
import { loadNative, nativeStatus } from '../src/engine/native.js';
import { setNativeKernels } from '../src/engine/wasm-kernels.js';
import { forward, trainStep } from '../src/ml/models/forward.js';
import { createParams, disposeParams, trainableVariables } from '../src/ml/models/params.js';
import { modelSpec } from '../src/ml/models/registry.js';
import { initState } from '../src/ml/models/state.js';
import { Random, relErr } from './support/backend-compare.js';

const skip = loadNative() === undefined ? `native kernels not available: ${nativeStatus()}` : false;
if (skip) console.log(`# resnet-step: SKIPPED — ${skip}`);

before(async () => {
  const info = await initBackend({ prefer: 'wasm' });
  assert.equal(info.backend, 'wasm');
  if (!skip) assert.equal(setNativeKernels(true), true);
});

interface Case {
  model: string;
  size: number;
  batch: number;
  classes: number;
  /** Also against the cpu backend (slow there: ResNet50 takes minutes). */
  cpu: boolean;
}

const CASES: Case[] = [
  { model: 'resnet_demo', size: 48, batch: 4, classes: 5, cpu: false },
  { model: 'resnet_demo', size: 33, batch: 3, classes: 2, cpu: true },
  { model: 'resnet50', size: 32, batch: 2, classes: 3, cpu: false },
];

type How = 'graph' | 'tape';

/** Loss, gradients and BatchNorm running estimates after one step from seeded weights. */
function step(c: Case, backend: 'cpu' | 'wasm', how: How, updateStats = true): Map<string, Float32Array> {
  tf.setBackend(backend);
  const spec = modelSpec(c.model, { numClasses: c.classes, imageSize: c.size });
  const params = createParams(spec, initState(spec, 11));
  const rng = new Random(c.size * 31 + c.batch);
  const out = new Map<string, Float32Array>();
  try {
    tf.tidy(() => {
      const x = tf.tensor4d(rng.values(c.batch * c.size * c.size * 3), [c.batch, c.size, c.size, 3]);
      const labels = Array.from({ length: c.batch }, (_, i) => (i * 7 + 1) % c.classes);
      // Soft labels on the first row: the loss's gradient reads every label value.
      const onehot = tf.tensor2d(labels.flatMap((l, i) => Array.from({ length: c.classes }, (_, k) => (i === 0 ? (k === l ? 0.7 : 0.3 / (c.classes - 1)) : k === l ? 1 : 0))), [c.batch, c.classes]);
      const r = how === 'graph'
        ? trainStep(spec, params, x, onehot, 1 / c.batch, { updateStats })
        : tf.variableGrads(() => {
          const logits = forward(spec, params, x, { training: true, updateStats });
          return softmaxCrossEntropy(tf, logits, onehot, 1 / c.batch) ?? (tf.losses.softmaxCrossEntropy(onehot, logits) as tf.Scalar);
        }, trainableVariables(params));
      assert.ok(r !== undefined, `${c.model}: the step graph did not run on ${backend}`);
      out.set('loss', Float32Array.from(r.value.dataSync()));
      for (const [name, v] of params) {
        if (v.trainable) {
          const g: tf.Tensor | undefined = r.grads[v.name];
          assert.ok(g !== undefined, `${how}: no gradient for ${name}`);
          assert.deepEqual(g.shape, v.shape, `gradient shape of ${name}`);
          out.set(`grad ${name}`, Float32Array.from(g.dataSync()));
        } else out.set(name, Float32Array.from(v.dataSync()));
      }
    });
    return out;
  } finally {
    disposeParams(params);
  }
}

for (const c of CASES) {
  const what = `${c.model}@${c.size} batch ${c.batch}`;
  test(`the ResNet step graph gives the tfjs path's loss, gradients and running estimates bit for bit on wasm (${what})`, { skip }, () => {
    const tape = step(c, 'wasm', 'tape');
    const graph = step(c, 'wasm', 'graph');
    assert.equal(graph.size, tape.size);
    for (const [name, want] of tape) assert.deepEqual(graph.get(name), want, name);
  });

  if (c.cpu) test(`the ResNet step graph matches the cpu backend's tfjs step (${what})`, { skip }, () => {
    const want = step(c, 'cpu', 'tape');
    const got = step(c, 'wasm', 'graph');
    for (const [name, w] of want) {
      const e = relErr(got.get(name)!, w, name);
      assert.ok(e < 2e-3, `${name}: rel. error ${e.toExponential(2)}`);
    }
  });
}

test('the step graph leaves the running estimates alone when asked, and frees everything it allocated', { skip }, () => {
  const c = CASES[0]!;
  tf.setBackend('wasm');
  const be = tf.backend() as BackendWasm;
  const ids = be.dataIdMap.numDataIds();
  const tensors = tf.memory().numTensors;
  const frozen = step(c, 'wasm', 'graph', false);
  assert.equal(be.dataIdMap.numDataIds(), ids, 'wasm buffers left behind');
  assert.equal(tf.memory().numTensors, tensors, 'tensors left behind');
  // torch's initial estimates: mean 0, variance 1, no batches counted.
  for (const [name, v] of frozen) {
    if (name.endsWith('running_mean') || name.endsWith('num_batches_tracked')) assert.ok(v.every((e) => e === 0), name);
    if (name.endsWith('running_var')) assert.ok(v.every((e) => e === 1), name);
  }
  const moved = step(c, 'wasm', 'graph');
  assert.notDeepEqual(moved.get('layer1.0.bn1.running_mean'), frozen.get('layer1.0.bn1.running_mean'));
  assert.deepEqual(moved.get('bn1.num_batches_tracked'), Float32Array.from([1]));
});

test('the step graph declines where it does not apply: cpu backend, one-logit head, a family without one, MEDPIPE_STEP_GRAPH=0', { skip }, () => {
  const run = (model: string, classes: number, backend: 'cpu' | 'wasm') => {
    tf.setBackend(backend);
    const spec = modelSpec(model, { numClasses: classes, imageSize: 32 });
    const params = createParams(spec, initState(spec, 1));
    try {
      return tf.tidy(() => {
        const r = trainStep(spec, params, tf.zeros([2, 32, 32, 3]), tf.tensor2d(Array.from({ length: 2 * classes }, (_, i) => (i % classes === 0 ? 1 : 0)), [2, classes]), 0.5);
        return r === undefined ? 'declined' : 'ran';
      });
    } finally {
      disposeParams(params);
    }
  };
  assert.equal(run('resnet_demo', 3, 'wasm'), 'ran');
  assert.equal(run('resnet_demo', 3, 'cpu'), 'declined');
  assert.equal(run('resnet_demo', 1, 'wasm'), 'declined');
  assert.equal(run('convnext_demo', 3, 'wasm'), 'declined');
  process.env['MEDPIPE_STEP_GRAPH'] = '0';
  try {
    assert.equal(run('resnet_demo', 3, 'wasm'), 'declined');
  } finally {
    delete process.env['MEDPIPE_STEP_GRAPH'];
  }
});

/** Eval-mode logits from seeded weights moved by one training step (running estimates not at their init). */
function evalLogits(c: Case, backend: 'cpu' | 'wasm', graph: boolean, underTape = false): Float32Array[] {
  tf.setBackend(backend);
  const spec = modelSpec(c.model, { numClasses: c.classes, imageSize: c.size });
  const params = createParams(spec, initState(spec, 12));
  const rng = new Random(c.size * 17 + c.batch);
  const saved = process.env['MEDPIPE_STEP_GRAPH'];
  if (!graph) process.env['MEDPIPE_STEP_GRAPH'] = '0';
  try {
    return tf.tidy(() => {
      const x = tf.tensor4d(rng.values(c.batch * c.size * c.size * 3), [c.batch, c.size, c.size, 3]);
      // Moves the running estimates (and only them: no optimiser step).
      tf.dispose(forward(spec, params, x, { training: true }));
      const logits = forward(spec, params, x, { training: false });
      const out = [Float32Array.from(logits.dataSync())];
      if (underTape) {
        // A gradient through the eval forward (as Grad-CAM takes one) must see every op.
        const g = tf.grad((xi: tf.Tensor) => tf.sum(forward(spec, params, xi as tf.Tensor4D, { training: false })))(x);
        out.push(Float32Array.from(g.dataSync()));
      }
      return out;
    });
  } finally {
    if (saved === undefined) delete process.env['MEDPIPE_STEP_GRAPH'];
    else process.env['MEDPIPE_STEP_GRAPH'] = saved;
    disposeParams(params);
  }
}

test('the eval-mode graph gives forward()\'s logits bit for bit on wasm and the cpu backend\'s within float32 rounding', { skip }, () => {
  for (const c of CASES) {
    const graph = evalLogits(c, 'wasm', true)[0]!;
    assert.deepEqual(graph, evalLogits(c, 'wasm', false)[0]!, `${c.model}@${c.size}: wasm`);
    if (c.cpu) {
      const e = relErr(graph, evalLogits(c, 'cpu', true)[0]!, `${c.model}@${c.size}: cpu`);
      assert.ok(e < 1e-4, `${c.model}@${c.size}: rel. error ${e.toExponential(2)} against cpu`);
    }
  }
});

test('under a gradient tape the eval forward takes the tfjs path: the input gradient is the cpu backend\'s', { skip }, () => {
  const c = CASES[1]!;
  const [, got] = evalLogits(c, 'wasm', true, true);
  const [, want] = evalLogits(c, 'cpu', true, true);
  const e = relErr(got!, want!, 'input gradient');
  assert.ok(e < 2e-3, `input gradient: rel. error ${e.toExponential(2)}`);
});

test('a frozen parameter gets no gradient from the step graph, as from tf.variableGrads over the trainable ones', { skip }, () => {
  tf.setBackend('wasm');
  const spec = modelSpec('resnet_demo', { numClasses: 3, imageSize: 32 });
  const params = createParams(spec, initState(spec, 4));
  for (const name of ['fc.weight', 'layer1.0.bn1.weight', 'conv1.weight']) params.get(name)!.trainable = false;
  try {
    tf.tidy(() => {
      const x = tf.tensor4d(new Random(9).values(2 * 32 * 32 * 3), [2, 32, 32, 3]);
      const onehot = tf.tensor2d([1, 0, 0, 0, 0, 1], [2, 3]);
      const r = trainStep(spec, params, x, onehot, 0.5, { updateStats: false });
      assert.ok(r !== undefined);
      const names = (g: tf.NamedTensorMap) => Object.keys(g).sort();
      const want = tf.variableGrads(() => softmaxCrossEntropy(tf, forward(spec, params, x, { training: true, updateStats: false }), onehot, 0.5)!, trainableVariables(params));
      assert.deepEqual(names(r.grads), names(want.grads));
      assert.equal(names(r.grads).length, trainableVariables(params).length);
      for (const n of names(want.grads)) assert.deepEqual(r.grads[n]!.dataSync(), want.grads[n]!.dataSync(), n);
    });
  } finally {
    disposeParams(params);
  }
});
