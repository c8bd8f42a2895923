// The paper's supervised recipe: Adam, linear warm-up, lr / 10 on a validation plateau down to a
// floor, gradient clipping, the best-validation checkpoint as the result. Deterministic for a
// seed on one backend, and resumable from a checkpoint to the same final weights.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as tfTypes from '@tensorflow/tfjs';
import type { JSONObject, RecordReader } from '../../contract.js';
import type { EvalAugment, TrainAugment } from '../../data/augment.js';
import { epochOrder, hostBatches } from '../../data/loader.js';
import { Rng } from '../../data/rng.js';
import { softmaxCrossEntropy } from '../../engine/fused-ops.js';
import { familyOf } from '../models/families.js';
import { forward, trainStep } from '../models/forward.js';
import { readState } from '../models/params.js';
import { deserialize, fromFloat32, serialize, toFloat32, type Tensor } from '../safetensors.js';
import { torchToTf } from '../weights/layout.js';
import { Adam, clipByGlobalNorm } from './adam.js';
import { saveModel, predict, type LoadedModel } from './model-io.js';
import { plateauStep, warmupFactor, type PlateauOptions, type PlateauState } from './schedule.js';
import { taskMetric, type TaskMetric } from './task-metrics.js';

const DROP_PATH_STREAM = 0x64726f70;

type Tf = typeof tfTypes;

export interface FinetuneOptions {
  metric: TaskMetric;
  classes: number;
  epochs: number;
  batchSize: number;
  /** Gradient accumulation: a batch is computed in micro-batches of this size (0 = whole batch). */
  microBatch: number;
  lr: number;
  warmupIters: number;
  plateau: PlateauOptions;
  gradClip: number;
  weightDecay: number;
  seed: number;
  train: Partial<TrainAugment>;
  eval: Partial<EvalAugment>;
  evalBatchSize: number;
  checkpointEvery: number;
  split: { train: number[]; val: number[] };
  /** Written into the best checkpoint's metadata (e.g. how to preprocess images for predict). */
  checkpointMeta: Record<string, string>;
}

export interface EpochRecord {
  epoch: number;
  train_loss: number;
  val_metric: number;
  lr: number;
  seconds: number;
  images_per_s: number;
}

/** Everything needed to continue a run exactly: JSON beside the tensors of a checkpoint. */
interface Progress {
  epoch: number;
  /** Next batch of `epoch` to run. */
  batch: number;
  step: number;
  lossSum: number;
  lossCount: number;
  plateau: PlateauState;
  bestEpoch: number;
  curves: EpochRecord[];
}

export interface FinetuneIO {
  workdir: string;
  signal: AbortSignal;
  progress(text: string): void;
  log(text: string): void;
  save(name: string, data: Uint8Array): Promise<void>;
  restore(name: string): Promise<Uint8Array | undefined>;
}

export interface FinetuneResult {
  bestPath: string;
  bestEpoch: number;
  bestMetric: number;
  curves: EpochRecord[];
  resumedFrom: { epoch: number; batch: number } | null;
}

const STATE = 'train-state.safetensors';
const BEST = 'best.safetensors';

function lossOf(tf: Tf, logits: tfTypes.Tensor2D, y: tfTypes.Tensor1D, classes: number): tfTypes.Scalar {
  if (logits.shape[1] === 1) return tf.losses.sigmoidCrossEntropy(y.toFloat().reshape([-1, 1]), logits) as tfTypes.Scalar;
  const onehot = tf.oneHot(y.toInt(), classes).toFloat();
  return softmaxCrossEntropy(tf, logits, onehot, 1 / logits.shape[0]) ?? (tf.losses.softmaxCrossEntropy(onehot, logits) as tfTypes.Scalar);
}

async function packState(model: LoadedModel, adam: Adam, progress: Progress): Promise<Uint8Array> {
  const tensors = new Map<string, Tensor>();
  const state = await readState(model.spec, model.params);
  for (const [name, t] of state) tensors.set(`model.${name}`, fromFloat32(t.data, t.shape));
  for (const [name, t] of adam.state()) {
    // data() is a Float32Array already (a copy on wasm), read by serialize before the moments change: no second copy.
    const values = await t.data();
    tensors.set(name, fromFloat32(values instanceof Float32Array ? values : Float32Array.from(values), t.shape));
  }
  return serialize(tensors, { progress: JSON.stringify(progress), ...adam.metadata() });
}

