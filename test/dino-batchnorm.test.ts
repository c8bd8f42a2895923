// The dino stage's teacher_bn_stats: train (a departure from DINO): the teacher's BatchNorm
// running statistics are re-estimated on the clean train images; DINO's training itself is
// unchanged, bit for bit. The estimate weighs batches by their images, so it does not depend
// on how the images are batched, and the running mean of the first BatchNorm is exactly the
// mean over the images.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import type * as tfTypes from '@tensorflow/tfjs';
import type { DataRecord } from '../src/contract.js';
import { Rng } from '../src/data/rng.js';
import { DINO_AUGMENT, cropSizes, evalTransformAt } from '../src/ml/dino/augment.js';
import { hasBatchNorm, recalibrateBatchNorm } from '../src/ml/dino/batchnorm-stats.js';
import { knnMonitorTop1 } from '../src/ml/dino/knn-monitor.js';
import { frozenCopy } from '../src/ml/dino/state.js';
import { trainDino, type DinoOptions } from '../src/ml/dino/train.js';
import { createParams, type ParamMap } from '../src/ml/models/params.js';
import { modelSpec } from '../src/ml/models/registry.js';
import { initState } from '../src/ml/models/state.js';
import type { LoadedModel } from '../src/ml/train/model-io.js';
import { metaFor } from '../src/ml/weights/checkpoint.js';
import { MemoryRecords } from './support/fake-stage-context.js';

let tf: typeof tfTypes;
before(async () => {
  const { initBackend } = await import('../src/engine/backend.js');
  const engine = await initBackend();
  tf = await import('@tensorflow/tfjs');
  await tf.setBackend(engine.backend);
});

const NORM = { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };
const S = 32;

/** 40 noisy images of 32 px in four colours. */
function records(): MemoryRecords {
  const out: DataRecord[] = [];
  for (let i = 0; i < 40; i++) {
    const rng = new Rng(5, i);
    const data = new Uint8Array(S * S * 3);
    for (let p = 0; p < S * S; p++) for (let c = 0; c < 3; c++) data[p * 3 + c] = Math.max(0, Math.min(255, Math.round(60 + (c === i % 3 ? 120 : 0) + 25 * rng.normal())));
    out.push({ data, meta: { label: i % 4 } });
  }
  return new MemoryRecords(out, { shape: [S, S, 3], ...NORM });
}

function freshModel(name: string, imageSize: number): LoadedModel {
  const spec = modelSpec(name, { numClasses: 4, imageSize });
  return { spec, params: createParams(spec, initState(spec, 1)), meta: metaFor(spec, 'random(seed=1)'), notes: [] };
}

const arrays = (m: ParamMap, keep: (name: string) => boolean) => new Map([...m].filter(([n]) => keep(n)).map(([n, v]) => [n, Float32Array.from(v.dataSync())]));
const isStat = (n: string) => n.endsWith('.running_mean') || n.endsWith('.running_var');
/** Not a statistic nor the counter of batches BatchNorm has seen. */
const isWeight = (n: string) => !isStat(n) && !n.endsWith('.num_batches_tracked');
const CLEAN = evalTransformAt(S);

