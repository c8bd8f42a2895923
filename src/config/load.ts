import { readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { parse as parseYamlValue } from 'yaml';
import type { JSONObject, JSONValue, Resources } from '../contract.js';
import { ConfigError, ConfigErrors, fsProblem, type SourcePos } from '../util/errors.js';
import { overlay, setAt } from './merge.js';
import { pipelineSchema } from './schema.js';
import type { AxisSpec, AxisValue, InputRef, PipelineSpec, StageSpec, TableSpec } from './types.js';
import { compileSchema, validateAt } from './validate.js';
import { childPointer, findNonFinite, nonFiniteProblem, parseYaml, positionOf, type Located, type Pointer } from './yaml-source.js';

export interface LoadOptions {
  /** `--set path=value` overrides, applied after `extends:` in the order given. */
  sets?: string[];
}

function displayPath(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel === '' || rel.startsWith('..') ? file : rel;
}

function readLocated(file: string, chain: string[]): Located {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const from = chain.length > 0 ? ` (extended by ${displayPath(chain[chain.length - 1]!)})` : '';
    throw new ConfigError(`cannot read pipeline file${from}: ${fsProblem(err)}`, { file: displayPath(file), line: 0, col: 0 });
  }
  const doc = parseYaml(text, displayPath(file));
  const value = doc.value;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError('a pipeline file must be a YAML mapping', { file: displayPath(file), line: 1, col: 1 });
  }
  const parent = value['extends'];
  if (typeof parent !== 'string') return doc;
  const parentFile = resolve(dirname(file), parent);
  if ([...chain, file].includes(parentFile)) {
    throw new ConfigError(
      `extends cycle: ${[...chain, file, parentFile].map(displayPath).join(' -> ')}`,
      positionOf(doc.positions, '/extends'),
      'extends',
    );
  }
  const base = readLocated(parentFile, [...chain, file]);
  const merged = overlay(base, doc);
  const { extends: _dropped, ...rest } = merged.value as JSONObject;
  return { value: rest, positions: merged.positions };
}

const TOP_LEVEL = new Set(Object.keys(pipelineSchema.properties));

/** `finetune.with.epochs=2` addresses stages.finetune.with.epochs; `vars.x=1` a top-level key. */
export function applySet(doc: Located, assignment: string): Located {
  const eq = assignment.indexOf('=');
  const pos: SourcePos = { file: `--set ${assignment}`, line: 0, col: 0 };
  if (eq <= 0) throw new ConfigError('expected path=value (e.g. finetune.with.epochs=2)', pos);
  const path = assignment.slice(0, eq).split('.');
  let value: JSONValue;
  try {
    value = parseYamlValue(assignment.slice(eq + 1)) as JSONValue;
  } catch (err) {
    throw new ConfigError(`value is not valid YAML: ${(err as Error).message}`, pos);
  }
  const nonFinite = findNonFinite(value);
  if (nonFinite) throw new ConfigError(nonFiniteProblem(String(nonFinite.value)), pos, nonFinite.path || undefined);
  const segments = TOP_LEVEL.has(path[0]!) ? path : ['stages', ...path];
  if (segments[0] === 'stages') {
    const stages = (doc.value as JSONObject)['stages'] as JSONObject | undefined;
    if (segments.length < 3 || !stages || !(segments[1]! in stages)) {
      throw new ConfigError(`no stage "${segments[1]}" to override (stages: ${Object.keys(stages ?? {}).join(', ')})`, pos);
    }
  }
  return setAt(doc, segments, value, pos);
}

function asConditions(
  raw: JSONValue | undefined,
  pointer: Pointer,
  axes: Map<string, AxisSpec>,
  positions: Map<Pointer, SourcePos>,
  errors: ConfigError[],
): Record<string, AxisValue[]> {
  const out: Record<string, AxisValue[]> = {};
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return out;
  for (const [axis, v] of Object.entries(raw)) {
    const ptr = childPointer(pointer, axis);
    const values = (Array.isArray(v) ? v : [v]) as AxisValue[];
    if (checkAxisValues(axis, values, ptr, axes, positions, errors)) out[axis] = values;
  }
  return out;
}

