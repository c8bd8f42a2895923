import { escapeXml as escapeHtml } from './html.js';
import { cellText, fmt, footnote } from './cell-text.js';
import { cellAt, type Table } from './table.js';
import { PAGE_STYLE } from './style.js';
import { tableHtml } from './table-html.js';


export function toMarkdown(table: Table, digits = 3): string {
  const header = [...table.rowAxes, ...table.columns.map((c) => c.join(' / ') || 'value')];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const row of table.rows) lines.push(`| ${[...row, ...table.columns.map((c) => cellText(cellAt(table, row, c), digits))].join(' | ')} |`);
  return `${table.title ? `### ${table.title}\n\n` : ''}${lines.join('\n')}\n\n${footnote(table)}\n`;
}

function csvField(s: string): string {
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** One line per cell and value: long format, what a plotting script wants. */
export function toCsv(table: Table): string {
  const lines = [[...table.rowAxes, ...table.columnAxes, table.over, 'value', 'median', 'std', 'n', 'expected', 'reference'].join(',')];
  for (const cell of table.cells) {
    const base = [...cell.row, ...cell.column].map(csvField);
    const tail = [fmt(cell.median, 6), fmt(cell.std, 6), String(cell.values.length), String(cell.expected), cell.reference === undefined ? '' : String(cell.reference)];
    if (cell.values.length === 0) lines.push([...base, '', '', ...tail].join(','));
    for (const v of cell.values) lines.push([...base, csvField(String(v.over)), String(v.value), ...tail].join(','));
  }
  return lines.join('\n') + '\n';
}


export interface Figure {
  title: string;
  /** PNG bytes, embedded as a data URI so the report is one self-contained file. */
  png: Uint8Array;
}

/** A PNG's tEXt `Description` (e.g. a saliency grid's row names), if it has one. */
export function pngDescription(png: Uint8Array): string | undefined {
  const buf = Buffer.from(png.buffer, png.byteOffset, png.byteLength);
  if (buf.length < 8 || buf.readUInt32BE(0) !== 0x89504e47) return undefined;
  for (let at = 8; at + 12 <= buf.length; ) {
    const length = buf.readUInt32BE(at);
    const type = buf.toString('latin1', at + 4, at + 8);
    if (type === 'IEND' || at + 12 + length > buf.length) return undefined;
    if (type === 'tEXt') {
      const body = buf.subarray(at + 8, at + 8 + length);
      const nul = body.indexOf(0);
      if (nul > 0 && body.toString('latin1', 0, nul) === 'Description') return body.toString('latin1', nul + 1);
    }
    at += 12 + length;
  }
  return undefined;
}

/** A node id `stage[axis=value,...]` split into the stage and its axis values (for grouping). */
function nodeParts(title: string): { stage: string; axes: string } {
  const m = /^([^[\]]+)\[(.*)\]$/.exec(title);
  return m ? { stage: m[1], axes: m[2].replace(/,/g, ', ') } : { stage: title, axes: '' };
}

function figureCaption(fig: Figure, axes: string): string {
  const description = pngDescription(fig.png);
  return `${escapeHtml(axes || fig.title)}${description ? `<br><span class="note">${escapeHtml(description)}</span>` : ''}`;
}

/**
 * Figures grouped by the stage that made them, one row per group with its instances side by
 * side: one saliency grid per data set reads as the paper's Figure 1 (data sets as columns).
 * Axis values caption each figure; the full node id stays in the tooltip.
 */
function figureSection(figures: Figure[]): string {
  const groups = new Map<string, { fig: Figure; axes: string }[]>();
  for (const fig of figures) {
    const { stage, axes } = nodeParts(fig.title);
    groups.set(stage, [...(groups.get(stage) ?? []), { fig, axes }]);
  }
  return [...groups]
    .map(([stage, items]) => {
      const figs = items
        .map(({ fig, axes }) => `<figure title="${escapeHtml(fig.title)}"><img alt="${escapeHtml(fig.title)}" src="data:image/png;base64,${Buffer.from(fig.png).toString('base64')}"><figcaption>${figureCaption(fig, axes)}</figcaption></figure>`)
        .join('\n');
      return `<section class="figure-group"><h3>${escapeHtml(stage)}</h3><div class="figure-row">\n${figs}\n</div></section>`;
    })
    .join('\n');
}

/** The aggregate stage's page: the table and the figures it was given (`pipeline report` draws the full report). */
export function toHtml(table: Table, figures: Figure[], digits = 3, provenance = ''): string {
  const figs = figureSection(figures);
  // Table and figures side by side on a wide screen, stacked on a narrow one.
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(table.title ?? 'medpipe table')}</title>
<style>
${PAGE_STYLE}
.layout{display:flex;flex-wrap:wrap;gap:2em;align-items:flex-start}.layout>section{flex:1 1 30em;min-width:0}
.figure-row{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}
figure{margin:0;flex:0 1 auto;max-width:100%}figure img{max-width:100%;image-rendering:pixelated}
figcaption{text-align:center;font-size:13px}
</style></head><body>
<h1>${escapeHtml(table.title ?? 'Results')}</h1>
<div class="layout">
<section class="results">
${tableHtml(table, digits)}
</section>
${figs ? `<section class="figures"><h2>Figures</h2>\n${figs}\n</section>` : ''}
</div>
${provenance ? `<p class="note">${escapeHtml(provenance)}</p>` : ''}
</body></html>
`;
}
