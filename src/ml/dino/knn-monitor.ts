// The k-NN monitor's data side: the teacher backbone's features of the train split (the bank)
// and the val split (the queries) under the evaluation transform, then DINO's k-NN vote.
import * as tf from '@tensorflow/tfjs';
import type { RecordReader } from '../../contract.js';
import type { EvalAugment, Normalisation } from '../../data/augment.js';
import { hostBatches } from '../../data/loader.js';
import { features } from '../models/forward.js';
import type { ParamMap } from '../models/params.js';
import type { ModelSpec } from '../models/types.js';
import { DINO_KNN, knnAccuracy } from './knn.js';

const BATCH = 64;

async function extract(spec: ModelSpec, backbone: ParamMap, reader: RecordReader, indices: readonly number[], evalAug: EvalAugment, norm: Normalisation): Promise<{ x: Float32Array; y: Int32Array; dim: number }> {
  const parts: Float32Array[] = [];
  const labels: number[] = [];
  let dim = 0;
  for await (const b of hostBatches({ reader, indices, batchSize: BATCH, seed: 0, epoch: 0, mode: 'eval', eval: evalAug, normalisation: norm, prefetch: 0 })) {
    const f = tf.tidy(() => features(spec, backbone, tf.tensor4d(b.x, b.shape), { training: false }));
    dim = f.shape[1];
    parts.push((await f.data()) as Float32Array);
    f.dispose();
    labels.push(...b.y);
  }
  const x = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    x.set(p, at);
    at += p.length;
  }
  return { x, y: Int32Array.from(labels), dim };
}

/** Top-1 of the 20-NN vote (cosine, T 0.07) of the train split for each val image. */
export async function knnMonitorTop1(
  spec: ModelSpec,
  backbone: ParamMap,
  reader: RecordReader,
  train: readonly number[],
  o: { val: readonly number[]; classes: number },
  evalAug: EvalAugment,
  norm: Normalisation,
): Promise<number> {
  const bank = await extract(spec, backbone, reader, train, evalAug, norm);
  const queries = await extract(spec, backbone, reader, o.val, evalAug, norm);
  return knnAccuracy(bank.x, bank.y, queries.x, queries.y, bank.dim, { ...DINO_KNN, classes: o.classes });
}
