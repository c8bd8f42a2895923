// dino: the paper's self-supervised step (Caron et al. 2021, as Matsoukas et al. ran it) on a
// data set's training split without labels, from ImageNet weights. Every number is a parameter
// whose default is the paper's (lr 1e-4, weight decay 1e-5 -> 1e-4, teacher EMA 0.99, 300
// epochs, batch 256) or, where the paper defers to DINO, DINO's (main_dino.py's arguments; the
// teacher temperature warm-up 0.04 -> 0.07 over 30 epochs as the DINO paper trained).
// Output: the teacher's backbone as a medpipe checkpoint without a classifier head, which
// `init` (source: node) and `finetune` take, initialising the head fresh.
import { BACKEND_PARAM } from '../src/engine/activate.js';
import { PRECISION_PARAM, PRECISION_UNKEYED_DEFAULT, withPrecision } from '../src/engine/precision.js';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { defineStage, type JSONObject, type StageContext } from '../src/contract.js';
import { DINO_AUGMENT, evalTransformAt } from '../src/ml/dino/augment.js';
import type { KnnMonitor } from '../src/ml/dino/train.js';

export interface DinoParams {
  epochs: number;
  batch_size: number;
  micro_batch: number;
  lr: number;
  min_lr: number;
  warmup_epochs: number;
  weight_decay: number;
  weight_decay_end: number;
  momentum_teacher: number;
  teacher_temp: number;
  warmup_teacher_temp: number;
  warmup_teacher_temp_epochs: number;
  student_temp: number;
  center_momentum: number;
  grad_clip: number;
  freeze_last_layer: number;
  out_dim: number;
  hidden_dim: number;
  bottleneck_dim: number;
  local_crops: number;
  global_crops_scale: [number, number];
  local_crops_scale: [number, number];
  global_size?: number;
  local_size?: number;
  hflip: number;
  color_jitter: { brightness: number; contrast: number; saturation: number; hue: number; p: number };
  grayscale: number;
  blur: [number, number, number];
  blur_radius: [number, number];
  solarize: number;
  knn_every: number;
  teacher_bn_stats?: 'crops' | 'train';
  seed: number;
  checkpoint_every: number;
  backend: string;
  precision?: 'fp32' | 'bf16';
}

const scalePair = { type: 'array', items: { type: 'number', exclusiveMinimum: 0, maximum: 1 }, minItems: 2, maxItems: 2 };
const probability = { type: 'number', minimum: 0, maximum: 1 };
const A = DINO_AUGMENT;

function withDefaults(p: DinoParams): DinoParams {
  // ajv fills the defaults of the top level; a partial color_jitter keeps DINO's other values.
  return { ...p, color_jitter: { ...DINO_AUGMENT.jitter, ...p.color_jitter } };
}

/** The monitor's settings, or null when it is off or the split has no val images. */
function knnMonitor(p: DinoParams, split: { val?: number[] }, meta: JSONObject, globalSize: number): KnnMonitor | null {
  const classes = Array.isArray(meta['classes']) ? meta['classes'].length : 0;
  if (p.knn_every === 0 || !split.val || split.val.length === 0 || classes < 2) return null;
  return { every: p.knn_every, val: split.val, classes, resize: evalTransformAt(globalSize).resize };
}

