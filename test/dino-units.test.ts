// DINO's pieces on hand-made values: schedules at their ends, the centre and EMA formulas, the
// loss against a plain-arithmetic reference, the head's normalisations, AdamW's decoupled
// decay, and the multi-crop augmentation's shapes and determinism.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { cropSizes, DINO_AUGMENT, gaussianBlur, grayscale, multiCrop, solarize } from '../src/ml/dino/augment.js';
import { clipPerParameter } from '../src/ml/dino/clip.js';
import { headForward, headParams, makeVariables } from '../src/ml/dino/head.js';
import { dinoLoss, emaUpdate, teacherTargets, updatedCenter } from '../src/ml/dino/loss.js';
import { dinoCosine, stepValues, teacherTemperature } from '../src/ml/dino/schedules.js';
import { noDecay } from '../src/ml/dino/train.js';
import { Rng } from '../src/data/rng.js';
import { modelConfig } from '../src/ml/models/registry.js';
import { Adam } from '../src/ml/train/adam.js';

const f32 = Math.fround;
const close = (a: number, b: number, tol: number, what: string) => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

test('schedules: lr warm-up reaches the peak on its last step, cosines end at their finals, teacher temperature 0.04 -> 0.07 over 30 epochs', () => {
  const o = {
    epochs: 300, stepsPerEpoch: 10, lr: 1e-4, minLr: 1e-6, warmupEpochs: 10, weightDecay: 1e-5, weightDecayEnd: 1e-4,
    momentum: 0.99, teacherTemp: 0.07, warmupTeacherTemp: 0.04, warmupTeacherTempEpochs: 30,
  };
  const first = stepValues(o, 0, 0);
  assert.equal(first.lr, 0, 'np.linspace(0, lr, warmup) starts at 0');
  close(first.weightDecay, 1e-5, 1e-18, 'weight decay starts at 1e-5');
  assert.equal(first.momentum, 0.99);
  assert.equal(first.teacherTemp, 0.04);
  close(stepValues(o, 99, 9).lr, 1e-4, 1e-18, 'last warm-up step is the peak');
  close(stepValues(o, 49, 4).lr, (1e-4 * 49) / 99, 1e-18, 'linear in between');
  close(stepValues(o, 100, 10).lr, 1e-4, 1e-18, 'cosine starts at the peak');
  const last = stepValues(o, 2999, 299);
  close(last.lr, 1e-6, 1e-9, 'lr near min_lr on the last step');
  close(last.weightDecay, 1e-4, 1e-9, 'weight decay near its end');
  close(last.momentum, 1, 1e-6, 'momentum near 1');
  assert.equal(last.teacherTemp, 0.07);
  // Exactly at the end of the cosine (one step past training) the finals are reached.
  assert.equal(dinoCosine(3000, 3000, 0.99, 1), 1);
  assert.equal(dinoCosine(3000, 3000, 1e-5, 1e-4), 1e-4);
  close(dinoCosine(1500, 3000, 0.99, 1), 0.995, 1e-15, 'half way is the mean');
  assert.equal(teacherTemperature(0, 0.04, 0.07, 30), 0.04);
  close(teacherTemperature(29, 0.04, 0.07, 30), 0.07, 1e-15, 'linspace ends on the final value');
  close(teacherTemperature(15, 0.04, 0.07, 30), 0.04 + (0.03 * 15) / 29, 1e-15, 'linear');
  assert.equal(teacherTemperature(30, 0.04, 0.07, 30), 0.07);
  assert.equal(teacherTemperature(299, 0.04, 0.07, 30), 0.07);
});

test('centre: center * m + mean(teacher rows) * (1 - m)', () => {
  const center = tf.tensor2d([[1, 2, 3]]);
  const rows = tf.tensor2d([[1, 0, 0], [0, 1, 0], [2, 2, 2], [1, 1, 4]]);
  const sum = tf.sum(rows, 0, true);
  const next = updatedCenter(center, sum, 4, 0.9).dataSync();
  const expected = [1 * 0.9 + (4 / 4) * 0.1, 2 * 0.9 + (4 / 4) * 0.1, 3 * 0.9 + (6 / 4) * 0.1];
  expected.forEach((e, i) => close(next[i]!, e, 1e-6, `centre[${i}]`));
  // The sum may arrive in parts (micro-batches): the same centre.
  const parts = tf.add(tf.sum(rows.slice([0, 0], [2, 3]), 0, true), tf.sum(rows.slice([2, 0], [2, 3]), 0, true));
  assert.deepEqual(Array.from(updatedCenter(center, parts, 4, 0.9).dataSync()), Array.from(next));
});

