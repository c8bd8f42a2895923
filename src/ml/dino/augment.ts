// DINO's multi-crop augmentation (DataAugmentationDINO) on uint8 HWC records, in plain JS:
//   global crop 1: RandomResizedCrop(224, scale=(0.4, 1)) -> flip(0.5) -> ColorJitter(0.4, 0.4,
//                  0.2, 0.1) p=0.8 -> RandomGrayscale(0.2) -> GaussianBlur p=1.0
//   global crop 2: the same, GaussianBlur p=0.1, then Solarization p=0.2
//   local crops:   RandomResizedCrop(96, scale=(0.05, 0.4)), the same flip/jitter/grey, blur p=0.5
// Departures, deliberate: crops are resampled bilinearly (DINO: bicubic, PIL), and the blur is a
// true Gaussian of sigma = PIL's radius (PIL approximates it with box blurs). For models whose
// input is not 224 px the crop sizes and the blur radius scale with the input size.
import { colorJitter, randomResizedCropBox, type JitterParams, type Normalisation } from '../../data/augment.js';
import { normalise, sampleBox, type ImageView } from '../../data/image-ops.js';
import type { Rng } from '../../data/rng.js';
import { familyOf } from '../models/families.js';
import type { ModelConfig } from '../models/types.js';

export interface DinoAugment {
  globalSize: number;
  localSize: number;
  localCrops: number;
  globalScale: [number, number];
  localScale: [number, number];
  ratio: [number, number];
  hflip: number;
  jitter: JitterParams;
  grayscale: number;
  /** Blur probabilities: first global crop, second global crop, local crops. */
  blur: [number, number, number];
  /** PIL radius range at 224 px, scaled by globalSize / 224. */
  blurRadius: [number, number];
  /** Solarisation probability of the second global crop. */
  solarize: number;
}

export const DINO_AUGMENT: Omit<DinoAugment, 'globalSize' | 'localSize'> = {
  localCrops: 8,
  globalScale: [0.4, 1],
  localScale: [0.05, 0.4],
  ratio: [3 / 4, 4 / 3],
  hflip: 0.5,
  jitter: { brightness: 0.4, contrast: 0.4, saturation: 0.2, hue: 0.1, p: 0.8 },
  grayscale: 0.2,
  blur: [1, 0.1, 0.5],
  blurRadius: [0.1, 2],
  solarize: 0.2,
};

/**
 * 224/96 px for the paper's models; otherwise the model's input size and 96/224 of it (at
 * least 8 px), rounded to the family's size multiple: a ViT's whole patches, since its position
 * embedding is resampled per grid, or a ConvNeXt's total stride.
 */
export function cropSizes(config: ModelConfig): { globalSize: number; localSize: number } {
  const globalSize = config.imageSize;
  const raw = (globalSize * 96) / 224;
  const m = familyOf(config).sizeMultiple(config);
  return { globalSize, localSize: Math.max(Math.ceil(8 / m), Math.round(raw / m)) * m };
}

/** The evaluation transform at a global crop size: Resize(size * 256/224) -> CenterCrop(size),
 *  the paper's 256:224 ratio (what the k-NN monitor and the clean BatchNorm statistics see). */
export function evalTransformAt(globalSize: number): { resize: number; crop: number } {
  return { resize: Math.round((globalSize * 256) / 224), crop: globalSize };
}

/** torchvision RandomGrayscale: ITU-R 601 luma into every channel; one channel is left as is. */
export function grayscale(px: Float32Array, offset: number, n: number, c: number): void {
  if (c !== 3) return;
  for (let i = offset; i < offset + n; i += 3) {
    const g = 0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2];
    px[i] = g;
    px[i + 1] = g;
    px[i + 2] = g;
  }
}

/** PIL ImageOps.solarize(threshold=128) on [0, 1] values: v >= 128/255 becomes 1 - v. */
export function solarize(px: Float32Array, offset: number, n: number): void {
  const threshold = 128 / 255;
  for (let i = offset; i < offset + n; i++) if (px[i] >= threshold) px[i] = 1 - px[i];
}

