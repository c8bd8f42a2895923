// Confusion matrices: counts as text, each cell shaded by its share of the true class's images
// (viridis, matplotlib's table) so a print shows both.
import { colorOf } from '../ml/saliency/colormap.js';
import { escapeXml } from './html.js';
import type { ConfusionCell } from './model.js';

function matrixHtml(cell: ConfusionCell): string {
  const k = cell.matrix.length;
  const names = Array.from({ length: k }, (_, i) => cell.classes[i] ?? `class ${i}`);
  const head = names.map((n) => `<th class="pred">${escapeXml(n)}</th>`).join('');
  const rows = cell.matrix
    .map((row, i) => {
      const total = row.reduce((a, b) => a + b, 0);
      const tds = row.map((count) => {
        const share = total > 0 ? count / total : 0;
        const [r, g, b] = colorOf('viridis', share).map(Math.round);
        const ink = share > 0.6 ? '#000' : '#fff';
        return `<td style="background:rgb(${r},${g},${b});color:${ink}" title="${(share * 100).toFixed(0)}% of ${escapeXml(names[i]!)}">${count}</td>`;
      });
      return `<tr><th>${escapeXml(names[i]!)}</th>${tds.join('')}<td class="total">${total}</td></tr>`;
    })
    .join('');
  const runs = cell.runs > 1 ? `, summed over ${cell.runs} runs` : '';
  return `<div class="confusion"><h4>${escapeXml(cell.title)}</h4><table class="confusion"><thead><tr><th>true \\ predicted</th>${head}<th>n</th></tr></thead><tbody>${rows}</tbody></table><p class="note">rows: true class; columns: predicted${escapeXml(runs)}</p></div>`;
}

export const CONFUSION_STYLE = `
.confusion-row{display:flex;flex-wrap:wrap;gap:1.2em;align-items:flex-start}
table.confusion td{text-align:right;min-width:2.2em}table.confusion td.total{background:#f6f6f6;color:#444}
table.confusion th{font-size:12px}div.confusion h4{margin:.4em 0 .2em}
`;

export function confusionSection(cells: ConfusionCell[]): string {
  if (cells.length === 0) return '<p class="note">No cached node recorded a confusion matrix.</p>';
  const groups = new Map<string, ConfusionCell[]>();
  for (const c of cells) groups.set(c.group, [...(groups.get(c.group) ?? []), c]);
  return [...groups]
    .map(([group, list]) => `<h3>${escapeXml(group)}</h3><div class="confusion-row">${list.map(matrixHtml).join('\n')}</div>`)
    .join('\n');
}
