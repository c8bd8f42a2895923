import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  accuracy,
  argmaxRows,
  auc,
  balancedAccuracy,
  cohenKappa,
  confusionMatrix,
  macroRecall,
  perClassRecall,
  quadraticKappa,
  rocAuc,
  rocCurve,
} from '../src/ml/metrics.js';

const rep = (v: number, n: number): number[] => new Array<number>(n).fill(v);
const close = (a: number, b: number, tol = 1e-12): void => assert.ok(Math.abs(a - b) <= tol, `${a} != ${b}`);

test('confusion matrix: sorted union by default, given label set drops outside samples', () => {
  const cm = confusionMatrix([2, 0, 2, 2, 0, 1], [0, 0, 2, 2, 0, 2]);
  assert.deepEqual(cm.labels, [0, 1, 2]);
  assert.deepEqual(cm.matrix, [[2, 0, 0], [0, 0, 1], [1, 0, 2]]);
  const sub = confusionMatrix([2, 0, 2, 2, 0, 1], [0, 0, 2, 2, 0, 2], [2, 0]);
  assert.deepEqual(sub.matrix, [[2, 1], [0, 2]]); // the sample with true label 1 is dropped
  assert.throws(() => confusionMatrix([0, 0], [0, 1], [5]), /at least one label/);
  assert.throws(() => confusionMatrix([0], [0, 1]), /1 samples/);
});

test('accuracy, per-class recall and argmax', () => {
  assert.equal(accuracy([0, 1, 2, 3], [0, 2, 1, 3]), 0.5);
  const r = perClassRecall([0, 0, 1, 1, 1], [0, 1, 1, 1, 2]);
  assert.deepEqual(r.labels, [0, 1, 2]);
  assert.deepEqual(r.recall, [0.5, 2 / 3, 0]); // class 2 never true: sklearn's zero_division=0
  assert.deepEqual(r.support, [2, 3, 0]);
  assert.deepEqual(argmaxRows([0.1, 0.9, 0.5, 0.5, 0.7, 0.3], 2), [1, 0, 0]);
});

test('cohen kappa matches the scikit-learn test suite values', () => {
  const y1 = [...rep(0, 40), ...rep(1, 60)];
  const y2 = [...rep(0, 20), ...rep(1, 20), ...rep(0, 10), ...rep(1, 50)];
  // po = 0.7, pe = (40*30 + 60*70)/100^2 = 0.54 -> (0.7-0.54)/0.46
  const k = cohenKappa(y1, y2);
  close(k, 0.16 / 0.46);
  assert.equal(cohenKappa(y2, y1), k);
  // Extra samples of a label outside `labels` are ignored entirely.
  assert.equal(cohenKappa([...y1, 2, 2, 2, 2], [...y2, 2, 2, 2, 2], { labels: [0, 1] }), k);
  close(cohenKappa(y1, y1), 1);

  const a = [...rep(0, 46), ...rep(1, 44), ...rep(2, 10)];
  const b = [...rep(0, 50), ...rep(1, 40), ...rep(2, 10)];
  close(cohenKappa(a, b), 0.9315068493150684, 1e-12);
  close(cohenKappa(a, b, { weights: 'linear' }), 0.9411764705882353, 1e-12);
  close(quadraticKappa(a, b), 0.9541284403669725, 1e-12);
});

test('kappa of predictions independent of the labels is 0 exactly, as its formula gives (not a rounding residue like 2.2e-16)', () => {
  // Observed and chance disagreement are equal here (sum(w*cm) * N == sum(w * outer(sum0, sum1))),
  // so 1 - observed/expected is 0; N per-term divisions by N used to leave -2.2e-16.
  assert.equal(quadraticKappa([1, 2, 1, 1, 2, 0, 0], [1, 2, 0, 0, 1, 2, 1]), 0);
  assert.equal(quadraticKappa([2, 1, 1, 2, 2, 0, 0, 2, 3, 0], [4, 1, 3, 3, 1, 1, 4, 3, 0, 0]), 0);
  // A constant predictor: every prediction the same class.
  assert.equal(quadraticKappa([0, 1, 2, 3, 4, 4, 2], [2, 2, 2, 2, 2, 2, 2], [0, 1, 2, 3, 4]), 0);
});

