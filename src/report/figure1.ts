// Figure 1's panels for the report: a saliency grid (cell x cell panels, `gap` white pixels
// around each) cut back into its panels and enlarged by a whole factor with nearest-neighbour
// sampling, so every map cell stays a sharp block at a readable size.
import sharp from 'sharp';
import type { FigureLayout } from '../ml/saliency/figure.js';
import type { Panel } from './model.js';

/** The layout the saliency stage records with its grid (one type for writer and reader). */
export type GridLayout = FigureLayout;

/** A saliency summary's `layout`, checked (it comes from a cached JSON output). */
export function gridLayoutOf(v: unknown): GridLayout | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  const names = (x: unknown): x is string[] => Array.isArray(x) && x.every((s) => typeof s === 'string');
  const count = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 0;
  if (!names(o['rows']) || !names(o['columns']) || !count(o['cell']) || !count(o['gap']) || !count(o['width']) || !count(o['height']) || o['cell'] === 0) return undefined;
  return { rows: o['rows'], columns: o['columns'], cell: o['cell'], gap: o['gap'], width: o['width'], height: o['height'] };
}

/** The smallest whole factor that makes `cell` at least `min` pixels. */
export function enlargement(cell: number, min: number): number {
  return Math.max(1, Math.ceil(min / cell));
}

export async function gridPanels(png: Uint8Array, layout: GridLayout, minSide: number): Promise<Panel[][]> {
  const meta = await sharp(png).metadata();
  if (meta.width !== layout.width || meta.height !== layout.height) {
    throw new Error(`saliency figure is ${meta.width}x${meta.height}, its summary's layout says ${layout.width}x${layout.height}`);
  }
  const side = layout.cell * enlargement(layout.cell, minSide);
  const rows: Panel[][] = [];
  for (let r = 0; r < layout.rows.length; r++) {
    const row: Panel[] = [];
    for (let c = 0; c < layout.columns.length; c++) {
      const left = layout.gap + c * (layout.cell + layout.gap);
      const top = layout.gap + r * (layout.cell + layout.gap);
      const out = await sharp(png)
        .extract({ left, top, width: layout.cell, height: layout.cell })
        .resize(side, side, { kernel: 'nearest' })
        .png({ compressionLevel: 9, adaptiveFiltering: false })
        .toBuffer();
      row.push({ png: out, width: side, height: side });
    }
    rows.push(row);
  }
  return rows;
}
