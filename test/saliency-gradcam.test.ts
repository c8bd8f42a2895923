// Grad-CAM on a tiny ResNet trained in-test on images whose label is the orientation of a
// striped square somewhere in the top-left quadrant (the rest is isotropic noise): the maps
// are finite, image-sized, and after training most of their mass lies in that quadrant.
// Also: the gradient plumbing against the closed form (for a GAP + fc head, Grad-CAM equals
// CAM: the channel weights are fc's column / (h*w)), and the binary head's class 0.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../src/data/rng.js';
import { initBackend } from '../src/engine/backend.js';
import { convActivations, forward } from '../src/ml/models/forward.js';
import { createParams, disposeParams, param, trainableVariables, type ParamMap } from '../src/ml/models/params.js';
import { specFromConfig } from '../src/ml/models/registry.js';
import { initState } from '../src/ml/models/state.js';
import type { ModelSpec, ResNetConfig } from '../src/ml/models/types.js';
import { gradCam } from '../src/ml/saliency/gradcam.js';
import { resizeBilinear } from '../src/ml/saliency/resample.js';
import { massIn } from '../src/ml/saliency/stats.js';

const S = 64;
const QUADRANT = { top: 0, left: 0, height: S / 2, width: S / 2 };
// Stem /4, layer2 /2: an 8x8 activation grid at 64 px, fine enough to localise a quadrant.
const CFG: ResNetConfig = { family: 'resnet', block: 'basic', layers: [1, 1], widths: [16, 32], stemWidth: 16, numClasses: 2, channels: 3, imageSize: S, zeroInitResidual: false };

/** Noise in [-0.5, 0.5]; a 16x16 square of +-1 stripes (label 1: horizontal, 0: vertical)
 *  at a random place inside the top-left quadrant. Only that quadrant decides the label. */
function image(rng: Rng, label: number): Float32Array {
  const x = new Float32Array(S * S * 3);
  for (let i = 0; i < x.length; i++) x[i] = rng.uniform(-0.5, 0.5);
  const P = S / 4;
  const top = rng.intIn(0, S / 2 - P);
  const left = rng.intIn(0, S / 2 - P);
  for (let y = top; y < top + P; y++) {
    for (let c = left; c < left + P; c++) x.fill((label ? y : c) % 4 < 2 ? 1 : -1, (y * S + c) * 3, (y * S + c) * 3 + 3);
  }
  return x;
}

function batch(rng: Rng, n: number): { x: tf.Tensor4D; y: tf.Tensor2D } {
  const xs = new Float32Array(n * S * S * 3);
  const ys: number[] = [];
  for (let i = 0; i < n; i++) {
    ys.push(i % 2);
    xs.set(image(rng, i % 2), i * S * S * 3);
  }
  return { x: tf.tensor4d(xs, [n, S, S, 3]), y: tf.tidy(() => tf.oneHot(tf.tensor1d(ys, 'int32'), 2) as tf.Tensor2D) };
}

async function train(spec: ModelSpec, params: ParamMap, steps: number): Promise<number> {
  const opt = tf.train.adam(3e-3);
  const rng = new Rng(5);
  let last = NaN;
  for (let s = 0; s < steps; s++) {
    const b = batch(rng, 16);
    const loss = opt.minimize(() => tf.losses.softmaxCrossEntropy(b.y, forward(spec, params, b.x, { training: true })) as tf.Scalar, true, trainableVariables(params));
    last = (await loss!.data())[0];
    tf.dispose([loss!, b.x, b.y]);
  }
  opt.dispose();
  return last;
}

