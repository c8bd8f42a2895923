// DINO self-distillation (main_dino.py's train_one_epoch) on one record set, starting from the
// weights of `model`: the student trains, the teacher follows it by EMA and is the result.
// Gradient accumulation over micro-batches is exact for the loss, the gradients and the
// centre (each is a per-sample mean or sum over the whole batch, and the teacher and centre do
// not change within a step); only BatchNorm differs: its batch statistics, in student and
// teacher alike, are the micro-batch's, and its running estimates move once per micro-batch.
import * as tf from '@tensorflow/tfjs';
import type { RecordReader } from '../../contract.js';
import type { Normalisation } from '../../data/augment.js';
import { epochOrder } from '../../data/loader.js';
import { Rng } from '../../data/rng.js';
import { familyOf } from '../models/families.js';
import { features } from '../models/forward.js';
import type { ParamMap } from '../models/params.js';
import type { ModelSpec, ParamSpec } from '../models/types.js';
import { Adam } from '../train/adam.js';
import type { LoadedModel } from '../train/model-io.js';
import { evalTransformAt, type DinoAugment } from './augment.js';
import { cropBatches, sliceCrops, type CropBatch } from './batches.js';
import { clipPerParameter } from './clip.js';
import { knnMonitorTop1 } from './knn-monitor.js';
import { recalibrateBatchNorm } from './batchnorm-stats.js';
import { headForward, headParams, LAST_LAYER_PREFIX, makeVariables, type HeadConfig } from './head.js';
import { dinoLoss, emaUpdate, teacherTargets, updatedCenter } from './loss.js';
import { stepValues, type DinoScheduleOptions, type StepValues } from './schedules.js';
import { frozenCopy, netParts, packState, trainedParams, unpackState, type Net } from './state.js';

export interface DinoOptions extends Omit<DinoScheduleOptions, 'stepsPerEpoch' | 'lr'> {
  /** Base lr for a batch of 256; DINO scales it linearly with the batch size. */
  lr: number;
  batchSize: number;
  /** Samples per forward/backward pass (0 = the whole batch). */
  microBatch: number;
  studentTemp: number;
  centerMomentum: number;
  /** Per-parameter gradient norm limit (DINO's clip_gradients); 0 = off. */
  gradClip: number;
  /** Epochs during which the head's last layer gets no update. */
  freezeLastLayer: number;
  head: Omit<HeadConfig, 'inDim'>;
  augment: DinoAugment;
  normalisation: Normalisation;
  seed: number;
  checkpointEvery: number;
  train: readonly number[];
  /** The k-NN monitor, or null for none. */
  knn: KnnMonitor | null;
  /** The teacher's BatchNorm running statistics: 'crops' (DINO's: from its forward passes over
   *  the augmented global crops) or 'train' (re-estimated on the train split under the
   *  evaluation transform before each k-NN measurement and at the end). Default 'crops'. */
  teacherBnStats?: 'crops' | 'train';
}

export interface KnnMonitor {
  /** Measured before training and after every `every` epochs (and the last). */
  every: number;
  /** Queries (the split's val list); the bank is the train list. */
  val: readonly number[];
  classes: number;
  /** Evaluation transform: Resize(resize) -> CenterCrop(the global crop size). */
  resize: number;
}

export interface DinoEpoch {
  epoch: number;
  loss: number;
  /** Mean entropy of the teacher's targets (collapse to one dimension: -> 0). */
  teacher_entropy: number;
  /** Mean KL(teacher || student) = loss - teacher entropy (collapse: -> 0). */
  kl: number;
  /** k-NN top-1 on the val split after this epoch, when measured. */
  knn_top1: number | null;
  lr: number;
  weight_decay: number;
  teacher_temp: number;
  momentum: number;
  seconds: number;
  images_per_s: number;
}

interface Progress {
  epoch: number;
  batch: number;
  step: number;
  lossSum: number;
  entropySum: number;
  lossCount: number;
  images: number;
  seconds: number;
  curves: DinoEpoch[];
  /** Every step's loss and teacher entropy, for the drawn curves. */
  stepLoss: number[];
  stepEntropy: number[];
  /** k-NN top-1 before training (epoch 0) and after the monitored epochs. */
  knn: { epoch: number; top1: number }[];
}

export interface DinoIO {
  signal: AbortSignal;
  progress(text: string): void;
  log(text: string): void;
  save(name: string, data: Uint8Array): Promise<void>;
  restore(name: string): Promise<Uint8Array | undefined>;
}

