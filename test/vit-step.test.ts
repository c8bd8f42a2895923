// The ViT's tape-free training step and eval forward (src/ml/models/vit/step.ts) against the
// tfjs path they replace: forward() under tf.variableGrads with the fused cross-entropy, on
// the same wasm backend (the same kernels on the same values: equal bit for bit) and on the
// reference cpu backend (float32 sums in another order: within the whole-step tolerance).
// vit_demo at the demo's 32 px (a 4x4 patch grid) and at 40 px (5x5), DeiT-S at 32 px (2x2,
// 12 blocks, 6 heads); loss and every gradient. The weights are moved off their init (LayerNorm
// weights 1, biases 0), so that a gradient read from the wrong layer shows.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { initBackend } from '../src/engine/backend.js';
import { softmaxCrossEntropy } from '../src/engine/fused-ops.js';
import { loadNative, nativeStatus } from '../src/engine/native.js';
import { setNativeKernels } from '../src/engine/wasm-kernels.js';
import { clsAttention, features, forward, trainStep } from '../src/ml/models/forward.js';
import { createParams, disposeParams, trainableVariables, type ParamMap } from '../src/ml/models/params.js';
import { modelSpec } from '../src/ml/models/registry.js';
import { initState } from '../src/ml/models/state.js';
import type { ModelSpec } from '../src/ml/models/types.js';
import { Random, relErr } from './support/backend-compare.js';

const skip = loadNative() === undefined ? `native kernels not available: ${nativeStatus()}` : false;
if (skip) console.log(`# vit-step: SKIPPED — ${skip}`);

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
  /** Also against the cpu backend. */
  cpu: boolean;
}

const CASES: Case[] = [
  { model: 'vit_demo', size: 32, batch: 4, classes: 5, cpu: false },
  { model: 'vit_demo', size: 40, batch: 3, classes: 2, cpu: true },
  { model: 'deit_small_patch16_224', size: 32, batch: 2, classes: 3, cpu: false },
];

/** Seeded weights, each float tensor moved by a seeded amount. */
function model(c: Case, seed: number): { spec: ModelSpec; params: ParamMap } {
  const spec = modelSpec(c.model, { numClasses: c.classes, imageSize: c.size });
  const params = createParams(spec, initState(spec, seed));
  const rng = new Random(seed * 101);
  for (const v of params.values()) {
    if (v.dtype === 'float32') tf.tidy(() => v.assign(tf.add(v, tf.tensor(rng.values(v.size), v.shape).mul(0.2))));
  }
  return { spec, params };
}

type How = 'graph' | 'tape';

/** Loss and gradients after one step. */
function step(c: Case, backend: 'cpu' | 'wasm', how: How): Map<string, Float32Array> {
  tf.setBackend(backend);
  const { spec, params } = model(c, 11);
  const rng = new Random(c.size * 31 + c.batch);
  const out = new Map<string, Float32Array>();
  try {
    tf.tidy(() => {
      const x = tf.tensor4d(rng.values(c.batch * c.size * c.size * 3), [c.batch, c.size, c.size, 3]);
      const labels = Array.from({ length: c.batch }, (_, i) => (i * 7 + 1) % c.classes);
      // Soft labels on the first row: the loss's gradient reads every label value.
      const onehot = tf.tensor2d(labels.flatMap((l, i) => Array.from({ length: c.classes }, (_, k) => (i === 0 ? (k === l ? 0.7 : 0.3 / (c.classes - 1)) : k === l ? 1 : 0))), [c.batch, c.classes]);
      const r = how === 'graph'
        ? trainStep(spec, params, x, onehot, 1 / c.batch)
        : tf.variableGrads(() => {
          const logits = forward(spec, params, x, { training: true });
          return softmaxCrossEntropy(tf, logits, onehot, 1 / c.batch) ?? (tf.losses.softmaxCrossEntropy(onehot, logits) as tf.Scalar);
        }, trainableVariables(params));
      assert.ok(r !== undefined, `${c.model}: the step graph did not run on ${backend}`);
      out.set('loss', Float32Array.from(r.value.dataSync()));
      for (const [name, v] of params) {
        const g: tf.Tensor | undefined = r.grads[v.name];
        assert.ok(g !== undefined, `${how}: no gradient for ${name}`);
        assert.deepEqual(g.shape, v.shape, `gradient shape of ${name}`);
        out.set(`grad ${name}`, Float32Array.from(g.dataSync()));
      }
      assert.equal(Object.keys(r.grads).length, params.size);
    });
    return out;
  } finally {
    disposeParams(params);
  }
}

