// DeiT attention maps: DINO's threshold keeps exactly the stated share of the mass on
// hand-made attention; the last block's CLS attention is a distribution per head; and a tiny
// ViT trained in-test on images whose label is the colour of a square in the top-left
// quadrant (the other quadrants hold squares of random colour, so only position tells them
// apart) attends, after the threshold, mostly to that quadrant.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../src/data/rng.js';
import { initBackend } from '../src/engine/backend.js';
import { clsAttention, forward } from '../src/ml/models/forward.js';
import { createParams, disposeParams, trainableVariables, type ParamMap } from '../src/ml/models/params.js';
import { specFromConfig } from '../src/ml/models/registry.js';
import { initState } from '../src/ml/models/state.js';
import type { ModelSpec, ViTConfig } from '../src/ml/models/types.js';
import { attentionMaps } from '../src/ml/saliency/attention.js';
import { upsampleNearest } from '../src/ml/saliency/resample.js';
import { massIn } from '../src/ml/saliency/stats.js';
import { topMassMask } from '../src/ml/saliency/threshold.js';

const S = 32;
const QUADRANT = { top: 0, left: 0, height: S / 2, width: S / 2 };
const CFG: ViTConfig = { family: 'vit', patchSize: 8, dim: 32, depth: 2, heads: 2, mlpRatio: 2, qkvBias: true, eps: 1e-6, numClasses: 2, channels: 3, imageSize: S };

const share = (values: number[], mask: Uint8Array) => values.reduce((s, v, i) => s + (mask[i] ? v : 0), 0) / values.reduce((a, b) => a + b, 0);

test('threshold: keeps the smallest set of strongest patches holding the stated share', () => {
  // Dyadic values: sums are exact in floating point, so "exactly" is testable.
  const att = [0.125, 0.25, 0.0625, 0.25, 0.0625, 0.25];
  const half = topMassMask(att, 0.5);
  assert.equal(half.kept, 0.5);
  assert.equal(share(att, half.mask), 0.5);
  assert.equal(half.mask.reduce((a, b) => a + b, 0), 2, 'two of the three 0.25s');
  assert.deepEqual(Array.from(topMassMask(att, 0.75).mask), [0, 1, 0, 1, 0, 1]);
  assert.equal(topMassMask(att, 0.75).kept, 0.75);
  assert.equal(topMassMask(att, 0.875).kept, 0.875);
  // Unnormalised input: the share is of its own total.
  const scaled = att.map((v) => v * 8);
  assert.equal(topMassMask(scaled, 0.5).kept, 0.5);
  // No exact cut: the smallest top set with at least the share (DINO: cumsum > 1 - t).
  const uneven = [0.4, 0.1, 0.3, 0.2];
  const u = topMassMask(uneven, 0.5);
  assert.deepEqual(Array.from(u.mask), [1, 0, 1, 0]);
  assert.ok(Math.abs(u.kept - 0.7) < 1e-12);
  // Threshold 1 keeps every patch with any attention; invalid thresholds are refused.
  assert.deepEqual(Array.from(topMassMask([0, 0.5, 0.5], 1).mask), [0, 1, 1]);
  assert.throws(() => topMassMask(att, 0), /threshold must be in \(0, 1\]/);
  assert.throws(() => topMassMask([0.5, Number.NaN], 0.5), /not a finite non-negative/);
  // Random attention: kept share >= t, and dropping the weakest kept patch falls below t.
  const rng = new Rng(4);
  for (let trial = 0; trial < 50; trial++) {
    const v = Array.from({ length: 49 }, () => rng.float() ** 3);
    const t = rng.uniform(0.05, 0.95);
    const { mask, kept } = topMassMask(v, t);
    assert.ok(kept >= t - 1e-12 && Math.abs(kept - share(v, mask)) < 1e-9);
    const weakest = v.reduce((best, x, i) => (mask[i] && (best < 0 || x < v[best]) ? i : best), -1);
    const less = Uint8Array.from(mask, (m, i) => (i === weakest ? 0 : m));
    assert.ok(share(v, less) < t, 'minimal');
    assert.ok(v.every((x, i) => mask[i] || v.every((y, j) => !mask[j] || y >= x)), 'kept patches are the strongest');
  }
});

test('upsampling by the patch size: each token becomes a patch-sized square', () => {
  const up = upsampleNearest([1, 2, 3, 4], 2, 2, 3);
  assert.equal(up.length, 36);
  assert.deepEqual(Array.from(up.subarray(0, 6)), [1, 1, 1, 2, 2, 2]);
  assert.deepEqual(Array.from(up.subarray(30, 36)), [3, 3, 3, 4, 4, 4]);
});

