// Fake ISIC 2019: a skin-coloured field with one lesion whose colour, outline irregularity,
// border sharpness and inner structure depend on the class. The cues are made to overlap as
// in dermoscopy: each lesion's colour is pulled part of the way towards another class's, sizes
// and outlines vary within wide ranges, inner structures are faint or missing, and hairs,
// uneven lighting and skin tone vary freely; so no model solves it outright. Written as
// ISIC_2019_Training_GroundTruth.csv (one-hot, with the unused UNK column) and
// ISIC_2019_Training_Input/<image>.jpg, the challenge layout.
import { ISIC_CLASSES, ISIC_COLUMNS } from '../importers/isic2019.js';
import { Rng } from '../rng.js';
import { encodeImage } from './encode.js';
import { balancedLabels, Raster, wobblyRadius, type Colour } from './raster.js';
import { csvText, type DatasetWriter, type SyntheticOptions } from './writer.js';

interface LesionStyle {
  colour: Colour;
  /** Outline irregularity (0 = circle). */
  rough: number;
  /** Border blur in units of the radius. */
  blur: number;
  radius: [number, number];
}

// Order follows ISIC_CLASSES: MEL, NV, BCC, AK, BKL, DF, VASC, SCC.
const STYLES: Record<string, LesionStyle> = {
  MEL: { colour: [0.22, 0.12, 0.08], rough: 0.55, blur: 0.05, radius: [0.24, 0.34] },
  NV: { colour: [0.45, 0.28, 0.16], rough: 0.05, blur: 0.04, radius: [0.14, 0.22] },
  BCC: { colour: [0.85, 0.6, 0.6], rough: 0.2, blur: 0.08, radius: [0.16, 0.26] },
  AK: { colour: [0.78, 0.38, 0.32], rough: 0.3, blur: 0.25, radius: [0.2, 0.3] },
  BKL: { colour: [0.62, 0.48, 0.3], rough: 0.15, blur: 0.03, radius: [0.18, 0.28] },
  DF: { colour: [0.55, 0.38, 0.3], rough: 0.08, blur: 0.2, radius: [0.1, 0.16] },
  VASC: { colour: [0.6, 0.08, 0.25], rough: 0.1, blur: 0.03, radius: [0.1, 0.18] },
  SCC: { colour: [0.88, 0.5, 0.45], rough: 0.4, blur: 0.12, radius: [0.18, 0.28] },
};

/** How far (0-1) a lesion's colour may be pulled towards another class's. */
const COLOUR_OVERLAP = 0.55;

