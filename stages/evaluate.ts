// evaluate: test-set predictions of a checkpoint and the data set's metrics, with
// scikit-learn's definitions.
import { BACKEND_PARAM } from '../src/engine/activate.js';
import { TASK_METRICS, type TaskMetric } from '../src/ml/train/task-metrics.js';
import { defineStage, type StageContext } from '../src/contract.js';
import { augmentFor } from './finetune.js';

interface EvaluateParams {
  metric: TaskMetric;
  subset: 'test' | 'val' | 'train';
  eval: { resize?: number; crop?: number };
  batch_size: number;
  backend: string;
}

export default defineStage<EvaluateParams>({
  kind: 'evaluate',
  version: 1,
  description: "A checkpoint's predictions and metrics on a split (test by default)",
  params: {
    type: 'object',
    required: ['metric'],
    properties: {
      metric: { enum: [...TASK_METRICS], description: 'the headline metric, reported as `value`' },
      subset: { enum: ['test', 'val', 'train'], default: 'test' },
      eval: { type: 'object', additionalProperties: false, properties: { resize: { type: 'integer', minimum: 8 }, crop: { type: 'integer', minimum: 8 } }, default: {} },
      batch_size: { type: 'integer', minimum: 1, default: 64 },
      backend: BACKEND_PARAM,
    },
  },
  unkeyed: ['batch_size', 'backend'],
  inputs: {
    data: { type: 'records' },
    split: { type: 'json' },
    weights: { type: 'file', description: 'a finetuned checkpoint' },
  },
  outputs: { metrics: 'json', predictions: 'json' },
  resources: { cpus: 1 },

  async run(ctx: StageContext<EvaluateParams>) {
    const p = ctx.params;
    const [{ activateEngine }, { loadModel, predict }, { taskMetric, fullReport }] = await Promise.all([
      import('../src/engine/activate.js'),
      import('../src/ml/train/model-io.js'),
      import('../src/ml/train/task-metrics.js'),
    ]);
    const { tf } = await activateEngine(p.backend, ctx.provenance);

    const reader = ctx.inputs.records('data');
    const split = ctx.inputs.json<Record<string, number[]>>('split');
    const indices = split[p.subset];
    if (!indices || indices.length === 0) throw new Error(`evaluate: the split has no "${p.subset}" images`);
    const model = await loadModel(await ctx.inputs.file('weights'), {}, 0);
    const classes = Math.max(2, model.spec.config.numClasses);
    const evalAug = { ...augmentFor(model.meta.image_size, {}).eval, ...p.eval };
    const preds = await predict(tf, model, reader, indices, evalAug, p.batch_size, (done) => ctx.progress(`predicting ${done}/${indices.length}`));
    const value = taskMetric(p.metric, preds, classes);
    const report = fullReport(preds, classes);
    ctx.log(`${p.subset}: ${p.metric} ${value.toFixed(4)}, accuracy ${report.accuracy.toFixed(4)} (n=${indices.length})`);
    ctx.outputs.json('metrics', {
      metric: p.metric,
      value,
      subset: p.subset,
      n: indices.length,
      accuracy: report.accuracy,
      per_class_recall: report.per_class_recall,
      confusion: report.confusion,
      classes: (reader.meta['classes'] as string[] | undefined) ?? [],
    });
    const ids = preds.indices.map((i) => String(reader.get(i).meta['id'] ?? i));
    const k = model.spec.config.numClasses;
    ctx.outputs.json('predictions', {
      ids,
      labels: Array.from(preds.labels),
      probs: ids.map((_, r) => Array.from(preds.probs.subarray(r * k, (r + 1) * k), (x) => Number(x.toFixed(6)))),
    });
  },
});