function image(rng: Rng, label: number): Float32Array {
  const x = new Float32Array(S * S * 3);
  for (let i = 0; i < x.length; i++) x[i] = rng.uniform(-0.5, 0.5);
  const Q = S / 2;
  const P = S / 4;
  for (const [qy, qx] of [[0, 0], [0, Q], [Q, 0], [Q, Q]]) {
    // Red (label 1) or green (label 0) with blue low; elsewhere the colour is a coin flip.
    const colour = qy + qx === 0 ? label : rng.int(2);
    const top = qy + rng.intIn(0, Q - P);
    const left = qx + rng.intIn(0, Q - P);
    for (let y = top; y < top + P; y++) {
      for (let c = left; c < left + P; c++) x.set([colour ? 1.5 : 0, colour ? 0 : 1.5, -1.5], (y * S + c) * 3);
    }
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

async function train(spec: ModelSpec, params: ParamMap, steps: number): Promise<void> {
  const opt = tf.train.adam(3e-3);
  const rng = new Rng(5);
  for (let s = 0; s < steps; s++) {
    const b = batch(rng, 16);
    const loss = opt.minimize(() => tf.losses.softmaxCrossEntropy(b.y, forward(spec, params, b.x, { training: true })) as tf.Scalar, true, trainableVariables(params));
    tf.dispose([loss!, b.x, b.y]);
  }
  opt.dispose();
}

test('attention of a trained tiny ViT: distributions, image-sized maps, mass in the label region', { timeout: 90_000 }, async (t) => {
  await tf.setBackend((await initBackend({ prefer: ['wasm', 'cpu'] })).backend);
  const spec = specFromConfig('tiny-vit', CFG);
  const params = createParams(spec, initState(spec, 1));
  const probe = batch(new Rng(77), 8);
  try {
    const raw = tf.tidy(() => clsAttention(spec, params, probe.x));
    assert.deepEqual(raw.shape, [8, 2, 17]);
    const sums = await tf.tidy(() => tf.sum(raw, 2)).data();
    raw.dispose();
    sums.forEach((s) => assert.ok(Math.abs(s - 1) < 1e-5, 'each head attends with a distribution'));
    const before = await attentionMaps(spec, params, probe.x, 0.5);

    await train(spec, params, 200);
    const maps = await attentionMaps(spec, params, probe.x, 0.5);
    const correct = maps.filter((m, i) => m.predicted === i % 2).length;
    assert.ok(correct >= 7, `the trained model classifies the probe images (${correct}/8)`);
    for (const m of maps) {
      assert.equal(m.map.length, S * S);
      assert.equal(m.height, S);
      assert.equal(m.grid, 4);
      assert.ok(m.map.every((v) => Number.isFinite(v) && v >= 0));
      for (const h of m.heads) {
        assert.ok(h.kept >= 0.5 - 1e-6, 'each head keeps at least half its mass');
        assert.ok(Math.abs(h.attention.reduce((a, b) => a + b, 0) - 1) < 1e-5);
        assert.equal(h.map.length, S * S);
        // The map is the kept attention, each patch an 8x8 square.
        h.mask.forEach((k, i) => {
          const y = Math.floor(i / 4) * 8;
          const x = (i % 4) * 8;
          assert.equal(h.map[y * S + x], k ? h.attention[i] : 0);
          assert.equal(h.map[(y + 7) * S + x + 7], h.map[y * S + x]);
        });
      }
    }
    const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    const mass = maps.map((m) => massIn(m.map, S, QUADRANT));
    const massBefore = before.map((m) => massIn(m.map, S, QUADRANT));
    t.diagnostic(`mass in the quadrant: trained ${mass.map((v) => v.toFixed(2))} (mean ${mean(mass).toFixed(3)}); untrained mean ${mean(massBefore).toFixed(3)}`);
    // The quadrant is 4 of 16 patches (25% of the area).
    assert.ok(mean(mass) > 0.7, `mean mass in the quadrant ${mean(mass).toFixed(3)} (${mass.map((v) => v.toFixed(2))})`);
    assert.ok(mass.filter((v) => v > 0.5).length >= 6, `most maps mostly in the quadrant: ${mass.map((v) => v.toFixed(2))}`);
    assert.ok(mean(mass) > mean(massBefore) + 0.3, `training moved the attention there (before ${mean(massBefore).toFixed(3)})`);
  } finally {
    tf.dispose([probe.x, probe.y]);
    disposeParams(params);
  }
});
