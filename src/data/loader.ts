// Batches for the training stages, straight from a RecordReader: each sample is decoded from its
// uint8 record by the augmentation, written once into the batch's Float32Array, and the array is
// handed to tf as is. Shuffling and augmentation are functions of (seed, epoch, index) only, so
// a run is reproducible whatever the batch size or prefetch timing. The next batch is built while
// the caller works on the current one (prefetch of one), yielding to the event loop between
// samples so that asynchronous tf work (GPU/WASM kernels) proceeds meanwhile.
import type { JSONObject, RecordReader } from '../contract.js';
import { evalTransform, PAPER_EVAL, PAPER_TRAIN, trainTransform, type EvalAugment, type Normalisation, type TrainAugment } from './augment.js';
import { Rng } from './rng.js';

export interface LoaderOptions {
  reader: RecordReader;
  /** Record indices making up the epoch (e.g. a split's train list). */
  indices: readonly number[];
  batchSize: number;
  seed: number;
  epoch: number;
  mode: 'train' | 'eval';
  /** Defaults: true for train, false for eval. */
  shuffle?: boolean;
  dropLast?: boolean;
  train?: Partial<TrainAugment>;
  eval?: Partial<EvalAugment>;
  /** Defaults to the record set's meta mean/std. */
  normalisation?: Normalisation;
  /** Batches built ahead of the consumer (0 = none). Default 1. */
  prefetch?: number;
}

export interface HostBatch {
  /** NHWC float32, normalised. */
  x: Float32Array;
  shape: [number, number, number, number];
  y: Int32Array;
  indices: number[];
}

// Distinct stream tags keep the shuffle and per-sample augmentation streams independent.
const SHUFFLE_STREAM = 0x5f1e;
const SAMPLE_STREAM = 0xa06;

/** The epoch's visiting order: a seeded permutation of `indices`, or them as given. */
export function epochOrder(indices: readonly number[], seed: number, epoch: number, shuffle: boolean): number[] {
  if (!shuffle) return [...indices];
  const perm = new Rng(seed, epoch, SHUFFLE_STREAM).permutation(indices.length);
  return Array.from(perm, (p) => indices[p]);
}

/** The Rng for one sample's augmentation. */
export function sampleRng(seed: number, epoch: number, index: number): Rng {
  return new Rng(seed, epoch, index, SAMPLE_STREAM);
}

export function recordShape(meta: JSONObject): [number, number, number] {
  const shape = meta['shape'];
  if (!Array.isArray(shape) || shape.length !== 3 || !shape.every((v) => typeof v === 'number')) {
    throw new Error(`record set meta has no [height, width, channels] shape: ${JSON.stringify(shape)}`);
  }
  return [shape[0] as number, shape[1] as number, shape[2] as number];
}

export function metaNormalisation(meta: JSONObject): Normalisation {
  const mean = meta['mean'];
  const std = meta['std'];
  const numbers = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => typeof x === 'number');
  if (!numbers(mean) || !numbers(std)) throw new Error('record set meta has no numeric mean/std; pass normalisation explicitly');
  return { mean, std };
}

export function batchCount(o: Pick<LoaderOptions, 'indices' | 'batchSize' | 'dropLast'>): number {
  return o.dropLast ? Math.floor(o.indices.length / o.batchSize) : Math.ceil(o.indices.length / o.batchSize);
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Host-side batches (no tf): typed arrays ready for tf.tensor4d. */
export async function* hostBatches(o: LoaderOptions): AsyncGenerator<HostBatch> {
  if (!(o.batchSize >= 1)) throw new Error(`batchSize must be >= 1, got ${o.batchSize}`);
  const shape = recordShape(o.reader.meta);
  const norm = o.normalisation ?? metaNormalisation(o.reader.meta);
  const train: TrainAugment = { ...PAPER_TRAIN, ...o.train, jitter: { ...PAPER_TRAIN.jitter, ...o.train?.jitter } };
  const evalAug: EvalAugment = { ...PAPER_EVAL, ...o.eval };
  const crop = o.mode === 'train' ? train.crop : evalAug.crop;
  const channels = shape[2];
  const per = crop * crop * channels;
  const order = epochOrder(o.indices, o.seed, o.epoch, o.shuffle ?? o.mode === 'train');
  const batches = batchCount(o);

  const build = async (b: number): Promise<HostBatch> => {
    const indices = order.slice(b * o.batchSize, Math.min(order.length, (b + 1) * o.batchSize));
    const x = new Float32Array(indices.length * per);
    const y = new Int32Array(indices.length);
    for (let k = 0; k < indices.length; k++) {
      const record = o.reader.get(indices[k]);
      y[k] = Number(record.meta['label']);
      if (o.mode === 'train') trainTransform(record.data, shape, train, norm, sampleRng(o.seed, o.epoch, indices[k]), x, k * per);
      else evalTransform(record.data, shape, evalAug, norm, x, k * per);
      await yieldToEventLoop();
    }
    return { x, y, indices, shape: [indices.length, crop, crop, channels] };
  };

  // While the caller holds batch k, batches k+1 .. k+ahead are being built.
  const ahead = Math.max(0, Math.floor(o.prefetch ?? 1));
  const queue: Promise<HostBatch>[] = [];
  let next = 0;
  while (next < batches) {
    const current = queue.length > 0 ? (queue.shift() as Promise<HostBatch>) : build(next++);
    const batch = await current;
    while (next < batches && queue.length < ahead) {
      const pending = build(next++);
      // Handled when awaited; this only stops an early `break` from leaving it unhandled.
      pending.catch(() => undefined);
      queue.push(pending);
    }
    yield batch;
  }
  for (const pending of queue) yield await pending;
}

type Tf = typeof import('@tensorflow/tfjs');

export interface TensorBatch {
  x: import('@tensorflow/tfjs').Tensor4D;
  y: import('@tensorflow/tfjs').Tensor1D;
  indices: number[];
}

/**
 * Tensor batches. Pass the engine's tf (e.g. tfjs-node-gpu's) so tensors land on the backend in
 * use; by default @tensorflow/tfjs is loaded. The caller disposes each batch's tensors.
 */
export async function* tensorBatches(o: LoaderOptions, tf?: Tf): AsyncGenerator<TensorBatch> {
  const engine = tf ?? (await import('@tensorflow/tfjs'));
  for await (const b of hostBatches(o)) {
    yield { x: engine.tensor4d(b.x, b.shape), y: engine.tensor1d(b.y, 'int32'), indices: b.indices };
  }
}
