// The results table as HTML: median ± std, reference and Δ, and every value it was computed
// from as visible text and as dots on the cell's own scale, so a print or a PDF shows them.
import { escapeXml } from './html.js';
import { cellText, footnote } from './cell-text.js';
import { cellAt, type Cell, type Table } from './table.js';

/** The values as dots on a strip from the table's smallest to its largest value, with the median as a bar. */
function dots(cell: Cell, lo: number, hi: number): string {
  if (cell.values.length === 0) return '';
  const w = 120;
  const x = (v: number) => (hi > lo ? 4 + ((v - lo) / (hi - lo)) * (w - 8) : w / 2).toFixed(1);
  const marks = cell.values.map((v) => `<circle cx="${x(v.value)}" cy="7" r="3" fill="#1f77b4" fill-opacity="0.75"><title>${escapeXml(`${v.over}: ${v.value}`)}</title></circle>`);
  const med = cell.median === null ? '' : `<line x1="${x(cell.median)}" x2="${x(cell.median)}" y1="1" y2="13" stroke="#222" stroke-width="1.5"/>`;
  return `<svg class="dots" width="${w}" height="14" viewBox="0 0 ${w} 14" role="img" aria-label="values"><line x1="4" x2="${w - 4}" y1="7" y2="7" stroke="#ccc"/>${med}${marks.join('')}</svg>`;
}

export function tableHtml(table: Table, digits: number): string {
  const all = table.cells.flatMap((c) => c.values.map((v) => v.value));
  const lo = all.length ? Math.min(...all) : 0;
  const hi = all.length ? Math.max(...all) : 1;
  const head = [...table.rowAxes, ...table.columns.map((c) => c.join(' / ') || 'value')].map((h) => `<th>${escapeXml(h)}</th>`).join('');
  const body = table.rows
    .map((row) => {
      const cells = table.columns.map((c) => {
        const cell = cellAt(table, row, c);
        const seeds = cell.values.map((v) => `${escapeXml(`${table.over} ${v.over}`)}: ${v.value.toFixed(digits + 1)}`).join(' · ');
        return `<td><div class="value">${escapeXml(cellText(cell, digits))}</div>${seeds ? `<div class="seeds">${seeds}</div>` : ''}${dots(cell, lo, hi)}</td>`;
      });
      return `<tr>${row.map((r) => `<th>${escapeXml(r)}</th>`).join('')}${cells.join('')}</tr>`;
    })
    .join('\n');
  const scale = all.length ? ` Dots: each ${escapeXml(table.over)}'s value on one scale for the whole table (${lo.toFixed(digits)} to ${hi.toFixed(digits)}); the bar is the median.` : '';
  return `<table class="results"><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>\n<p class="note">${escapeXml(footnote(table))}${scale}</p>`;
}