function unpackState(tf: Tf, bytes: Uint8Array, model: LoadedModel, adam: Adam): Progress {
  const { metadata, tensors } = deserialize(bytes, STATE);
  for (const p of model.spec.params) {
    const t = tensors.get(`model.${p.name}`);
    const v = model.params.get(p.name);
    if (!t || !v) throw new Error(`${STATE}: checkpoint lacks ${p.name}; it belongs to another model`);
    const values = torchToTf(p.layout, p.shape, toFloat32(t));
    v.assign(p.dtype === 'I64' ? tf.tensor(Int32Array.from(values), v.shape, 'int32') : tf.tensor(values, v.shape));
  }
  const moments = new Map<string, tfTypes.Tensor>();
  for (const [name, t] of tensors) if (name.startsWith('adam.')) moments.set(name, tf.tensor(toFloat32(t), t.shape));
  adam.restore(metadata, moments);
  for (const t of moments.values()) t.dispose();
  return JSON.parse(metadata['progress']!) as Progress;
}

export async function finetune(tf: Tf, model: LoadedModel, reader: RecordReader, o: FinetuneOptions, io: FinetuneIO): Promise<FinetuneResult> {
  const trainable = [...model.params].filter(([, v]) => v.trainable);
  const byVarName = new Map(trainable.map(([name, v]) => [v.name, name]));
  const noDecay = (name: string) => familyOf(model.spec.config).noDecay(name);
  const adam = new Adam(tf, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: o.weightDecay, noDecay });
  const bestPath = join(io.workdir, BEST);
  const steps = Math.floor(o.split.train.length / o.batchSize) || 1;
  const dropLast = o.split.train.length >= o.batchSize;

  let progress: Progress = {
    epoch: 0,
    batch: 0,
    step: 0,
    lossSum: 0,
    lossCount: 0,
    plateau: { lr: o.lr, best: null, badEpochs: 0, cooldownLeft: 0 },
    bestEpoch: -1,
    curves: [],
  };
  let resumedFrom: FinetuneResult['resumedFrom'] = null;
  const saved = await io.restore(STATE);
  if (saved) {
    progress = unpackState(tf, saved, model, adam);
    const best = await io.restore(BEST);
    if (best) await writeFile(bestPath, best);
    resumedFrom = { epoch: progress.epoch, batch: progress.batch };
    io.log(`resuming at epoch ${progress.epoch + 1}, batch ${progress.batch} (step ${progress.step})`);
  }
  const checkpoint = async () => io.save(STATE, await packState(model, adam, progress));
  const micro = o.microBatch > 0 ? o.microBatch : o.batchSize;

  for (; progress.epoch < o.epochs; progress.epoch++, progress.batch = 0, progress.lossSum = 0, progress.lossCount = 0) {
    const started = Date.now();
    let images = 0;
    // The epoch's order is a function of (seed, epoch): skipping the batches already done
    // resumes the very same sequence of samples and augmentations.
    const order = epochOrder(o.split.train, o.seed, progress.epoch, true);
    const remaining = order.slice(progress.batch * o.batchSize, dropLast ? steps * o.batchSize : order.length);
    for await (const b of hostBatches({ reader, indices: remaining, batchSize: o.batchSize, seed: o.seed, epoch: progress.epoch, mode: 'train', shuffle: false, train: o.train })) {
      if (io.signal.aborted) throw new Error('interrupted');
      const lr = progress.plateau.lr * warmupFactor(progress.step, o.warmupIters);
      const n = b.y.length;
      const [, h, w, c] = b.shape;
      const grads = new Map<string, tfTypes.Tensor>();
      let lossValue = 0;
      for (let s = 0; s < n; s += micro) {
        const m = Math.min(micro, n - s);
        const { value, grads: g } = tf.tidy(() => {
          const x = tf.tensor4d(b.x.subarray(s * h * w * c, (s + m) * h * w * c), [m, h, w, c]);
          const y = tf.tensor1d(b.y.subarray(s, s + m), 'int32');
          // Stochastic depth's masks: a function of (seed, step, micro-batch), so a resumed run draws the same.
          const random = new Rng(o.seed, DROP_PATH_STREAM, progress.step, s);
          // The tape-free step graph where the family has one (same loss and gradients).
          const direct = o.classes > 1 ? trainStep(model.spec, model.params, x, tf.oneHot(y, o.classes).toFloat() as tfTypes.Tensor2D, 1 / m) : undefined;
          return direct ?? tf.variableGrads(() => lossOf(tf, forward(model.spec, model.params, x, { training: true, random }), y, o.classes), trainable.map(([, v]) => v));
        });
        lossValue += (await value.data())[0]! * (m / n);
        value.dispose();
        for (const [varName, grad] of Object.entries(g)) {
          const name = byVarName.get(varName)!;
          const scaled = m === n ? grad : tf.tidy(() => grad.mul(m / n));
          if (scaled !== grad) grad.dispose();
          const prev = grads.get(name);
          grads.set(name, prev ? tf.tidy(() => prev.add(scaled)) : scaled);
          if (prev) {
            prev.dispose();
            scaled.dispose();
          }
        }
      }
      if (!Number.isFinite(lossValue)) throw new Error(`loss is ${lossValue} at epoch ${progress.epoch + 1} step ${progress.step + 1} (lr ${lr}): diverged`);
      if (o.gradClip > 0) clipByGlobalNorm(tf, grads, o.gradClip);
      adam.apply(model.params, grads, lr);
      for (const g of grads.values()) g.dispose();
      progress.step++;
      progress.batch++;
      progress.lossSum += lossValue * n;
      progress.lossCount += n;
      images += n;
      const seconds = (Date.now() - started) / 1000;
      io.progress(
        `epoch ${progress.epoch + 1}/${o.epochs} step ${progress.batch}/${steps} loss ${(progress.lossSum / progress.lossCount).toFixed(4)} lr ${lr.toExponential(2)}` +
          `${progress.curves.length ? ` val ${o.metric} ${progress.curves[progress.curves.length - 1]!.val_metric.toFixed(4)}` : ''} ${(images / Math.max(seconds, 1e-9)).toFixed(1)} img/s`,
      );
      if (o.checkpointEvery > 0 && progress.step % o.checkpointEvery === 0) await checkpoint();
    }

    io.progress(`epoch ${progress.epoch + 1}/${o.epochs}: validating on ${o.split.val.length} images`);
    const preds = await predict(tf, model, reader, o.split.val, o.eval, o.evalBatchSize);
    let metric: number;
    try {
      metric = taskMetric(o.metric, preds, o.classes);
    } catch (err) {
      throw new Error(`validation ${o.metric} on ${o.split.val.length} images: ${(err as Error).message} (a stratified split or a larger validation set avoids this)`);
    }
    const before = progress.plateau.best;
    const lrUsed = progress.plateau.lr;
    progress.plateau = plateauStep(progress.plateau, metric, o.plateau);
    if (before === null || progress.plateau.best !== before) {
      progress.bestEpoch = progress.epoch;
      await saveModel(bestPath, model, `finetune(epoch ${progress.epoch + 1})`, {
        ...o.checkpointMeta,
        best_epoch: String(progress.epoch + 1),
        [`val_${o.metric}`]: String(metric),
      });
      await io.save(BEST, await readFile(bestPath));
    }
    const seconds = (Date.now() - started) / 1000;
    progress.curves.push({
      epoch: progress.epoch + 1,
      train_loss: progress.lossCount ? progress.lossSum / progress.lossCount : NaN,
      val_metric: metric,
      lr: lrUsed,
      seconds,
      images_per_s: images / Math.max(seconds, 1e-9),
    });
    io.log(`epoch ${progress.epoch + 1}: train loss ${(progress.lossSum / Math.max(1, progress.lossCount)).toFixed(4)}, val ${o.metric} ${metric.toFixed(4)}, lr ${lrUsed.toExponential(2)}`);
    // The epoch is complete: a resume starts the next one.
    const next = { ...progress, epoch: progress.epoch + 1, batch: 0, lossSum: 0, lossCount: 0 };
    await io.save(STATE, await packState(model, adam, next));
  }
  adam.dispose();
  const best = progress.curves[progress.bestEpoch]?.val_metric ?? NaN;
  return { bestPath, bestEpoch: progress.bestEpoch + 1, bestMetric: best, curves: progress.curves, resumedFrom };
}

export function curvesJSON(r: FinetuneResult, metric: string): JSONObject {
  return {
    metric,
    best_epoch: r.bestEpoch,
    best_val: r.bestMetric,
    resumed_from: r.resumedFrom,
    epochs: r.curves.map((c) => ({ ...c })),
  };
}
