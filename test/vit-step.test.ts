// The ViT's tape-free training step and eval forward (src/ml/models/vit/step.ts) against the
// tfjs path they replace: forward() under tf.variableGrads with the fused cross-entropy, on
// the same wasm backend (the same kernels on the same values: equal bit for bit) and on the
// reference cpu backend (float32 sums in another order: within the whole-step tolerance).
// vit_demo at the demo's 32 px (a 4x4 patch grid) and at 40 px (5x5), DeiT-S at 32 px (2x2,
// 12 blocks, 6 heads); a batch of one (the CLS token's broadcast gradient is a clone there,
// not a sum) and qkv without its bias (timm's qkv_bias=False); loss and every gradient. The
// weights are moved off their init (LayerNorm weights 1, biases 0), so that a gradient read
// from the wrong layer shows. The harness (./support/step-graph.ts) is ResNet's too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { clsAttention, features, forward } from '../src/ml/models/forward.js';
import { paramsOf } from '../src/ml/models/registry.js';
import type { ModelSpec } from '../src/ml/models/types.js';
import { relErr } from './support/backend-compare.js';
import { assertFrees, assertFrozenLikeTape, caseSpec, evalRun, runStep, seededParams, stepGraphSetup, stepGraphTests, stepRuns, withStepGraph, type Backend, type Case } from './support/step-graph.js';

const skip = stepGraphSetup('vit-step');

interface ViTCase extends Case {
  /** The qkv projection without its bias (the registered models have one). */
  noQkvBias?: boolean;
}

const CASES: ViTCase[] = [
  { model: 'vit_demo', size: 32, batch: 4, classes: 5, cpu: false },
  { model: 'vit_demo', size: 40, batch: 3, classes: 2, cpu: true },
  { model: 'deit_small_patch16_224', size: 32, batch: 2, classes: 3, cpu: false },
  { model: 'vit_demo', size: 32, batch: 1, classes: 4, cpu: false },
  { model: 'vit_demo', size: 32, batch: 2, classes: 3, cpu: false, noQkvBias: true },
];

function specOf(c: ViTCase): ModelSpec {
  const spec = caseSpec(c);
  if (!c.noQkvBias) return spec;
  if (spec.config.family !== 'vit') throw new Error(`${c.model} is not a ViT`);
  const config = { ...spec.config, qkvBias: false };
  return { ...spec, config, params: paramsOf(config) };
}

const what = (c: ViTCase) => `${c.model}@${c.size} batch ${c.batch}${c.noQkvBias ? ', no qkv bias' : ''}`;

test('the qkv-bias-free case has no qkv biases (and the others have them)', () => {
  const names = (c: ViTCase) => specOf(c).params.map((p) => p.name).filter((n) => /attn\.qkv\.bias$/.test(n));
  assert.deepEqual(names(CASES[4]!), []);
  assert.equal(names(CASES[3]!).length, 4);
});

stepGraphTests('ViT', 'loss and gradients', CASES, skip, (c) => ({ spec: specOf(c), move: true, noBuffers: true }), what);

test('the ViT step graph frees everything it allocated', { skip }, () => {
  for (const c of [CASES[0]!, CASES[3]!]) assertFrees(() => runStep(c, 'wasm', 'graph', { move: true }));
});

test('the ViT step graph declines where it does not apply: cpu backend, one-logit head, a resampled position embedding, MEDPIPE_STEP_GRAPH=0', { skip }, () => {
  assert.equal(stepRuns('vit_demo', 3, 'wasm'), 'ran');
  assert.equal(stepRuns('vit_demo', 3, 'cpu'), 'declined');
  assert.equal(stepRuns('vit_demo', 1, 'wasm'), 'declined');
  assert.equal(stepRuns('vit_demo', 3, 'wasm', { size: 48 }), 'declined');
  assert.equal(withStepGraph(false, () => stepRuns('vit_demo', 3, 'wasm')), 'declined');
});

/** Eval logits (or, with `feats`, features() in training mode, as DINO's teacher and the
 *  k-NN monitor take them) from moved weights, through the graph or (MEDPIPE_STEP_GRAPH=0)
 *  the tfjs forward. */
function evalLogits(c: ViTCase, backend: Backend, graph: boolean, feats = false): Float32Array {
  return evalRun(c, backend, graph, { spec: specOf(c), move: true }, (spec, params, x) => {
    const y = feats ? features(spec, params, x, { training: true }) : forward(spec, params, x, { training: false });
    return Float32Array.from(y.dataSync());
  });
}

test('the ViT eval graph gives forward()\'s logits and features() bit for bit on wasm and the cpu backend\'s within float32 rounding', { skip }, () => {
  assertFrees(() => {
    for (const c of CASES) {
      const graph = evalLogits(c, 'wasm', true);
      assert.deepEqual(graph, evalLogits(c, 'wasm', false), `${what(c)}: wasm`);
      assert.deepEqual(evalLogits(c, 'wasm', true, true), evalLogits(c, 'wasm', false, true), `${what(c)}: features`);
      if (c.cpu) {
        const e = relErr(graph, evalLogits(c, 'cpu', true), `${what(c)}: cpu`);
        assert.ok(e < 1e-4, `${what(c)}: rel. error ${e.toExponential(2)} against cpu`);
      }
    }
  }, false);
});

test('under a gradient tape the ViT forward takes the tfjs path (the input gradient is the cpu backend\'s), and attention maps still work', { skip }, () => {
  const c = CASES[1]!;
  const grad = (backend: Backend) => evalRun(c, backend, true, { seed: 13, move: true, inputSeed: 5 }, (spec, params, x) => {
    const g = tf.grad((xi: tf.Tensor) => tf.sum(forward(spec, params, xi as tf.Tensor4D, { training: false })))(x);
    const a = clsAttention(spec, params, x);
    assert.deepEqual(a.shape, [c.batch, 3, 26]);
    return Float32Array.from(g.dataSync());
  });
  const e = relErr(grad('wasm'), grad('cpu'), 'input gradient');
  assert.ok(e < 2e-3, `input gradient: rel. error ${e.toExponential(2)}`);
});

test('a frozen ViT parameter gets no gradient from the step graph, as from tf.variableGrads over the trainable ones', { skip }, () => {
  const spec = caseSpec(CASES[0]!);
  tf.setBackend('wasm'); // the weights are made on the backend the step runs on
  assertFrozenLikeTape(spec, seededParams(spec, 4, true), ['head.weight', 'blocks.0.norm1.weight', 'patch_embed.proj.weight', 'cls_token'], [1, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
});
