import { writeFile } from 'node:fs/promises';
import { CURVES_STYLE, curvesSection } from '../report/curves-html.js';
import { escapeXml } from '../report/html.js';
import type { CurveCell } from '../report/model.js';
import type { Cell } from '../report/table.js';
import type { NodeOutcome } from '../run/types.js';
import { selectNodes } from '../graph/select.js';
import { planNodes } from '../run/plan.js';
import { Store } from '../store/store.js';
import { ConfigError } from '../util/errors.js';
import { existingCacheDir } from './options.js';
import { table } from './output.js';
import { openPipeline, type CliEnv, type Opened } from './session.js';
import { cachedTable, paramChanges, type ParamChange } from './variants.js';

export interface CompareFlags {
  set: string[];
  against: string[];
  cache?: string;
  json?: boolean;
  digits?: number;
  /** Also write a static page with the comparison and the overlaid learning curves. */
  html?: string;
}

interface Side {
  file: string;
  sets: string[];
}

interface CellComparison {
  address: string;
  a: Pick<Cell, 'median' | 'std' | 'values'>;
  b: Pick<Cell, 'median' | 'std' | 'values'>;
  delta: number | null;
}

export interface Comparison {
  a: Side;
  b: Side;
  value: string;
  over: string;
  params: ParamChange[];
  cells: CellComparison[];
  /** Learning curves of both variants, overlaid per training node (seeds of A and B together). */
  curves: CurveCell[];
}

async function cachedCells(opened: Opened, store: Store): Promise<{ cells: Map<string, Cell>; outcomes: Map<string, NodeOutcome> }> {
  const spec = opened.pipeline.spec.table;
  if (!spec) throw new ConfigError('this pipeline has no table: section to compare', { file: opened.pipeline.spec.file, line: 0, col: 0 });
  const outcomes = await planNodes({ ...opened, store }, selectNodes(opened.pipeline, opened.dag, { targets: [spec.stage] }));
  return { cells: new Map(cachedTable(opened, outcomes)!.cells.map((c) => [c.address, c])), outcomes };
}

/**
 * Learning curves of A and B overlaid: for every training node (a `curves` json output) of
 * the table's ancestry, grouped by everything but the `over` axis, A's seeds and B's together.
 */
function overlaidCurves(a: Opened, outA: Map<string, NodeOutcome>, b: Opened, outB: Map<string, NodeOutcome>): CurveCell[] {
  const over = a.pipeline.spec.table?.over;
  const cells = new Map<string, CurveCell>();
  const add = (side: 'A' | 'B', opened: Opened, outcomes: Map<string, NodeOutcome>) => {
    for (const [id, o] of outcomes) {
      const artifact = o.manifest?.outputs['curves'];
      const curves = artifact?.type === 'json' ? artifact.value : undefined;
      if (!curves || typeof curves !== 'object' || Array.isArray(curves) || !Array.isArray(curves['epochs'])) continue;
      const node = opened.pipeline.nodes.get(id)!;
      const rest = Object.entries(node.axes).filter(([k]) => k !== over).map(([k, v]) => `${k}=${v}`).join(',');
      const title = `${node.stage}${rest ? `[${rest}]` : ''}`;
      const cell = cells.get(title) ?? { stage: node.stage, title, runs: [] };
      cell.runs.push({ label: `${side}${over && over in node.axes ? ` ${over} ${node.axes[over]}` : ''}`, node: id, curves });
      cells.set(title, cell);
    }
  };
  add('A', a, outA);
  add('B', b, outB);
  // Only where both sides have runs: that is what a comparison shows.
  return [...cells.values()].filter((c) => c.runs.some((r) => r.label.startsWith('A')) && c.runs.some((r) => r.label.startsWith('B')));
}

