// DINO training on tiny models in-process: the loss falls on a learnable synthetic set, the
// teacher moves only by its EMA (exactly), the last layer stays frozen in the first epoch,
// and micro-batches give the whole batch's step. The ViT runs its local crops through
// resampled position embeddings.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import type * as tfTypes from '@tensorflow/tfjs';
import type { DataRecord } from '../src/contract.js';
import { Rng } from '../src/data/rng.js';
import { DINO_AUGMENT, cropSizes, type DinoAugment } from '../src/ml/dino/augment.js';
import { buildCropBatch } from '../src/ml/dino/batches.js';
import { createNets, dinoStep, trainDino } from '../src/ml/dino/train.js';
import { createParams } from '../src/ml/models/params.js';
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

/** 64 images of 32 px in four noisy colours: what a crop shows decides its class. */
function colourSet(): MemoryRecords {
  const S = 32;
  const records: DataRecord[] = [];
  for (let i = 0; i < 64; i++) {
    const rng = new Rng(9, i);
    const cls = i % 4;
    const data = new Uint8Array(S * S * 3);
    for (let p = 0; p < S * S; p++)
      for (let c = 0; c < 3; c++) data[p * 3 + c] = Math.max(0, Math.min(255, Math.round(40 + (c === cls % 3 ? 150 : 0) + (cls === 3 ? 60 : 0) + 10 * rng.normal())));
    records.push({ data, meta: { label: cls } });
  }
  return new MemoryRecords(records, { shape: [S, S, 3], ...NORM });
}

function freshModel(name: string, imageSize: number, seed: number): LoadedModel {
  const spec = modelSpec(name, { numClasses: 4, imageSize });
  return { spec, params: createParams(spec, initState(spec, seed)), meta: metaFor(spec, `random(seed=${seed})`), notes: [] };
}

const values = (m: Map<string, tfTypes.Variable>) => new Map([...m].map(([k, v]) => [k, Float32Array.from(v.dataSync())]));

test('loss falls over a few dozen steps on a learnable synthetic set (resnet_demo, 32 px)', { timeout: 90_000 }, async () => {
  const model = freshModel('resnet_demo', 32, 1);
  // Colour is the learnable signal, so colour jitter, greyscale and solarisation are off here.
  const augment: DinoAugment = { ...DINO_AUGMENT, ...cropSizes(model.spec.config), localCrops: 4, jitter: { ...DINO_AUGMENT.jitter, p: 0 }, grayscale: 0, solarize: 0 };
  const saved = new Map<string, Uint8Array>();
  const lines: string[] = [];
  const r = await trainDino(model, colourSet(), {
    epochs: 10, batchSize: 16, microBatch: 0, lr: 0.02, minLr: 1e-6, warmupEpochs: 0, weightDecay: 1e-5, weightDecayEnd: 1e-4,
    momentum: 0.996, teacherTemp: 0.04, warmupTeacherTemp: 0.04, warmupTeacherTempEpochs: 0, studentTemp: 0.1, centerMomentum: 0.9,
    gradClip: 3, freezeLastLayer: 0, head: { hiddenDim: 128, bottleneckDim: 64, outDim: 64 }, augment, normalisation: NORM,
    seed: 0, checkpointEvery: 0, train: [...Array(64).keys()],
    knn: { every: 5, val: [...Array(16).keys()].map((i) => 48 + i), classes: 4, resize: 36 },
  }, { signal: new AbortController().signal, progress: (t) => void lines.push(t), log: () => undefined, save: async (n, d) => void saved.set(n, d), restore: async (n) => saved.get(n) });
  assert.equal(r.stepLoss.length, 40);
  // The monitor: k-NN before training and after epochs 5 and 10, in the curves and the progress line.
  assert.deepEqual(r.knn.map((k) => k.epoch), [0, 5, 10]);
  assert.deepEqual(r.curves.map((c) => c.knn_top1 !== null), [false, false, false, false, true, false, false, false, false, true]);
  assert.ok(r.knn.every((k) => k.top1 >= 0 && k.top1 <= 1));
  assert.ok(r.knn[2]!.top1 >= 0.75, `k-NN on the colour classes after DINO: ${r.knn.map((k) => k.top1).join(' -> ')}`);
  assert.match(lines[lines.length - 1]!, / H \d+\.\d{3} KL -?\d+\.\d{3} knn \d\.\d{3} /);
  for (const c of r.curves) {
    assert.ok(c.teacher_entropy > 0 && c.teacher_entropy <= Math.log(64) + 1e-6, `teacher entropy ${c.teacher_entropy}`);
    assert.ok(Math.abs(c.kl - (c.loss - c.teacher_entropy)) < 1e-9 && c.kl >= -1e-4, `KL ${c.kl} >= 0`);
  }
  assert.equal(r.stepEntropy.length, 40);
  assert.equal(r.curves.length, 10);
  assert.ok(r.stepLoss.every(Number.isFinite));
  const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
  const first = mean(r.stepLoss.slice(0, 10));
  const last = mean(r.stepLoss.slice(-10));
  assert.ok(last < first - 0.25, `loss fell from ${first.toFixed(3)} (first 10 steps) to ${last.toFixed(3)} (last 10): ${r.stepLoss.map((x) => x.toFixed(2)).join(' ')}`);
  assert.ok(saved.has('dino-state.safetensors'), 'an epoch-end checkpoint was written');
});

