// Static SVG line charts (learning curves, DINO loss): d3-scale picks the nice domains, ticks
// and tick labels; the markup is written here so the file is byte-stable for the same numbers
// and needs no script to display.
import { scaleLinear, type ScaleLinear } from 'd3-scale';
import { escapeXml } from './html.js';

export interface Series {
  name: string;
  values: (number | null)[];
  /** x of each value; the chart's shared x when absent. */
  x?: number[];
  /** Plot against the right-hand axis (e.g. a metric beside a loss). */
  right?: boolean;
  color?: string;
  /** A vertical dashed line in the series' colour at this x (e.g. the best epoch). */
  marker?: number;
}

export interface ChartOptions {
  width?: number;
  height?: number;
  /** Only whole-number ticks on the x axis (epochs). */
  integerX?: boolean;
  /** Title of the left and right value axes. */
  yLabel?: string;
  rightLabel?: string;
  /** A line under the legend, e.g. what the dashed lines mean. */
  note?: string;
}

/** matplotlib's tab10, the default colour cycle. */
export const CYCLE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

const f = (v: number) => Number(v.toFixed(1)).toString();

/** A linear scale over the values; `nice` rounds the domain out to tick values (not for x: epochs start at 1). */
function valueScale(values: number[], range: [number, number], nice = true): ScaleLinear<number, number> {
  let lo = values.length ? Math.min(...values) : 0;
  let hi = values.length ? Math.max(...values) : 1;
  // Values that differ only by rounding (a kappa of 0 stored as 1.1e-16, or 0 beside 2.2e-16)
  // are one value, and one within 1e-12 of 0 is 0: else the nice domain spans 1e-17s and
  // tickFormat's precision for it prints 0.000000000000000104, wider than the margin.
  if (hi - lo <= 1e-12 * Math.max(1, Math.abs(lo), Math.abs(hi))) {
    const mid = (lo + hi) / 2;
    lo = hi = Math.abs(mid) < 1e-12 ? 0 : mid;
  }
  if (lo === hi) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.05;
    lo -= pad;
    hi += pad;
  }
  const scale = scaleLinear().domain([lo, hi]).range(range);
  return nice ? scale.nice(5) : scale;
}

/** Legend entries laid out left to right, wrapping; about 6.2 px per character at 11 px. */
function legendRows(names: string[], width: number): { name: string; index: number; x: number; row: number }[] {
  const out: { name: string; index: number; x: number; row: number }[] = [];
  let x = 0;
  let row = 0;
  names.forEach((name, index) => {
    const w = 28 + name.length * 6.2 + 14;
    if (x > 0 && x + w > width) {
      x = 0;
      row++;
    }
    out.push({ name, index, x, row });
    x += w;
  });
  return out;
}