for (const c of CASES) {
  const what = `${c.model}@${c.size} batch ${c.batch}`;
  test(`the ViT step graph gives the tfjs path's loss and gradients bit for bit on wasm (${what})`, { skip }, () => {
    const tape = step(c, 'wasm', 'tape');
    const graph = step(c, 'wasm', 'graph');
    assert.equal(graph.size, tape.size);
    for (const [name, want] of tape) assert.deepEqual(graph.get(name), want, name);
  });

  if (c.cpu) test(`the ViT step graph matches the cpu backend's tfjs step (${what})`, { skip }, () => {
    const want = step(c, 'cpu', 'tape');
    const got = step(c, 'wasm', 'graph');
    for (const [name, w] of want) {
      const e = relErr(got.get(name)!, w, name);
      assert.ok(e < 2e-3, `${name}: rel. error ${e.toExponential(2)}`);
    }
  });
}

test('the ViT step graph frees everything it allocated', { skip }, () => {
  tf.setBackend('wasm');
  const be = tf.backend() as BackendWasm;
  const ids = be.dataIdMap.numDataIds();
  const tensors = tf.memory().numTensors;
  step(CASES[0]!, 'wasm', 'graph');
  assert.equal(be.dataIdMap.numDataIds(), ids, 'wasm buffers left behind');
  assert.equal(tf.memory().numTensors, tensors, 'tensors left behind');
});

test('the ViT step graph declines where it does not apply: cpu backend, one-logit head, a resampled position embedding, MEDPIPE_STEP_GRAPH=0', { skip }, () => {
  const run = (classes: number, backend: 'cpu' | 'wasm', size = 32) => {
    tf.setBackend(backend);
    const spec = modelSpec('vit_demo', { numClasses: classes, imageSize: 32 });
    const params = createParams(spec, initState(spec, 1));
    try {
      return tf.tidy(() => {
        const r = trainStep(spec, params, tf.zeros([2, size, size, 3]), tf.tensor2d(Array.from({ length: 2 * classes }, (_, i) => (i % classes === 0 ? 1 : 0)), [2, classes]), 0.5);
        return r === undefined ? 'declined' : 'ran';
      });
    } finally {
      disposeParams(params);
    }
  };
  assert.equal(run(3, 'wasm'), 'ran');
  assert.equal(run(3, 'cpu'), 'declined');
  assert.equal(run(1, 'wasm'), 'declined');
  assert.equal(run(3, 'wasm', 48), 'declined');
  process.env['MEDPIPE_STEP_GRAPH'] = '0';
  try {
    assert.equal(run(3, 'wasm'), 'declined');
  } finally {
    delete process.env['MEDPIPE_STEP_GRAPH'];
  }
});

/** Eval logits (or, with `feats`, features() in training mode, as DINO's teacher and the
 *  k-NN monitor take them) from moved weights, through the graph or (MEDPIPE_STEP_GRAPH=0)
 *  the tfjs forward. */
