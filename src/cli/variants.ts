import type { JSONObject } from '../contract.js';
import { tableScope } from '../config/expand.js';
import { buildTable, type Table, type TableLayout } from '../report/table.js';
import type { NodeOutcome } from '../run/scheduler.js';
import type { Manifest } from '../store/artifacts.js';
import { flattenLeaves } from '../keys.js';
import type { Opened } from './session.js';


/** Numeric scalars of a manifest's json outputs (`metrics.value`, `metrics.kappa`, ...), for a one-line summary. */
export function numericOutputs(manifest: Manifest, limit = 8): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, artifact] of Object.entries(manifest.outputs)) {
    if (artifact.type !== 'json') continue;
    for (const [path, text] of flattenLeaves(artifact.value, name)) {
      if (Object.keys(out).length >= limit) return out;
      const n = Number(text);
      if (/^-?[\d.]+(e[-+]?\d+)?$/i.test(text) && Number.isFinite(n)) out[path] = n;
    }
  }
  return out;
}

export interface ParamChange {
  /** `stage.with.path` as a `--set` would name it. */
  path: string;
  a: string;
  b: string;
  /** How many node instances of the stage differ this way. */
  nodes: number;
}

/** Each node's stage and parameters, by node id. */
export type NodeParams = ReadonlyMap<string, { stage: string; params: JSONObject }>;

/** Parameters that differ between two sets of nodes (two expansions, two commits' results), per stage and parameter path, over the nodes both have. */
export function paramChanges(a: NodeParams, b: NodeParams): ParamChange[] {
  const changes = new Map<string, ParamChange>();
  for (const [id, na] of a) {
    const nb = b.get(id);
    if (!nb) continue;
    const pa = flattenLeaves(na.params as JSONObject);
    const pb = flattenLeaves(nb.params as JSONObject);
    for (const k of new Set([...pa.keys(), ...pb.keys()])) {
      const va = pa.get(k) ?? '(unset)';
      const vb = pb.get(k) ?? '(unset)';
      if (va === vb) continue;
      const path = `${na.stage}.with.${k}`;
      const key = `${path}\u0000${va}\u0000${vb}`;
      const c = changes.get(key) ?? { path, a: va, b: vb, nodes: 0 };
      c.nodes++;
      changes.set(key, c);
    }
  }
  return [...changes.values()].sort((x, y) => x.path.localeCompare(y.path));
}

/** The pipeline's table from the cached results of its table stage (cells without results stay empty). */
export function cachedTable(opened: Opened, outcomes: Map<string, NodeOutcome>): Table | undefined {
  const spec = opened.pipeline.spec.table;
  if (!spec) return undefined;
  return tableOf(opened, outcomes, opened.pipeline.byStage.get(spec.stage) ?? [], tableScope(opened.pipeline.spec) as unknown as TableLayout);
}

/**
 * The table of a run that selected only some of its cells (`--only`): those rows and columns,
 * from the table stage's results; undefined when the run selected all of them or none.
 */
export function selectedTable(opened: Opened, outcomes: Map<string, NodeOutcome>, selected: Set<string>): Table | undefined {
  const spec = opened.pipeline.spec.table;
  if (!spec) return undefined;
  const all = opened.pipeline.byStage.get(spec.stage) ?? [];
  const ids = all.filter((id) => selected.has(id));
  if (ids.length === 0 || ids.length === all.length) return undefined;
  const layout = tableScope(opened.pipeline.spec) as unknown as TableLayout;
  const shown = new Set([...spec.rows, ...spec.columns]);
  const axes = Object.fromEntries(
    Object.entries(layout.axes).map(([axis, labels]) => {
      if (!shown.has(axis)) return [axis, labels];
      const present = new Set(ids.map((id) => String(opened.pipeline.nodes.get(id)!.axes[axis])));
      return [axis, labels.filter((l) => present.has(String(l.value)))];
    }),
  );
  return tableOf(opened, outcomes, ids, { ...layout, axes });
}

function tableOf(opened: Opened, outcomes: Map<string, NodeOutcome>, ids: string[], layout: TableLayout): Table {
  const [output] = opened.pipeline.spec.table!.value.split('.');
  const entries = ids.flatMap((id) => {
    const artifact = outcomes.get(id)?.manifest?.outputs[output!];
    return artifact?.type === 'json' ? [{ axes: opened.pipeline.nodes.get(id)!.axes, value: artifact.value }] : [];
  });
  return buildTable(layout, entries, 'sample');
}
