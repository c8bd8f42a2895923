// `pipeline report FILE`: the report of a pipeline as it stands in the cache, gathered from
// the cached manifests (nothing runs): the table, Figure 1, every stage's curves, the
// confusion matrices and the provenance of each node.
import { describeReason } from '../run/reason.js';
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { JSONObject, JSONValue } from '../contract.js';
import type { Coords, NodeInstance } from '../config/expand.js';
import { COLORMAPS, type ColormapName } from '../ml/saliency/colormap.js';
import { gridLayoutOf, gridPanels } from '../report/figure1.js';
import type { ConfusionCell, CurveCell, NodeSummary, ReportModel, SaliencyFigure } from '../report/model.js';
import { reportHtml } from '../report/page.js';
import { buildTable, type StdKind, type TableLayout } from '../report/table.js';
import { planNodes } from '../run/plan.js';
import type { NodeOutcome } from '../run/scheduler.js';
import { packageVersions } from '../run/versions.js';
import type { Manifest } from '../store/artifacts.js';
import { Store } from '../store/store.js';
import { openPipeline, type CliEnv, type Opened } from './session.js';
import { existingCacheDir, writeNamedFile } from './options.js';
import { shellCommand, shellWord } from '../util/shell.js';

export interface ReportFlags {
  cache?: string;
  set: string[];
  output: string;
}

/** Figure 1 panels are enlarged to at least this many pixels a side. */
export const MIN_PANEL = 224;

const REPO = fileURLToPath(new URL('../../../', import.meta.url));

