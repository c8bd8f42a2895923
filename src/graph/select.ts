import type { ExpandedPipeline } from '../config/expand.js';
import { canonicalAxisValue } from '../config/load.js';
import type { AxisValue } from '../config/types.js';
import { ConfigError, type SourcePos } from '../util/errors.js';
import { didYouMean } from '../util/suggest.js';
import { ancestorsOf, type Dag } from './dag.js';

export interface Selection {
  /** Node ids, stage names or globs (`*` any run of characters, `?` one). */
  targets?: string[];
  /** `axis=value` or `axis=v1,v2`; every filter must hold. */
  only?: string[];
  /** Table cell by its row and column labels: `DeiT-S/ImageNet/APTOS2019`. */
  cell?: string;
}

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

/** --only's word for a value an axis does not have; a node id's `[axis=value]` shares it. */
function unknownValue(pipeline: ExpandedPipeline, axis: string, v: string, pos: SourcePos): ConfigError {
  const spec = pipeline.spec.axes.get(axis)!;
  return new ConfigError(`unknown value "${v}" of axis ${axis} (values: ${spec.values.join(', ')})`, pos);
}

function unknownAxis(pipeline: ExpandedPipeline, axis: string, pos: SourcePos): ConfigError {
  const axes = [...pipeline.spec.axes.keys()];
  return new ConfigError(`unknown axis "${axis}"${didYouMean(axis, axes)} (axes: ${axes.join(', ')})`, pos);
}

/** How to name one instance of a stage: `stage[a=...,b=...]`, with an example. */
function namingHint(pipeline: ExpandedPipeline, stage: string): string {
  const ids = pipeline.byStage.get(stage) ?? [];
  const axes = Object.keys(pipeline.nodes.get(ids[0]!)?.axes ?? {});
  const values = axes.map((a) => `${a}: ${(pipeline.spec.axes.get(a)?.values ?? []).join(', ')}`).join('; ');
  return `name one as '${stage}[${axes.map((a) => `${a}=...`).join(',')}]' (${values}), e.g. '${ids[0]}'`;
}

/**
 * Why a name is no node, as precisely as the name allows: a stage (name one of its instances),
 * an `id[axis=value]` with an unknown stage, axis or value (the words --only uses), or a
 * misspelling (the nearest names); a glob that matched nothing, only that. `show`, `history`,
 * `predict` and `run`'s targets share it.
 */
export function noNodeError(pipeline: ExpandedPipeline, name: string, pos: SourcePos = { file: `node ${name}`, line: 0, col: 0 }): ConfigError {
  const stages = [...pipeline.byStage.keys()];
  const ids = pipeline.byStage.get(name);
  if (ids && ids.length > 0) return new ConfigError(`"${name}" is a stage of ${ids.length} node${ids.length === 1 ? '' : 's'}, not one node: ${namingHint(pipeline, name)}`, pos);
  // A glob is not an id to pick apart: `train[model=*]` names no unknown value.
  const m = /[*?]/.test(name) ? null : /^([^[\]]+)\[(.*)\]$/.exec(name);
  if (m) {
    const stage = m[1]!;
    const inner = m[2]!;
    const instances = pipeline.byStage.get(stage);
    if (!instances) return new ConfigError(`unknown stage "${stage}"${didYouMean(stage, stages)} (stages: ${stages.join(', ')})`, pos);
    const stageAxes = Object.keys(pipeline.nodes.get(instances[0]!)!.axes);
    const given: string[] = [];
    for (const part of inner.split(',')) {
      const eq = part.indexOf('=');
      const axis = eq < 0 ? part : part.slice(0, eq);
      if (!pipeline.spec.axes.has(axis)) return unknownAxis(pipeline, axis, pos);
      if (!stageAxes.includes(axis)) return new ConfigError(`stage ${stage} does not vary over axis ${axis} (its axes: ${stageAxes.join(', ') || 'none'})`, pos);
      if (eq < 0 || canonicalAxisValue(pipeline.spec.axes.get(axis)!, part.slice(eq + 1)) === undefined) return unknownValue(pipeline, axis, part.slice(eq + 1), pos);
      given.push(axis);
    }
    const missing = stageAxes.filter((a) => !given.includes(a));
    if (missing.length > 0) return new ConfigError(`names ${given.length} of ${stage}'s ${stageAxes.length} axes (missing: ${missing.join(', ')}): ${namingHint(pipeline, stage)}`, pos);
    return new ConfigError(`no such instance of ${stage} (axes in the order ${stageAxes.join(', ')}): ${namingHint(pipeline, stage)}`, pos);
  }
  return new ConfigError(`matches no node${didYouMean(name, stages)} (stages: ${stages.join(', ')})`, pos);
}

/** A node a command names on its command line (`show FILE NODE`): the pipeline has it, or the
 *  error says why not, at `FILE: node NODE`. */
export function requireNode(pipeline: ExpandedPipeline, file: string, node: string): void {
  if (!pipeline.nodes.has(node)) throw noNodeError(pipeline, node, { file: `${file}: node ${node}`, line: 0, col: 0 });
}

