import type { Cell } from '../report/table.js';
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
}

async function cachedCells(opened: Opened, store: Store): Promise<Map<string, Cell>> {
  const spec = opened.pipeline.spec.table;
  if (!spec) throw new ConfigError('this pipeline has no table: section to compare', { file: opened.pipeline.spec.file, line: 0, col: 0 });
  const outcomes = await planNodes({ ...opened, store }, selectNodes(opened.pipeline, opened.dag, { targets: [spec.stage] }));
  return new Map(cachedTable(opened, outcomes)!.cells.map((c) => [c.address, c]));
}

/** Two variants of an experiment side by side: the parameters that differ, then every table cell with its delta. */
export async function compareVariants(a: Side, b: Side, cacheDir: string, env: CliEnv): Promise<Comparison> {
  const openedA = await openPipeline(a.file, a.sets, env);
  const openedB = await openPipeline(b.file, b.sets, env);
  const store = new Store(cacheDir);
  try {
    const cellsA = await cachedCells(openedA, store);
    const cellsB = await cachedCells(openedB, store);
    const cells: CellComparison[] = [];
    for (const address of new Set([...cellsA.keys(), ...cellsB.keys()])) {
      const empty = { median: null, std: null, values: [] };
      const ca = cellsA.get(address) ?? empty;
      const cb = cellsB.get(address) ?? empty;
      const pick = (c: typeof ca) => ({ median: c.median, std: c.std, values: c.values });
      cells.push({ address, a: pick(ca), b: pick(cb), delta: ca.median !== null && cb.median !== null ? cb.median - ca.median : null });
    }
    const t = openedA.pipeline.spec.table!;
    return { a, b, value: `${t.stage}.${t.value}`, over: t.over, params: paramChanges(openedA, openedB), cells };
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
  write(flags.json ? JSON.stringify(c, null, 2) + '\n' : renderComparison(c, flags.digits));
  return 0;
}
