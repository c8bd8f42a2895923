// Fake APTOS 2019: fundus-like discs (orange-red retina, bright optic disc, dark vessels) whose
// lesions grow with the grade: red dots (microaneurysms/haemorrhages) from grade 1, yellow
// exudates from 2, large blot haemorrhages from 3, tangles of new vessels at 4. Lesion counts
// of neighbouring grades overlap and the camera's tint, exposure and noise vary, so grading
// is never exact. Lesions are drawn large enough to survive the demo's 36 px. Written as
// train.csv + train_images/<id_code>.png, the Kaggle layout.
import { APTOS_CLASSES } from '../importers/aptos2019.js';
import { Rng } from '../rng.js';
import { encodeImage } from './encode.js';
import { balancedLabels, Raster } from './raster.js';
import { csvText, type DatasetWriter, type SyntheticOptions } from './writer.js';

const RED_DOTS = [0, 4, 8, 12, 16];
const EXUDATES = [0, 0, 4, 7, 9];
const BLOTS = [0, 0, 0, 3, 5];

export function drawFundus(size: number, grade: number, rng: Rng): Raster {
  const img = new Raster(size, size, 3);
  img.fill([0.02, 0.01, 0.01]);
  const c = size / 2 + rng.uniform(-0.03, 0.03) * size;
  const R = size * rng.uniform(0.42, 0.47);
  const tint = rng.uniform(-0.1, 0.1);
  img.disc(c, c, R, [0.78 + tint, 0.36 + tint / 2, 0.16], 1, 1.5);
  // Darker towards the rim, as with a real fundus camera.
  img.multiply((x, y) => {
    const d = Math.hypot(x - c, y - c) / R;
    return d > 1 ? 1 : 1 - 0.45 * d * d;
  });
  const side = rng.bool() ? 1 : -1;
  const odx = c + side * R * 0.45;
  const ody = c + rng.uniform(-0.08, 0.08) * R;
  img.disc(odx, ody, R * 0.13, [0.98, 0.86, 0.55], 1, 1.5);
  const unit = Math.max(0.6, size / 48);
  for (let v = 0; v < 6; v++) {
    let x = odx;
    let y = ody;
    let a = rng.uniform(0, 2 * Math.PI);
    for (let s = 0; s < 8; s++) {
      a += rng.uniform(-0.35, 0.35);
      const nx = x + Math.cos(a) * R * 0.13;
      const ny = y + Math.sin(a) * R * 0.13;
      if (Math.hypot(nx - c, ny - c) > R * 0.95) break;
      img.line(x, y, nx, ny, unit * (1.4 - s * 0.12), [0.45, 0.08, 0.05], 0.8);
      x = nx;
      y = ny;
    }
  }
  const inRetina = (): [number, number] => {
    for (;;) {
      const a = rng.uniform(0, 2 * Math.PI);
      const r = R * Math.sqrt(rng.float()) * 0.85;
      const x = c + r * Math.cos(a);
      const y = c + r * Math.sin(a);
      if (Math.hypot(x - odx, y - ody) > R * 0.2) return [x, y];
    }
  };
  for (let i = 0; i < RED_DOTS[grade] + rng.int(6); i++) {
    const [x, y] = inRetina();
    img.disc(x, y, unit * rng.uniform(1.0, 1.8), [0.35, 0.02, 0.02], 0.95);
  }
  for (let i = 0; i < EXUDATES[grade] + (grade >= 1 ? rng.int(4) : 0); i++) {
    const [x, y] = inRetina();
    img.disc(x, y, unit * rng.uniform(1.2, 2.2), [1.0, 0.92, 0.35], 0.95);
  }
  for (let i = 0; i < BLOTS[grade]; i++) {
    const [x, y] = inRetina();
    img.disc(x, y, unit * rng.uniform(3, 5), [0.3, 0.02, 0.02], 0.9, 2);
  }
  if (grade === 4) {
    for (let t = 0; t < 3; t++) {
      const [x0, y0] = inRetina();
      let x = x0;
      let y = y0;
      for (let s = 0; s < 10; s++) {
        const nx = x + rng.uniform(-1, 1) * R * 0.08;
        const ny = y + rng.uniform(-1, 1) * R * 0.08;
        img.line(x, y, nx, ny, unit * 0.8, [0.55, 0.05, 0.08], 0.9);
        x = nx;
        y = ny;
      }
    }
  }
  const gain = rng.uniform(0.75, 1.15);
  img.multiply(() => gain);
  img.noise(rng, 0.03);
  return img;
}

export async function generateAptos(writer: DatasetWriter, opts: SyntheticOptions): Promise<void> {
  const rng = new Rng(opts.seed, 0xa9705);
  const labels = balancedLabels(opts.count, APTOS_CLASSES.length, rng);
  const rows: [string, number][] = [];
  for (let i = 0; i < opts.count; i++) {
    const id = Array.from({ length: 12 }, () => rng.int(16).toString(16)).join('');
    const img = drawFundus(opts.size, labels[i], new Rng(opts.seed, 0xa9705, i));
    await writer.write(`train_images/${id}.png`, await encodeImage(img, 'png'));
    rows.push([id, labels[i]]);
  }
  await writer.write('train.csv', csvText(['id_code', 'diagnosis'], rows));
}