export function drawLesion(size: number, cls: string, rng: Rng): Raster {
  const style = STYLES[cls];
  const img = new Raster(size, size, 3);
  const skin = rng.uniform(-0.05, 0.35);
  img.fill([0.93 - skin * 0.5, 0.75 - skin, 0.62 - skin]);
  img.noise(rng, 0.03);
  const cx = size * rng.uniform(0.35, 0.65);
  const cy = size * rng.uniform(0.35, 0.65);
  const r = size * rng.uniform(style.radius[0] - 0.04, style.radius[1] + 0.04);
  const radiusAt = wobblyRadius(rng, r, style.rough * rng.uniform(0.4, 1.6));
  const other = STYLES[rng.pick(Object.keys(STYLES))].colour;
  const pull = rng.uniform(0, COLOUR_OVERLAP);
  const colour = style.colour.map((v, c) => v + (other[c] - v) * pull + rng.uniform(-0.07, 0.07));
  img.blob(cx, cy, r * 1.6, radiusAt, colour, rng.uniform(0.75, 1), Math.max(1, style.blur * r * rng.uniform(0.5, 1.8)));
  const unit = Math.max(0.6, size / 128);
  // Inner structures are faint in some lesions and missing in others.
  const faint = rng.bool(0.2) ? 0 : rng.uniform(0.35, 0.9);
  const inside = (f: number): [number, number] => {
    const a = rng.uniform(0, 2 * Math.PI);
    const d = radiusAt(a) * f * Math.sqrt(rng.float());
    return [cx + d * Math.cos(a), cy + d * Math.sin(a)];
  };
  switch (cls) {
    case 'MEL': // multicoloured: blue-grey veil and black blotches
      for (let i = 0; i < 5; i++) img.disc(...inside(0.7), r * rng.uniform(0.12, 0.25), [0.05, 0.04, 0.05], 0.8 * faint, 2);
      img.disc(...inside(0.5), r * 0.3, [0.35, 0.38, 0.5], 0.5 * faint, 3);
      break;
    case 'BCC': // pearly with arborising vessels
      for (let i = 0; i < 4; i++) {
        const [x, y] = inside(0.6);
        const a = rng.uniform(0, Math.PI * 2);
        img.line(x, y, x + Math.cos(a) * r * 0.5, y + Math.sin(a) * r * 0.5, unit * 0.8, [0.75, 0.1, 0.15], 0.9 * faint);
      }
      break;
    case 'AK': // rough, scaly surface
      for (let i = 0; i < 25; i++) img.disc(...inside(0.9), unit * rng.uniform(0.6, 1.2), [0.95, 0.9, 0.85], 0.6 * faint);
      break;
    case 'BKL': // waxy, with milia-like cysts
      for (let i = 0; i < 8; i++) img.disc(...inside(0.8), unit * rng.uniform(0.8, 1.4), [0.95, 0.92, 0.75], 0.9 * faint);
      break;
    case 'DF': // central white scar, brown ring
      img.disc(cx, cy, r * 0.45, [0.95, 0.92, 0.9], 0.9 * faint, 2);
      break;
    case 'VASC': // red-purple lacunae
      for (let i = 0; i < 6; i++) img.disc(...inside(0.7), r * rng.uniform(0.15, 0.25), [0.35, 0.02, 0.2], 0.9 * faint);
      break;
    case 'SCC': // keratin crust in the centre
      img.blob(cx, cy, r, wobblyRadius(rng, r * 0.4, 0.5), [0.95, 0.9, 0.7], 0.85 * faint, 1.5);
      break;
    default: // NV: uniform and symmetric
      break;
  }
  // Nuisances: a few dark hairs, uneven lighting, sensor noise.
  for (let h = rng.int(5); h > 0; h--) {
    let x = rng.uniform(0, size);
    let y = rng.uniform(0, size);
    let a = rng.uniform(0, 2 * Math.PI);
    for (let s = 0; s < 6; s++) {
      a += rng.uniform(-0.3, 0.3);
      const nx = x + (Math.cos(a) * size) / 8;
      const ny = y + (Math.sin(a) * size) / 8;
      img.line(x, y, nx, ny, unit * 1.2, [0.12, 0.08, 0.06], 0.8);
      x = nx;
      y = ny;
    }
  }
  const fall = rng.uniform(0, 0.35);
  const ox = size * rng.uniform(0, 1);
  const oy = size * rng.uniform(0, 1);
  const gain = rng.uniform(0.85, 1.1);
  img.multiply((x, y) => gain * (1 - fall * Math.min(1, Math.hypot(x - ox, y - oy) / size) ** 2));
  img.noise(rng, 0.03);
  return img;
}

export async function generateIsic(writer: DatasetWriter, opts: SyntheticOptions): Promise<void> {
  const rng = new Rng(opts.seed, 0x151c);
  const labels = balancedLabels(opts.count, ISIC_CLASSES.length, rng);
  const rows: string[][] = [];
  for (let i = 0; i < opts.count; i++) {
    const id = `ISIC_${String(i).padStart(7, '0')}`;
    const cls = ISIC_CLASSES[labels[i]];
    const img = drawLesion(opts.size, cls, new Rng(opts.seed, 0x151c, i));
    await writer.write(`ISIC_2019_Training_Input/${id}.jpg`, await encodeImage(img, 'jpeg'));
    rows.push([id, ...ISIC_COLUMNS.map((c) => (c === cls ? '1.0' : '0.0'))]);
  }
  await writer.write('ISIC_2019_Training_GroundTruth.csv', csvText(['image', ...ISIC_COLUMNS], rows));
}
