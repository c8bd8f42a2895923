// Learning curves, whatever a stage's `curves` output records: every numeric per-epoch field
// (train loss, val metric, lr, DINO's loss, k-NN accuracy, ...) becomes a panel with the cell's
// runs overlaid, per-step arrays a panel against fractional epochs, and a recorded best epoch a
// dashed marker in the run's colour.
import type { JSONObject, JSONValue } from '../contract.js';
import { anchorOf, escapeXml } from './html.js';
import type { CurveCell, CurveRun } from './model.js';
import { CYCLE, lineChart, type Series } from './svg.js';

/** Bookkeeping, not curves. */
const SKIP = new Set(['epoch', 'seconds', 'images_per_s']);
/** Panels in this order first, the rest by name. */
const FIRST = ['train_loss', 'val_loss', 'val_metric', 'loss', 'lr'];

interface PanelData {
  key: string;
  title: string;
  xLabel: string;
  integerX: boolean;
  series: Series[];
}

const isObject = (v: JSONValue | undefined): v is JSONObject => typeof v === 'object' && v !== null && !Array.isArray(v);
const num = (v: JSONValue | undefined): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

function fieldTitle(field: string, curves: JSONObject): string {
  if (field === 'val_metric' && typeof curves['metric'] === 'string') return `val ${curves['metric']}`;
  return field.replace(/_/g, ' ');
}

/** Each run's panels: key -> (title, x, values). */
function runPanels(curves: JSONObject): { key: string; title: string; xLabel: string; integerX: boolean; x: number[]; values: (number | null)[] }[] {
  const out: ReturnType<typeof runPanels> = [];
  const perEpoch = (prefix: string, list: JSONValue[]) => {
    const rows = list.filter(isObject).filter((r) => num(r['epoch']) !== null);
    const fields = [...new Set(rows.flatMap((r) => Object.keys(r).filter((k) => !SKIP.has(k) && num(r[k]) !== null)))];
    for (const f of fields) {
      const key = prefix ? `${prefix}.${f}` : f;
      out.push({ key, title: prefix ? `${prefix.replace(/_/g, ' ')}: ${fieldTitle(f, curves)}` : fieldTitle(f, curves), xLabel: 'epoch', integerX: true, x: rows.map((r) => num(r['epoch'])!), values: rows.map((r) => num(r[f])) });
    }
  };
  for (const [name, value] of Object.entries(curves)) {
    if (!Array.isArray(value) || value.length === 0) continue;
    if (name === 'epochs') perEpoch('', value);
    else if (value.every(isObject)) perEpoch(name, value);
    else if (value.every((v) => typeof v === 'number')) {
      const per = num(curves['steps_per_epoch']);
      out.push({ key: name, title: name.replace(/_/g, ' '), xLabel: per ? 'epoch' : 'step', integerX: !per, x: value.map((_, i) => (per ? (i + 1) / per : i + 1)), values: value.map((v) => num(v)) });
    }
  }
  return out;
}

function rank(key: string): number {
  const i = FIRST.indexOf(key);
  return i >= 0 ? i : FIRST.length;
}

export function cellPanels(runs: CurveRun[]): PanelData[] {
  const panels = new Map<string, PanelData>();
  runs.forEach((run, i) => {
    const best = num(run.curves['best_epoch']);
    for (const p of runPanels(run.curves)) {
      const panel = panels.get(p.key) ?? { key: p.key, title: p.title, xLabel: p.xLabel, integerX: p.integerX, series: [] };
      panel.series.push({ name: run.label, x: p.x, values: p.values, color: CYCLE[i % CYCLE.length], ...(best !== null && p.xLabel === 'epoch' && p.integerX ? { marker: best } : {}) });
      panels.set(p.key, panel);
    }
  });
  return [...panels.values()].sort((a, b) => rank(a.key) - rank(b.key) || a.key.localeCompare(b.key));
}

function bestLine(runs: CurveRun[]): string {
  const parts = runs.flatMap((r) => {
    const best = num(r.curves['best_epoch']);
    const val = num(r.curves['best_val']);
    return best === null ? [] : [`${r.label}: epoch ${best}${val === null ? '' : ` (${val.toFixed(4)})`}`];
  });
  return parts.length ? `<p class="note">Best epoch (dashed line, kept checkpoint): ${escapeXml(parts.join(' · '))}</p>` : '';
}

export const CURVES_STYLE = `
.chart-cell{margin:0 0 1.2em}.chart-row{display:flex;flex-wrap:wrap;gap:.5em}.chart-row svg{border:1px solid #eee}
`;

export function curvesSection(cells: CurveCell[], emptyNote: string): string {
  if (cells.length === 0) return `<p class="note">${escapeXml(emptyNote)}</p>`;
  return cells
    .map((cell) => {
      const charts = cellPanels(cell.runs).map((p) => lineChart(p.title, p.xLabel, [], p.series, { width: 340, integerX: p.integerX }));
      const nodes = cell.runs.map((r) => `<a href="#${escapeXml(anchorOf(r.node))}">${escapeXml(r.label)}</a>`).join(', ');
      return `<div class="chart-cell"><h3>${escapeXml(cell.title)}</h3><div class="chart-row">\n${charts.join('')}</div>${bestLine(cell.runs)}<p class="note">Runs: ${nodes}</p></div>`;
    })
    .join('\n');
}

