// The authors' torchvision pipelines on uint8 HWC records, every size and probability a parameter:
//   train: Resize(256) -> RandomResizedCrop(224, scale=(0.8, 1.2), ratio=(3/4, 4/3))
//          -> RandomHorizontalFlip(0.5) -> RandomVerticalFlip(0.5)
//          -> RandomApply([ColorJitter(0.2, 0.2, 0.1, 0.1)], p=0.8) -> ToTensor -> Normalize
//   eval:  Resize(256) -> CenterCrop(224) -> ToTensor -> Normalize
// Randomness comes from the Rng the caller derives from (seed, epoch, index), so a sample's
// augmentation is reproducible on its own. Same semantics as torchvision, not the same stream.
import {
  adjustBrightness,
  adjustContrast,
  adjustHue,
  adjustSaturation,
  normalise,
  resizeShorter,
  sampleBox,
  type Box,
  type ImageView,
} from './image-ops.js';
import type { Rng } from './rng.js';

/** Python's round(): halves go to the even neighbour (torchvision's offsets and sizes use it). */
export function pyRound(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export interface JitterParams {
  brightness: number;
  contrast: number;
  saturation: number;
  hue: number;
  /** Probability that jitter is applied at all (RandomApply). */
  p: number;
}

export interface TrainAugment {
  resize: number;
  crop: number;
  scale: [number, number];
  ratio: [number, number];
  hflip: number;
  vflip: number;
  jitter: JitterParams;
}

export interface EvalAugment {
  resize: number;
  crop: number;
}

export const PAPER_TRAIN: TrainAugment = {
  resize: 256,
  crop: 224,
  scale: [0.8, 1.2],
  ratio: [3 / 4, 4 / 3],
  hflip: 0.5,
  vflip: 0.5,
  jitter: { brightness: 0.2, contrast: 0.2, saturation: 0.1, hue: 0.1, p: 0.8 },
};

export const PAPER_EVAL: EvalAugment = { resize: 256, crop: 224 };

export interface Normalisation {
  mean: readonly number[];
  std: readonly number[];
}

/** torchvision RandomResizedCrop.get_params: 10 tries, then a centred crop of clamped aspect. */
export function randomResizedCropBox(height: number, width: number, scale: readonly [number, number], ratio: readonly [number, number], rng: Rng): Box {
  const area = height * width;
  const logLo = Math.log(ratio[0]);
  const logHi = Math.log(ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(logLo, logHi));
    const w = pyRound(Math.sqrt(target * aspect));
    const h = pyRound(Math.sqrt(target / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      return { top: rng.intIn(0, height - h), left: rng.intIn(0, width - w), height: h, width: w };
    }
  }
  const inRatio = width / height;
  let w = width;
  let h = height;
  if (inRatio < Math.min(ratio[0], ratio[1])) h = pyRound(w / Math.min(ratio[0], ratio[1]));
  else if (inRatio > Math.max(ratio[0], ratio[1])) w = pyRound(h * Math.max(ratio[0], ratio[1]));
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w };
}

/** ColorJitter with torchvision's factor ranges and random order of the four adjustments. */
export function colorJitter(px: Float32Array, offset: number, n: number, c: number, j: JitterParams, rng: Rng): void {
  const factor = (amount: number): number | undefined => (amount > 0 ? rng.uniform(Math.max(0, 1 - amount), 1 + amount) : undefined);
  const b = factor(j.brightness);
  const ct = factor(j.contrast);
  const s = factor(j.saturation);
  const h = j.hue > 0 ? rng.uniform(-j.hue, j.hue) : undefined;
  for (const op of rng.permutation(4)) {
    if (op === 0 && b !== undefined) adjustBrightness(px, offset, n, b);
    else if (op === 1 && ct !== undefined) adjustContrast(px, offset, n, c, ct);
    else if (op === 2 && s !== undefined) adjustSaturation(px, offset, n, c, s);
    else if (op === 3 && h !== undefined) adjustHue(px, offset, n, c, h);
  }
}

function view(data: Uint8Array, height: number, width: number, channels: number): ImageView {
  if (data.length !== height * width * channels) throw new Error(`record has ${data.length} bytes, expected ${height}x${width}x${channels}`);
  return { data, height, width, channels, scale: 1 / 255 };
}

/** One training sample: writes crop x crop x channels normalised floats into out at offset. */
export function trainTransform(
  data: Uint8Array,
  shape: readonly [number, number, number],
  a: TrainAugment,
  norm: Normalisation,
  rng: Rng,
  out: Float32Array,
  offset: number,
): void {
  const src = resizeShorter(view(data, shape[0], shape[1], shape[2]), a.resize);
  const box = randomResizedCropBox(src.height, src.width, a.scale, a.ratio, rng);
  const hflip = rng.bool(a.hflip);
  const vflip = rng.bool(a.vflip);
  sampleBox(src, box, a.crop, a.crop, hflip, vflip, out, offset);
  const n = a.crop * a.crop * src.channels;
  if (rng.bool(a.jitter.p)) colorJitter(out, offset, n, src.channels, a.jitter, rng);
  normalise(out, offset, n, src.channels, norm.mean, norm.std);
}

/** One evaluation sample: Resize(resize) -> CenterCrop(crop), normalised, into out at offset. */
export function evalTransform(
  data: Uint8Array,
  shape: readonly [number, number, number],
  a: EvalAugment,
  norm: Normalisation,
  out: Float32Array,
  offset: number,
): void {
  const src = resizeShorter(view(data, shape[0], shape[1], shape[2]), a.resize);
  const h = Math.min(a.crop, src.height);
  const w = Math.min(a.crop, src.width);
  // torchvision CenterCrop rounds the offsets: int(round((H - h) / 2)).
  const box = { top: pyRound((src.height - h) / 2), left: pyRound((src.width - w) / 2), height: h, width: w };
  sampleBox(src, box, a.crop, a.crop, false, false, out, offset);
  normalise(out, offset, a.crop * a.crop * src.channels, src.channels, norm.mean, norm.std);
}