export interface DinoResult {
  teacher: Net;
  student: Net;
  center: tf.Tensor;
  curves: DinoEpoch[];
  stepLoss: number[];
  stepEntropy: number[];
  knn: { epoch: number; top1: number }[];
  stepsPerEpoch: number;
  resumedFrom: { epoch: number; batch: number } | null;
}

const STATE = 'dino-state.safetensors';

/** The feature width the head takes (the family's feature size). */
export function featureDim(spec: ModelSpec): number {
  return familyOf(spec.config).featureSize(spec.config);
}

/** Stream of the student's stochastic-depth masks: a function of (seed, step), so a resumed
 *  run draws the same masks. */
const DROP_PATH_STREAM = 0x64726f70;

/** DINO's parameter groups: no weight decay on biases and one-dimensional tensors (norms). */
export function noDecay(name: string, shape: readonly number[]): boolean {
  return name.endsWith('.bias') || shape.length === 1;
}

function concatArrays(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Forward of a backbone + head over the crops of a micro-batch, one pass per resolution as
 *  DINO's MultiCropWrapper: globals together, locals together, one head over all. `random`
 *  draws the student's stochastic depth; the teacher has none (as DINO builds it). */
export function multiCropForward(spec: ModelSpec, net: Net, crops: Float32Array[], sizes: number[], m: number, channels: number, random?: Rng): tf.Tensor2D {
  return tf.tidy(() => {
    const feats: tf.Tensor2D[] = [];
    let v = 0;
    while (v < crops.length) {
      let end = v;
      while (end < crops.length && sizes[end] === sizes[v]) end++;
      const s = sizes[v]!;
      const x = tf.tensor4d(concatArrays(crops.slice(v, end)), [(end - v) * m, s, s, channels]);
      feats.push(features(spec, net.backbone, x, { training: true, random }));
      v = end;
    }
    return headForward(net.head, feats.length === 1 ? feats[0]! : (tf.concat(feats, 0) as tf.Tensor2D));
  });
}

/** One optimiser step over one batch (all its micro-batches), then the EMA and the centre. */
export function dinoStep(
  spec: ModelSpec,
  student: Net,
  teacher: Net,
  state: { adam: Adam; center: tf.Tensor; trained: Map<string, tf.Variable>; teacherTrained: Map<string, tf.Variable> },
  b: CropBatch,
  values: StepValues,
  o: Pick<DinoOptions, 'microBatch' | 'studentTemp' | 'centerMomentum' | 'gradClip'> & { freezeLast: boolean; random?: Rng },
): { loss: number; entropy: number; center: tf.Tensor } {
  const n = b.n;
  const micro = o.microBatch > 0 ? o.microBatch : n;
  const updated = [...state.trained].filter(([name]) => !(o.freezeLast && name.startsWith(LAST_LAYER_PREFIX)));
  const byVarName = new Map(updated.map(([name, v]) => [v.name, name]));
  const grads = new Map<string, tf.Tensor>();
  let teacherSum: tf.Tensor | undefined;
  let loss = 0;
  let entropy = 0;
  for (let s = 0; s < n; s += micro) {
    const m = Math.min(micro, n - s);
    const crops = sliceCrops(b, s, m);
    const teacherOut = multiCropForward(spec, teacher, crops.slice(0, 2), b.sizes.slice(0, 2), m, b.channels);
    const targets = teacherTargets(teacherOut, state.center, values.teacherTemp);
    const h = tf.tidy(() => tf.mean(tf.neg(tf.sum(tf.mul(targets, tf.log(tf.maximum(targets, 1e-30))), -1))));
    entropy += h.dataSync()[0]! * (m / n);
    h.dispose();
    const sum = tf.tidy(() => (teacherSum ? tf.add(teacherSum, tf.sum(teacherOut, 0, true)) : tf.sum(teacherOut, 0, true)));
    teacherSum?.dispose();
    teacherSum = sum;
    teacherOut.dispose();
    const { value, grads: g } = tf.variableGrads(
      () => dinoLoss(multiCropForward(spec, student, crops, b.sizes, m, b.channels, o.random), targets, crops.length, o.studentTemp),
      updated.map(([, v]) => v),
    );
    targets.dispose();
    loss += value.dataSync()[0]! * (m / n);
    value.dispose();
    for (const [varName, grad] of Object.entries(g)) {
      const name = byVarName.get(varName)!;
      const scaled = m === n ? grad : tf.tidy(() => tf.mul(grad, m / n));
      if (scaled !== grad) grad.dispose();
      const prev = grads.get(name);
      grads.set(name, prev ? tf.tidy(() => tf.add(prev, scaled)) : scaled);
      if (prev) {
        prev.dispose();
        scaled.dispose();
      }
    }
  }
  if (!Number.isFinite(loss)) throw new Error(`DINO loss is ${loss} (lr ${values.lr}): diverged`);
  if (o.gradClip > 0) clipPerParameter(grads, o.gradClip);
  state.adam.apply(state.trained, grads, values.lr, values.weightDecay);
  for (const g of grads.values()) g.dispose();
  emaUpdate(state.teacherTrained, state.trained, [...state.trained.keys()], values.momentum);
  const center = updatedCenter(state.center, teacherSum!, 2 * n, o.centerMomentum);
  teacherSum!.dispose();
  return { loss, entropy, center };
}

export interface DinoNets {
  headSpecs: ParamSpec[];
  student: Net;
  teacher: Net;
  trained: Map<string, tf.Variable>;
  teacherTrained: Map<string, tf.Variable>;
  adam: Adam;
}

/** Student (the loaded backbone + a fresh head), teacher (a frozen copy) and AdamW. */
export function createNets(spec: ModelSpec, backbone: ParamMap, head: Omit<HeadConfig, 'inDim'>, seed: number): DinoNets {
  const headSpecs = headParams({ inDim: featureDim(spec), ...head });
  const student: Net = { backbone, head: makeVariables(headSpecs, seed) };
  // DINO loads the student's state dict into the teacher: same start, then EMA only.
  const teacher: Net = { backbone: frozenCopy(student.backbone), head: frozenCopy(student.head) };
  const trained = trainedParams(spec, headSpecs, student);
  const teacherTrained = trainedParams(spec, headSpecs, teacher);
  const adam = new Adam(tf, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: true, noDecay: (name) => noDecay(name, trained.get(name)!.shape) });
  return { headSpecs, student, teacher, trained, teacherTrained, adam };
}

