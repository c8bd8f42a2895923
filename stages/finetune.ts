// finetune: the paper's supervised training of one (data set, model, init, seed) cell. Every
// number is a parameter whose default is the paper's (or, where the paper is silent, the
// authors' code's: batch 64, gradient clipping 1.0).
import { BACKEND_PARAM } from '../src/engine/activate.js';
import { PRECISION_PARAM, PRECISION_UNKEYED_DEFAULT, withPrecision } from '../src/engine/precision.js';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TASK_METRICS, type TaskMetric } from '../src/ml/train/task-metrics.js';
import { defineStage, type JSONObject, type StageContext } from '../src/contract.js';

export interface FinetuneParams {
  metric: TaskMetric;
  num_classes?: number;
  epochs: number;
  batch_size: number;
  micro_batch: number;
  lr: number;
  warmup_iters: number;
  plateau: { patience: number; factor: number; min_lr: number; threshold: number; cooldown: number };
  grad_clip: number;
  weight_decay: number;
  seed: number;
  augment: { train?: Record<string, unknown>; eval?: Record<string, unknown> };
  eval_batch_size: number;
  checkpoint_every: number;
  backend: string;
  precision?: 'fp32' | 'bf16';
}

const numberPair = { type: 'array', items: { type: 'number' }, minItems: 2, maxItems: 2 };

export const augmentSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    train: {
      type: 'object',
      additionalProperties: false,
      properties: {
        resize: { type: 'integer', minimum: 8 },
        crop: { type: 'integer', minimum: 8 },
        scale: numberPair,
        ratio: numberPair,
        hflip: { type: 'number', minimum: 0, maximum: 1 },
        vflip: { type: 'number', minimum: 0, maximum: 1 },
        jitter: {
          type: 'object',
          additionalProperties: false,
          properties: { brightness: { type: 'number' }, contrast: { type: 'number' }, saturation: { type: 'number' }, hue: { type: 'number' }, p: { type: 'number' } },
        },
      },
    },
    eval: { type: 'object', additionalProperties: false, properties: { resize: { type: 'integer', minimum: 8 }, crop: { type: 'integer', minimum: 8 } } },
  },
  default: {},
};

/** How an image must be prepared to be fed to the trained model: what `pipeline predict` reads. */
export function preprocessingOf(meta: JSONObject, evalAug: { resize: number; crop: number }): JSONObject {
  const shape = (meta['shape'] as number[] | undefined) ?? [];
  return {
    size: shape[0] ?? null,
    channels: shape[2] ?? null,
    format: meta['format'] ?? null,
    mean: meta['mean'] ?? null,
    std: meta['std'] ?? null,
    classes: meta['classes'] ?? null,
    eval: { resize: evalAug.resize, crop: evalAug.crop },
  };
}

/** Crop = the checkpoint's input size; resize keeps the paper's 256:224 ratio unless given. */
export function augmentFor(imageSize: number, augment: FinetuneParams['augment']) {
  const resize = Math.round((imageSize * 256) / 224);
  return {
    train: { resize, crop: imageSize, ...augment.train },
    eval: { resize, crop: imageSize, ...augment.eval },
  };
}

