// A small self-contained SVG line chart (learning curves, DINO loss): no plotting library
// needed to look at a run, and the file is byte-stable for the same numbers.

export interface Series {
  name: string;
  values: (number | null)[];
  /** Plot against the right-hand axis (e.g. a metric beside a loss). */
  right?: boolean;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd'];

function range(values: number[]): [number, number] {
  if (values.length === 0) return [0, 1];
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (lo === hi) {
    lo -= 0.5;
    hi += 0.5;
  }
  return [lo, hi];
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

export function lineChart(title: string, xLabel: string, x: number[], series: Series[], width = 640, height = 360): string {
  const m = { l: 60, r: 60, t: 36, b: 44 };
  const w = width - m.l - m.r;
  const h = height - m.t - m.b;
  const finite = (s: Series[]) => s.flatMap((v) => v.values.filter((y): y is number => y !== null && Number.isFinite(y)));
  const left = range(finite(series.filter((s) => !s.right)));
  const right = range(finite(series.filter((s) => s.right)));
  const [x0, x1] = range(x);
  const px = (v: number) => m.l + ((v - x0) / (x1 - x0)) * w;
  const py = (v: number, [lo, hi]: [number, number]) => m.t + h - ((v - lo) / (hi - lo)) * h;
  const f = (v: number) => v.toFixed(1);
  const tick = (v: number) => (Math.abs(v) >= 100 || v === 0 ? v.toFixed(0) : v.toPrecision(3));
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="13">${esc(title)}</text>`,
    `<rect x="${m.l}" y="${m.t}" width="${w}" height="${h}" fill="none" stroke="#999"/>`,
    `<text x="${m.l + w / 2}" y="${height - 8}" text-anchor="middle">${esc(xLabel)}</text>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const ly = left[0] + ((left[1] - left[0]) * i) / 4;
    const ry = right[0] + ((right[1] - right[0]) * i) / 4;
    const y = f(py(ly, left));
    parts.push(`<line x1="${m.l}" x2="${m.l + w}" y1="${y}" y2="${y}" stroke="#eee"/>`);
    parts.push(`<text x="${m.l - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${tick(ly)}</text>`);
    if (series.some((s) => s.right)) parts.push(`<text x="${m.l + w + 6}" y="${y}" dominant-baseline="middle">${tick(ry)}</text>`);
    const xv = x0 + ((x1 - x0) * i) / 4;
    parts.push(`<text x="${f(px(xv))}" y="${m.t + h + 16}" text-anchor="middle">${tick(xv)}</text>`);
  }
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const scale = s.right ? right : left;
    const points = s.values.flatMap((v, j) => (v === null || !Number.isFinite(v) ? [] : [`${f(px(x[j]!))},${f(py(v, scale))}`]));
    if (points.length > 1) parts.push(`<polyline fill="none" stroke="${color}" stroke-width="1.8" points="${points.join(' ')}"/>`);
    for (const p of points.length === 1 ? points : []) parts.push(`<circle cx="${p.split(',')[0]}" cy="${p.split(',')[1]}" r="3" fill="${color}"/>`);
    parts.push(`<text x="${m.l + 8}" y="${m.t + 14 + i * 14}" fill="${color}">${esc(s.name)}${s.right ? ' (right axis)' : ''}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
