import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { Adam, clipByGlobalNorm } from '../src/ml/train/adam.js';
import { cosineSchedule, plateauStep, PLATEAU_DEFAULTS, warmupFactor, type PlateauState } from '../src/ml/train/schedule.js';
import { fullReport, taskMetric } from '../src/ml/train/task-metrics.js';

await tf.setBackend('cpu');

test('warm-up and cosine schedules give the right values at their ends', () => {
  assert.equal(warmupFactor(0, 1000), 1 / 1000);
  assert.equal(warmupFactor(999, 1000), 1);
  assert.equal(warmupFactor(5000, 1000), 1);
  assert.equal(cosineSchedule(0, 100, 0.04, 0.07), 0.04);
  assert.ok(Math.abs(cosineSchedule(100, 100, 0.996, 1) - 1) < 1e-12);
  assert.ok(Math.abs(cosineSchedule(50, 100, 1, 0) - 0.5) < 1e-12);
  assert.equal(cosineSchedule(0, 100, 1e-4, 1e-6, 10, 0), 0, 'warm-up starts at its start value');
  assert.equal(cosineSchedule(10, 100, 1e-4, 1e-6, 10, 0), 1e-4, 'and reaches the base value when it ends');
});

test('ReduceLROnPlateau divides by 10 after patience+1 bad validations, down to the floor, as torch does', () => {
  const o = { ...PLATEAU_DEFAULTS, patience: 2, minLr: 1e-5 };
  let s: PlateauState = { lr: 1e-3, best: null, badEpochs: 0, cooldownLeft: 0 };
  const lrs: number[] = [];
  for (const metric of [0.5, 0.6, 0.6, 0.59, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6]) {
    s = plateauStep(s, metric, o);
    lrs.push(s.lr);
  }
  // improvements at 0, 1; three epochs without one (2, 3, 4) -> reduce at the 5th value.
  assert.deepEqual(lrs.slice(0, 5), [1e-3, 1e-3, 1e-3, 1e-3, 1e-4]);
  assert.ok(Math.abs(lrs[7]! - 1e-5) < 1e-18, 'second reduction three bad epochs later');
  assert.equal(lrs[lrs.length - 1], lrs[7], 'never below min_lr');
});

test('Adam matches torch.optim.Adam step by step, and resumes bit for bit from its state', () => {
  // Reference: torch's update rule in plain arithmetic, on f(p) = sum(p^2) (grad 2p).
  const ref = (p0: number[], steps: number, lr: number) => {
    const p = [...p0];
    const m = p.map(() => 0);
    const v = p.map(() => 0);
    for (let t = 1; t <= steps; t++) {
      for (let i = 0; i < p.length; i++) {
        const g = 2 * p[i]!;
        m[i] = 0.9 * m[i]! + 0.1 * g;
        v[i] = 0.999 * v[i]! + 0.001 * g * g;
        p[i] = p[i]! - (lr * (m[i]! / (1 - 0.9 ** t))) / (Math.sqrt(v[i]! / (1 - 0.999 ** t)) + 1e-8);
      }
    }
    return p;
  };
  const run = (steps: number, resumeAt?: number) => {
    const params = new Map([['w', tf.variable(tf.tensor1d([1, -0.5, 3]))]]);
    let adam = new Adam(tf);
    for (let t = 0; t < steps; t++) {
      if (t === resumeAt) {
        const saved = new Map([...adam.state()].map(([k, v]) => [k, v.clone()]));
        const meta = adam.metadata();
        adam.dispose();
        adam = new Adam(tf);
        adam.restore(meta, saved);
      }
      const grads = new Map([['w', tf.tidy(() => params.get('w')!.mul(2))]]);
      adam.apply(params, grads, 0.1);
      grads.get('w')!.dispose();
    }
    return Array.from(params.get('w')!.dataSync());
  };
  const expected = ref([1, -0.5, 3], 20, 0.1);
  const straight = run(20);
  straight.forEach((x, i) => assert.ok(Math.abs(x - expected[i]!) < 1e-5, `${x} vs ${expected[i]}`));
  assert.deepEqual(run(20, 7), straight);
});

test('global-norm clipping scales all gradients together and reports the norm', () => {
  const grads = new Map([
    ['a', tf.tensor1d([3, 0])],
    ['b', tf.tensor1d([0, 4])],
  ]);
  const norm = clipByGlobalNorm(tf, grads, 1);
  assert.ok(Math.abs(norm - 5) < 1e-6);
  assert.ok(Math.abs(grads.get('a')!.dataSync()[0]! - 0.6) < 1e-5);
  assert.ok(Math.abs(grads.get('b')!.dataSync()[1]! - 0.8) < 1e-5);
});

test('task metrics: quadratic kappa over all classes, balanced recall, ROC-AUC on one sigmoid output', () => {
  const multi = { probs: new Float32Array([0.9, 0.1, 0, 0.2, 0.7, 0.1, 0.1, 0.1, 0.8, 0.6, 0.3, 0.1]), numClasses: 3, labels: [0, 1, 2, 1] };
  assert.equal(taskMetric('accuracy', multi, 3), 0.75);
  assert.equal(taskMetric('balanced_recall', multi, 3), (1 + 0.5 + 1) / 3);
  const binary = { probs: new Float32Array([0.1, 0.4, 0.35, 0.8]), numClasses: 1, labels: [0, 0, 1, 1] };
  assert.equal(taskMetric('roc_auc', binary, 2), 0.75);
  assert.throws(() => taskMetric('roc_auc', multi, 3), /binary metric/);
  const report = fullReport({ probs: new Float32Array([0.9, 0.1, 0.2, 0.8]), numClasses: 2, labels: [0, 0] }, 2);
  assert.deepEqual(report.per_class_recall, [0.5, null], 'a class absent from the labels has no recall');
  assert.deepEqual(report.confusion, [[1, 1], [0, 0]]);
});