test('the teacher gets no gradient: it moves exactly by its EMA; the last layer is frozen in the first epoch (vit_demo, local crops via resampled pos_embed)', { timeout: 60_000 }, async () => {
  const model = freshModel('vit_demo', 16, 2);
  const nets = createNets(model.spec, model.params, { hiddenDim: 32, bottleneckDim: 16, outDim: 24 }, 3);
  const augment: DinoAugment = { ...DINO_AUGMENT, globalSize: 16, localSize: 8, localCrops: 2 };
  const batch = await buildCropBatch(colourSet(), [0, 1, 2, 3], augment, NORM, 0, 0);
  assert.deepEqual(batch.sizes, [16, 16, 8, 8]);
  const teacherBefore = values(nets.teacherTrained);
  const studentBefore = values(nets.trained);
  const center = tf.zeros([1, 24]);
  const momentum = 0.9;
  const step = dinoStep(model.spec, nets.student, nets.teacher, { ...nets, center }, batch, { lr: 1e-3, weightDecay: 0.04, momentum, teacherTemp: 0.04 }, {
    microBatch: 0, studentTemp: 0.1, centerMomentum: 0.9, gradClip: 3, freezeLast: true,
  });
  assert.ok(Number.isFinite(step.loss));
  const f = Math.fround;
  const studentAfter = values(nets.trained);
  let moved = 0;
  for (const [name, t] of values(nets.teacherTrained)) {
    const t0 = teacherBefore.get(name)!;
    const s1 = studentAfter.get(name)!;
    const expected = t0.map((x, i) => f(f(x * f(momentum)) + f(s1[i]! * f(1 - momentum))));
    assert.deepEqual(t, expected, `${name}: teacher = m teacher + (1 - m) student, bit for bit`);
    if (s1.some((x, i) => x !== studentBefore.get(name)![i])) moved++;
  }
  assert.ok(moved > nets.trained.size / 2, `the student moved (${moved} of ${nets.trained.size} tensors)`);
  assert.deepEqual(studentAfter.get('head.last_layer.weight_v'), studentBefore.get('head.last_layer.weight_v'), 'last layer frozen during the first epoch');
  assert.notDeepEqual(studentAfter.get('head.mlp.0.weight'), studentBefore.get('head.mlp.0.weight'));
  assert.ok([...nets.teacher.backbone.values(), ...nets.teacher.head.values()].every((v) => !v.trainable), 'no teacher variable is trainable');

  // Momentum 1: the teacher is bit-identical after a step, whatever the student did.
  const frozen = values(nets.teacherTrained);
  const again = dinoStep(model.spec, nets.student, nets.teacher, { ...nets, center: step.center }, batch, { lr: 1e-3, weightDecay: 0.04, momentum: 1, teacherTemp: 0.04 }, {
    microBatch: 0, studentTemp: 0.1, centerMomentum: 0.9, gradClip: 3, freezeLast: false,
  });
  assert.deepEqual(values(nets.teacherTrained), frozen);
  assert.notDeepEqual(values(nets.trained).get('head.last_layer.weight_v'), studentAfter.get('head.last_layer.weight_v'), 'unfrozen after the first epoch');
  // Once every Adam moment exists, a step leaves nothing behind but the new centre.
  const live = tf.memory().numTensors;
  const third = dinoStep(model.spec, nets.student, nets.teacher, { ...nets, center: again.center }, batch, { lr: 1e-3, weightDecay: 0.04, momentum: 0.99, teacherTemp: 0.04 }, {
    microBatch: 2, studentTemp: 0.1, centerMomentum: 0.9, gradClip: 3, freezeLast: false,
  });
  assert.equal(tf.memory().numTensors, live + 1, 'no tensor leaks from a step');
  again.center.dispose();
  third.center.dispose();
});

test('micro-batches give the whole batch\'s loss, centre and update (vit_demo: no BatchNorm)', { timeout: 60_000 }, async () => {
  const augment: DinoAugment = { ...DINO_AUGMENT, globalSize: 16, localSize: 8, localCrops: 2 };
  const batch = await buildCropBatch(colourSet(), [4, 5, 6, 7], augment, NORM, 0, 1);
  const run = (micro: number) => {
    const model = freshModel('vit_demo', 16, 2);
    const nets = createNets(model.spec, model.params, { hiddenDim: 32, bottleneckDim: 16, outDim: 24 }, 3);
    const center = tf.fill([1, 24], 0.01);
    const r = dinoStep(model.spec, nets.student, nets.teacher, { ...nets, center }, batch, { lr: 1e-3, weightDecay: 0.04, momentum: 0.9, teacherTemp: 0.04 }, {
      microBatch: micro, studentTemp: 0.1, centerMomentum: 0.9, gradClip: 0, freezeLast: false,
    });
    return { loss: r.loss, center: Array.from(r.center.dataSync()), teacher: values(nets.teacherTrained) };
  };
  const whole = run(0);
  const parts = run(1);
  assert.ok(Math.abs(whole.loss - parts.loss) < 1e-5, `loss ${whole.loss} vs ${parts.loss}`);
  whole.center.forEach((c, i) => assert.ok(Math.abs(c - parts.center[i]!) < 1e-6, `centre[${i}]`));
  let worst = 0;
  for (const [name, t] of whole.teacher) t.forEach((x, i) => (worst = Math.max(worst, Math.abs(x - parts.teacher.get(name)![i]!))));
  assert.ok(worst < 1e-5, `teacher after one step differs by ${worst}`);
});
