import type { JSONObject, JSONValue, Resources } from '../contract.js';
import type { SourcePos } from '../util/errors.js';
import type { Pointer } from './yaml-source.js';

export type AxisValue = string | number;

export interface AxisSpec {
  name: string;
  values: AxisValue[];
  /** Display label per value (table rows/columns, --cell addressing). */
  labels: Map<AxisValue, string>;
}

/** An input reference as written: `stage.output` or `stage[axis=value].output`, optionally conditional. */
export interface InputRef {
  stage: string;
  output: string;
  pins: Record<string, AxisValue>;
  when?: Record<string, AxisValue[]>;
  pointer: Pointer;
}

export interface StageSpec {
  name: string;
  uses: string;
  matrix: string[];
  /** Restricted values per axis, when the stage runs over a subset. */
  subsets: Record<string, AxisValue[]>;
  exclude: Record<string, AxisValue[]>[];
  with: JSONObject;
  cases: { when: Record<string, AxisValue[]>; with: JSONObject; pointer: Pointer }[];
  inputs: Record<string, InputRef[]>;
  resources?: Resources;
  pointer: Pointer;
}

export interface TableSpec {
  stage: string;
  /** Dotted path to a number: `<json output>.<field>...`. */
  value: string;
  rows: string[];
  columns: string[];
  over: string;
  title?: string;
  reference?: JSONValue;
}

/** A pipeline after extends, --set and schema validation; still unexpanded. */
export interface PipelineSpec {
  name: string;
  file: string;
  baseDir: string;
  plugins: string[];
  vars: JSONObject;
  axes: Map<string, AxisSpec>;
  stages: Map<string, StageSpec>;
  table?: TableSpec;
  resources?: Resources;
  /** The merged document, for interpolation of `${table}` and friends. */
  raw: JSONObject;
  positions: Map<Pointer, SourcePos>;
}
