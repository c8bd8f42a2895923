// A stand-in for ImageNet pretraining in the CPU demo: 10 classes of coloured shapes and
// textures on noisy backgrounds, in imagefolder layout (<class>/<n>.png).
import { Rng } from '../rng.js';
import { encodeImage } from './encode.js';
import { balancedLabels, Raster, type Colour } from './raster.js';
import type { DatasetWriter, SyntheticOptions } from './writer.js';

export const NATURAL_CLASSES = ['checker', 'circle', 'cross', 'dots', 'hstripes', 'ring', 'square', 'star', 'triangle', 'vstripes'];

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

export function drawNatural(size: number, cls: string, rng: Rng): Raster {
  const img = new Raster(size, size, 3);
  const bg: Colour = [rng.float(), rng.float(), rng.float()];
  img.fill(bg);
  img.noise(rng, 0.05);
  // Foreground colour far enough from the background to be visible.
  const fg: Colour = bg.map((v) => (v > 0.5 ? v - rng.uniform(0.35, 0.5) : v + rng.uniform(0.35, 0.5)));
  const cx = size * rng.uniform(0.35, 0.65);
  const cy = size * rng.uniform(0.35, 0.65);
  const r = size * rng.uniform(0.2, 0.32);
  const rot = rng.uniform(0, 2 * Math.PI);
  const period = Math.max(3, size * rng.uniform(0.08, 0.14));
  switch (cls) {
    case 'circle':
      img.disc(cx, cy, r, fg);
      break;
    case 'ring':
      img.paint(cx - r - 2, cy - r - 2, cx + r + 2, cy + r + 2, (x, y) => (Math.abs(Math.hypot(x - cx, y - cy) - r * 0.75) < r * 0.2 ? 1 : 0), fg);
      break;
    case 'square':
      img.polygon(regular(cx, cy, r, 4, rot), fg);
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
    case 'hstripes':
      img.paint(0, 0, size, size, (_, y) => (Math.floor(y / period) % 2 === 0 ? 1 : 0), fg);
      break;
    case 'vstripes':
      img.paint(0, 0, size, size, (x) => (Math.floor(x / period) % 2 === 0 ? 1 : 0), fg);
      break;
    case 'checker':
      img.paint(0, 0, size, size, (x, y) => ((Math.floor(x / period) + Math.floor(y / period)) % 2 === 0 ? 1 : 0), fg);
      break;
    default: // dots
      for (let i = 0; i < 12; i++) img.disc(rng.uniform(0, size), rng.uniform(0, size), size * 0.05, fg);
  }
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
