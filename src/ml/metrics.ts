// Classification metrics with scikit-learn's exact definitions, so that numbers in our tables
// can be compared with the paper's (computed with sklearn) without a definitional gap.
// Pure functions over plain arrays; labels are integers (class indices).

export type Labels = ArrayLike<number>;

function checkSameLength(a: ArrayLike<unknown>, b: ArrayLike<unknown>, what: string): void {
  if (a.length !== b.length) {
    throw new Error(`${what}: y_true has ${a.length} samples but the other array has ${b.length}`);
  }
  if (a.length === 0) throw new Error(`${what}: no samples`);
}

function checkLabels(y: Labels, what: string): void {
  for (let i = 0; i < y.length; i++) {
    if (!Number.isFinite(y[i])) throw new Error(`${what}: label at index ${i} is ${y[i]}`);
  }
}

/** Sorted distinct values of the given arrays (sklearn's `unique_labels`). */
export function uniqueLabels(...ys: Labels[]): number[] {
  const set = new Set<number>();
  for (const y of ys) for (let i = 0; i < y.length; i++) set.add(y[i]);
  return [...set].sort((a, b) => a - b);
}

export interface ConfusionMatrix {
  /** The label of each row/column, in order. */
  labels: number[];
  /** matrix[i][j]: samples whose true label is labels[i] and predicted label is labels[j]. */
  matrix: number[][];
}

/**
 * sklearn `confusion_matrix`: rows are true labels, columns predicted. With `labels`, the
 * matrix is over exactly that set, in that order, and samples whose true or predicted label
 * is outside it are dropped (as sklearn does); without, over the sorted union of both.
 */
export function confusionMatrix(yTrue: Labels, yPred: Labels, labels?: Labels): ConfusionMatrix {
  checkSameLength(yTrue, yPred, 'confusionMatrix');
  checkLabels(yTrue, 'confusionMatrix');
  checkLabels(yPred, 'confusionMatrix');
  const order = labels === undefined ? uniqueLabels(yTrue, yPred) : Array.from(labels);
  if (order.length === 0) throw new Error('confusionMatrix: "labels" should contain at least one label');
  const index = new Map<number, number>();
  order.forEach((l, i) => {
    if (index.has(l)) throw new Error(`confusionMatrix: label ${l} given twice in "labels"`);
    index.set(l, i);
  });
  if (labels !== undefined && !Array.from(yTrue).some((l) => index.has(l))) {
    throw new Error('confusionMatrix: at least one label specified must be in y_true');
  }
  const matrix = order.map(() => new Array<number>(order.length).fill(0));
  for (let s = 0; s < yTrue.length; s++) {
    const i = index.get(yTrue[s]);
    const j = index.get(yPred[s]);
    if (i !== undefined && j !== undefined) matrix[i][j] += 1;
  }
  return { labels: order, matrix };
}

/** sklearn `accuracy_score` (fraction, not count). */
export function accuracy(yTrue: Labels, yPred: Labels): number {
  checkSameLength(yTrue, yPred, 'accuracy');
  let hits = 0;
  for (let i = 0; i < yTrue.length; i++) if (yTrue[i] === yPred[i]) hits++;
  return hits / yTrue.length;
}

/**
 * sklearn `cohen_kappa_score`. Weights index the position of each label in the label list
 * (not the label's value), exactly as sklearn's `w_mat` does. Returns NaN where sklearn's
 * denominator is 0 (e.g. both raters constant and equal), as sklearn does.
 */
export function cohenKappa(
  y1: Labels,
  y2: Labels,
  opts: { weights?: 'linear' | 'quadratic' | null; labels?: Labels } = {},
): number {
  const { matrix } = confusionMatrix(y1, y2, opts.labels);
  const n = matrix.length;
  const sum0 = new Array<number>(n).fill(0); // column sums (y2)
  const sum1 = new Array<number>(n).fill(0); // row sums (y1)
  let total = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      sum0[j] += matrix[i][j];
      sum1[i] += matrix[i][j];
      total += matrix[i][j];
    }
  }
  const weight = (i: number, j: number): number => {
    if (opts.weights === 'linear') return Math.abs(i - j);
    if (opts.weights === 'quadratic') return (i - j) * (i - j);
    return i === j ? 0 : 1;
  };
  // sklearn: expected = outer(sum0, sum1) / sum(sum0), i.e. expected[i][j] = sum0[i]*sum1[j]/N,
  // and kappa = 1 - sum(w*cm) / sum(w*expected). Both sums are taken here times N, in whole
  // numbers (exact below 2^53), with one division at the end: a kappa that is 0 (a constant
  // predictor, or predictions independent of the labels) comes out as 0, not as the 1.1e-16
  // that N per-term divisions leave (which then showed as chart ticks like 0.000000000000000104).
  let observedN = 0;
  let expectedN = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const w = weight(i, j);
      observedN += w * matrix[i][j] * total;
      expectedN += w * sum0[i] * sum1[j];
    }
  }
  return 1 - observedN / expectedN;
}