test('EMA: teacher = teacher * m + (1 - m) * student, in float32, for the named parameters only', () => {
  const t = [0.5, -1.25, 3];
  const s = [1, 2, -0.75];
  const teacher = new Map([['a', tf.variable(tf.tensor1d(t), false)], ['buf', tf.variable(tf.tensor1d([7]), false)]]);
  const student = new Map([['a', tf.variable(tf.tensor1d(s))], ['buf', tf.variable(tf.tensor1d([9]), false)]]);
  const m = 0.996;
  emaUpdate(teacher, student, ['a'], m);
  const got = Array.from(teacher.get('a')!.dataSync());
  got.forEach((g, i) => assert.equal(g, f32(f32(f32(t[i]!) * f32(m)) + f32(f32(s[i]!) * f32(1 - m))), `a[${i}]`));
  assert.deepEqual(Array.from(teacher.get('buf')!.dataSync()), [7], 'buffers are not averaged');
  assert.deepEqual(Array.from(student.get('a')!.dataSync()), s.map(f32), 'the student is untouched');
});

test('loss: cross-entropy of centred, sharpened teacher vs student over all crop pairs but same-view ones', () => {
  const K = 5;
  const m = 3;
  const crops = 4;
  const rng = new Rng(1);
  const rand = (n: number) => Array.from({ length: n }, () => rng.uniform(-1, 1));
  const s = rand(crops * m * K);
  const t = rand(2 * m * K);
  const c = rand(K);
  const tt = 0.04;
  const st = 0.1;
  const softmax = (x: number[]) => {
    const mx = Math.max(...x);
    const e = x.map((v) => Math.exp(v - mx));
    const z = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / z);
  };
  const row = (a: number[], r: number) => a.slice(r * K, (r + 1) * K);
  const q = (r: number) => softmax(row(t, r).map((v, k) => (v - c[k]!) / tt));
  const logp = (r: number) => softmax(row(s, r).map((v) => v / st)).map(Math.log);
  let total = 0;
  let terms = 0;
  for (let iq = 0; iq < 2; iq++)
    for (let v = 0; v < crops; v++) {
      if (v === iq) continue;
      let mean = 0;
      for (let b = 0; b < m; b++) {
        const qq = q(iq * m + b);
        const lp = logp(v * m + b);
        mean += -qq.reduce((acc, x, k) => acc + x * lp[k]!, 0) / m;
      }
      total += mean;
      terms++;
    }
  assert.equal(terms, 2 * crops - 2);
  const targets = teacherTargets(tf.tensor2d(t, [2 * m, K]), tf.tensor2d(c, [1, K]), tt);
  const loss = dinoLoss(tf.tensor2d(s, [crops * m, K]), targets, crops, st).dataSync()[0]!;
  close(loss, total / terms, 1e-5, 'loss');
  // Targets made before the recorded function, as the training step makes them, are constants:
  // no gradient reaches the teacher's outputs even when asked for.
  const tv = tf.variable(tf.tensor2d(t, [2 * m, K]));
  const sv = tf.variable(tf.tensor2d(s, [crops * m, K]));
  const fixed = teacherTargets(tv, tf.tensor2d(c, [1, K]), tt);
  const { grads } = tf.variableGrads(() => dinoLoss(sv, fixed, crops, st), [tv, sv]);
  assert.ok(grads[sv.name], 'the student gets a gradient');
  assert.ok(grads[tv.name] == null, 'the teacher gets none');
});

test('head: L2-normalised bottleneck and weight-normalised last layer with weight_g = 1', () => {
  const cfg = { inDim: 6, hiddenDim: 8, bottleneckDim: 4, outDim: 10 };
  const specs = headParams(cfg);
  assert.deepEqual(specs.map((p) => p.name), [
    'head.mlp.0.weight', 'head.mlp.0.bias', 'head.mlp.2.weight', 'head.mlp.2.bias', 'head.mlp.4.weight', 'head.mlp.4.bias',
    'head.last_layer.weight_g', 'head.last_layer.weight_v',
  ]);
  assert.equal(specs.find((p) => p.name.endsWith('weight_g'))!.trainable, false);
  const params = makeVariables(specs, 3);
  const x = tf.tensor2d(Array.from(new Rng(2).permutation(12), (v) => v / 12 - 0.5), [2, 6]);
  const out = headForward(params, x);
  assert.deepEqual(out.shape, [2, 10]);
  // Each logit is a cosine between unit vectors: at most 1 in magnitude.
  assert.ok(Array.from(out.dataSync()).every((v) => Math.abs(v) <= 1 + 1e-6));
  // Scaling weight_v changes nothing (weight norm), nor does scaling the input of the last
  // layer's bottleneck (L2 normalisation), checked through scaling mlp.4.
  const v = params.get('head.last_layer.weight_v')!;
  const before = Array.from(out.dataSync());
  v.assign(tf.mul(v, 3.5));
  const w4 = params.get('head.mlp.4.weight')!;
  const b4 = params.get('head.mlp.4.bias')!;
  w4.assign(tf.mul(w4, 2));
  b4.assign(tf.mul(b4, 2));
  Array.from(headForward(params, x).dataSync()).forEach((y, i) => close(y, before[i]!, 1e-5, `logit ${i}`));
});

