// Figure 1 as the paper lays it out: the image, the CNN's Grad-CAM and the ViT's attention one
// above the other, one column per image, data sets side by side; row and column names in the
// table itself (not only a caption) and the colour map's scale below.
import { colorOf, type ColormapName } from '../ml/saliency/colormap.js';
import { escapeXml, pngDataUri } from './html.js';
import type { SaliencyFigure } from './model.js';

/** The colour map as 256 one-entry bars, with its end points named. */
export function colorBar(name: ColormapName, width = 320): string {
  const w = width / 256;
  const bars = Array.from({ length: 256 }, (_, i) => {
    const [r, g, b] = colorOf(name, (i + 0.5) / 256).map(Math.round);
    return `<rect x="${(i * w).toFixed(2)}" y="0" width="${(w + 0.05).toFixed(2)}" height="14" fill="rgb(${r},${g},${b})"/>`;
  });
  const ticks = [0, 0.25, 0.5, 0.75, 1]
    .map((t) => `<line x1="${(t * width).toFixed(1)}" x2="${(t * width).toFixed(1)}" y1="14" y2="18" stroke="#555"/><text x="${(t * width).toFixed(1)}" y="29" text-anchor="${t === 0 ? 'start' : t === 1 ? 'end' : 'middle'}">${t}</text>`)
    .join('');
  return `<svg class="colorbar" width="${width}" height="32" viewBox="0 0 ${width} 32" font-family="sans-serif" font-size="11" role="img" aria-label="${escapeXml(name)} colour bar">${bars.join('')}${ticks}</svg>`;
}

function gridTable(figures: SaliencyFigure[], minPanel: number): string {
  const top = figures.map((f) => `<th colspan="${f.columns.length}" class="dataset">${escapeXml(f.title)}</th>`).join('');
  const second = figures.flatMap((f) => f.columns.map((c) => `<th class="image">${escapeXml(c.caption)}</th>`)).join('');
  const rows = figures[0]!.rows
    .map((name, r) => {
      const cells = figures.flatMap((f) =>
        f.panels[r]!.map((p, c) => {
          const alt = `${f.title}, ${f.columns[c]!.id}: ${name}`;
          return `<td><img class="panel" src="${pngDataUri(p.png)}" width="${p.width}" height="${p.height}" data-min-size="${minPanel}" alt="${escapeXml(alt)}" title="${escapeXml(`${alt} (${f.node})`)}"></td>`;
        }),
      );
      return `<tr><th class="rowname">${escapeXml(name)}</th>${cells.join('')}</tr>`;
    })
    .join('\n');
  return `<table class="fig1"><thead><tr><th></th>${top}</tr><tr><th></th>${second}</tr></thead><tbody>\n${rows}\n</tbody></table>`;
}

export const FIGURE1_STYLE = `
table.fig1{border:none}table.fig1 th,table.fig1 td{border:none;padding:3px;text-align:center;vertical-align:middle}
table.fig1 th.dataset{font-size:15px;border-bottom:2px solid #444}table.fig1 th.image{font-weight:normal;font-size:12px;max-width:260px}
table.fig1 th.rowname{text-align:right;max-width:150px;font-size:13px}
img.panel{display:block;image-rendering:pixelated;image-rendering:crisp-edges}
`;

export function figure1Section(figures: SaliencyFigure[], minPanel: number): string {
  if (figures.length === 0) return '<p class="note">No saliency figure is cached for this pipeline.</p>';
  // Data sets with the same rows share one table; a data set drawn with other rows gets its own.
  const groups = new Map<string, SaliencyFigure[]>();
  for (const f of figures) groups.set(JSON.stringify(f.rows), [...(groups.get(JSON.stringify(f.rows)) ?? []), f]);
  const colormaps = [...new Set(figures.map((f) => f.colormap))];
  const bars = colormaps.map((c) => `<div class="colorbar-row">${colorBar(c)}<div class="note">${escapeXml(c)}: map value after min-max scaling per image (0 = lowest, 1 = highest), blended over the image</div></div>`).join('');
  return `${[...groups.values()].map((list) => gridTable(list, minPanel)).join('\n')}
${bars}
<p class="note">Each panel is enlarged by a whole factor with nearest-neighbour sampling to at least ${minPanel} px, so every map cell stays a sharp block. Column headings: the image id, its true class and each model's prediction.</p>`;
}
