// ResNet's tape-free training step (src/ml/models/resnet/step.ts) against the tfjs path it
// replaces: forward() under tf.variableGrads with the fused cross-entropy, on the same wasm
// backend (the same kernels in the same order: equal bit for bit) and on the reference cpu
// backend (float32 sums in another order: within the whole-step tolerance of
// engine-native.test.ts). Basic blocks (resnet_demo, resnet18's layout) and bottlenecks
// (resnet50) with downsampling; loss, every gradient, the running estimates. The harness
// (./support/step-graph.ts) is the ViT's too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { forward } from '../src/ml/models/forward.js';
import { modelSpec } from '../src/ml/models/registry.js';
import { relErr } from './support/backend-compare.js';
import { assertFrees, assertFrozenLikeTape, evalRun, runStep, seededParams, stepGraphSetup, stepGraphTests, stepRuns, withStepGraph, type Backend, type Case } from './support/step-graph.js';

const skip = stepGraphSetup('resnet-step');

const CASES: Case[] = [
  { model: 'resnet_demo', size: 48, batch: 4, classes: 5, cpu: false },
  { model: 'resnet_demo', size: 33, batch: 3, classes: 2, cpu: true },
  { model: 'resnet50', size: 32, batch: 2, classes: 3, cpu: false },
];

stepGraphTests('ResNet', 'loss, gradients and running estimates', CASES, skip);

test('the step graph leaves the running estimates alone when asked, and frees everything it allocated', { skip }, () => {
  const c = CASES[0]!;
  const frozen = assertFrees(() => runStep(c, 'wasm', 'graph', { updateStats: false }));
  // torch's initial estimates: mean 0, variance 1, no batches counted.
  for (const [name, v] of frozen) {
    if (name.endsWith('running_mean') || name.endsWith('num_batches_tracked')) assert.ok(v.every((e) => e === 0), name);
    if (name.endsWith('running_var')) assert.ok(v.every((e) => e === 1), name);
  }
  const moved = runStep(c, 'wasm', 'graph');
  assert.notDeepEqual(moved.get('layer1.0.bn1.running_mean'), frozen.get('layer1.0.bn1.running_mean'));
  assert.deepEqual(moved.get('bn1.num_batches_tracked'), Float32Array.from([1]));
});

test('the step graph declines where it does not apply: cpu backend, one-logit head, a family without one, MEDPIPE_STEP_GRAPH=0', { skip }, () => {
  assert.equal(stepRuns('resnet_demo', 3, 'wasm'), 'ran');
  assert.equal(stepRuns('resnet_demo', 3, 'cpu'), 'declined');
  assert.equal(stepRuns('resnet_demo', 1, 'wasm'), 'declined');
  assert.equal(stepRuns('convnext_demo', 3, 'wasm'), 'declined');
  assert.equal(withStepGraph(false, () => stepRuns('resnet_demo', 3, 'wasm')), 'declined');
});

/** Eval-mode logits from seeded weights moved by one training step (running estimates not at their init). */
function evalLogits(c: Case, backend: Backend, graph: boolean, underTape = false): Float32Array[] {
  return evalRun(c, backend, graph, {}, (spec, params, x) => {
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
  const spec = modelSpec('resnet_demo', { numClasses: 3, imageSize: 32 });
  tf.setBackend('wasm'); // the weights are made on the backend the step runs on
  assertFrozenLikeTape(spec, seededParams(spec, 4), ['fc.weight', 'layer1.0.bn1.weight', 'conv1.weight'], [1, 0, 0, 0, 0, 1], { updateStats: false });
});
