import type { JSONObject, JSONValue } from '../contract.js';
import { TASK_METRIC_TITLES } from '../ml/train/task-metrics.js';

export interface AxisLabel {
  value: string | number;
  label: string;
}

/** The pipeline's `table:` section as stages see it through `${table}`. */
export interface TableLayout {
  value: string;
  rows: string[];
  columns: string[];
  over: string;
  title?: string;
  axes: Record<string, AxisLabel[]>;
  /** Reference values (e.g. the paper's) keyed by the cell address: row labels then column labels, joined by '/'. */
  reference?: Record<string, number>;
}

export type StdKind = 'sample' | 'population';

export interface Cell {
  address: string;
  row: string[];
  column: string[];
  values: { over: string | number; value: number }[];
  median: number | null;
  std: number | null;
  expected: number;
  reference?: number;
}

export interface Table {
  title?: string;
  rowAxes: string[];
  columnAxes: string[];
  over: string;
  std: StdKind;
  rows: string[][];
  columns: string[][];
  cells: Cell[];
}

export interface Entry {
  axes: Record<string, string | number>;
  value: JSONValue;
}

export function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** numpy's std with ddof=1 (sample) or ddof=0 (population); null where undefined. */
export function std(xs: number[], kind: StdKind): number | null {
  const ddof = kind === 'sample' ? 1 : 0;
  if (xs.length - ddof <= 0) return null;
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - ddof));
}

/** The cell at a row and column of labels. */
export function cellAt(table: Table, row: string[], column: string[]): Cell {
  const address = [...row, ...column].join('/');
  const cell = table.cells.find((c) => c.address === address);
  if (!cell) throw new Error(`table has no cell ${address}`);
  return cell;
}

function product(lists: AxisLabel[][]): AxisLabel[][] {
  return lists.reduce<AxisLabel[][]>((acc, list) => acc.flatMap((prefix) => list.map((x) => [...prefix, x])), [[]]);
}

/** The value at a dotted path's segments inside a JSON value, if every step is a mapping. */
export function valueAt(value: JSONValue | undefined, path: string[]): JSONValue | undefined {
  let v: JSONValue | undefined = value;
  for (const p of path) v = v && typeof v === 'object' && !Array.isArray(v) ? (v as JSONObject)[p] : undefined;
  return v;
}

/** How a metric (evaluate's `metric`) reads in a title: a task metric by its title, others as
 *  written with `_` as spaces. */
const metricTitle = (m: string): string => (TASK_METRIC_TITLES as Record<string, string | undefined>)[m] ?? m.replace(/_/g, ' ');

/**
 * The title with `{over}` and `{metrics}` filled in from what the table holds, so it cannot
 * claim 3 seeds of a table over 1, or name data sets an `--only` table leaves out: `{over}` is
 * the over axis's count and name ("3 seeds", "1 seed"); `{metrics}` each column's metric, from
 * the `metric` field beside the value (evaluate's), as "APTOS2019 quadratic kappa, ISIC2019
 * macro recall" (one column: "APTOS2019 quadratic kappa"), or one name when several columns
 * all have the same.
 */
function fillTitle(title: string, layout: TableLayout, columns: AxisLabel[][], entries: Entry[], field: string[]): string {
  // The over values the table's entries hold, not the axis's: an `--only seed=1` table of a
  // three-seed pipeline is over 1 seed (its cells still say 1/3).
  const n = new Set(entries.map((e) => String(e.axes[layout.over]))).size;
  const over = `${n} ${layout.over}${n === 1 ? '' : 's'}`;
  const metricPath = [...field.slice(0, -1), 'metric'];
  const perColumn = columns.map((column) => {
    const names = new Set(
      entries
        .filter((e) => layout.columns.every((a, i) => String(e.axes[a]) === String(column[i]!.value)))
        .map((e) => valueAt(e.value, metricPath))
        .filter((m): m is string => typeof m === 'string')
        .map(metricTitle),
    );
    return { label: column.map((l) => l.label).join(' / '), names: [...names].join(' / ') };
  });
  const known = perColumn.filter((c) => c.names);
  const distinct = new Set(known.map((c) => c.names));
  const metrics = known.length === 0 ? layout.value : distinct.size === 1 && known.length === perColumn.length && (perColumn.length > 1 || !known[0]!.label) ? known[0]!.names : known.map((c) => `${c.label} ${c.names}`.trim()).join(', ');
  return title.replace(/\{over\}/g, over).replace(/\{metrics\}/g, metrics);
}

/**
 * Builds the table from every gathered instance of the table stage: one cell per row x column
 * combination, each the median and std of its values over the `over` axis.
 */
export function buildTable(layout: TableLayout, entries: Entry[], stdKind: StdKind): Table {
  const field = layout.value.split('.').slice(1);
  const axisLabels = (name: string) => {
    const labels = layout.axes[name];
    if (!labels) throw new Error(`table axis "${name}" is not an axis of the pipeline`);
    return labels;
  };
  const rowCombos = product(layout.rows.map(axisLabels));
  const colCombos = product(layout.columns.map(axisLabels));
  const expected = axisLabels(layout.over).length;
  const cells: Cell[] = [];
  for (const row of rowCombos) {
    for (const column of colCombos) {
      const coords = [...layout.rows.map((a, i) => [a, row[i]!] as const), ...layout.columns.map((a, i) => [a, column[i]!] as const)];
      const values = entries
        .filter((e) => coords.every(([axis, l]) => String(e.axes[axis]) === String(l.value)))
        .flatMap((e) => {
          const v = valueAt(e.value, field);
          return typeof v === 'number' && Number.isFinite(v) ? [{ over: e.axes[layout.over] ?? '', value: v }] : [];
        })
        .sort((a, b) => String(a.over).localeCompare(String(b.over), undefined, { numeric: true }));
      const address = [...row, ...column].map((l) => l.label).join('/');
      const nums = values.map((v) => v.value);
      cells.push({
        address,
        row: row.map((l) => l.label),
        column: column.map((l) => l.label),
        values,
        median: median(nums),
        std: std(nums, stdKind),
        expected,
        reference: layout.reference?.[address],
      });
    }
  }
  return {
    ...(layout.title !== undefined ? { title: fillTitle(layout.title, layout, colCombos, entries, field) } : {}),
    rowAxes: layout.rows,
    columnAxes: layout.columns,
    over: layout.over,
    std: stdKind,
    rows: rowCombos.map((r) => r.map((l) => l.label)),
    columns: colCombos.map((c) => c.map((l) => l.label)),
    cells,
  };
}