export default defineStage<FinetuneParams>({
  kind: 'finetune',
  // 2: the best checkpoint records its preprocessing (for `pipeline predict`).
  version: 2,
  description: 'Supervised fine-tuning (Adam, warm-up, lr/10 on plateau); output: the best-validation checkpoint',
  params: {
    type: 'object',
    required: ['metric'],
    properties: {
      metric: { enum: [...TASK_METRICS], description: 'validation metric that picks the best checkpoint and drives the plateau' },
      num_classes: { type: 'integer', minimum: 1, description: "head size (default: the checkpoint's); 1 = one sigmoid logit" },
      epochs: { type: 'integer', minimum: 1, default: 100 },
      batch_size: { type: 'integer', minimum: 1, default: 64 },
      micro_batch: { type: 'integer', minimum: 0, default: 0, description: 'compute each batch in micro-batches of this size (gradient accumulation; BatchNorm sees micro-batch statistics); 0 = off' },
      lr: { type: 'number', exclusiveMinimum: 0, default: 1e-4, description: 'base lr (paper: 1e-4; 3e-4 from random init)' },
      warmup_iters: { type: 'integer', minimum: 0, default: 1000 },
      plateau: {
        type: 'object',
        additionalProperties: false,
        properties: {
          patience: { type: 'integer', minimum: 0, default: 5 },
          factor: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1, default: 0.1 },
          min_lr: { type: 'number', minimum: 0, default: 1e-6 },
          threshold: { type: 'number', minimum: 0, default: 1e-4 },
          cooldown: { type: 'integer', minimum: 0, default: 0 },
        },
        default: {},
      },
      grad_clip: { type: 'number', minimum: 0, default: 1.0, description: 'global gradient norm limit; 0 = off' },
      weight_decay: { type: 'number', minimum: 0, default: 0 },
      seed: { type: 'integer', default: 0 },
      augment: augmentSchema,
      eval_batch_size: { type: 'integer', minimum: 1, default: 64 },
      checkpoint_every: { type: 'integer', minimum: 0, default: 200, description: 'steps between resumable checkpoints (0: only at epoch ends)' },
      backend: BACKEND_PARAM,
      precision: PRECISION_PARAM,
    },
  },
  // How often to checkpoint, batch size for validation and the backend change no result bits
  // on a given backend; the backend is recorded in provenance instead.
  unkeyed: ['eval_batch_size', 'checkpoint_every', 'backend'],
  unkeyedDefaults: PRECISION_UNKEYED_DEFAULT,
  inputs: {
    data: { type: 'records', description: 'preprocessed records' },
    split: { type: 'json', description: 'split stage output' },
    weights: { type: 'file', description: 'initial checkpoint (init, DINO, pretrain)' },
  },
  outputs: { weights: 'file', curves: 'json', curves_svg: 'file' },
  resources: { cpus: 1 },

  async run(ctx: StageContext<FinetuneParams>) {
    const p = ctx.params;
    const [{ activateEngine }, { loadModel }, { finetune, curvesJSON }, { lineChart }] = await Promise.all([
      import('../src/engine/activate.js'),
      import('../src/ml/train/model-io.js'),
      import('../src/ml/train/finetune.js'),
      import('../src/report/svg.js'),
    ]);
    const { tf, engine } = await activateEngine(p.backend, ctx.provenance);

    const reader = ctx.inputs.records('data');
    const split = ctx.inputs.json<{ train: number[]; val: number[] }>('split');
    const channels = Number((reader.meta['shape'] as number[] | undefined)?.[2] ?? 3);
    const classes = ((reader.meta['classes'] as string[] | undefined) ?? []).length;
    const numClasses = p.num_classes ?? (classes === 2 ? 1 : classes);
    const model = await loadModel(await ctx.inputs.file('weights'), { numClasses, channels }, p.seed);
    for (const note of model.notes) ctx.log(note);
    const headClasses = model.spec.config.numClasses;
    if (p.metric === 'roc_auc' && headClasses !== 1) throw new Error(`finetune: roc_auc needs a binary head (num_classes: 1), the model has ${headClasses} outputs`);
    const aug = augmentFor(model.meta.image_size, p.augment);
    ctx.log(`${model.spec.name} ${model.meta.image_size}px, ${channels} channel(s), ${headClasses} output(s); train ${split.train.length}, val ${split.val.length}; backend ${engine.backend}`);

    const result = await withPrecision(p.precision, engine, ctx.provenance, () => finetune(
      tf,
      model,
      reader,
      {
        metric: p.metric,
        classes: Math.max(2, headClasses),
        epochs: p.epochs,
        batchSize: p.batch_size,
        microBatch: p.micro_batch,
        lr: p.lr,
        warmupIters: p.warmup_iters,
        plateau: { mode: 'max', factor: p.plateau.factor, patience: p.plateau.patience, threshold: p.plateau.threshold, cooldown: p.plateau.cooldown, minLr: p.plateau.min_lr },
        gradClip: p.grad_clip,
        weightDecay: p.weight_decay,
        seed: p.seed,
        train: aug.train,
        eval: aug.eval,
        evalBatchSize: p.eval_batch_size,
        checkpointEvery: p.checkpoint_every,
        split,
        checkpointMeta: { preprocessing: JSON.stringify(preprocessingOf(reader.meta, aug.eval)) },
      },
      { workdir: ctx.workdir, signal: ctx.signal, progress: ctx.progress, log: ctx.log, save: ctx.checkpoint.save, restore: ctx.checkpoint.restore },
    ));
    await ctx.outputs.file('weights', result.bestPath, { filename: `${model.spec.name}-finetuned.safetensors` });
    ctx.outputs.json('curves', curvesJSON(result, p.metric));
    const epochs = result.curves.map((c) => c.epoch);
    const svg = lineChart(`${ctx.node}`, 'epoch', epochs, [
      { name: 'train loss', values: result.curves.map((c) => c.train_loss) },
      { name: `val ${p.metric}`, values: result.curves.map((c) => c.val_metric), right: true, ...(result.bestEpoch > 0 ? { marker: result.bestEpoch } : {}) },
    ], { integerX: true, ...(result.bestEpoch > 0 ? { note: `dashed line: best epoch ${result.bestEpoch} (the kept checkpoint)` } : {}) });
    await writeFile(join(ctx.workdir, 'curves.svg'), svg);
    await ctx.outputs.file('curves_svg', 'curves.svg');
  },
});
