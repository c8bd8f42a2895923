// A stand-in for ImageNet pretraining in the CPU demo: 10 classes of coloured shapes on noisy,
// unevenly lit backgrounds, in imagefolder layout (<class>/<n>.png). Half the classes are drawn
// with the primitives of the synthetic medical sets (irregular soft blobs, tiny dots, soft
// spots, curvy vessels, a disc with an off-colour centre), and half the images are painted in
// their palettes on their kinds of background (a vignetted orange retina, skin, grey textured
// tissue), so that features learnt here transfer to them as ImageNet's low-level features
// (edges, blobs, colour contrasts, textures) transfer to medical images. As ImageNet's
// categories have typical colours (a goldfish is orange), most objects of a class are painted
// in that class's ink: one of ten close lesion colours (browns, pinks, reds, yellow, purple),
// so that the proxy also teaches the fine colour discrimination ISIC's classes need; the
// others are painted in any colour and only their shape tells the class. Some objects are
// faint, as the masses in mammograms.
import { Rng } from '../rng.js';
import { encodeImage } from './encode.js';
import { balancedLabels, Raster, valueNoise, wobblyRadius, type Colour } from './raster.js';
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
function vessel(img: Raster, rng: Rng, x0: number, y0: number, length: number, width: number, colour: Colour, opacity: number): void {
  let x = x0;
  let y = y0;
  let a = rng.uniform(0, 2 * Math.PI);
  const steps = 7;
  for (let s = 0; s < steps; s++) {
    a += rng.uniform(-0.45, 0.45);
    const nx = x + (Math.cos(a) * length) / steps;
    const ny = y + (Math.sin(a) * length) / steps;
    img.line(x, y, nx, ny, width * (1 - s / (steps + 3)), colour, 0.9 * opacity);
    x = nx;
    y = ny;
  }
}

/** Lesion-like colours of the medical sets: dark red, yellow exudate, brown, pink, white, purple. */
const MEDICAL_INKS: Colour[] = [
  [0.35, 0.03, 0.03], [1.0, 0.9, 0.4], [0.3, 0.18, 0.1], [0.85, 0.55, 0.55], [0.95, 0.93, 0.9], [0.5, 0.08, 0.3],
];

/** Each class's typical ink: the lesion colours of the three medical sets, close to each other. */
const CLASS_INKS: Record<string, Colour> = {
  blob: [0.3, 0.18, 0.1], circle: [0.45, 0.28, 0.16], cross: [0.85, 0.55, 0.55], ring: [0.6, 0.08, 0.25],
  speckles: [1.0, 0.9, 0.4], spots: [0.35, 0.03, 0.03], star: [0.78, 0.38, 0.32], target: [0.62, 0.48, 0.3],
  triangle: [0.22, 0.12, 0.08], vessels: [0.5, 0.08, 0.3],
};

/** Share of objects painted in their class's ink, and of faint ones. */
const TYPICAL_INK = 0.6;
const FAINT = 0.25;

/** A background in a medical set's style; returns its mean colour. */
function medicalBackground(img: Raster, rng: Rng): Colour {
  const size = img.width;
  switch (rng.int(3)) {
    case 0: { // fundus: an orange disc, darker to the rim
      const c = size / 2;
      const R = size * rng.uniform(0.42, 0.6);
      const base: Colour = [0.78 + rng.uniform(-0.1, 0.1), 0.36 + rng.uniform(-0.05, 0.05), 0.16];
      img.fill([0.02, 0.01, 0.01]);
      img.disc(c, c, R, base, 1, 1.5);
      img.multiply((x, y) => {
        const d = Math.hypot(x - c, y - c) / R;
        return d > 1 ? 1 : 1 - 0.45 * d * d;
      });
      return base;
    }
    case 1: { // skin
      const t = rng.uniform(-0.05, 0.35);
      const base: Colour = [0.93 - t * 0.5, 0.75 - t, 0.62 - t];
      img.fill(base);
      return base;
    }
    default: { // grey tissue with a cloudy texture
      const level = rng.uniform(0.2, 0.5);
      img.fill([level]);
      const tex = valueNoise(size, size, Math.max(2, size / 8), 3, rng);
      const amp = rng.uniform(0.1, 0.2);
      img.add(0, 0, size, size, (x, y) => amp * tex[Math.floor(y) * size + Math.floor(x)]);
      return [level, level, level];
    }
  }
}

/** A colour far enough from `from` (per channel) to be visible. */
function contrasting(from: Colour, rng: Rng): Colour {
  return from.map((v) => (v > 0.5 ? v - rng.uniform(0.35, 0.5) : v + rng.uniform(0.35, 0.5)));
}

