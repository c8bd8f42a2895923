// Multi-crop batches straight from a RecordReader, no tf: one Float32Array per crop, laid out
// crop-major as DINO's MultiCropWrapper concatenates them. A sample's crops are a function of
// (seed, epoch, record index) only, so skipping the batches done resumes the same stream.
import type { RecordReader } from '../../contract.js';
import type { Normalisation } from '../../data/augment.js';
import { recordShape } from '../../data/loader.js';
import { Rng } from '../../data/rng.js';
import { cropRecipes, multiCrop, type DinoAugment } from './augment.js';

export interface CropBatch {
  /** crops[v]: [n, size_v, size_v, channels] NHWC floats, crops 0 and 1 the global ones. */
  crops: Float32Array[];
  sizes: number[];
  n: number;
  channels: number;
  indices: number[];
}

// Apart from the supervised loader's stream, so the two never share draws by accident.
const DINO_STREAM = 0xd1a0;

export function dinoSampleRng(seed: number, epoch: number, index: number): Rng {
  return new Rng(seed, epoch, index, DINO_STREAM);
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export function buildCropBatch(reader: RecordReader, indices: readonly number[], a: DinoAugment, norm: Normalisation, seed: number, epoch: number): Promise<CropBatch> {
  return (async () => {
    const shape = recordShape(reader.meta);
    const channels = shape[2];
    const sizes = cropRecipes(a).map((r) => r.size);
    const crops = sizes.map((s) => new Float32Array(indices.length * s * s * channels));
    for (let k = 0; k < indices.length; k++) {
      multiCrop(reader.get(indices[k]!).data, shape, a, norm, dinoSampleRng(seed, epoch, indices[k]!), crops, k);
      // Lets asynchronous tf work (the current step) proceed while the next batch is built.
      await yieldToEventLoop();
    }
    return { crops, sizes, n: indices.length, channels, indices: [...indices] };
  })();
}

/** Batches of consecutive slices of `order`, one built ahead while the caller trains. */
export async function* cropBatches(
  reader: RecordReader,
  order: readonly number[],
  batchSize: number,
  a: DinoAugment,
  norm: Normalisation,
  seed: number,
  epoch: number,
): AsyncGenerator<CropBatch> {
  const count = Math.ceil(order.length / batchSize);
  const build = (b: number) => buildCropBatch(reader, order.slice(b * batchSize, (b + 1) * batchSize), a, norm, seed, epoch);
  let pending = count > 0 ? build(0) : undefined;
  for (let b = 0; b < count; b++) {
    const batch = await pending!;
    pending = b + 1 < count ? build(b + 1) : undefined;
    // Handled when awaited; this only keeps an early `break` from leaving it unhandled.
    pending?.catch(() => undefined);
    yield batch;
  }
}

/** Samples [start, start + m) of every crop, as one contiguous array per crop. */
export function sliceCrops(b: CropBatch, start: number, m: number): Float32Array[] {
  return b.crops.map((arr, v) => {
    const per = b.sizes[v]! * b.sizes[v]! * b.channels;
    return arr.subarray(start * per, (start + m) * per);
  });
}