export function lineChart(title: string, xLabel: string, x: number[], series: Series[], options: ChartOptions = {}): string {
  const width = options.width ?? 640;
  const hasRight = series.some((s) => s.right);
  const m = { l: 58, r: hasRight ? 58 : 16, t: 30, b: 40 };
  const legend = legendRows(series.map((s) => `${s.name}${hasRight && s.right ? ' (right axis)' : ''}`), width - m.l - m.r);
  const legendHeight = (legend.length ? (legend[legend.length - 1]!.row + 1) * 16 : 0) + (options.note ? 16 : 0);
  const height = options.height ?? 300 + legendHeight;
  const plotBottom = height - m.b - legendHeight;
  const xsOf = (s: Series) => s.x ?? x;
  const finite = (list: Series[]) => list.flatMap((s) => s.values.filter((v): v is number => v !== null && Number.isFinite(v)));
  const allX = series.flatMap((s) => xsOf(s).filter((_, j) => s.values[j] !== null && Number.isFinite(s.values[j]!)));
  const xScale = valueScale(allX.length ? allX : x, [m.l, width - m.r], false);
  const left = valueScale(finite(series.filter((s) => !s.right)), [plotBottom, m.t]);
  const right = valueScale(finite(series.filter((s) => s.right)), [plotBottom, m.t]);
  const color = (s: Series, i: number) => s.color ?? CYCLE[i % CYCLE.length]!;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${f(width / 2)}" y="18" text-anchor="middle" font-size="13">${escapeXml(title)}</text>`,
  ];
  const leftTicks = left.ticks(5);
  const leftFormat = left.tickFormat(5);
  for (const v of leftTicks) {
    const y = f(left(v));
    parts.push(`<line x1="${m.l}" x2="${width - m.r}" y1="${y}" y2="${y}" stroke="#e8e8e8"/>`);
    parts.push(`<text x="${m.l - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${leftFormat(v)}</text>`);
  }
  if (hasRight) {
    const rightFormat = right.tickFormat(5);
    for (const v of right.ticks(5)) parts.push(`<text x="${width - m.r + 6}" y="${f(right(v))}" dominant-baseline="middle">${rightFormat(v)}</text>`);
  }
  const xTicks = xScale.ticks(Math.min(8, Math.max(2, Math.round((width - m.l - m.r) / 60)))).filter((v) => !options.integerX || Number.isInteger(v));
  const xFormat = options.integerX ? (v: number) => String(v) : xScale.tickFormat(8);
  for (const v of xTicks) {
    const xx = f(xScale(v));
    parts.push(`<line x1="${xx}" x2="${xx}" y1="${plotBottom}" y2="${plotBottom + 4}" stroke="#999"/>`);
    parts.push(`<text x="${xx}" y="${plotBottom + 16}" text-anchor="middle">${xFormat(v)}</text>`);
  }
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${width - m.l - m.r}" height="${plotBottom - m.t}" fill="none" stroke="#999"/>`);
  parts.push(`<text x="${f((m.l + width - m.r) / 2)}" y="${plotBottom + 32}" text-anchor="middle">${escapeXml(xLabel)}</text>`);
  if (options.yLabel) parts.push(`<text transform="translate(14 ${f((m.t + plotBottom) / 2)}) rotate(-90)" text-anchor="middle">${escapeXml(options.yLabel)}</text>`);
  if (options.rightLabel && hasRight) parts.push(`<text transform="translate(${width - 10} ${f((m.t + plotBottom) / 2)}) rotate(90)" text-anchor="middle">${escapeXml(options.rightLabel)}</text>`);
  series.forEach((s, i) => {
    const scale = s.right ? right : left;
    const xs = xsOf(s);
    const points = s.values.flatMap((v, j) => (v === null || !Number.isFinite(v) || xs[j] === undefined ? [] : [[xScale(xs[j]!), scale(v)] as const]));
    const c = color(s, i);
    if (points.length > 1) parts.push(`<polyline fill="none" stroke="${c}" stroke-width="1.6"${s.right ? ' stroke-dasharray="6 2"' : ''} points="${points.map(([px, py]) => `${f(px)},${f(py)}`).join(' ')}"/>`);
    if (points.length === 1) parts.push(`<circle cx="${f(points[0]![0])}" cy="${f(points[0]![1])}" r="3" fill="${c}"/>`);
    if (s.marker !== undefined) {
      const mx = f(xScale(s.marker));
      parts.push(`<line x1="${mx}" x2="${mx}" y1="${m.t}" y2="${plotBottom}" stroke="${c}" stroke-width="1.2" stroke-dasharray="3 3"/>`);
      const j = xs.indexOf(s.marker);
      const v = j >= 0 ? s.values[j] : null;
      if (v !== null && v !== undefined && Number.isFinite(v)) parts.push(`<circle cx="${mx}" cy="${f(scale(v))}" r="3.5" fill="#fff" stroke="${c}" stroke-width="1.5"/>`);
    }
  });
  const legendTop = plotBottom + m.b;
  for (const e of legend) {
    const lx = m.l + e.x;
    const ly = legendTop + e.row * 16 + 4;
    const s = series[e.index]!;
    parts.push(`<line x1="${f(lx)}" x2="${f(lx + 22)}" y1="${ly}" y2="${ly}" stroke="${color(s, e.index)}" stroke-width="2"${s.right ? ' stroke-dasharray="6 2"' : ''}/>`);
    parts.push(`<text x="${f(lx + 28)}" y="${ly}" dominant-baseline="middle">${escapeXml(e.name)}</text>`);
  }
  if (options.note) parts.push(`<text x="${m.l}" y="${legendTop + legendHeight - 8}" fill="#555">${escapeXml(options.note)}</text>`);
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