/** Quadratic-weighted kappa, the APTOS2019 metric. */
export function quadraticKappa(yTrue: Labels, yPred: Labels, labels?: Labels): number {
  return cohenKappa(yTrue, yPred, { weights: 'quadratic', labels });
}

export interface PerClassRecall {
  labels: number[];
  /** Recall of each label; labels absent from y_true get `zeroDivision` (sklearn: 0, warns). */
  recall: number[];
  /** Number of true samples of each label (sklearn's "support"). */
  support: number[];
}

/** sklearn `recall_score(average=None)` over `labels` (default: sorted union of both arrays). */
export function perClassRecall(
  yTrue: Labels,
  yPred: Labels,
  opts: { labels?: Labels; zeroDivision?: number } = {},
): PerClassRecall {
  checkSameLength(yTrue, yPred, 'perClassRecall');
  const labels = opts.labels === undefined ? uniqueLabels(yTrue, yPred) : Array.from(opts.labels);
  const zero = opts.zeroDivision ?? 0;
  const index = new Map(labels.map((l, i) => [l, i] as const));
  const support = new Array<number>(labels.length).fill(0);
  const hits = new Array<number>(labels.length).fill(0);
  // Unlike confusion_matrix, recall counts a true sample even when its prediction falls
  // outside `labels` (it is simply not a hit), which is what sklearn's multilabel_confusion_matrix does.
  for (let s = 0; s < yTrue.length; s++) {
    const i = index.get(yTrue[s]);
    if (i === undefined) continue;
    support[i]++;
    if (yPred[s] === yTrue[s]) hits[i]++;
  }
  const recall = labels.map((_, i) => (support[i] === 0 ? zero : hits[i] / support[i]));
  return { labels, recall, support };
}

/**
 * sklearn `recall_score(average='macro')`: the unweighted mean of per-class recall over the
 * union of labels in both arrays, so a class predicted but never true counts as recall 0.
 * This is NOT balanced accuracy when y_pred holds a class absent from y_true.
 */
export function macroRecall(yTrue: Labels, yPred: Labels, labels?: Labels): number {
  const { recall } = perClassRecall(yTrue, yPred, { labels });
  return recall.reduce((a, b) => a + b, 0) / recall.length;
}

/**
 * sklearn `balanced_accuracy_score`: mean recall over the classes present in y_true; classes
 * that occur only in y_pred are ignored (sklearn drops their NaN row and warns). `adjusted`
 * rescales so chance is 0 and perfect is 1, as sklearn's `adjusted=True`.
 */
export function balancedAccuracy(yTrue: Labels, yPred: Labels, adjusted = false): number {
  const { matrix } = confusionMatrix(yTrue, yPred);
  const perClass: number[] = [];
  matrix.forEach((row, i) => {
    const n = row.reduce((a, b) => a + b, 0);
    if (n > 0) perClass.push(row[i] / n);
  });
  let score = perClass.reduce((a, b) => a + b, 0) / perClass.length;
  if (adjusted) {
    const chance = 1 / perClass.length;
    score = (score - chance) / (1 - chance);
  }
  return score;
}

export interface RocCurve {
  fpr: number[];
  tpr: number[];
  /** Decreasing; the first is +Infinity (sklearn >= 1.3). */
  thresholds: number[];
}

/** The positive-label mask of a binary y_true: sklearn's `label_binarize` over unique(y_true). */
function binaryTargets(yTrue: Labels, what: string): Uint8Array {
  const classes = uniqueLabels(yTrue);
  if (classes.length > 2) {
    throw new Error(`${what}: y_true has ${classes.length} classes (${classes.join(', ')}); binary only`);
  }
  const positive = classes[classes.length - 1];
  const out = new Uint8Array(yTrue.length);
  for (let i = 0; i < yTrue.length; i++) out[i] = yTrue[i] === positive && classes.length === 2 ? 1 : 0;
  return out;
}