export function drawNatural(size: number, cls: string, rng: Rng): Raster {
  const img = new Raster(size, size, 3);
  const medical = rng.bool();
  let bg: Colour;
  if (medical) {
    bg = medicalBackground(img, rng);
  } else {
    bg = [rng.float(), rng.float(), rng.float()];
    img.fill(bg);
  }
  img.noise(rng, 0.05);
  // The class's ink (whatever the background: a faint lesion is a lesion), else medical inks
  // where they stand out from the background, else a contrasting colour.
  const typical = rng.bool(TYPICAL_INK);
  const ink = medical ? rng.pick(MEDICAL_INKS) : null;
  const fg: Colour = typical
    ? CLASS_INKS[cls].map((v) => Math.min(1, Math.max(0, v + rng.uniform(-0.06, 0.06))))
    : ink && ink.reduce((d, v, c) => d + Math.abs(v - bg[c]), 0) > 0.6 ? ink : contrasting(bg, rng);
  const alpha = rng.bool(FAINT) ? rng.uniform(0.3, 0.6) : 1;
  const second: Colour = fg.map((v) => (v > 0.5 ? v - rng.uniform(0.3, 0.45) : v + rng.uniform(0.3, 0.45)));
  const cx = size * rng.uniform(0.35, 0.65);
  const cy = size * rng.uniform(0.35, 0.65);
  const r = size * rng.uniform(0.2, 0.32);
  const anywhere = (): [number, number] => [rng.uniform(0.1, 0.9) * size, rng.uniform(0.1, 0.9) * size];
  // The geometric shapes come one large or two to three smaller ones, anywhere: evidence spread
  // over the image that a patch-based model can pick up as well as a CNN.
  const copies = 1 + rng.int(3);
  const each = (draw: (x: number, y: number, rr: number, a: number) => void): void => {
    for (let k = 0; k < copies; k++) {
      const rr = copies === 1 ? r : r * rng.uniform(0.45, 0.65);
      const [x, y] = copies === 1 ? [cx, cy] : [rng.uniform(rr, size - rr), rng.uniform(rr, size - rr)];
      draw(x, y, rr, rng.uniform(0, 2 * Math.PI));
    }
  };
  switch (cls) {
    case 'circle':
      img.disc(cx, cy, r, fg, alpha, rng.uniform(1, 3));
      break;
    case 'ring':
      each((x, y, rr) => img.paint(x - rr - 2, y - rr - 2, x + rr + 2, y + rr + 2, (px, py) => (Math.abs(Math.hypot(px - x, py - y) - rr * 0.75) < rr * 0.2 ? 1 : 0), fg, alpha));
      break;
    case 'triangle':
      each((x, y, rr, a) => img.polygon(regular(x, y, rr, 3, a), fg, alpha));
      break;
    case 'star':
      each((x, y, rr, a) => img.polygon(regular(x, y, rr, 5, a, 0.45), fg, alpha));
      break;
    case 'cross':
      each((x, y, rr, a) => {
        img.line(x - rr * Math.cos(a), y - rr * Math.sin(a), x + rr * Math.cos(a), y + rr * Math.sin(a), rr * 0.4, fg, alpha);
        img.line(x + rr * Math.sin(a), y - rr * Math.cos(a), x - rr * Math.sin(a), y + rr * Math.cos(a), rr * 0.4, fg, alpha);
      });
      break;
    case 'blob': // an irregular, soft-edged blob, as a skin lesion or a mass
      img.blob(cx, cy, r * 1.7, wobblyRadius(rng, r, rng.uniform(0.3, 0.6)), fg, alpha, Math.max(1, rng.uniform(0.05, 0.25) * r));
      break;
    case 'target': // a disc with an off-colour centre (a scar, an optic disc, a nipple)
      img.disc(cx, cy, r, fg, alpha, 1.5);
      img.disc(cx + rng.uniform(-0.2, 0.2) * r, cy + rng.uniform(-0.2, 0.2) * r, r * rng.uniform(0.3, 0.5), second, 0.95 * alpha, 2);
      break;
    case 'speckles': // many tiny dots (microaneurysms, exudates, calcifications)
      for (let i = 0; i < 14 + rng.int(10); i++) img.disc(...anywhere(), (size / 48) * rng.uniform(1.0, 2.0), fg, 0.95 * alpha);
      break;
    case 'spots': // a few medium soft spots (haemorrhages, lacunae)
      for (let i = 0; i < 3 + rng.int(4); i++) img.disc(...anywhere(), size * rng.uniform(0.05, 0.09), fg, 0.9 * alpha, 2);
      break;
    default: // vessels: curvy branching strokes
      for (let v = 0; v < 3 + rng.int(3); v++) vessel(img, rng, ...anywhere(), size * rng.uniform(0.4, 0.7), (size / 64) * rng.uniform(1.5, 3), fg, alpha);
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