/** Two variants of an experiment side by side: the parameters that differ, then every table cell with its delta. */
export async function compareVariants(a: Side, b: Side, cacheDir: string, env: CliEnv): Promise<Comparison> {
  const openedA = await openPipeline(a.file, a.sets, env);
  const openedB = await openPipeline(b.file, b.sets, env);
  const store = new Store(cacheDir);
  try {
    const { cells: cellsA, outcomes: outA } = await cachedCells(openedA, store);
    const { cells: cellsB, outcomes: outB } = await cachedCells(openedB, store);
    const cells: CellComparison[] = [];
    for (const address of new Set([...cellsA.keys(), ...cellsB.keys()])) {
      const empty = { median: null, std: null, values: [] };
      const ca = cellsA.get(address) ?? empty;
      const cb = cellsB.get(address) ?? empty;
      const pick = (c: typeof ca) => ({ median: c.median, std: c.std, values: c.values });
      cells.push({ address, a: pick(ca), b: pick(cb), delta: ca.median !== null && cb.median !== null ? cb.median - ca.median : null });
    }
    const t = openedA.pipeline.spec.table!;
    return { a, b, value: `${t.stage}.${t.value}`, over: t.over, params: paramChanges(openedA, openedB), cells, curves: overlaidCurves(openedA, outA, openedB, outB) };
  } finally {
    await store.close();
  }
}

function describe(side: Side): string {
  return [side.file, ...side.sets.map((s) => `--set ${s}`)].join(' ');
}

export function renderComparison(c: Comparison, digits = 3): string {
  const f = (x: number | null) => (x === null ? 'n/a' : x.toFixed(digits));
  const cell = (x: CellComparison['a']) => (x.median === null ? '(no results)' : `${f(x.median)} ± ${f(x.std)} [${x.values.map((v) => v.value.toFixed(digits)).join(' ')}]`);
  const lines = [`A: ${describe(c.a)}`, `B: ${describe(c.b)}`, ''];
  if (c.params.length === 0) lines.push('parameters: the same in A and B (the inputs or code may differ)');
  else lines.push('parameters that differ (A -> B):', table(c.params.map((p) => [`  ${p.path}`, `${p.a} -> ${p.b}`, `(${p.nodes} node${p.nodes === 1 ? '' : 's'})`])));
  lines.push('', `${c.value}: median ± std [per ${c.over}]`);
  lines.push(table([['cell', 'A', 'B', 'Δ (B - A)'], ...c.cells.map((x) => [x.address, cell(x.a), cell(x.b), x.delta === null ? '' : `${x.delta >= 0 ? '+' : ''}${x.delta.toFixed(digits)}`])]));
  const missing = c.cells.filter((x) => x.a.median === null || x.b.median === null).length;
  if (missing > 0) lines.push('', `${missing} cell(s) lack results on one side: \`pipeline run\` that variant first (with the same --set)`);
  return lines.join('\n') + '\n';
}

export async function compareCommand(fileA: string, fileB: string | undefined, flags: CompareFlags, env: CliEnv, write: (s: string) => void): Promise<number> {
  const c = await compareVariants({ file: fileA, sets: flags.set }, { file: fileB ?? fileA, sets: flags.against }, existingCacheDir(flags.cache), env);
  if (flags.html) {
    await writeFile(flags.html, comparisonHtml(c, flags.digits));
    if (!flags.json) write(`wrote ${flags.html}: the comparison and ${c.curves.length} training node(s) with both variants' curves overlaid\n`);
  }
  write(flags.json ? JSON.stringify({ ...c, curves: c.curves.map((x) => ({ title: x.title, runs: x.runs.map((r) => r.node) })) }, null, 2) + '\n' : renderComparison(c, flags.digits));
  return 0;
}

/** One offline page: the text comparison and the report's curve panels with A and B overlaid. */
export function comparisonHtml(c: Comparison, digits = 3): string {
  const body = curvesSection(c.curves, 'No training node has cached curves on both sides.');
  return `<!doctype html><html><head><meta charset="utf-8"><title>compare: ${escapeXml(describe(c.a))} vs ${escapeXml(describe(c.b))}</title>
<style>body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;max-width:1400px}pre{background:#f6f6f6;padding:.8em;overflow-x:auto}.note{color:#555}${CURVES_STYLE}</style></head>
<body><h1>Comparison</h1><pre>${escapeXml(renderComparison(c, digits))}</pre><h2>Learning curves (A and B overlaid)</h2>
${body}</body></html>
`;
}