function parseFilters(pipeline: ExpandedPipeline, only: string[]): Record<string, AxisValue[]> {
  const filters: Record<string, AxisValue[]> = {};
  for (const f of only) {
    const pos = { file: `--only ${f}`, line: 0, col: 0 };
    const eq = f.indexOf('=');
    if (eq <= 0) throw new ConfigError('expected axis=value[,value...]', pos);
    const axis = f.slice(0, eq);
    const spec = pipeline.spec.axes.get(axis);
    if (!spec) throw unknownAxis(pipeline, axis, pos);
    // Repeating an axis widens it (`--only model=a --only model=b` is `model=a,b`), as the
    // values after one `=` do; different axes narrow each other.
    const values = f
      .slice(eq + 1)
      .split(',')
      .map((v) => {
        const value = canonicalAxisValue(spec, v);
        if (value === undefined) throw unknownValue(pipeline, axis, v, pos);
        return value;
      });
    filters[axis] = [...(filters[axis] ?? []), ...values.filter((v) => !(filters[axis] ?? []).some((w) => String(w) === String(v)))];
  }
  return filters;
}

/**
 * Resolves `--cell` labels (or raw values) to the table stage's instances of that cell. Labels
 * may come in any order ("DeiT-S/ImageNet/APTOS2019" or "ImageNet/DeiT-S/APTOS2019"): each
 * names exactly one of the table's row and column axes.
 */
export function cellNodes(pipeline: ExpandedPipeline, cell: string): string[] {
  const table = pipeline.spec.table;
  const pos = { file: `--cell ${cell}`, line: 0, col: 0 };
  if (!table) throw new ConfigError('this pipeline has no table: section', pos);
  const axes = [...table.rows, ...table.columns].map((a) => pipeline.spec.axes.get(a)!);
  const parts = cell.split('/');
  if (parts.length !== axes.length) throw new ConfigError(`a cell is addressed by ${axes.length} labels (one each of ${axes.map((a) => a.name).join(', ')}), got ${parts.length}`, pos);
  const coords: Record<string, AxisValue> = {};
  for (const label of parts) {
    const matches = axes.flatMap((spec) => {
      const value = spec.values.find((v) => spec.labels.get(v) === label) ?? canonicalAxisValue(spec, label);
      return value === undefined ? [] : [{ spec, value }];
    });
    if (matches.length === 0) {
      throw new ConfigError(`"${label}" is no label of ${axes.map((a) => `${a.name} (${a.values.map((v) => a.labels.get(v)).join(', ')})`).join(', ')}`, pos);
    }
    if (matches.length > 1) throw new ConfigError(`"${label}" is ambiguous: a label of ${matches.map((m) => m.spec.name).join(' and ')}`, pos);
    const { spec, value } = matches[0]!;
    if (spec.name in coords) throw new ConfigError(`two labels of ${spec.name}: ${spec.labels.get(coords[spec.name]!)} and ${label}`, pos);
    coords[spec.name] = value;
  }
  const ids = (pipeline.byStage.get(table.stage) ?? []).filter((id) => axes.every((a) => String(pipeline.nodes.get(id)!.axes[a.name]) === String(coords[a.name])));
  if (ids.length === 0) throw new ConfigError(`no ${table.stage} instance for cell ${cell}`, pos);
  return ids;
}

/** The nodes the targets name (node ids, stage names, globs), in pipeline order, without their ancestors. */
export function targetNodes(pipeline: ExpandedPipeline, dag: Dag, targets: string[]): string[] {
  const picked = new Set<string>();
  for (const target of targets) {
    const pos = { file: `target ${target}`, line: 0, col: 0 };
    let ids: string[];
    if (pipeline.nodes.has(target)) ids = [target];
    else if (pipeline.byStage.has(target)) ids = pipeline.byStage.get(target)!;
    else {
      const re = globToRegExp(target);
      ids = dag.order.filter((id) => re.test(id));
    }
    if (ids.length === 0) throw noNodeError(pipeline, target, pos);
    ids.forEach((id) => picked.add(id));
  }
  return dag.order.filter((id) => picked.has(id));
}

/** The nodes a run touches: the targets and all their ancestors (everything when nothing is selected). */
export function selectNodes(pipeline: ExpandedPipeline, dag: Dag, selection: Selection): Set<string> {
  let roots: string[] | undefined;
  const intersect = (ids: string[]) => (roots = roots ? roots.filter((id) => ids.includes(id)) : ids);
  if (selection.targets && selection.targets.length > 0) intersect(targetNodes(pipeline, dag, selection.targets));
  if (selection.cell) intersect(cellNodes(pipeline, selection.cell));
  if (selection.only && selection.only.length > 0) {
    const filters = parseFilters(pipeline, selection.only);
    const ids = dag.order.filter((id) => {
      const node = pipeline.nodes.get(id)!;
      return Object.entries(filters).every(([axis, values]) => axis in node.axes && values.some((v) => String(v) === String(node.axes[axis])));
    });
    if (ids.length === 0) throw new ConfigError('no node matches every --only filter', { file: `--only ${selection.only.join(' ')}`, line: 0, col: 0 });
    intersect(ids);
  }
  if (!roots) return new Set(dag.order);
  if (roots.length === 0) {
    // Each part matched something, but no node satisfies them together: say which parts.
    const parts = [
      ...(selection.targets && selection.targets.length > 0 ? [`targets ${selection.targets.join(' ')}`] : []),
      ...(selection.cell ? [`--cell ${selection.cell}`] : []),
      ...(selection.only && selection.only.length > 0 ? [`--only ${selection.only.join(' --only ')}`] : []),
    ];
    throw new ConfigError(`no node matches all of ${parts.join('; ')} (each matches nodes on its own; together they contradict each other)`, { file: 'selection', line: 0, col: 0 });
  }
  return ancestorsOf(dag.graph, roots);
}
