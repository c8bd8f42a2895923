// The places where medpipe must compute what the authors' Python computed, checked against
// values from Pillow, scikit-learn and PyTorch (test/fixtures/reference/make_fidelity.py wrote
// fidelity.json; the versions are in it).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { decodeBytes } from '../src/data/decode.js';
import { pilBilinearResize } from '../src/data/pil-resize.js';
import { clipPerParameter } from '../src/ml/dino/clip.js';
import { DINO_KNN, knnAccuracy } from '../src/ml/dino/knn.js';
import { balancedAccuracy, macroRecall } from '../src/ml/metrics.js';
import { Adam } from '../src/ml/train/adam.js';
import { taskMetric } from '../src/ml/train/task-metrics.js';

await tf.setBackend('cpu');

interface Fixture {
  resize: { width: number; height: number; channels: number; out_width: number; out_height: number; pixels: string }[];
  png: { png: string; size: number; pixels: string };
  recall: { y_true: number[]; y_pred: number[]; macro_recall: number; balanced_accuracy: number }[];
  adamw: {
    lr: number;
    weight_decay: Record<'a' | 'b', number>;
    init: Record<'a' | 'b', number[]>;
    grads: Record<'a' | 'b', number[] | null>[];
    after: Record<'a' | 'b', number[]>[];
  };
  norm: { n: number; float64: number; torch_float32: number };
  knn: { dim: number; classes: number; bank: number[]; bank_labels: number[]; queries: number[]; query_labels: number[]; top1: number };
}

const fixture = JSON.parse(readFileSync(new URL('../../test/fixtures/reference/fidelity.json', import.meta.url), 'utf8')) as Fixture;

/** The generator's pixel formula. */
function pixel(x: number, y: number, ch: number): number {
  return (x * 3 + y * 5 + ch * 60 + (((x * 2654435761 + y * 40503 + ch * 97) % 4099) % 64)) % 256;
}

function image(w: number, h: number, c: number): Uint8Array {
  const out = new Uint8Array(w * h * c);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let ch = 0; ch < c; ch++) out[(y * w + x) * c + ch] = pixel(x, y, ch);
  return out;
}

const bytes = (b64: string): Uint8Array => new Uint8Array(Buffer.from(b64, 'base64'));

test('pil_bilinear resizes byte for byte as Pillow BILINEAR: down, up, one axis, grey and RGB', () => {
  for (const r of fixture.resize) {
    const out = pilBilinearResize(image(r.width, r.height, r.channels), r.width, r.height, r.channels, r.out_width, r.out_height);
    assert.deepEqual(Buffer.from(out), Buffer.from(bytes(r.pixels)), `${r.width}x${r.height}x${r.channels} -> ${r.out_width}x${r.out_height}`);
  }
});

test('preprocess with kernel pil_bilinear decodes a PNG to exactly what PIL convert + resize give; lanczos3 does not', async () => {
  const { png, size, pixels } = fixture.png;
  const expected = Buffer.from(bytes(pixels));
  const got = await decodeBytes(bytes(png), 'ref.png', { size, channels: 3, kernel: 'pil_bilinear' });
  assert.deepEqual(Buffer.from(got), expected);
  const lanczos = await decodeBytes(bytes(png), 'ref.png', { size, channels: 3, kernel: 'lanczos3' });
  assert.notDeepEqual(Buffer.from(lanczos), expected, 'the other kernel is a different resize');
});

test("ISIC metric: macro_recall is sklearn's recall_score(average='macro'); balanced_recall stays balanced_accuracy_score", () => {
  let differ = 0;
  for (const c of fixture.recall) {
    assert.ok(Math.abs(macroRecall(c.y_true, c.y_pred) - c.macro_recall) < 1e-12, `macro recall of ${JSON.stringify(c)}`);
    assert.ok(Math.abs(balancedAccuracy(c.y_true, c.y_pred) - c.balanced_accuracy) < 1e-12, `balanced accuracy of ${JSON.stringify(c)}`);
    // The same through the stage-level metric names, from one-hot "probabilities".
    const probs = new Float32Array(c.y_pred.length * 8);
    c.y_pred.forEach((p, i) => (probs[i * 8 + p] = 1));
    const p = { probs, numClasses: 8, labels: c.y_true };
    assert.ok(Math.abs(taskMetric('macro_recall', p, 8) - c.macro_recall) < 1e-12);
    assert.ok(Math.abs(taskMetric('balanced_recall', p, 8) - c.balanced_accuracy) < 1e-12);
    if (c.macro_recall !== c.balanced_accuracy) differ++;
  }
  assert.ok(differ > 0, 'the fixture has cases where the two definitions differ');
});

test('AdamW counts steps per parameter as torch: a parameter frozen for 3 steps starts its bias correction at 1', () => {
  const { lr, weight_decay, init, grads, after } = fixture.adamw;
  const params = new Map([
    ['a', tf.variable(tf.tensor1d(init.a))],
    ['b', tf.variable(tf.tensor1d(init.b))],
  ]);
  const adam = new Adam(tf, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.04, decoupled: true, noDecay: (n) => weight_decay[n as 'a' | 'b'] === 0 });
  grads.forEach((g, step) => {
    const map = new Map<string, tf.Tensor>();
    for (const name of ['a', 'b'] as const) if (g[name]) map.set(name, tf.tensor1d(g[name]!));
    adam.apply(params, map, lr);
    for (const t of map.values()) t.dispose();
    for (const name of ['a', 'b'] as const) {
      const got = params.get(name)!.dataSync();
      after[step]![name].forEach((v, i) => assert.ok(Math.abs(got[i]! - v) < 2e-6, `step ${step + 1} ${name}[${i}]: ${got[i]} vs torch ${v}`));
    }
  });
  assert.deepEqual(Object.fromEntries(adam.steps), { a: 8, b: 5 });
});

test('the clipping norm of a 2M-element gradient agrees with the float64 norm to float32 precision', () => {
  const { n, float64 } = fixture.norm;
  const g = new Float32Array(n);
  for (let i = 0; i < n; i++) g[i] = Math.fround(((i * 2654435761) % 2 ** 32) / 2 ** 32 - 0.5);
  const grads = new Map([['w', tf.tensor1d(g)]]);
  const norm = clipPerParameter(grads, 1e9).get('w')!;
  assert.ok(Math.abs(norm - float64) / float64 < 1.2e-7, `norm ${norm} vs float64 ${float64}: relative ${Math.abs(norm - float64) / float64}`);
  grads.get('w')!.dispose();
});

test("the DINO k-NN monitor gives eval_knn's top-1 (cosine, 20 neighbours, T 0.07)", () => {
  const r = fixture.knn;
  const top1 = knnAccuracy(Float32Array.from(r.bank), r.bank_labels, Float32Array.from(r.queries), r.query_labels, r.dim, { ...DINO_KNN, classes: r.classes });
  assert.equal(top1, r.top1);
  assert.ok(r.top1 > 0.3 && r.top1 < 1, `the fixture is neither chance nor solved (${r.top1})`);
});