function checkAxisValues(
  axis: string,
  values: AxisValue[],
  pointer: Pointer,
  axes: Map<string, AxisSpec>,
  positions: Map<Pointer, SourcePos>,
  errors: ConfigError[],
): boolean {
  const spec = axes.get(axis);
  const field = pointer.slice(1).replace(/\//g, '.');
  if (!spec) {
    errors.push(new ConfigError(`unknown axis "${axis}" (axes: ${[...axes.keys()].join(', ') || 'none'})`, positionOf(positions, pointer), field));
    return false;
  }
  let ok = true;
  for (const v of values) {
    if (!spec.values.some((x) => String(x) === String(v))) {
      errors.push(new ConfigError(`unknown value "${v}" of axis ${axis} (values: ${spec.values.join(', ')})`, positionOf(positions, pointer), field));
      ok = false;
    }
  }
  return ok;
}

/** Maps a value written in YAML or on the command line to the axis's own value (3 and "3" alike). */
export function canonicalAxisValue(spec: AxisSpec, v: AxisValue): AxisValue | undefined {
  return spec.values.find((x) => String(x) === String(v));
}

const REF = /^([A-Za-z_][A-Za-z0-9_-]*)(?:\[([^\]]*)\])?\.([A-Za-z_][A-Za-z0-9_-]*)$/;

