// A table cell and the table's footnote as one line of text (markdown, HTML, the CLI).
import type { Cell, Table } from './table.js';

export const fmt = (x: number | null, digits: number) => (x === null ? '–' : x.toFixed(digits));

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
