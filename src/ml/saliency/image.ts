// RGB panels: resizing to a common cell, the Figure 1 grid, horizontal strips, and PNG
// encoding (sharp, loaded only when a PNG is written).

import { resizeBilinear } from './resample.js';

/** 8-bit RGB, row-major. */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

export function resizeRgb(img: RgbImage, width: number, height: number): RgbImage {
  if (img.width === width && img.height === height) return img;
  const f = resizeBilinear(img.data, img.height, img.width, 3, height, width);
  return { data: Uint8Array.from(f, (v) => Math.round(Math.min(255, Math.max(0, v)))), width, height };
}

/**
 * Panels laid out as rows x columns of `cell`-sized squares with `gap` white pixels between
 * and around them: Figure 1's layout (rows: original / Grad-CAM / attention; one column per
 * image). Panels of other sizes are resized to the cell.
 */
export function composeGrid(rows: RgbImage[][], cell: number, gap: number): RgbImage {
  const nRows = rows.length;
  const nCols = Math.max(0, ...rows.map((r) => r.length));
  if (nRows === 0 || nCols === 0) throw new Error('composeGrid: no panels');
  const width = nCols * cell + (nCols + 1) * gap;
  const height = nRows * cell + (nRows + 1) * gap;
  const data = new Uint8Array(width * height * 3).fill(255);
  rows.forEach((row, r) =>
    row.forEach((panel, c) => {
      const p = resizeRgb(panel, cell, cell);
      const top = gap + r * (cell + gap);
      const left = gap + c * (cell + gap);
      for (let y = 0; y < cell; y++) data.set(p.data.subarray(y * cell * 3, (y + 1) * cell * 3), ((top + y) * width + left) * 3);
    }),
  );
  return { data, width, height };
}

/** Panels side by side, each resized to `cell` (the per-image overlays, the heads' maps). */
export function strip(panels: RgbImage[], cell: number, gap: number): RgbImage {
  return composeGrid([panels], cell, gap);
}

export async function encodePng(img: RgbImage): Promise<Buffer> {
  const { default: sharp } = await import('sharp');
  // Fixed compression settings: the same pixels give the same bytes, so outputs dedupe.
  return sharp(Buffer.from(img.data), { raw: { width: img.width, height: img.height, channels: 3 } })
    .png({ compressionLevel: 9, adaptiveFiltering: false })
    .toBuffer();
}
