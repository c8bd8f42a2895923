// From explained images to the stage's artefacts: the Figure 1 grid, the per-image PNGs
// (as a tar) and the json summary's entries. No tfjs here.

import type { JSONObject } from '../../contract.js';
import type { EvalAugment } from '../../data/augment.js';
import { familyOf } from '../models/families.js';
import type { ModelSpec } from '../models/types.js';
import type { ImageSaliency } from './explain.js';
import { composeGrid, encodePng, strip, type RgbImage } from './image.js';
import { summarise } from './stats.js';
import { withText } from './png-text.js';
import { tarArchive } from './tar.js';

export const ROWS = { original: 'original', gradcam: 'ResNet Grad-CAM', attention: 'DeiT attention' } as const;

/** The eval transform a finetune checkpoint records (metadata `preprocessing`), if any. */
export function recordedEval(extra: Record<string, string> | undefined): Partial<EvalAugment> {
  const raw = extra?.['preprocessing'];
  if (!raw) return {};
  const e = (JSON.parse(raw) as { eval?: Partial<EvalAugment> }).eval ?? {};
  const out: Partial<EvalAugment> = {};
  if (typeof e.resize === 'number') out.resize = e.resize;
  if (typeof e.crop === 'number') out.crop = e.crop;
  return out;
}

export interface FigureLayout extends JSONObject {
  rows: string[];
  columns: string[];
  cell: number;
  gap: number;
  width: number;
  height: number;
}

/** Tar entry directories: column number and a file-name-safe id, so entries sort as columns. */
const dirOf = (k: number, id: string) => `${String(k + 1).padStart(2, '0')}_${id.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 60)}`;

/**
 * The grid PNG (its tEXt Description names the rows and columns, for the report's caption),
 * a tar of each image's PNGs, and the layout for the summary. `rowNames` relabels rows.
 */
export async function renderFigure(images: ImageSaliency[], o: { cell: number; gap: number; rowNames?: Partial<Record<keyof typeof ROWS, string>> }): Promise<{ figure: Buffer; overlays: Buffer; layout: FigureLayout }> {
  if (images.length === 0) throw new Error('saliency: no images to draw');
  const names = { ...ROWS, ...o.rowNames };
  const rows: [string, (im: ImageSaliency) => RgbImage | undefined][] = [
    [names.original, (im) => im.original],
    [names.gradcam, (im) => im.gradcam?.overlay],
    [names.attention, (im) => im.attention?.overlay],
  ];
  const present = rows.filter(([, get]) => get(images[0]) !== undefined);
  const grid = composeGrid(present.map(([, get]) => images.map((im) => get(im) as RgbImage)), o.cell, o.gap);
  const columns = images.map((im) => `${im.id} (label ${im.label})`);
  const description = `rows: ${present.map(([name]) => name).join(' / ')}; columns: ${columns.join(', ')}`;
  const figure = withText(await encodePng(grid), 'Description', description);
  const entries: [string, Uint8Array][] = [];
  for (const [k, im] of images.entries()) {
    const dir = dirOf(k, im.id);
    const panels = present.map(([, get]) => get(im) as RgbImage);
    entries.push([`${dir}/original.png`, await encodePng(im.original)]);
    if (im.gradcam) entries.push([`${dir}/gradcam.png`, await encodePng(im.gradcam.overlay)]);
    if (im.attention) {
      entries.push([`${dir}/attention.png`, await encodePng(im.attention.overlay)]);
      entries.push([`${dir}/attention_heads.png`, await encodePng(im.attention.heads)]);
    }
    entries.push([`${dir}/panels.png`, await encodePng(strip(panels, o.cell, o.gap))]);
  }
  entries.push(['figure.png', figure]);
  return {
    figure,
    overlays: tarArchive(entries),
    layout: { rows: present.map(([name]) => name), columns: images.map((im) => im.id), cell: o.cell, gap: o.gap, width: grid.width, height: grid.height },
  };
}

export function cnnInfo(spec: ModelSpec, evalAug: EvalAugment, grid: [number, number] | undefined): JSONObject {
  const layer = familyOf(spec.config).gradCamLayer?.(spec.config) ?? null;
  return { model: spec.name, layer, activation_grid: grid ?? null, input: evalAug.crop, eval: { resize: evalAug.resize, crop: evalAug.crop } };
}

export function vitInfo(spec: ModelSpec, evalAug: EvalAugment): JSONObject {
  const a = familyOf(spec.config).attention?.(spec.config);
  if (!a) throw new Error(`${spec.name} has no attention maps`);
  return { model: spec.name, block: a.block, heads: a.heads, patch: a.patch, grid: evalAug.crop / a.patch, input: evalAug.crop, eval: { resize: evalAug.resize, crop: evalAug.crop } };
}

const r4 = (v: number) => Number(v.toFixed(4));

export function imageSummary(im: ImageSaliency): JSONObject {
  const out: JSONObject = { id: im.id, index: im.index, label: im.label };
  if (im.gradcam) {
    const g = im.gradcam.result;
    out['gradcam'] = { target: g.target, predicted: g.predicted, probs: g.probs.map(r4), score: r4(g.score), ...summarise(g.map, g.height, g.width) };
  }
  if (im.attention) {
    const a = im.attention.result;
    out['attention'] = {
      predicted: a.predicted,
      probs: a.probs.map(r4),
      kept_mass: a.heads.map((h) => r4(h.kept)),
      kept_patches: a.heads.map((h) => h.mask.reduce((s, m) => s + m, 0)),
      ...summarise(a.map, a.height, a.width),
    };
  }
  return out;
}
