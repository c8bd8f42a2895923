import type { Cell, Table } from './table.js';

const fmt = (x: number | null, digits: number) => (x === null ? '–' : x.toFixed(digits));

function cellOf(table: Table, row: string[], column: string[]): Cell {
  const address = [...row, ...column].join('/');
  return table.cells.find((c) => c.address === address)!;
}

/** "0.893 ± 0.004", with "(3/5)" where seeds are missing and the reference beside it. */
export function cellText(cell: Cell, digits: number): string {
  if (cell.median === null) return `n/a (0/${cell.expected})`;
  let text = `${fmt(cell.median, digits)} ± ${fmt(cell.std, digits)}`;
  if (cell.values.length < cell.expected) text += ` (${cell.values.length}/${cell.expected})`;
  if (cell.reference !== undefined) {
    const d = cell.median - cell.reference;
    text += ` [ref ${fmt(cell.reference, digits)}, Δ ${d >= 0 ? '+' : ''}${d.toFixed(digits)}]`;
  }
  return text;
}

export function footnote(table: Table): string {
  const stdName = table.std === 'sample' ? 'sample standard deviation (ddof=1)' : 'population standard deviation (ddof=0)';
  return `Each cell: median ± ${stdName} over ${table.over}; (k/n) marks a cell with k of the n values asked for; [ref, Δ] the reference value and the difference.`;
}

export function toMarkdown(table: Table, digits = 3): string {
  const header = [...table.rowAxes, ...table.columns.map((c) => c.join(' / ') || 'value')];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const row of table.rows) lines.push(`| ${[...row, ...table.columns.map((c) => cellText(cellOf(table, row, c), digits))].join(' | ')} |`);
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

const escapeHtml = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

export interface Figure {
  title: string;
  /** PNG bytes, embedded as a data URI so the report is one self-contained file. */
  png: Uint8Array;
}

export function toHtml(table: Table, figures: Figure[], digits = 3, provenance = ''): string {
  const head = [...table.rowAxes, ...table.columns.map((c) => c.join(' / ') || 'value')].map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const body = table.rows
    .map((row) => {
      const cells = table.columns.map((c) => {
        const cell = cellOf(table, row, c);
        const seeds = cell.values.map((v) => `${table.over} ${v.over}: ${v.value.toFixed(4)}`).join('\n');
        return `<td title="${escapeHtml(seeds)}">${escapeHtml(cellText(cell, digits))}</td>`;
      });
      return `<tr>${row.map((r) => `<th>${escapeHtml(r)}</th>`).join('')}${cells.join('')}</tr>`;
    })
    .join('\n');
  const figs = figures
    .map((f) => `<figure><img alt="${escapeHtml(f.title)}" src="data:image/png;base64,${Buffer.from(f.png).toString('base64')}"><figcaption>${escapeHtml(f.title)}</figcaption></figure>`)
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(table.title ?? 'medpipe table')}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #bbb;padding:.35em .7em;text-align:left}
thead th{background:#eee}td{font-variant-numeric:tabular-nums}
figure{display:inline-block;margin:1em 1em 0 0;vertical-align:top}img{max-width:100%;image-rendering:pixelated}
.note{color:#555;font-size:12px}
</style></head><body>
<h1>${escapeHtml(table.title ?? 'Results')}</h1>
<table><thead><tr>${head}</tr></thead><tbody>
${body}
</tbody></table>
<p class="note">${escapeHtml(footnote(table))}</p>
${figs ? `<h2>Figures</h2>\n${figs}` : ''}
${provenance ? `<p class="note">${escapeHtml(provenance)}</p>` : ''}
</body></html>
`;
}