function gaussianKernel(sigma: number): Float32Array {
  const r = Math.max(1, Math.ceil(3 * sigma));
  const k = new Float32Array(2 * r + 1);
  let total = 0;
  for (let i = -r; i <= r; i++) total += k[i + r] = Math.exp(-(i * i) / (2 * sigma * sigma));
  for (let i = 0; i < k.length; i++) k[i] /= total;
  return k;
}

/** Separable Gaussian blur of an HWC image in place, edges extended (as PIL). */
export function gaussianBlur(px: Float32Array, offset: number, h: number, w: number, c: number, sigma: number): void {
  const k = gaussianKernel(sigma);
  const r = (k.length - 1) / 2;
  const tmp = new Float32Array(h * w * c);
  const clamp = (v: number, hi: number) => (v < 0 ? 0 : v > hi ? hi : v);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let ch = 0; ch < c; ch++) {
        let s = 0;
        for (let i = -r; i <= r; i++) s += k[i + r] * px[offset + (y * w + clamp(x + i, w - 1)) * c + ch];
        tmp[(y * w + x) * c + ch] = s;
      }
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let ch = 0; ch < c; ch++) {
        let s = 0;
        for (let i = -r; i <= r; i++) s += k[i + r] * tmp[(clamp(y + i, h - 1) * w + x) * c + ch];
        px[offset + (y * w + x) * c + ch] = s;
      }
}

interface CropRecipe {
  size: number;
  scale: readonly [number, number];
  blur: number;
  solarize: number;
}

/** One augmented crop of `src`, normalised, written at out[offset...]. */
function crop(src: ImageView, r: CropRecipe, a: DinoAugment, norm: Normalisation, rng: Rng, out: Float32Array, offset: number): void {
  const c = src.channels;
  const n = r.size * r.size * c;
  const box = randomResizedCropBox(src.height, src.width, r.scale, a.ratio, rng);
  sampleBox(src, box, r.size, r.size, rng.bool(a.hflip), false, out, offset);
  if (rng.bool(a.jitter.p)) colorJitter(out, offset, n, c, a.jitter, rng);
  if (rng.bool(a.grayscale)) grayscale(out, offset, n, c);
  if (rng.bool(r.blur)) {
    const radius = rng.uniform(a.blurRadius[0], a.blurRadius[1]) * (a.globalSize / 224);
    gaussianBlur(out, offset, r.size, r.size, c, radius);
  }
  if (rng.bool(r.solarize)) solarize(out, offset, n);
  normalise(out, offset, n, c, norm.mean, norm.std);
}

/** The recipes of crops 0 .. 1 + localCrops, in DINO's order (globals first). */
export function cropRecipes(a: DinoAugment): CropRecipe[] {
  const recipes: CropRecipe[] = [
    { size: a.globalSize, scale: a.globalScale, blur: a.blur[0], solarize: 0 },
    { size: a.globalSize, scale: a.globalScale, blur: a.blur[1], solarize: a.solarize },
  ];
  for (let i = 0; i < a.localCrops; i++) recipes.push({ size: a.localSize, scale: a.localScale, blur: a.blur[2], solarize: 0 });
  return recipes;
}

/**
 * All crops of one sample: crop v goes to crops[v] at sample slot `slot` (each array is
 * [batch, size, size, channels]). The crops draw from one Rng in order.
 */
export function multiCrop(
  data: Uint8Array,
  shape: readonly [number, number, number],
  a: DinoAugment,
  norm: Normalisation,
  rng: Rng,
  crops: Float32Array[],
  slot: number,
): void {
  const [height, width, channels] = shape;
  if (data.length !== height * width * channels) throw new Error(`record has ${data.length} bytes, expected ${height}x${width}x${channels}`);
  const src: ImageView = { data, height, width, channels, scale: 1 / 255 };
  cropRecipes(a).forEach((r, v) => crop(src, r, a, norm, rng, crops[v]!, slot * r.size * r.size * channels));
}