test('quadratic kappa: weights index label positions, so an absent class widens distances', () => {
  const yt = [0, 0, 1, 2, 4, 4];
  const yp = [0, 1, 1, 4, 4, 2];
  // Labels {0,1,2,4} at positions 0..3: observed sum w*O = 1+1+1 = 3; expected
  // sum (i-j)^2 r_i c_j / N with r=[2,1,1,2], c=[1,2,1,2] is 102/6 = 17 -> 1 - 3/17.
  close(quadraticKappa(yt, yp), 14 / 17);
  // With labels 0..4, class 3 (absent from both) sits between 2 and 4: observed 1+4+4 = 9,
  // expected 186/6 = 31 -> 1 - 9/31.
  close(quadraticKappa(yt, yp, [0, 1, 2, 3, 4]), 22 / 31);
  // Class present only in predictions: still part of the matrix.
  close(quadraticKappa([0, 1, 1, 2], [0, 1, 2, 3]), 1 - (0 + 1 + 1) / ((1 * (0 + 1 + 4 + 9) + 2 * (1 + 0 + 1 + 4) + 1 * (4 + 1 + 0 + 1)) / 4));
  // Both raters constant and equal: sklearn's 0/0 is NaN.
  assert.ok(Number.isNaN(quadraticKappa([1, 1], [1, 1])));
});

test('balanced accuracy ignores classes absent from y_true; macro recall does not', () => {
  const yt = [0, 0, 1, 1];
  const yp = [0, 2, 1, 1];
  assert.equal(balancedAccuracy(yt, yp), (0.5 + 1) / 2);
  assert.equal(macroRecall(yt, yp), (0.5 + 1 + 0) / 3);
  // sklearn docs example: balanced_accuracy_score([0,1,0,0,1,0],[0,1,0,0,0,1]) = 0.625
  assert.equal(balancedAccuracy([0, 1, 0, 0, 1, 0], [0, 1, 0, 0, 0, 1]), 0.625);
  // adjusted: (0.625 - 0.5) / 0.5
  assert.equal(balancedAccuracy([0, 1, 0, 0, 1, 0], [0, 1, 0, 0, 0, 1], true), 0.25);
  // With all classes present both agree.
  assert.equal(balancedAccuracy([0, 1, 2, 2], [0, 2, 2, 2]), macroRecall([0, 1, 2, 2], [0, 2, 2, 2]));
});

test('roc curve: the scikit-learn documentation example (labels {1,2}, 2 positive)', () => {
  const { fpr, tpr, thresholds } = rocCurve([1, 1, 2, 2], [0.1, 0.4, 0.35, 0.8]);
  assert.deepEqual(fpr, [0, 0, 0.5, 0.5, 1]);
  assert.deepEqual(tpr, [0, 0.5, 0.5, 1, 1]);
  assert.deepEqual(thresholds, [Infinity, 0.8, 0.4, 0.35, 0.1]);
  assert.equal(rocAuc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), 0.75);
});

test('roc auc: ties between a positive and a negative count one half', () => {
  assert.equal(rocAuc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]), 0.5);
  // positives {0.5, 0.5, 0.9}, negatives {0.2, 0.5}: pairs 1 + .5 + 1 + .5 + 1 + 1 = 5 of 6
  close(rocAuc([0, 1, 1, 0, 1], [0.2, 0.5, 0.5, 0.5, 0.9]), 5 / 6);
  // drop_intermediate removes collinear points only: the area is unchanged.
  const c = rocCurve([0, 1, 0, 1, 0, 1], [1, 2, 3, 4, 5, 6], false);
  const d = rocCurve([0, 1, 0, 1, 0, 1], [1, 2, 3, 4, 5, 6], true);
  close(auc(c.fpr, c.tpr), auc(d.fpr, d.tpr));
  assert.ok(d.fpr.length <= c.fpr.length);
  assert.throws(() => rocAuc([1, 1, 1], [0.1, 0.2, 0.3]), /only one class/);
  assert.throws(() => rocAuc([0, 1], [0.1, NaN]), /score at index 1/);
});

test('roc auc equals the Mann-Whitney pair count on random data with many ties', () => {
  let seed = 7;
  const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  for (let round = 0; round < 20; round++) {
    const n = 30 + round * 7;
    const y: number[] = [];
    const s: number[] = [];
    for (let i = 0; i < n; i++) {
      y.push(rand() < 0.4 ? 1 : 0);
      s.push(Math.floor(rand() * 6) / 5); // 6 distinct values: heavy ties
    }
    if (!y.includes(0) || !y.includes(1)) continue;
    let pairs = 0;
    let wins = 0;
    for (let i = 0; i < n; i++) {
      if (y[i] !== 1) continue;
      for (let j = 0; j < n; j++) {
        if (y[j] !== 0) continue;
        pairs++;
        wins += s[i] > s[j] ? 1 : s[i] === s[j] ? 0.5 : 0;
      }
    }
    close(rocAuc(y, s), wins / pairs, 1e-12);
  }
});
