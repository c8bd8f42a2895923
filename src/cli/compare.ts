import { execFileSync, spawnSync } from 'node:child_process';
import { dirname } from 'node:path';
import { CURVES_STYLE, curvesSection } from '../report/curves-html.js';
import { escapeXml } from '../report/html.js';
import type { CurveCell } from '../report/model.js';
import type { Cell } from '../report/table.js';
import type { NodeOutcome } from '../run/types.js';
import { selectNodes } from '../graph/select.js';
import { withoutUnkeyedDefaults } from '../keys.js';
import { planNodes } from '../run/plan.js';
import type { Manifest } from '../store/artifacts.js';
import { listManifests } from '../store/maintenance.js';
import { Store } from '../store/store.js';
import { ConfigError } from '../util/errors.js';
import { existingCacheDir, writeNamedFile } from './options.js';
import { table } from './output.js';
import { openPipeline, type CliEnv, type Opened } from './session.js';
import { cachedTable, paramChanges, type NodeParams, type ParamChange } from './variants.js';

export interface CompareFlags {
  set: string[];
  against: string[];
  cache?: string;
  json?: boolean;
  digits?: number;
  /** Also write a static page with the comparison and the overlaid learning curves. */
  html?: string;
  /** A is the results made at this commit of the pipeline's repository, B at `againstCommit`. */
  commit?: string;
  againstCommit?: string;
}

interface Side {
  file: string;
  sets: string[];
  /** The results recorded as made at this commit (full hash), instead of what the file resolves to now. */
  commit?: string;
}

/** Results of one side made with uncommitted changes to the repository's tracked files. */
interface Made {
  results: number;
  dirty: number;
}

interface CellComparison {
  address: string;
  a: Pick<Cell, 'median' | 'std' | 'values'>;
  b: Pick<Cell, 'median' | 'std' | 'values'>;
  delta: number | null;
}

export interface Comparison {
  a: Side & Made;
  b: Side & Made;
  value: string;
  over: string;
  params: ParamChange[];
  cells: CellComparison[];
  /** Learning curves of both variants, overlaid per training node (seeds of A and B together). */
  curves: CurveCell[];
}

/**
 * A side's results: what the pipeline resolves to now, or (a commit given) for each node of
 * the table's ancestry the cached result whose provenance records that commit or, for a node
 * a run there found cached and so did not make again, the nearest commit before it.
 */
async function cachedCells(opened: Opened, store: Store, commit: string | undefined): Promise<{ cells: Map<string, Cell>; outcomes: Map<string, NodeOutcome> }> {
  const spec = opened.pipeline.spec.table;
  if (!spec) throw new ConfigError('this pipeline has no table: section to compare', { file: opened.pipeline.spec.file, line: 0, col: 0 });
  const selected = selectNodes(opened.pipeline, opened.dag, { targets: [spec.stage] });
  const outcomes = commit === undefined ? await planNodes({ ...opened, store }, selected) : asOf(store, opened.pipeline.spec.name, selected, historyOf(opened.pipeline.spec.file, commit));
  return { cells: new Map(cachedTable(opened, outcomes)!.cells.map((c) => [c.address, c])), outcomes };
}

/** The commit and its ancestors, nearest first (`git rev-list`). */
function historyOf(file: string, commit: string): string[] {
  return execFileSync('git', ['-C', dirname(file), 'rev-list', commit], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 60_000, maxBuffer: 2 ** 28 }).split('\n').filter(Boolean);
}

function asOf(store: Store, pipeline: string, nodes: Set<string>, history: string[]): Map<string, NodeOutcome> {
  const distance = new Map(history.map((c, i) => [c, i]));
  const best = new Map<string, { m: Manifest; d: number }>();
  // Oldest first, so that of two results at one commit (two --set variants) the newer wins.
  for (const m of listManifests(store)) {
    const d = distance.get(m.provenance.repository?.commit ?? '');
    if (m.pipeline !== pipeline || !nodes.has(m.node) || d === undefined) continue;
    const held = best.get(m.node);
    if (!held || d <= held.d) best.set(m.node, { m, d });
  }
  return new Map([...best].map(([id, { m }]) => [id, { state: 'cached', key: m.key, manifest: m }]));
}

