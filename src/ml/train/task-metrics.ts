import { accuracy, argmaxRows, balancedAccuracy, confusionMatrix, macroRecall, perClassRecall, quadraticKappa, rocAuc } from '../metrics.js';

/** The data sets' headline metrics as the paper reports them. */
export const TASK_METRICS = ['kappa', 'macro_recall', 'balanced_recall', 'roc_auc', 'accuracy'] as const;
export type TaskMetric = (typeof TASK_METRICS)[number];

/** How each reads in a table's title. */
export const TASK_METRIC_TITLES: Record<TaskMetric, string> = { kappa: 'quadratic kappa', macro_recall: 'macro recall', balanced_recall: 'balanced recall', roc_auc: 'ROC-AUC', accuracy: 'accuracy' };

export interface Predictions {
  /** Class probabilities, row-major [n, numClasses]; binary tasks: [n, 1] sigmoid outputs. */
  probs: Float32Array;
  numClasses: number;
  labels: Int32Array | number[];
}

function predictedClasses(p: Predictions): number[] {
  if (p.numClasses === 1) return Array.from(p.probs, (x) => (x >= 0.5 ? 1 : 0));
  return argmaxRows(p.probs, p.numClasses);
}

/** sklearn's definitions: quadratic kappa; macro recall over the labels present in either array
 *  (the authors' `recall_score(average='macro')`, the paper's ISIC "recall"); balanced accuracy
 *  (macro recall over the true labels only: they differ when a class absent from the labels is
 *  predicted); binary ROC-AUC. */
export function taskMetric(metric: TaskMetric, p: Predictions, classes: number): number {
  const yTrue = Array.from(p.labels);
  if (metric === 'roc_auc') {
    if (p.numClasses !== 1) throw new Error('roc_auc is the binary metric: the model needs one sigmoid output');
    return rocAuc(yTrue, p.probs);
  }
  const yPred = predictedClasses(p);
  if (metric === 'kappa') return quadraticKappa(yTrue, yPred, [...Array(classes).keys()]);
  if (metric === 'macro_recall') return macroRecall(yTrue, yPred);
  if (metric === 'balanced_recall') return balancedAccuracy(yTrue, yPred);
  return accuracy(yTrue, yPred);
}

/** Everything evaluate reports beside the headline metric. */
export function fullReport(p: Predictions, classes: number): { accuracy: number; per_class_recall: (number | null)[]; confusion: number[][] } {
  const yTrue = Array.from(p.labels);
  const yPred = predictedClasses(p);
  const labels = [...Array(classes).keys()];
  const recall = perClassRecall(yTrue, yPred, { labels });
  // A class absent from the test labels has no recall: null rather than sklearn's warned 0.
  const perClass = recall.recall.map((v, i) => (recall.support[i] === 0 ? null : v));
  return { accuracy: accuracy(yTrue, yPred), per_class_recall: perClass, confusion: confusionMatrix(yTrue, yPred, labels).matrix };
}
