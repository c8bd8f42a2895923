// Re-estimates a backbone's BatchNorm running statistics on clean images (the evaluation
// transform) in place. A departure from DINO, offered as an option: DINO's teacher keeps the
// running statistics of its own forward passes over the augmented global crops (jittered,
// blurred, solarised), which are not the statistics of the images it is later evaluated or
// fine-tuned on. The estimate is the sample-weighted average of the batches' statistics (as
// torch's BatchNorm with momentum=None, weighted by images rather than batches): the running
// mean is the exact mean over the images, the variance the average of the batches' unbiased ones.
import * as tf from '@tensorflow/tfjs';
import type { RecordReader } from '../../contract.js';
import type { EvalAugment, Normalisation } from '../../data/augment.js';
import { hostBatches } from '../../data/loader.js';
import { features } from '../models/forward.js';
import type { ParamMap } from '../models/params.js';
import type { ModelSpec } from '../models/types.js';

/** Whether the backbone has BatchNorm layers (a ViT has none: then there is nothing to do). */
export function hasBatchNorm(backbone: ParamMap): boolean {
  for (const name of backbone.keys()) if (name.endsWith('.running_mean')) return true;
  return false;
}

/**
 * Replaces every running mean/variance of `backbone` by its statistics over `indices` under
 * `evalAug`. Weights are untouched; returns the number of images seen (0 when the backbone has
 * no BatchNorm).
 */
export async function recalibrateBatchNorm(
  spec: ModelSpec,
  backbone: ParamMap,
  reader: RecordReader,
  indices: readonly number[],
  evalAug: EvalAugment,
  norm: Normalisation,
  batchSize: number,
): Promise<number> {
  if (!hasBatchNorm(backbone) || indices.length === 0) return 0;
  // BatchNorm in training mode needs two values per channel: no batch of one image (a ResNet's
  // last stage can be 1x1).
  let size = Math.max(1, batchSize);
  while (indices.length > 1 && indices.length % size === 1) size++;
  let seen = 0;
  for await (const b of hostBatches({ reader, indices, batchSize: size, seed: 0, epoch: 0, mode: 'eval', eval: evalAug, normalisation: norm, prefetch: 0 })) {
    const n = b.shape[0];
    // The first batch replaces the old estimate (momentum 1); batch k then weighs n / (seen + n).
    const bnMomentum = n / (seen + n);
    tf.tidy(() => {
      features(spec, backbone, tf.tensor4d(b.x, b.shape), { training: true, bnMomentum });
    });
    seen += n;
  }
  return seen;
}
