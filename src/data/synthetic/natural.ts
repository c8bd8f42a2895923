// A stand-in for ImageNet pretraining in the CPU demo: 10 classes of coloured shapes on noisy,
// unevenly lit backgrounds, in imagefolder layout (<class>/<n>.png). Half the classes are drawn
// with the primitives of the synthetic medical sets (irregular soft blobs, tiny dots, soft
// spots, curvy vessels, a disc with an off-colour centre), so that features learnt here
// transfer to them as ImageNet's low-level features transfer to medical images.
import { Rng } from '../rng.js';
import { encodeImage } from './encode.js';
import { balancedLabels, Raster, wobblyRadius, type Colour } from './raster.js';
import type { DatasetWriter, SyntheticOptions } from './writer.js';

export const NATURAL_CLASSES = ['blob', 'circle', 'cross', 'ring', 'speckles', 'spots', 'star', 'target', 'triangle', 'vessels'];

function regular(cx: number, cy: number, r: number, n: number, rot: number, inner = 1): [number, number][] {
  const pts: [number, number][] = [];
  const k = inner === 1 ? n : 2 * n;
  for (let i = 0; i < k; i++) {
    const a = rot + (i * 2 * Math.PI) / k;
    const rr = inner !== 1 && i % 2 === 1 ? r * inner : r;
    pts.push([cx + rr * Math.cos(a), cy + rr * Math.sin(a)]);
  }
  return pts;
}

/** A curvy branching line from (x, y): the vessel-like stroke of fundus images. */
function vessel(img: Raster, rng: Rng, x0: number, y0: number, length: number, width: number, colour: Colour): void {
  let x = x0;
  let y = y0;
  let a = rng.uniform(0, 2 * Math.PI);
  const steps = 7;
  for (let s = 0; s < steps; s++) {
    a += rng.uniform(-0.45, 0.45);
    const nx = x + (Math.cos(a) * length) / steps;
    const ny = y + (Math.sin(a) * length) / steps;
    img.line(x, y, nx, ny, width * (1 - s / (steps + 3)), colour, 0.9);
    x = nx;
    y = ny;
  }
}

export function drawNatural(size: number, cls: string, rng: Rng): Raster {
  const img = new Raster(size, size, 3);
  const bg: Colour = [rng.float(), rng.float(), rng.float()];
  img.fill(bg);
  img.noise(rng, 0.05);
  // Foreground colour far enough from the background to be visible.
  const fg: Colour = bg.map((v) => (v > 0.5 ? v - rng.uniform(0.35, 0.5) : v + rng.uniform(0.35, 0.5)));
  const second: Colour = fg.map((v) => (v > 0.5 ? v - rng.uniform(0.3, 0.45) : v + rng.uniform(0.3, 0.45)));
  const cx = size * rng.uniform(0.35, 0.65);
  const cy = size * rng.uniform(0.35, 0.65);
  const r = size * rng.uniform(0.2, 0.32);
  const rot = rng.uniform(0, 2 * Math.PI);
  const unit = Math.max(0.6, size / 128);
  const anywhere = (): [number, number] => [rng.uniform(0.1, 0.9) * size, rng.uniform(0.1, 0.9) * size];
  switch (cls) {
    case 'circle':
      img.disc(cx, cy, r, fg, 1, rng.uniform(1, 3));
      break;
    case 'ring':
      img.paint(cx - r - 2, cy - r - 2, cx + r + 2, cy + r + 2, (x, y) => (Math.abs(Math.hypot(x - cx, y - cy) - r * 0.75) < r * 0.2 ? 1 : 0), fg);
      break;
    case 'triangle':
      img.polygon(regular(cx, cy, r, 3, rot), fg);
      break;
    case 'star':
      img.polygon(regular(cx, cy, r, 5, rot, 0.45), fg);
      break;
    case 'cross':
      img.line(cx - r * Math.cos(rot), cy - r * Math.sin(rot), cx + r * Math.cos(rot), cy + r * Math.sin(rot), r * 0.4, fg);
      img.line(cx + r * Math.sin(rot), cy - r * Math.cos(rot), cx - r * Math.sin(rot), cy + r * Math.cos(rot), r * 0.4, fg);
      break;
    case 'blob': // an irregular, soft-edged blob, as a skin lesion or a mass
      img.blob(cx, cy, r * 1.7, wobblyRadius(rng, r, rng.uniform(0.3, 0.6)), fg, 1, Math.max(1, rng.uniform(0.05, 0.25) * r));
      break;
    case 'target': // a disc with an off-colour centre (a scar, an optic disc, a nipple)
      img.disc(cx, cy, r, fg, 1, 1.5);
      img.disc(cx + rng.uniform(-0.2, 0.2) * r, cy + rng.uniform(-0.2, 0.2) * r, r * rng.uniform(0.3, 0.5), second, 0.95, 2);
      break;
    case 'speckles': // many tiny dots (microaneurysms, exudates, calcifications)
      for (let i = 0; i < 14 + rng.int(10); i++) img.disc(...anywhere(), unit * rng.uniform(1.0, 2.0), fg, 0.95);
      break;
    case 'spots': // a few medium soft spots (haemorrhages, lacunae)
      for (let i = 0; i < 3 + rng.int(4); i++) img.disc(...anywhere(), size * rng.uniform(0.05, 0.09), fg, 0.9, 2);
      break;
    default: // vessels: curvy branching strokes
      for (let v = 0; v < 3 + rng.int(3); v++) vessel(img, rng, ...anywhere(), size * rng.uniform(0.4, 0.7), unit * rng.uniform(1.5, 3), fg);
  }
  // Uneven illumination, as in fundus photographs and dermoscopy.
  const fall = rng.uniform(0, 0.5);
  const ox = size * rng.uniform(0.3, 0.7);
  const oy = size * rng.uniform(0.3, 0.7);
  img.multiply((x, y) => 1 - fall * Math.min(1, Math.hypot(x - ox, y - oy) / size) ** 2);
  img.noise(rng, 0.03);
  return img;
}

export async function generateNatural(writer: DatasetWriter, opts: SyntheticOptions): Promise<void> {
  const rng = new Rng(opts.seed, 0x4a7);
  const labels = balancedLabels(opts.count, NATURAL_CLASSES.length, rng);
  for (let i = 0; i < opts.count; i++) {
    const cls = NATURAL_CLASSES[labels[i]];
    const img = drawNatural(opts.size, cls, new Rng(opts.seed, 0x4a7, i));
    await writer.write(`${cls}/${String(i).padStart(5, '0')}.png`, await encodeImage(img, 'png'));
  }
}