export async function trainDino(model: LoadedModel, reader: RecordReader, o: DinoOptions, io: DinoIO): Promise<DinoResult> {
  const spec = model.spec;
  const { headSpecs, student, teacher, trained, teacherTrained, adam } = createNets(spec, model.params, o.head, o.seed);
  const parts = [...netParts('student', spec, headSpecs, student), ...netParts('teacher', spec, headSpecs, teacher)];

  const stepsPerEpoch = Math.floor(o.train.length / o.batchSize) || 1;
  const dropLast = o.train.length >= o.batchSize;
  const effectiveBatch = Math.min(o.batchSize, o.train.length);
  const sched: DinoScheduleOptions = { ...o, stepsPerEpoch, lr: (o.lr * effectiveBatch) / 256 };

  let progress: Progress = { epoch: 0, batch: 0, step: 0, lossSum: 0, entropySum: 0, lossCount: 0, images: 0, seconds: 0, curves: [], stepLoss: [], stepEntropy: [], knn: [] };
  let center: tf.Tensor = tf.zeros([1, o.head.outDim]);
  let resumedFrom: DinoResult['resumedFrom'] = null;
  const saved = await io.restore(STATE);
  if (saved) {
    center.dispose();
    let restored: Partial<Progress>;
    ({ progress: restored, center } = unpackState<Partial<Progress>>(saved, STATE, parts, adam));
    // Checkpoints from before the monitor lack its fields.
    progress = { ...progress, ...restored };
    resumedFrom = { epoch: progress.epoch, batch: progress.batch };
    io.log(`resuming at epoch ${progress.epoch + 1}, batch ${progress.batch} (step ${progress.step})`);
  }
  const checkpoint = async (p: Progress) => io.save(STATE, await packState(parts, adam, center, p));
  // Only evaluation reads the running statistics (DINO's teacher runs in training mode), so
  // re-estimating them changes neither the training nor a resumed run's course.
  const cleanStats = async (): Promise<void> => {
    if (o.teacherBnStats === 'train') await recalibrateBatchNorm(spec, teacher.backbone, reader, o.train, evalTransformAt(o.augment.globalSize), o.normalisation, o.batchSize);
  };
  const knnTop1 = async (): Promise<number> => {
    await cleanStats();
    return knnMonitorTop1(spec, teacher.backbone, reader, o.train, o.knn!, { resize: o.knn!.resize, crop: o.augment.globalSize }, o.normalisation);
  };
  const lastKnn = (): string => (progress.knn.length ? ` knn ${progress.knn[progress.knn.length - 1]!.top1.toFixed(3)}` : '');
  if (o.knn && progress.step === 0) {
    progress.knn.push({ epoch: 0, top1: await knnTop1() });
    io.log(`k-NN (20 NN, cosine, T 0.07) top-1 on ${o.knn.val.length} val images before DINO: ${progress.knn[0]!.top1.toFixed(4)}`);
  }

  for (; progress.epoch < o.epochs; progress.epoch++) {
    const order = epochOrder(o.train, o.seed, progress.epoch, true);
    const remaining = order.slice(progress.batch * o.batchSize, dropLast ? stepsPerEpoch * o.batchSize : order.length);
    let last = stepValues(sched, progress.step, progress.epoch);
    // Wall time, data loading included; carried over a resume for the epoch's images/s.
    const epochStart = Date.now() - progress.seconds * 1000;
    for await (const b of cropBatches(reader, remaining, o.batchSize, o.augment, o.normalisation, o.seed, progress.epoch)) {
      if (io.signal.aborted) throw new Error('interrupted');
      last = stepValues(sched, progress.step, progress.epoch);
      const r = dinoStep(spec, student, teacher, { adam, center, trained, teacherTrained }, b, last, {
        microBatch: o.microBatch,
        studentTemp: o.studentTemp,
        centerMomentum: o.centerMomentum,
        gradClip: o.gradClip,
        freezeLast: progress.epoch < o.freezeLastLayer,
        random: new Rng(o.seed, DROP_PATH_STREAM, progress.step),
      });
      center.dispose();
      center = r.center;
      progress.step++;
      progress.batch++;
      progress.lossSum += r.loss * b.n;
      progress.entropySum += r.entropy * b.n;
      progress.lossCount += b.n;
      progress.stepLoss.push(r.loss);
      progress.stepEntropy.push(r.entropy);
      progress.images += b.n;
      progress.seconds = (Date.now() - epochStart) / 1000;
      const meanLoss = progress.lossSum / progress.lossCount;
      const meanEntropy = progress.entropySum / progress.lossCount;
      io.progress(
        `epoch ${progress.epoch + 1}/${o.epochs} step ${progress.batch}/${stepsPerEpoch} loss ${meanLoss.toFixed(4)}` +
          ` H ${meanEntropy.toFixed(3)} KL ${(meanLoss - meanEntropy).toFixed(3)}${lastKnn()}` +
          ` teacher temp ${last.teacherTemp.toFixed(4)} momentum ${last.momentum.toFixed(5)} lr ${last.lr.toExponential(2)}` +
          ` ${(progress.images / Math.max(progress.seconds, 1e-9)).toFixed(1)} img/s`,
      );
      if (o.checkpointEvery > 0 && progress.step % o.checkpointEvery === 0) await checkpoint(progress);
    }
    const epochsDone = progress.epoch + 1;
    let knn: number | null = null;
    if (o.knn && (epochsDone % o.knn.every === 0 || epochsDone === o.epochs)) {
      knn = await knnTop1();
      progress.knn.push({ epoch: epochsDone, top1: knn });
    }
    const loss = progress.lossCount ? progress.lossSum / progress.lossCount : NaN;
    const teacherEntropy = progress.lossCount ? progress.entropySum / progress.lossCount : NaN;
    progress.curves.push({
      epoch: epochsDone,
      loss,
      teacher_entropy: teacherEntropy,
      kl: loss - teacherEntropy,
      knn_top1: knn,
      lr: last.lr,
      weight_decay: last.weightDecay,
      teacher_temp: last.teacherTemp,
      momentum: last.momentum,
      seconds: progress.seconds,
      images_per_s: progress.images / Math.max(progress.seconds, 1e-9),
    });
    io.log(
      `epoch ${epochsDone}: loss ${loss.toFixed(4)}, teacher entropy ${teacherEntropy.toFixed(4)}, KL ${(loss - teacherEntropy).toFixed(4)}` +
        `${knn === null ? '' : `, k-NN top-1 ${knn.toFixed(4)}`}, teacher temp ${last.teacherTemp.toFixed(4)}, momentum ${last.momentum.toFixed(5)}`,
    );
    // The epoch is complete: a resume starts the next one.
    Object.assign(progress, { batch: 0, lossSum: 0, entropySum: 0, lossCount: 0, images: 0, seconds: 0 });
    await checkpoint({ ...progress, epoch: progress.epoch + 1 });
  }
  await cleanStats();
  adam.dispose();
  return { teacher, student, center, curves: progress.curves, stepLoss: progress.stepLoss, stepEntropy: progress.stepEntropy, knn: progress.knn, stepsPerEpoch, resumedFrom };
}