/**
 * sklearn `roc_curve(drop_intermediate=True)` for binary y_true (the greater label is positive;
 * with {0,1} that is 1). Tied scores form one threshold, so a tie moves the curve diagonally.
 */
export function rocCurve(yTrue: Labels, yScore: ArrayLike<number>, dropIntermediate = true): RocCurve {
  checkSameLength(yTrue, yScore, 'rocCurve');
  checkLabels(yTrue, 'rocCurve');
  for (let i = 0; i < yScore.length; i++) {
    if (!Number.isFinite(yScore[i])) throw new Error(`rocCurve: score at index ${i} is ${yScore[i]}`);
  }
  const y = binaryTargets(yTrue, 'rocCurve');
  // Stable sort by decreasing score, as sklearn's argsort(kind="mergesort")[::-1] groups ties.
  const order = Array.from({ length: y.length }, (_, i) => i).sort((a, b) => yScore[b] - yScore[a]);
  const tps: number[] = [];
  const fps: number[] = [];
  const thr: number[] = [];
  let tp = 0;
  for (let k = 0; k < order.length; k++) {
    tp += y[order[k]];
    const last = k === order.length - 1;
    if (last || yScore[order[k + 1]] !== yScore[order[k]]) {
      tps.push(tp);
      fps.push(k + 1 - tp);
      thr.push(yScore[order[k]]);
    }
  }
  let keep = tps.map((_, i) => i);
  if (dropIntermediate && tps.length > 2) {
    // sklearn keeps the ends and every point where the curve bends (second difference != 0).
    keep = keep.filter(
      (i) =>
        i === 0 ||
        i === tps.length - 1 ||
        fps[i - 1] - 2 * fps[i] + fps[i + 1] !== 0 ||
        tps[i - 1] - 2 * tps[i] + tps[i + 1] !== 0,
    );
  }
  const tpsK = [0, ...keep.map((i) => tps[i])];
  const fpsK = [0, ...keep.map((i) => fps[i])];
  const thresholds = [Infinity, ...keep.map((i) => thr[i])];
  const P = tpsK[tpsK.length - 1];
  const N = fpsK[fpsK.length - 1];
  // sklearn warns and returns NaN for an undefined axis; roc_auc_score refuses earlier.
  const fpr = fpsK.map((f) => (N > 0 ? f / N : NaN));
  const tpr = tpsK.map((t) => (P > 0 ? t / P : NaN));
  return { fpr, tpr, thresholds };
}

/** sklearn `auc`: trapezoidal area under a monotonic curve. */
export function auc(x: ArrayLike<number>, y: ArrayLike<number>): number {
  if (x.length < 2) throw new Error(`auc: at least 2 points are needed, got ${x.length}`);
  let direction = 1;
  let inc = true;
  let dec = true;
  for (let i = 1; i < x.length; i++) {
    if (x[i] < x[i - 1]) inc = false;
    if (x[i] > x[i - 1]) dec = false;
  }
  if (!inc) {
    if (dec) direction = -1;
    else throw new Error('auc: x is neither increasing nor decreasing');
  }
  let area = 0;
  for (let i = 1; i < x.length; i++) area += ((x[i] - x[i - 1]) * (y[i] + y[i - 1])) / 2;
  return direction * area;
}

/**
 * sklearn binary `roc_auc_score`: area under the ROC curve of distinct thresholds, so ties
 * between a positive and a negative count one half. Throws, as sklearn does, when y_true
 * holds only one class.
 */
export function rocAuc(yTrue: Labels, yScore: ArrayLike<number>): number {
  checkSameLength(yTrue, yScore, 'rocAuc');
  if (uniqueLabels(yTrue).length !== 2) {
    throw new Error('rocAuc: only one class present in y_true; ROC AUC is not defined in that case');
  }
  const { fpr, tpr } = rocCurve(yTrue, yScore);
  return auc(fpr, tpr);
}

/** Index of the largest value of each row (first one on ties, as numpy's argmax). */
export function argmaxRows(probs: ArrayLike<number>, numClasses: number): number[] {
  if (numClasses < 1 || probs.length % numClasses !== 0) {
    throw new Error(`argmaxRows: ${probs.length} values do not form rows of ${numClasses}`);
  }
  const out: number[] = [];
  for (let r = 0; r < probs.length / numClasses; r++) {
    let best = 0;
    for (let c = 1; c < numClasses; c++) {
      if (probs[r * numClasses + c] > probs[r * numClasses + best]) best = c;
    }
    out.push(best);
  }
  return out;
}