const isObject = (v: JSONValue | undefined): v is JSONObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The checkout's commit, and whether tracked files differ from it. */
function commitOf(dir: string): string {
  try {
    const head = execFileSync('git', ['-C', dir, 'rev-parse', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['-C', dir, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return dirty ? `${head} (with uncommitted changes)` : head;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

class Gatherer {
  constructor(
    readonly opened: Opened,
    readonly store: Store,
    readonly outcomes: Map<string, NodeOutcome>,
  ) {}

  get spec() {
    return this.opened.pipeline.spec;
  }

  label(axis: string, value: string | number): string {
    return this.spec.axes.get(axis)?.labels.get(value) ?? String(value);
  }

  manifest(id: string): Manifest | undefined {
    return this.outcomes.get(id)?.manifest;
  }

  json(id: string, output: string): JSONValue | undefined {
    const a = this.manifest(id)?.outputs[output];
    return a?.type === 'json' ? a.value : undefined;
  }

  nodes(): NodeInstance[] {
    return this.opened.dag.order.map((id) => this.opened.pipeline.nodes.get(id)!);
  }

  /** The axis the table aggregates over (the seeds), if the pipeline has a table. */
  get over(): string | undefined {
    return this.spec.table?.over;
  }

  /** Labels of a node's axes but the table's `over` axis: the table's rows, its columns, then the rest. */
  cellTitle(axes: Coords): string {
    const t = this.spec.table;
    const order = [...new Set([...(t?.rows ?? []), ...(t?.columns ?? []), ...this.spec.axes.keys()])];
    const parts = order.filter((a) => a !== this.over && a in axes).map((a) => this.label(a, axes[a]!));
    return parts.join(' / ');
  }

  cellKey(node: NodeInstance): string {
    return JSON.stringify([node.stage, Object.entries(node.axes).filter(([a]) => a !== this.over).sort()]);
  }

  runLabel(node: NodeInstance): string {
    const over = this.over;
    return over && over in node.axes ? `${over} ${node.axes[over]}` : node.id;
  }
}

function tableOf(g: Gatherer): { table: ReportModel['table']; digits: number } {
  const t = g.spec.table;
  if (!t) return { table: undefined, digits: 3 };
  const axes: TableLayout['axes'] = {};
  for (const [name, axis] of g.spec.axes) axes[name] = axis.values.map((v) => ({ value: v, label: axis.labels.get(v) ?? String(v) }));
  const reference = isObject(t.reference) ? (Object.fromEntries(Object.entries(t.reference).filter(([, v]) => typeof v === 'number')) as Record<string, number>) : undefined;
  const layout: TableLayout = { value: t.value, rows: t.rows, columns: t.columns, over: t.over, axes, ...(t.title ? { title: t.title } : {}), ...(reference ? { reference } : {}) };
  const output = t.value.split('.')[0]!;
  const entries = (g.opened.pipeline.byStage.get(t.stage) ?? []).flatMap((id) => {
    const value = g.json(id, output);
    return value === undefined ? [] : [{ axes: g.opened.pipeline.nodes.get(id)!.axes, value }];
  });
  // The std and digits the pipeline's aggregate node asks for, where it has one.
  const aggregate = g.nodes().find((n) => n.kind === 'aggregate');
  const std: StdKind = aggregate?.params['std'] === 'population' ? 'population' : 'sample';
  const digits = typeof aggregate?.params['digits'] === 'number' ? aggregate.params['digits'] : 3;
  return { table: buildTable(layout, entries, std), digits };
}

function curvesOf(g: Gatherer): CurveCell[] {
  const cells = new Map<string, CurveCell>();
  for (const node of g.nodes()) {
    const curves = g.json(node.id, 'curves');
    if (!isObject(curves) || !Array.isArray(curves['epochs'])) continue;
    const key = g.cellKey(node);
    const cell = cells.get(key) ?? { stage: node.stage, title: `${node.stage}: ${g.cellTitle(node.axes) || node.id}`, runs: [] };
    cell.runs.push({ label: g.runLabel(node), node: node.id, curves });
    cells.set(key, cell);
  }
  return [...cells.values()];
}

const isMatrix = (v: JSONValue | undefined): v is number[][] => Array.isArray(v) && v.length > 0 && v.every((r) => Array.isArray(r) && r.length === v.length && r.every((x) => typeof x === 'number'));

function confusionsOf(g: Gatherer): ConfusionCell[] {
  const columns = g.spec.table?.columns ?? [];
  const cells = new Map<string, ConfusionCell>();
  for (const node of g.nodes()) {
    for (const [, artifact] of Object.entries(g.manifest(node.id)?.outputs ?? {})) {
      const v = artifact.type === 'json' ? artifact.value : undefined;
      if (!isObject(v) || !isMatrix(v['confusion'])) continue;
      const matrix = v['confusion'];
      const key = g.cellKey(node);
      const group = columns.filter((a) => a in node.axes).map((a) => g.label(a, node.axes[a]!)).join(' / ') || node.stage;
      const rest = Object.fromEntries(Object.entries(node.axes).filter(([a]) => !columns.includes(a)));
      const classes = Array.isArray(v['classes']) ? v['classes'].map(String) : [];
      const cell = cells.get(key);
      if (cell && cell.matrix.length === matrix.length) {
        cell.matrix = cell.matrix.map((row, i) => row.map((x, j) => x + matrix[i]![j]!));
        cell.runs++;
      } else if (!cell) cells.set(key, { group, title: g.cellTitle(rest) || node.id, classes, matrix: matrix.map((r) => [...r]), runs: 1 });
    }
  }
  return [...cells.values()];
}

/** Class names for a node's data: the `classes` another cached node with the same axis values recorded. */
function classesFor(g: Gatherer, axes: Coords): string[] {
  for (const node of g.nodes()) {
    if (!Object.entries(axes).every(([a, v]) => String(node.axes[a]) === String(v))) continue;
    for (const artifact of Object.values(g.manifest(node.id)?.outputs ?? {})) {
      const v = artifact.type === 'json' ? artifact.value : undefined;
      if (isObject(v) && Array.isArray(v['classes']) && v['classes'].length > 0) return v['classes'].map(String);
    }
  }
  return [];
}

async function figuresOf(g: Gatherer): Promise<SaliencyFigure[]> {
  const out: SaliencyFigure[] = [];
  for (const node of g.nodes()) {
    const m = g.manifest(node.id);
    const figure = m?.outputs['figure'];
    const summary = g.json(node.id, 'summary');
    if (!m || figure?.type !== 'file' || !isObject(summary)) continue;
    const layout = gridLayoutOf(summary['layout']);
    if (!layout) throw new Error(`${node.id}: its summary output has no valid \`layout\` (rows, columns, cell, gap, width, height)`);
    const png = await readFile(await g.store.blobs.verified(figure.digest, `${node.id} output figure`));
    const classes = classesFor(g, node.axes);
    const name = (k: JSONValue | undefined) => (typeof k === 'number' ? (classes[k] ?? `class ${k}`) : '?');
    const images = Array.isArray(summary['images']) ? summary['images'].filter(isObject) : [];
    const columns = layout.columns.map((id) => {
      const im = images.find((i) => i['id'] === id);
      const pred = (part: string, model: string) => (isObject(im?.[part]) ? `; ${model} predicts ${name((im[part] as JSONObject)['predicted'])}` : '');
      const cnn = isObject(summary['cnn']) ? String(summary['cnn']['model']) : 'CNN';
      const vit = isObject(summary['vit']) ? String(summary['vit']['model']) : 'ViT';
      return { id, caption: `${id} — class: ${name(im?.['label'])}${pred('gradcam', cnn)}${pred('attention', vit)}` };
    });
    const colormap = COLORMAPS.includes(summary['colormap'] as ColormapName) ? (summary['colormap'] as ColormapName) : 'jet';
    out.push({ title: g.cellTitle(node.axes) || node.id, node: node.id, rows: layout.rows, columns, panels: await gridPanels(png, layout, MIN_PANEL), colormap });
  }
  return out;
}

function engineOf(m: Manifest): string | undefined {
  const e = m.provenance.reported['engine'];
  if (!isObject(e)) return undefined;
  const threads = typeof e['threads'] === 'number' ? `, ${e['threads']} thread${e['threads'] === 1 ? '' : 's'}` : '';
  return `${String(e['backend'] ?? e['choice'] ?? '?')}${threads}`;
}

function nodesOf(g: Gatherer, file: string): NodeSummary[] {
  return g.nodes().map((node) => {
    const o = g.outcomes.get(node.id);
    const m = o?.manifest;
    const show = shellCommand('npx', 'pipeline', 'show', file, node.id);
    const base: NodeSummary = { id: node.id, stage: node.stage, kind: node.kind, cached: Boolean(m), show };
    if (!m) return { ...base, reason: o?.reason ? describeReason(o.reason) : (o?.state ?? 'not planned') };
    const engine = engineOf(m);
    return { ...base, key: m.key, started: m.provenance.started, duration_s: m.provenance.duration_s, ...(engine ? { engine } : {}) };
  });
}

export async function buildReport(file: string, flags: Omit<ReportFlags, 'output'>, env: CliEnv): Promise<{ html: string; model: ReportModel }> {
  const opened = await openPipeline(file, flags.set, env);
  // The report only reads: a mistyped --cache would otherwise be created and reported as empty.
  const store = new Store(existingCacheDir(flags.cache));
  try {
    const outcomes = await planNodes({ ...opened, store }, new Set(opened.dag.order));
    const g = new Gatherer(opened, store, outcomes);
    const { table, digits } = tableOf(g);
    const spec = g.spec;
    const description = typeof spec.raw['description'] === 'string' ? spec.raw['description'] : undefined;
    const model: ReportModel = {
      // The table's title as filled in from its cells ({over}, {metrics}), not the raw template.
      title: table?.title ?? spec.table?.title ?? description ?? spec.name,
      ...(description ? { description } : {}),
      pipeline: { name: spec.name, file: resolve(file), overrides: flags.set.map((s) => `--set ${shellWord(s)}`) },
      software: { medpipe: packageVersions()['medpipe'] ?? '?', commit: commitOf(REPO), node: process.versions.node, generated: new Date().toISOString().slice(0, 19).replace('T', ' ') + ' UTC', cache: store.dir },
      ...(table ? { table } : {}),
      digits,
      figures: await figuresOf(g),
      minPanel: MIN_PANEL,
      curves: curvesOf(g),
      confusions: confusionsOf(g),
      nodes: nodesOf(g, file),
    };
    return { html: reportHtml(model), model };
  } finally {
    await store.close();
  }
}

export async function reportCommand(file: string, flags: ReportFlags, env: CliEnv, write: (s: string) => void): Promise<number> {
  const { html, model } = await buildReport(file, flags, env);
  await writeNamedFile('-o', flags.output, html);
  const cached = model.nodes.filter((n) => n.cached).length;
  const cells = model.table?.cells ?? [];
  const filled = cells.filter((c) => c.median !== null).length;
  write(
    `wrote ${flags.output} (${(Buffer.byteLength(html) / 1024).toFixed(0)} KiB): table ${filled}/${cells.length} cells, ${model.figures.length} saliency figure(s), ${model.curves.reduce((a, c) => a + c.runs.length, 0)} curve run(s), ${model.confusions.length} confusion matrix/matrices; ${cached}/${model.nodes.length} nodes cached\n`,
  );
  return 0;
}
