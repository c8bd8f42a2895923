// Mammogram-like images: a breast silhouette against the chest wall, fibroglandular texture,
// a pectoral muscle on MLO views, and optionally a mass (round if benign, spiculated if
// malignant) and/or a cluster of calcifications. Masses are low-contrast and dense tissue
// forms mass-like lumps in every breast, so telling a mass from normal tissue takes a close
// look, as in screening. Values in [0, 1]; callers quantise.
import type { Rng } from '../rng.js';
import { Raster, valueNoise, wobblyRadius } from './raster.js';

export interface MammoFindings {
  side: 'LEFT' | 'RIGHT';
  view: 'CC' | 'MLO';
  mass: 'none' | 'benign' | 'malignant';
  calcifications: boolean;
}

export function drawMammogram(width: number, height: number, f: MammoFindings, rng: Rng): Raster {
  const img = new Raster(width, height, 1);
  img.fill([0.02]);
  // Chest wall on the image's left for LEFT breasts, right for RIGHT (mirrored views).
  const wall = f.side === 'LEFT' ? 0 : width;
  const dir = f.side === 'LEFT' ? 1 : -1;
  const cy = height * rng.uniform(0.46, 0.54);
  const rx = width * rng.uniform(0.72, 0.9);
  const ry = height * rng.uniform(0.38, 0.46);
  const texture = valueNoise(width, height, Math.max(2, width / 10), 3, rng);
  const density = rng.uniform(0.28, 0.5);
  const grain = rng.uniform(0.14, 0.24);
  const inBreast = (x: number, y: number): number => ((x - wall) / rx) ** 2 + ((y - cy) / ry) ** 2;
  img.paint(
    0,
    0,
    width,
    height,
    (x, y) => {
      const d = inBreast(x, y);
      return d >= 1 ? 0 : 1;
    },
    [0],
    1,
  );
  img.add(0, 0, width, height, (x, y) => {
    const d = inBreast(x, y);
    if (d >= 1) return 0;
    const fall = 1 - d ** 3; // thinner tissue towards the skin line
    const t = texture[Math.floor(y) * width + Math.floor(x)];
    return fall * (density + grain * t) + (1 - fall) * 0.12;
  });
  if (f.view === 'MLO') {
    const top = height * rng.uniform(0.3, 0.45);
    const across = width * rng.uniform(0.25, 0.4);
    img.polygon(
      [
        [wall, 0],
        [wall + dir * across, 0],
        [wall, top],
      ],
      [0.62],
      0.9,
    );
  }
  const spot = (spread: number): [number, number] => {
    for (;;) {
      const x = wall + dir * rng.uniform(0.15, spread) * rx;
      const y = cy + rng.uniform(-0.5, 0.5) * ry;
      if (inBreast(x, y) < 0.6) return [x, y];
    }
  };
  // Fibroglandular lumps: soft, mass-sized, in every breast.
  for (let k = 1 + rng.int(4); k > 0; k--) {
    const [lx, ly] = spot(0.8);
    const r = width * rng.uniform(0.05, 0.1);
    img.blob(lx, ly, r * 1.6, wobblyRadius(rng, r, 0.3, 4), [0.8], rng.uniform(0.1, 0.3), Math.max(1, r * 0.6));
  }
  if (f.mass !== 'none') {
    const [mx, my] = spot(0.7);
    const r = width * rng.uniform(0.05, 0.1);
    const outline = wobblyRadius(rng, r, f.mass === 'malignant' ? 0.45 : 0.1, f.mass === 'malignant' ? 7 : 3);
    img.blob(mx, my, r * 1.6, outline, [0.85], rng.uniform(0.2, 0.45), Math.max(1, r * 0.25));
    if (f.mass === 'malignant') {
      const spicules = 8 + rng.int(6);
      for (let s = 0; s < spicules; s++) {
        const a = rng.uniform(0, 2 * Math.PI);
        const len = r * rng.uniform(1.5, 2.3);
        img.line(mx, my, mx + Math.cos(a) * len, my + Math.sin(a) * len, Math.max(0.6, width / 200), [0.85], 0.35);
      }
    }
  }
  if (f.calcifications) {
    const [cx, cyy] = spot(0.7);
    const spread = width * 0.05;
    for (let k = 0; k < 6 + rng.int(9); k++) {
      img.disc(cx + rng.normal() * spread, cyy + rng.normal() * spread, Math.max(0.5, width / 250), [1], 0.9, 0.8);
    }
  }
  img.noise(rng, 0.03);
  return img;
}

/** [0, 1] -> stored 16-bit values (optionally inverted for MONOCHROME1). */
export function toUint16(img: Raster, invert: boolean): Uint16Array {
  const out = new Uint16Array(img.data.length);
  for (let i = 0; i < out.length; i++) {
    const v = Math.max(0, Math.min(65535, Math.round(img.data[i] * 65535)));
    out[i] = invert ? 65535 - v : v;
  }
  return out;
}