test('Grad-CAM of a trained tiny ResNet: finite, image-sized, mass in the label region', { timeout: 90_000 }, async (t) => {
  await tf.setBackend((await initBackend({ prefer: ['wasm', 'cpu'] })).backend);
  const spec = specFromConfig('tiny-resnet', CFG);
  const params = createParams(spec, initState(spec, 1));
  const probe = batch(new Rng(77), 8);
  try {
    const before = await gradCam(spec, params, probe.x);
    const loss = await train(spec, params, 30);
    assert.ok(loss < 0.2, `training converged (loss ${loss})`);
    const maps = await gradCam(spec, params, probe.x);
    const labels = Array.from({ length: 8 }, (_, i) => i % 2);
    assert.deepEqual(maps.map((m) => m.predicted), labels, 'the trained model classifies the probe images');
    for (const m of maps) {
      assert.equal(m.height, S);
      assert.equal(m.width, S);
      assert.equal(m.map.length, S * S);
      assert.deepEqual(m.grid, [8, 8]);
      assert.ok(m.map.every((v) => Number.isFinite(v) && v >= 0), 'finite and non-negative');
      assert.ok(m.map.some((v) => v > 0), 'not all zero');
    }
    const mass = maps.map((m) => massIn(m.map, S, QUADRANT));
    const massBefore = before.map((m) => massIn(m.map, S, QUADRANT));
    const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    t.diagnostic(`mass in the quadrant: trained ${mass.map((v) => v.toFixed(2))} (mean ${mean(mass).toFixed(3)}); untrained mean ${mean(massBefore).toFixed(3)}`);
    // The quadrant is 25% of the image; trained maps put most of their mass there.
    assert.ok(mean(mass) > 0.6, `mean mass in the quadrant ${mean(mass).toFixed(3)} (${mass.map((v) => v.toFixed(2))})`);
    assert.ok(Math.min(...mass) > 0.45, `every map mostly in the quadrant: ${mass.map((v) => v.toFixed(2))}`);
    assert.ok(mean(mass) > mean(massBefore) + 0.2, `training moved the mass there (before ${mean(massBefore).toFixed(3)})`);
  } finally {
    tf.dispose([probe.x, probe.y]);
    disposeParams(params);
  }
});

test('Grad-CAM equals the closed form for a GAP + fc head; chosen and binary classes', { timeout: 60_000 }, async () => {
  await tf.setBackend((await initBackend({ prefer: ['wasm', 'cpu'] })).backend);
  const cfg: ResNetConfig = { ...CFG, widths: [4, 6], stemWidth: 4, numClasses: 3, imageSize: 32 };
  const spec = specFromConfig('tiny-3', cfg);
  const state = initState(spec, 3);
  // Random fc and BN statistics, so the closed form is not trivially zero.
  const rng = new Rng(9);
  for (const [name, t] of state) if (name.startsWith('fc.')) t.data.forEach((_, i) => (t.data[i] = rng.normal()));
  const params = createParams(spec, state);
  const x = tf.tensor4d(Float32Array.from({ length: 2 * 32 * 32 * 3 }, () => rng.normal()), [2, 32, 32, 3]);
  try {
    const maps = await gradCam(spec, params, x, (_p, i) => (i === 0 ? 2 : 1));
    assert.deepEqual(maps.map((m) => m.target), [2, 1]);
    const acts = tf.tidy(() => convActivations(spec, params, x, { training: false }));
    const [, h, w, C] = acts.shape;
    const a = await acts.data();
    const fc = await param(params, 'fc.weight').data(); // [C, classes]
    acts.dispose();
    maps.forEach((m, b) => {
      const coarse = new Float32Array(h * w);
      for (let i = 0; i < h * w; i++) {
        let s = 0;
        for (let k = 0; k < C; k++) s += a[(b * h * w + i) * C + k] * (fc[k * 3 + m.target] / (h * w));
        coarse[i] = Math.max(0, s);
      }
      coarse.forEach((v, i) => assert.ok(Math.abs(v - m.coarse[i]) < 1e-5 * (1 + Math.abs(v)), `cell ${i}: ${m.coarse[i]} vs ${v}`));
      const up = resizeBilinear(coarse, h, w, 1, 32, 32);
      up.forEach((v, i) => assert.ok(Math.abs(v - m.map[i]) < 1e-5 * (1 + Math.abs(v))));
    });
    await assert.rejects(gradCam(spec, params, x, () => 3), /class 3 is outside the model's 3 classes/);
  } finally {
    x.dispose();
    disposeParams(params);
  }

  // One sigmoid logit: class 1 follows the logit, class 0 its negation, so where one map is
  // positive before the ReLU the other is zero.
  const bin = specFromConfig('tiny-1', { ...cfg, numClasses: 1 });
  const bparams = createParams(bin, initState(bin, 4));
  const bx = tf.tensor4d(Float32Array.from({ length: 32 * 32 * 3 }, () => rng.normal()), [1, 32, 32, 3]);
  try {
    const [one] = await gradCam(bin, bparams, bx, () => 1);
    const [zero] = await gradCam(bin, bparams, bx, () => 0);
    assert.equal(Math.abs(one.score + zero.score) < 1e-6, true, 'scores are +-logit');
    one.coarse.forEach((v, i) => assert.ok(v === 0 || zero.coarse[i] === 0, 'the two classes never share a cell'));
    assert.equal(one.probs.length, 2);
    assert.ok(Math.abs(one.probs[0] + one.probs[1] - 1) < 1e-9);
  } finally {
    bx.dispose();
    disposeParams(bparams);
  }
});