export default defineStage<DinoParams>({
  kind: 'dino',
  // 2: the k-NN monitor, teacher entropy and KL in the curves; augmentation parameters; Adam
  // steps per parameter (the last layer's bias correction after its frozen epochs).
  version: 2,
  description: 'DINO self-supervised pretraining (student/teacher self-distillation, multi-crop) on the training split; output: the teacher backbone',
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      epochs: { type: 'integer', minimum: 1, default: 300 },
      batch_size: { type: 'integer', minimum: 1, default: 256 },
      micro_batch: { type: 'integer', minimum: 0, default: 0, description: 'compute each batch in micro-batches of this size (gradient accumulation; exact except BatchNorm statistics); 0 = off' },
      lr: { type: 'number', exclusiveMinimum: 0, default: 1e-4, description: 'peak lr for a batch of 256, scaled linearly with the batch size as DINO (paper: 1e-4)' },
      min_lr: { type: 'number', minimum: 0, default: 1e-6, description: 'lr at the end of the cosine decay' },
      warmup_epochs: { type: 'integer', minimum: 0, default: 10, description: 'linear lr warm-up' },
      weight_decay: { type: 'number', minimum: 0, default: 1e-5, description: 'AdamW weight decay at the start (paper: 1e-5), not on biases and norms' },
      weight_decay_end: { type: 'number', minimum: 0, default: 1e-4, description: 'weight decay at the end of its cosine schedule (paper: 1e-4)' },
      momentum_teacher: { type: 'number', minimum: 0, maximum: 1, default: 0.99, description: 'teacher EMA momentum at the start, cosine to 1 (paper: 0.99)' },
      teacher_temp: { type: 'number', exclusiveMinimum: 0, default: 0.07 },
      warmup_teacher_temp: { type: 'number', exclusiveMinimum: 0, default: 0.04 },
      warmup_teacher_temp_epochs: { type: 'integer', minimum: 0, default: 30 },
      student_temp: { type: 'number', exclusiveMinimum: 0, default: 0.1 },
      center_momentum: { type: 'number', minimum: 0, maximum: 1, default: 0.9 },
      grad_clip: { type: 'number', minimum: 0, default: 3.0, description: 'per-parameter gradient norm limit (DINO clip_grad); 0 = off' },
      freeze_last_layer: { type: 'integer', minimum: 0, default: 1, description: 'epochs during which the head\'s last layer is not updated' },
      out_dim: { type: 'integer', minimum: 2, default: 65536, description: 'head output dimension (DINO: 65536; the authors\' code: 4096)' },
      hidden_dim: { type: 'integer', minimum: 1, default: 2048 },
      bottleneck_dim: { type: 'integer', minimum: 1, default: 256 },
      local_crops: { type: 'integer', minimum: 0, default: 8 },
      global_crops_scale: { ...scalePair, default: [0.4, 1] },
      local_crops_scale: { ...scalePair, default: [0.05, 0.4] },
      global_size: { type: 'integer', minimum: 8, description: 'global crop size (default: the checkpoint\'s input size)' },
      local_size: { type: 'integer', minimum: 8, description: 'local crop size (default: 96/224 of the input size, whole ViT patches)' },
      hflip: { ...probability, default: A.hflip, description: 'horizontal flip probability' },
      color_jitter: {
        type: 'object',
        additionalProperties: false,
        description: 'ColorJitter(brightness, contrast, saturation, hue) applied with probability p (DINO: 0.4, 0.4, 0.2, 0.1, p 0.8)',
        properties: {
          brightness: { type: 'number', minimum: 0, default: A.jitter.brightness },
          contrast: { type: 'number', minimum: 0, default: A.jitter.contrast },
          saturation: { type: 'number', minimum: 0, default: A.jitter.saturation },
          hue: { type: 'number', minimum: 0, maximum: 0.5, default: A.jitter.hue },
          p: { ...probability, default: A.jitter.p },
        },
        default: A.jitter,
      },
      grayscale: { ...probability, default: A.grayscale, description: 'RandomGrayscale probability' },
      blur: { type: 'array', items: probability, minItems: 3, maxItems: 3, default: A.blur, description: 'Gaussian blur probability of global crop 1, global crop 2, local crops' },
      blur_radius: { type: 'array', items: { type: 'number', exclusiveMinimum: 0 }, minItems: 2, maxItems: 2, default: A.blurRadius, description: 'blur radius range at 224 px (scaled with the crop size)' },
      solarize: { ...probability, default: A.solarize, description: 'solarisation probability of global crop 2' },
      knn_every: { type: 'integer', minimum: 0, default: 10, description: "k-NN monitor (DINO's eval_knn: cosine, 20 neighbours, T 0.07, train split as the bank, val split as queries) before training and every N epochs; 0 = off" },
      teacher_bn_stats: {
        enum: ['crops', 'train'],
        description:
          "the teacher's BatchNorm running statistics: crops (default, as DINO): those of its forward passes over the augmented global crops; " +
          'train: re-estimated on the train split under the evaluation transform before each k-NN measurement and before export (a departure from DINO; no effect on models without BatchNorm)',
      },
      seed: { type: 'integer', default: 0 },
      checkpoint_every: { type: 'integer', minimum: 0, default: 50, description: 'steps between resumable checkpoints (0: only at epoch ends)' },
      backend: BACKEND_PARAM,
      precision: PRECISION_PARAM,
    },
  },
  unkeyed: ['checkpoint_every', 'backend'],
  unkeyedDefaults: { ...PRECISION_UNKEYED_DEFAULT, teacher_bn_stats: 'crops' },
  inputs: {
    data: { type: 'records', description: 'preprocessed records' },
    split: { type: 'json', description: 'split stage output (its train list; labels unused)' },
    weights: { type: 'file', description: 'initial checkpoint (init, ImageNet)' },
  },
  outputs: { weights: 'file', curves: 'json', curves_svg: 'file' },
  resources: { cpus: 1 },

  async run(ctx: StageContext<DinoParams>) {
    const p = withDefaults(ctx.params);
    // DINO's cosine_scheduler asserts that its warm-up fits in the training; past it, a short
    // run would spend every step ramping up (a 1-step epoch ran at lr 0).
    // Its DINOLoss fails the same way for the teacher temperature's warm-up (np.ones of a
    // negative size): past it, the teacher would never reach teacher_temp.
    for (const field of ['warmup_epochs', 'warmup_teacher_temp_epochs'] as const) {
      if (p[field] > p.epochs) {
        throw new Error(`dino: ${field} (${p[field]}) is more than epochs (${p.epochs}): DINO's schedule needs the warm-up inside the training; lower ${field} (with: {${field}: ${p.epochs}} or less)`);
      }
    }
    const [{ activateEngine }, { loadModel }, { trainDino }, { cropSizes }, { exportTeacher }, { lineChart }, { metaNormalisation }] = await Promise.all([
      import('../src/engine/activate.js'),
      import('../src/ml/train/model-io.js'),
      import('../src/ml/dino/train.js'),
      import('../src/ml/dino/augment.js'),
      import('../src/ml/dino/export.js'),
      import('../src/report/svg.js'),
      import('../src/data/loader.js'),
    ]);
    const { engine } = await activateEngine(p.backend, ctx.provenance);

    const reader = ctx.inputs.records('data');
    const split = ctx.inputs.json<{ train: number[]; val?: number[] }>('split');
    const channels = Number((reader.meta['shape'] as number[] | undefined)?.[2] ?? 3);
    const model = await loadModel(await ctx.inputs.file('weights'), { channels }, p.seed);
    for (const note of model.notes) ctx.log(note);
    const sizes = cropSizes(model.spec.config);
    const augment = {
      ...DINO_AUGMENT,
      globalSize: p.global_size ?? sizes.globalSize,
      localSize: p.local_size ?? sizes.localSize,
      localCrops: p.local_crops,
      globalScale: p.global_crops_scale,
      localScale: p.local_crops_scale,
      hflip: p.hflip,
      jitter: { ...DINO_AUGMENT.jitter, ...p.color_jitter },
      grayscale: p.grayscale,
      blur: p.blur,
      blurRadius: p.blur_radius,
      solarize: p.solarize,
    };
    ctx.log(`${model.spec.name} from ${model.meta.source}; crops 2x${augment.globalSize}px + ${augment.localCrops}x${augment.localSize}px; train ${split.train.length} images; backend ${engine.backend}`);

    const result = await withPrecision(p.precision, engine, ctx.provenance, () => trainDino(
      model,
      reader,
      {
        epochs: p.epochs,
        batchSize: p.batch_size,
        microBatch: p.micro_batch,
        lr: p.lr,
        minLr: p.min_lr,
        warmupEpochs: p.warmup_epochs,
        weightDecay: p.weight_decay,
        weightDecayEnd: p.weight_decay_end,
        momentum: p.momentum_teacher,
        teacherTemp: p.teacher_temp,
        warmupTeacherTemp: p.warmup_teacher_temp,
        warmupTeacherTempEpochs: p.warmup_teacher_temp_epochs,
        studentTemp: p.student_temp,
        centerMomentum: p.center_momentum,
        gradClip: p.grad_clip,
        freezeLastLayer: p.freeze_last_layer,
        head: { hiddenDim: p.hidden_dim, bottleneckDim: p.bottleneck_dim, outDim: p.out_dim },
        augment,
        normalisation: metaNormalisation(reader.meta),
        seed: p.seed,
        checkpointEvery: p.checkpoint_every,
        train: split.train,
        knn: knnMonitor(p, split, reader.meta, augment.globalSize),
        teacherBnStats: p.teacher_bn_stats ?? 'crops',
      },
      { signal: ctx.signal, progress: ctx.progress, log: ctx.log, save: ctx.checkpoint.save, restore: ctx.checkpoint.restore },
    ));
    const out = join(ctx.workdir, 'teacher.safetensors');
    await exportTeacher(out, model, result.teacher.backbone, { dino_epochs: String(p.epochs), dino_out_dim: String(p.out_dim), seed: String(p.seed) });
    await ctx.outputs.file('weights', out, { filename: `${model.spec.name}-dino.safetensors` });

    const curves: JSONObject = {
      model: model.spec.name,
      steps_per_epoch: result.stepsPerEpoch,
      resumed_from: result.resumedFrom,
      epochs: result.curves.map((c) => ({ ...c })),
      knn: result.knn.map((k) => ({ ...k })),
      step_loss: result.stepLoss,
      step_teacher_entropy: result.stepEntropy,
    };
    ctx.outputs.json('curves', curves);
    const x = result.stepLoss.map((_, i) => (i + 1) / result.stepsPerEpoch);
    // The k-NN points sit at the end of their epoch's steps (epoch 0: before the first step).
    const knnAt = new Map(result.knn.map((k) => [Math.max(0, k.epoch * result.stepsPerEpoch - 1), k.top1]));
    const svg = lineChart(`${ctx.node}: DINO loss, teacher entropy, KL, k-NN top-1`, 'epoch', x, [
      { name: 'loss (per step)', values: result.stepLoss },
      { name: 'teacher entropy', values: result.stepEntropy },
      { name: 'KL (loss - entropy)', values: result.stepLoss.map((l, i) => l - result.stepEntropy[i]!) },
      { name: 'k-NN top-1', values: result.stepLoss.map((_, i) => knnAt.get(i) ?? null), right: true },
    ]);
    await writeFile(join(ctx.workdir, 'curves.svg'), svg);
    await ctx.outputs.file('curves_svg', 'curves.svg');
  },
});