/** A commit as git names it in the pipeline file's repository (a hash, a branch, HEAD~2), as the full hash provenance records. */
export function resolveCommit(file: string, rev: string, option: string): string {
  try {
    return execFileSync('git', ['-C', dirname(file), 'rev-parse', '--verify', '--quiet', `${rev}^{commit}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).trim();
  } catch (err) {
    const at = { file: `${option} ${rev}`, line: 0, col: 0 };
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ConfigError(`${option} needs git, which is not installed`, at);
    if (!inGitRepository(file)) throw new ConfigError(`${file} is in no git repository: ${option} picks results by the commit that made them`, at);
    throw new ConfigError(`"${rev}" is no commit of the git repository holding ${file}`, at);
  }
}

function inGitRepository(file: string): boolean {
  return spawnSync('git', ['-C', dirname(file), 'rev-parse', '--git-dir'], { stdio: 'ignore', timeout: 10_000 }).status === 0;
}

function made(outcomes: Map<string, NodeOutcome>): Made {
  const manifests = [...outcomes.values()].flatMap((o) => (o.manifest ? [o.manifest] : []));
  return { results: manifests.length, dirty: manifests.filter((m) => m.provenance.repository?.dirty).length };
}

/** Keyed parameters of each node's result, for sides chosen by commit (the file now says nothing of them). */
function recordedParams(outcomes: Map<string, NodeOutcome>): NodeParams {
  return new Map([...outcomes].flatMap(([id, o]) => (o.manifest ? [[id, { stage: o.manifest.stage, params: o.manifest.material.params }] as const] : [])));
}

/** Each node's parameters as written, a parameter at its kind's unkeyed default as unset (as the key has it: `precision: fp32`). */
function normalisedParams(opened: Opened): NodeParams {
  return new Map([...opened.pipeline.nodes].map(([id, node]) => [id, { stage: node.stage, params: withoutUnkeyedDefaults(node.params, opened.registry.get(node.kind)!.kind) }] as const));
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
    const { cells: cellsA, outcomes: outA } = await cachedCells(openedA, store, a.commit);
    const { cells: cellsB, outcomes: outB } = await cachedCells(openedB, store, b.commit);
    const cells: CellComparison[] = [];
    for (const address of new Set([...cellsA.keys(), ...cellsB.keys()])) {
      const empty = { median: null, std: null, values: [] };
      const ca = cellsA.get(address) ?? empty;
      const cb = cellsB.get(address) ?? empty;
      const pick = (c: typeof ca) => ({ median: c.median, std: c.std, values: c.values });
      cells.push({ address, a: pick(ca), b: pick(cb), delta: ca.median !== null && cb.median !== null ? cb.median - ca.median : null });
    }
    const t = openedA.pipeline.spec.table!;
    // By commit, parameters are the ones the results were keyed by, on both sides alike.
    const byCommit = a.commit !== undefined || b.commit !== undefined;
    const params = byCommit ? paramChanges(recordedParams(outA), recordedParams(outB)) : paramChanges(normalisedParams(openedA), normalisedParams(openedB));
    return { a: { ...a, ...made(outA) }, b: { ...b, ...made(outB) }, value: `${t.stage}.${t.value}`, over: t.over, params, cells, curves: overlaidCurves(openedA, outA, openedB, outB) };
  } finally {
    await store.close();
  }
}

function describe(side: Side & Partial<Made>): string {
  const at = side.commit === undefined ? '' : ` as of commit ${side.commit.slice(0, 12)}${side.dirty ? ` (${side.dirty} of ${side.results} results made with uncommitted changes)` : ''}`;
  return [side.file, ...side.sets.map((s) => `--set ${s}`)].join(' ') + at;
}

export function renderComparison(c: Comparison, digits = 3): string {
  // '–' for a std that does not exist (one seed), as the table in run and report writes it.
  const f = (x: number | null) => (x === null ? '–' : x.toFixed(digits));
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

function sideOf(file: string, sets: string[], commit: string | undefined, options: [string, string]): Side {
  if (commit === undefined) return { file, sets };
  if (sets.length > 0) throw new ConfigError(`${options[0]} picks results by the commit that made them, ${options[1]} by their parameters now: give one of them`, { file: `${options[0]} ${commit}`, line: 0, col: 0 });
  return { file, sets, commit: resolveCommit(file, commit, options[0]) };
}

export async function compareCommand(fileA: string, fileB: string | undefined, flags: CompareFlags, env: CliEnv, write: (s: string) => void): Promise<number> {
  const a = sideOf(fileA, flags.set, flags.commit, ['--commit', '--set']);
  const b = sideOf(fileB ?? fileA, flags.against, flags.againstCommit, ['--against-commit', '--against']);
  const c = await compareVariants(a, b, existingCacheDir(flags.cache), env);
  if (flags.html) {
    await writeNamedFile('--html', flags.html, comparisonHtml(c, flags.digits));
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
