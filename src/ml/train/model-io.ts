// Loading a checkpoint into a trainable model, predicting over a split, and writing the
// weights back: what finetune, evaluate and predict share.
import type * as tfTypes from '@tensorflow/tfjs';
import type { RecordReader } from '../../contract.js';
import type { EvalAugment } from '../../data/augment.js';
import { hostBatches } from '../../data/loader.js';
import { forward } from '../models/forward.js';
import { createParams, readState, type ParamMap } from '../models/params.js';
import { modelSpec } from '../models/registry.js';
import type { ModelSpec } from '../models/types.js';
import { metaFor, parseMeta, readWeightsFile, writeCheckpoint, type CheckpointMeta } from '../weights/checkpoint.js';
import { mapWeights } from '../weights/map.js';
import type { Predictions } from './task-metrics.js';

type Tf = typeof tfTypes;

export interface LoadedModel {
  spec: ModelSpec;
  params: ParamMap;
  meta: CheckpointMeta;
  notes: string[];
}

/**
 * A medpipe checkpoint as a model for this task. The checkpoint says which model and input
 * size; the head is resized to `numClasses` when it differs (re-initialised from `seed`).
 */
export async function loadModel(path: string, task: { numClasses?: number; channels?: number }, seed: number): Promise<LoadedModel> {
  const file = await readWeightsFile(path);
  const meta = parseMeta(file.metadata);
  if (!meta) throw new Error(`${path}: not a medpipe checkpoint (no model in its metadata); make it with an init stage`);
  const spec = modelSpec(meta.model, { numClasses: task.numClasses ?? meta.num_classes, channels: task.channels ?? meta.channels, imageSize: meta.image_size });
  const mapped = mapWeights(spec, file, seed);
  return { spec, params: createParams(spec, mapped.state), meta, notes: mapped.notes };
}

export async function saveModel(path: string, model: LoadedModel, source: string, extra: Record<string, string>): Promise<void> {
  await writeCheckpoint(path, model.spec, await readState(model.spec, model.params), metaFor(model.spec, source, extra));
}

/** Logits to probabilities: softmax rows, or one sigmoid column for a binary head. */
export function probabilities(tf: Tf, logits: tfTypes.Tensor2D): tfTypes.Tensor2D {
  return logits.shape[1] === 1 ? tf.sigmoid(logits) : tf.softmax(logits);
}

/** Eval-mode predictions over `indices`, in their order. */
export async function predict(
  tf: Tf,
  model: LoadedModel,
  reader: RecordReader,
  indices: readonly number[],
  evalAug: Partial<EvalAugment>,
  batchSize: number,
  onBatch?: (done: number) => void,
): Promise<Predictions & { indices: number[] }> {
  const classes = model.spec.config.numClasses;
  const probs = new Float32Array(indices.length * classes);
  const labels = new Int32Array(indices.length);
  const order: number[] = [];
  let at = 0;
  for await (const b of hostBatches({ reader, indices, batchSize, seed: 0, epoch: 0, mode: 'eval', eval: evalAug })) {
    const p = tf.tidy(() => probabilities(tf, forward(model.spec, model.params, tf.tensor4d(b.x, b.shape), { training: false })));
    probs.set(await p.data(), at * classes);
    p.dispose();
    labels.set(b.y, at);
    order.push(...b.indices);
    at += b.y.length;
    onBatch?.(at);
  }
  return { probs, numClasses: classes, labels, indices: order };
}