test('AdamW (decoupled): p * (1 - lr wd) then the Adam step, none on biases and 1-D tensors', () => {
  const lr = 0.1;
  const wd = 0.05;
  const p0 = [1, -2];
  const g = [0.5, 0.25];
  const w: tf.Variable = tf.variable(tf.tensor2d([p0], [1, 2]));
  const bias: tf.Variable = tf.variable(tf.tensor1d(p0));
  const adam = new Adam(tf, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: true, noDecay: (n) => noDecay(n, n === 'w' ? [1, 2] : [2]) });
  adam.apply(new Map([['w', w], ['x.bias', bias]]), new Map<string, tf.Tensor>([['w', tf.tensor2d([g])], ['x.bias', tf.tensor1d(g)]]), lr, wd);
  // Step 1: m = 0.1 g, v = 0.001 g^2, bias-corrected update = lr * g / (|g| + eps).
  const adamOnly = p0.map((p, i) => p - (lr * g[i]!) / (Math.abs(g[i]!) + 1e-8));
  const decayed = p0.map((p, i) => p * (1 - lr * wd) - (lr * g[i]!) / (Math.abs(g[i]!) + 1e-8));
  Array.from(w.dataSync()).forEach((x, i) => close(x, decayed[i]!, 1e-6, `w[${i}]`));
  Array.from(bias.dataSync()).forEach((x, i) => close(x, adamOnly[i]!, 1e-6, `bias[${i}]`));
  assert.equal(noDecay('blocks.0.norm1.weight', [384]), true);
  assert.equal(noDecay('pos_embed', [1, 197, 384]), false, 'DINO decays every tensor of 2+ dimensions');
});

test('gradient clipping is per parameter (DINO clip_gradients)', () => {
  const grads = new Map<string, tf.Tensor>([['a', tf.tensor1d([3, 4])], ['b', tf.tensor1d([0.3, 0.4])]]);
  const norms = clipPerParameter(grads, 1);
  close(norms.get('a')!, 5, 1e-6, 'norm a');
  Array.from(grads.get('a')!.dataSync()).forEach((x, i) => close(x, [0.6, 0.8][i]!, 1e-5, `a[${i}]`));
  assert.deepEqual(Array.from(grads.get('b')!.dataSync()), [0.3, 0.4].map(f32), 'under the limit: unchanged');
});

test('multi-crop: DINO sizes (224/96; scaled, whole patches for demo ViTs), deterministic per sample, pixel ops', () => {
  assert.deepEqual(cropSizes(modelConfig('resnet50')), { globalSize: 224, localSize: 96 });
  assert.deepEqual(cropSizes(modelConfig('deit_small_patch16_224')), { globalSize: 224, localSize: 96 });
  assert.deepEqual(cropSizes(modelConfig('vit_demo')), { globalSize: 64, localSize: 24 });
  assert.deepEqual(cropSizes(modelConfig('resnet_demo', { imageSize: 32 })), { globalSize: 32, localSize: 14 });

  const a = { ...DINO_AUGMENT, globalSize: 16, localSize: 8, localCrops: 3 };
  const img = new Uint8Array(20 * 24 * 3).map((_, i) => (i * 37) % 256);
  const norm = { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };
  const make = () => [16, 16, 8, 8, 8].map((s) => new Float32Array(2 * s * s * 3));
  const x = make();
  const y = make();
  multiCrop(img, [20, 24, 3], a, norm, new Rng(5, 1), x, 1);
  multiCrop(img, [20, 24, 3], a, norm, new Rng(5, 1), y, 1);
  x.forEach((arr, v) => assert.deepEqual(arr, y[v], `crop ${v} reproducible`));
  x.forEach((arr, v) => assert.ok(arr.subarray(0, arr.length / 2).every((p) => p === 0), `crop ${v}: slot 0 untouched`));
  x.forEach((arr, v) => assert.ok(arr.subarray(arr.length / 2).some((p) => p !== 0), `crop ${v}: slot 1 written`));

  const px = new Float32Array([0.2, 0.6, 1, 0.5, 0.501, 0.9]);
  solarize(px, 0, 6);
  // Threshold 128/255 = 0.50196: 0.5 and 0.501 stay, the rest above it are inverted.
  assert.deepEqual(Array.from(px), [f32(0.2), f32(1 - f32(0.6)), 0, 0.5, f32(0.501), f32(1 - f32(0.9))]);
  const rgb = new Float32Array([1, 0, 0]);
  grayscale(rgb, 0, 3, 3);
  assert.deepEqual(Array.from(rgb), [f32(0.299), f32(0.299), f32(0.299)]);
  const flat = new Float32Array(5 * 5 * 1).fill(0.3);
  gaussianBlur(flat, 0, 5, 5, 1, 1.5);
  flat.forEach((v) => close(v, 0.3, 1e-6, 'a constant image stays constant'));
});