function parseRef(
  text: string,
  when: Record<string, AxisValue[]> | undefined,
  pointer: Pointer,
  axes: Map<string, AxisSpec>,
  positions: Map<Pointer, SourcePos>,
  errors: ConfigError[],
): InputRef | undefined {
  const m = REF.exec(text);
  if (!m) {
    errors.push(new ConfigError(`bad input reference "${text}" (expected stage.output or stage[axis=value].output)`, positionOf(positions, pointer), pointer.slice(1).replace(/\//g, '.')));
    return undefined;
  }
  const pins: Record<string, AxisValue> = {};
  for (const part of (m[2] ?? '').split(',').filter((s) => s.trim() !== '')) {
    const [axis, value] = part.split('=').map((s) => s.trim());
    if (!axis || value === undefined) {
      errors.push(new ConfigError(`bad axis pin "${part}" in "${text}"`, positionOf(positions, pointer)));
      continue;
    }
    if (checkAxisValues(axis, [value], pointer, axes, positions, errors)) pins[axis] = canonicalAxisValue(axes.get(axis)!, value)!;
  }
  return { stage: m[1]!, output: m[3]!, pins, when, pointer };
}

function parseAxes(raw: JSONObject | undefined): Map<string, AxisSpec> {
  const axes = new Map<string, AxisSpec>();
  for (const [name, def] of Object.entries(raw ?? {})) {
    if (Array.isArray(def)) {
      const values = def as AxisValue[];
      axes.set(name, { name, values, labels: new Map(values.map((v) => [v, String(v)])) });
    } else {
      const entries = Object.entries(def as Record<string, string>);
      const values = entries.map(([v]) => (/^-?\d+$/.test(v) ? Number(v) : v));
      axes.set(name, { name, values, labels: new Map(entries.map(([, label], i) => [values[i]!, label])) });
    }
  }
  return axes;
}

function parseStage(
  name: string,
  raw: JSONObject,
  axes: Map<string, AxisSpec>,
  positions: Map<Pointer, SourcePos>,
  errors: ConfigError[],
): StageSpec {
  const pointer = childPointer('/stages', name);
  const matrixRaw = raw['matrix'];
  const matrix: string[] = [];
  const subsets: Record<string, AxisValue[]> = {};
  if (Array.isArray(matrixRaw)) {
    matrixRaw.forEach((axis, i) => {
      if (checkAxisValues(String(axis), [], childPointer(childPointer(pointer, 'matrix'), i), axes, positions, errors)) matrix.push(String(axis));
    });
  } else if (matrixRaw && typeof matrixRaw === 'object') {
    for (const [axis, v] of Object.entries(matrixRaw)) {
      const ptr = childPointer(childPointer(pointer, 'matrix'), axis);
      const values = v === '*' ? [] : (v as AxisValue[]);
      if (!checkAxisValues(axis, values, ptr, axes, positions, errors)) continue;
      matrix.push(axis);
      if (v !== '*') subsets[axis] = values.map((x) => canonicalAxisValue(axes.get(axis)!, x)!);
    }
  }
  const exclude = ((raw['exclude'] as JSONValue[] | undefined) ?? []).map((c, i) =>
    asConditions(c, childPointer(childPointer(pointer, 'exclude'), i), axes, positions, errors),
  );
  const cases = ((raw['cases'] as JSONObject[] | undefined) ?? []).map((c, i) => {
    const ptr = childPointer(childPointer(pointer, 'cases'), i);
    return { when: asConditions(c['when'], childPointer(ptr, 'when'), axes, positions, errors), with: (c['with'] as JSONObject) ?? {}, pointer: childPointer(ptr, 'with') };
  });
  const inputs: Record<string, InputRef[]> = {};
  for (const [input, def] of Object.entries((raw['inputs'] as JSONObject | undefined) ?? {})) {
    const ptr = childPointer(childPointer(pointer, 'inputs'), input);
    const alternatives = Array.isArray(def) ? def : [def];
    inputs[input] = alternatives.flatMap((alt, i) => {
      const altPtr = Array.isArray(def) ? childPointer(ptr, i) : ptr;
      const ref =
        typeof alt === 'string'
          ? parseRef(alt, undefined, altPtr, axes, positions, errors)
          : parseRef(String((alt as JSONObject)['from']), asConditions((alt as JSONObject)['when'], childPointer(altPtr, 'when'), axes, positions, errors), childPointer(altPtr, 'from'), axes, positions, errors);
      return ref ? [ref] : [];
    });
  }
  return {
    name,
    uses: String(raw['uses']),
    matrix,
    subsets,
    exclude,
    with: (raw['with'] as JSONObject | undefined) ?? {},
    cases,
    inputs,
    resources: raw['resources'] as Resources | undefined,
    pointer,
  };
}

function checkTable(table: TableSpec, stages: Map<string, StageSpec>, axes: Map<string, AxisSpec>, positions: Map<Pointer, SourcePos>, errors: ConfigError[]): void {
  const stage = stages.get(table.stage);
  if (!stage) {
    errors.push(new ConfigError(`table refers to a missing stage "${table.stage}"`, positionOf(positions, '/table/stage'), 'table.stage'));
    return;
  }
  const wanted: [string, Pointer][] = [
    ...table.rows.map((a, i): [string, Pointer] => [a, `/table/rows/${i}`]),
    ...table.columns.map((a, i): [string, Pointer] => [a, `/table/columns/${i}`]),
    [table.over, '/table/over'],
  ];
  for (const [axis, ptr] of wanted) {
    if (!axes.has(axis)) checkAxisValues(axis, [], ptr, axes, positions, errors);
    else if (!stage.matrix.includes(axis)) {
      errors.push(new ConfigError(`stage ${stage.name} does not run over axis "${axis}"`, positionOf(positions, ptr), ptr.slice(1).replace(/\//g, '.')));
    }
  }
}

/** Reads a pipeline file with its `extends:` chain and `--set` overrides, validated and normalised. */
export function loadPipeline(file: string, options: LoadOptions = {}): PipelineSpec {
  const abs = resolve(file);
  let doc = readLocated(abs, []);
  for (const assignment of options.sets ?? []) doc = applySet(doc, assignment);
  const errors = validateAt(compileSchema(pipelineSchema), doc.value, '', doc.positions);
  if (errors.length > 0) throw new ConfigErrors(errors);
  const raw = doc.value as JSONObject;
  const axes = parseAxes(raw['axes'] as JSONObject | undefined);
  const stages = new Map<string, StageSpec>();
  for (const [name, def] of Object.entries(raw['stages'] as JSONObject)) stages.set(name, parseStage(name, def as JSONObject, axes, doc.positions, errors));
  for (const stage of stages.values()) {
    for (const refs of Object.values(stage.inputs)) {
      for (const ref of refs) {
        if (!stages.has(ref.stage)) {
          errors.push(new ConfigError(`reference to a missing stage "${ref.stage}" (stages: ${[...stages.keys()].join(', ')})`, positionOf(doc.positions, ref.pointer), ref.pointer.slice(1).replace(/\//g, '.')));
        }
      }
    }
  }
  const table = raw['table'] as unknown as TableSpec | undefined;
  if (table) checkTable(table, stages, axes, doc.positions, errors);
  if (errors.length > 0) throw new ConfigErrors(errors);
  return {
    name: String(raw['name']),
    file: abs,
    baseDir: dirname(abs),
    plugins: ((raw['plugins'] as string[] | undefined) ?? []).map((p) => resolve(dirname(abs), p)),
    vars: (raw['vars'] as JSONObject | undefined) ?? {},
    axes,
    stages,
    table,
    resources: raw['resources'] as Resources | undefined,
    raw,
    positions: doc.positions,
  };
}