function evalLogits(c: Case, backend: 'cpu' | 'wasm', graph: boolean, feats = false): Float32Array {
  tf.setBackend(backend);
  const { spec, params } = model(c, 12);
  const rng = new Random(c.size * 17 + c.batch);
  const saved = process.env['MEDPIPE_STEP_GRAPH'];
  if (!graph) process.env['MEDPIPE_STEP_GRAPH'] = '0';
  try {
    return tf.tidy(() => {
      const x = tf.tensor4d(rng.values(c.batch * c.size * c.size * 3), [c.batch, c.size, c.size, 3]);
      const y = feats ? features(spec, params, x, { training: true }) : forward(spec, params, x, { training: false });
      return Float32Array.from(y.dataSync());
    });
  } finally {
    if (saved === undefined) delete process.env['MEDPIPE_STEP_GRAPH'];
    else process.env['MEDPIPE_STEP_GRAPH'] = saved;
    disposeParams(params);
  }
}

test('the ViT eval graph gives forward()\'s logits and features() bit for bit on wasm and the cpu backend\'s within float32 rounding', { skip }, () => {
  tf.setBackend('wasm');
  const be = tf.backend() as BackendWasm;
  const ids = be.dataIdMap.numDataIds();
  for (const c of CASES) {
    const graph = evalLogits(c, 'wasm', true);
    assert.deepEqual(graph, evalLogits(c, 'wasm', false), `${c.model}@${c.size}: wasm`);
    assert.deepEqual(evalLogits(c, 'wasm', true, true), evalLogits(c, 'wasm', false, true), `${c.model}@${c.size}: features`);
    if (c.cpu) {
      const e = relErr(graph, evalLogits(c, 'cpu', true), `${c.model}@${c.size}: cpu`);
      assert.ok(e < 1e-4, `${c.model}@${c.size}: rel. error ${e.toExponential(2)} against cpu`);
    }
  }
  tf.setBackend('wasm');
  assert.equal(be.dataIdMap.numDataIds(), ids, 'wasm buffers left behind');
});

test('under a gradient tape the ViT forward takes the tfjs path (the input gradient is the cpu backend\'s), and attention maps still work', { skip }, () => {
  const c = CASES[1]!;
  const grad = (backend: 'cpu' | 'wasm') => {
    tf.setBackend(backend);
    const { spec, params } = model(c, 13);
    try {
      return tf.tidy(() => {
        const x = tf.tensor4d(new Random(5).values(c.batch * c.size * c.size * 3), [c.batch, c.size, c.size, 3]);
        const g = tf.grad((xi: tf.Tensor) => tf.sum(forward(spec, params, xi as tf.Tensor4D, { training: false })))(x);
        const a = clsAttention(spec, params, x);
        assert.deepEqual(a.shape, [c.batch, 3, 26]);
        return Float32Array.from(g.dataSync());
      });
    } finally {
      disposeParams(params);
    }
  };
  const e = relErr(grad('wasm'), grad('cpu'), 'input gradient');
  assert.ok(e < 2e-3, `input gradient: rel. error ${e.toExponential(2)}`);
});

test('a frozen ViT parameter gets no gradient from the step graph, as from tf.variableGrads over the trainable ones', { skip }, () => {
  tf.setBackend('wasm');
  const { spec, params } = model(CASES[0]!, 4);
  for (const name of ['head.weight', 'blocks.0.norm1.weight', 'patch_embed.proj.weight', 'cls_token']) params.get(name)!.trainable = false;
  try {
    tf.tidy(() => {
      const x = tf.tensor4d(new Random(9).values(2 * 32 * 32 * 3), [2, 32, 32, 3]);
      const onehot = tf.tensor2d([1, 0, 0, 0, 0, 0, 1, 0, 0, 0], [2, 5]);
      const r = trainStep(spec, params, x, onehot, 0.5);
      assert.ok(r !== undefined);
      const names = (g: tf.NamedTensorMap) => Object.keys(g).sort();
      const want = tf.variableGrads(() => softmaxCrossEntropy(tf, forward(spec, params, x, { training: true }), onehot, 0.5)!, trainableVariables(params));
      assert.deepEqual(names(r.grads), names(want.grads));
      assert.equal(names(r.grads).length, trainableVariables(params).length);
      for (const n of names(want.grads)) assert.deepEqual(r.grads[n]!.dataSync(), want.grads[n]!.dataSync(), n);
    });
  } finally {
    disposeParams(params);
  }
});
