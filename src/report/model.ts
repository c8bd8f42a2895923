// What a report shows, gathered from the cache (src/cli/report.ts) and drawn by page.ts.
import type { JSONObject } from '../contract.js';
import type { ColormapName } from '../ml/saliency/colormap.js';
import type { Table } from './table.js';

export interface NodeSummary {
  id: string;
  stage: string;
  kind: string;
  cached: boolean;
  /** Why it is not cached (never run, params changed, ...). */
  reason?: string;
  key?: string;
  started?: string;
  duration_s?: number;
  /** Backend and threads the stage reported, e.g. "wasm, 2 threads". */
  engine?: string;
  /** The command that prints the node's manifest, without the overrides (they are listed once). */
  show: string;
}

/** One training run's curves (a finetune or dino `curves` output) and what it is in its cell. */
export interface CurveRun {
  label: string;
  node: string;
  curves: JSONObject;
}

/** The runs of one stage that differ only in the table's `over` axis (the seeds of a cell). */
export interface CurveCell {
  stage: string;
  title: string;
  runs: CurveRun[];
}

export interface ConfusionCell {
  /** The heading it is listed under (the data set). */
  group: string;
  title: string;
  classes: string[];
  /** Rows: true class; columns: predicted class; summed over `runs`. */
  matrix: number[][];
  runs: number;
}

export interface Panel {
  png: Uint8Array;
  width: number;
  height: number;
}

/** One saliency node's grid, cut into its panels and enlarged. */
export interface SaliencyFigure {
  title: string;
  node: string;
  rows: string[];
  columns: { id: string; caption: string }[];
  /** panels[row][column] */
  panels: Panel[][];
  colormap: ColormapName;
}

export interface ReportModel {
  title: string;
  description?: string;
  pipeline: { name: string; file: string; overrides: string[] };
  software: { medpipe: string; commit: string; node: string; generated: string; cache: string };
  table?: Table;
  digits: number;
  figures: SaliencyFigure[];
  /** Smallest side, in CSS pixels, of every Figure 1 panel. */
  minPanel: number;
  curves: CurveCell[];
  confusions: ConfusionCell[];
  nodes: NodeSummary[];
}