test('BatchNorm statistics re-estimated on clean images: weighted by images, independent of batching; weights untouched; a ViT has none', { timeout: 60_000 }, async () => {
  const model = freshModel('resnet_demo', S);
  const reader = records();
  const train = [...Array(31).keys()];
  const weightsBefore = arrays(model.params, isWeight);
  const whole = frozenCopy(model.params);
  assert.equal(await recalibrateBatchNorm(model.spec, whole, reader, train, CLEAN, NORM, 64), 31);
  // 31 images in batches of 10 would leave one image alone (BatchNorm needs two values per channel at 1x1): 11, 11, 9.
  const batched = frozenCopy(model.params);
  assert.equal(await recalibrateBatchNorm(model.spec, batched, reader, train, CLEAN, NORM, 10), 31);

  // The stem's BatchNorm sees the same conv outputs whatever the batching: its mean is the images' mean.
  const a = whole.get('bn1.running_mean')!.dataSync();
  const b = batched.get('bn1.running_mean')!.dataSync();
  assert.ok(a.some((v) => Math.abs(v) > 1e-3), 'the stem statistics moved from their initial zeros');
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= 1e-5 * Math.max(1, Math.abs(a[i]!)), `bn1 mean ${i}: ${a[i]} (one batch) vs ${b[i]} (11 + 11 + 9)`);
  const va = whole.get('bn1.running_var')!.dataSync();
  const vb = batched.get('bn1.running_var')!.dataSync();
  // The variance is the average of the batches' unbiased variances: close to, not exactly, the pooled one.
  for (let i = 0; i < va.length; i++) assert.ok(Math.abs(va[i]! - vb[i]!) <= 0.1 * va[i]!, `bn1 var ${i}: ${va[i]} vs ${vb[i]}`);
  for (const [name, before] of weightsBefore) assert.deepEqual(Float32Array.from(batched.get(name)!.dataSync()), before, `${name} unchanged`);

  const vit = freshModel('vit_demo', 16);
  assert.equal(hasBatchNorm(vit.params), false);
  assert.equal(await recalibrateBatchNorm(vit.spec, vit.params, reader, train, evalTransformAt(16), NORM, 10), 0);
});

test('teacherBnStats train: the same DINO run bit for bit; the exported statistics are the clean images\', not the crops\'', { timeout: 90_000 }, async () => {
  const reader = records();
  const train = [...Array(32).keys()];
  const run = async (teacherBnStats: 'crops' | 'train') => {
    const model = freshModel('resnet_demo', S);
    const o: DinoOptions = {
      epochs: 2, batchSize: 16, microBatch: 0, lr: 0.02, minLr: 1e-6, warmupEpochs: 0, weightDecay: 1e-5, weightDecayEnd: 1e-4,
      momentum: 0.99, teacherTemp: 0.04, warmupTeacherTemp: 0.04, warmupTeacherTempEpochs: 0, studentTemp: 0.1, centerMomentum: 0.9,
      gradClip: 3, freezeLastLayer: 0, head: { hiddenDim: 32, bottleneckDim: 16, outDim: 32 },
      augment: { ...DINO_AUGMENT, ...cropSizes(model.spec.config), localCrops: 2 }, normalisation: NORM,
      seed: 0, checkpointEvery: 0, train, knn: { every: 1, val: [32, 33, 34, 35, 36, 37, 38, 39], classes: 4, resize: CLEAN.resize }, teacherBnStats,
    };
    const saved = new Map<string, Uint8Array>();
    const r = await trainDino(model, reader, o, { signal: new AbortController().signal, progress: () => undefined, log: () => undefined, save: async (n, d) => void saved.set(n, d), restore: async (n) => saved.get(n) });
    return { r, model };
  };
  const crops = await run('crops');
  const clean = await run('train');
  assert.deepEqual(clean.r.stepLoss, crops.r.stepLoss, 'the same losses step by step');
  assert.deepEqual(arrays(clean.r.teacher.backbone, isWeight), arrays(crops.r.teacher.backbone, isWeight), 'the same teacher weights');
  assert.notDeepEqual(arrays(clean.r.teacher.backbone, isStat), arrays(crops.r.teacher.backbone, isStat), 'other running statistics');
  // They are exactly what re-estimating the crops teacher's on the train images gives.
  await recalibrateBatchNorm(crops.model.spec, crops.r.teacher.backbone, reader, train, CLEAN, NORM, 16);
  assert.deepEqual(arrays(clean.r.teacher.backbone, isStat), arrays(crops.r.teacher.backbone, isStat));
  // The monitor measured the teacher under them.
  assert.deepEqual(clean.r.knn.map((k) => k.epoch), [0, 1, 2]);
  const last = await knnMonitorTop1(crops.model.spec, crops.r.teacher.backbone, reader, train, { val: [32, 33, 34, 35, 36, 37, 38, 39], classes: 4 }, CLEAN, NORM);
  assert.equal(clean.r.knn[2]!.top1, last);
});
