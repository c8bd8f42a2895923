import type { ArtifactType, JSONObject, JSONValue, Resources } from '../contract.js';
import type { Registry } from '../registry.js';
import { ConfigError, ConfigErrors } from '../util/errors.js';
import { interpolate, InterpolationError } from './interpolate.js';
import type { AxisValue, InputRef, PipelineSpec, StageSpec } from './types.js';
import { compileSchema, validateAt } from './validate.js';
import { childPointer, positionOf } from './yaml-source.js';

export type Coords = Record<string, AxisValue>;

export interface UpstreamRef {
  node: string;
  output: string;
  axes: Coords;
}

export interface ResolvedInput {
  type: ArtifactType;
  many: boolean;
  upstream: UpstreamRef[];
}

/** One node of the DAG: a stage at one point of its matrix, with parameters fully resolved. */
export interface NodeInstance {
  id: string;
  stage: string;
  kind: string;
  axes: Coords;
  params: JSONObject;
  inputs: Record<string, ResolvedInput>;
  resources: Resources;
}

export interface ExpandedPipeline {
  spec: PipelineSpec;
  nodes: Map<string, NodeInstance>;
  /** Instances of each stage, in matrix order. */
  byStage: Map<string, string[]>;
}

export function nodeId(stage: string, matrix: string[], coords: Coords): string {
  if (matrix.length === 0) return stage;
  return `${stage}[${matrix.map((a) => `${a}=${coords[a]}`).join(',')}]`;
}

function matches(coords: Coords, cond: Record<string, AxisValue[]>): boolean {
  return Object.entries(cond).every(([axis, values]) => axis in coords && values.some((v) => String(v) === String(coords[axis])));
}

function product(spec: PipelineSpec, stage: StageSpec): Coords[] {
  let out: Coords[] = [{}];
  for (const axis of stage.matrix) {
    const values = stage.subsets[axis] ?? spec.axes.get(axis)!.values;
    out = out.flatMap((c) => values.map((v) => ({ ...c, [axis]: v })));
  }
  return out.filter((c) => !stage.exclude.some((cond) => Object.keys(cond).length > 0 && matches(c, cond)));
}

function deepMerge(base: JSONObject, over: JSONObject): JSONObject {
  const out: JSONObject = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] =
      b && v && typeof b === 'object' && typeof v === 'object' && !Array.isArray(b) && !Array.isArray(v) ? deepMerge(b as JSONObject, v as JSONObject) : v;
  }
  return out;
}

/** Stage-level cycle, as the list of stages around it, or undefined. */
export function findStageCycle(stages: Map<string, StageSpec>): string[] | undefined {
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (name: string): string[] | undefined => {
    if (state.get(name) === 'done') return undefined;
    if (state.get(name) === 'visiting') return [...stack.slice(stack.indexOf(name)), name];
    state.set(name, 'visiting');
    stack.push(name);
    for (const refs of Object.values(stages.get(name)?.inputs ?? {})) {
      for (const ref of refs) {
        if (!stages.has(ref.stage)) continue;
        const cycle = visit(ref.stage);
        if (cycle) return cycle;
      }
    }
    stack.pop();
    state.set(name, 'done');
    return undefined;
  };
  for (const name of stages.keys()) {
    const cycle = visit(name);
    if (cycle) return cycle.reverse();
  }
  return undefined;
}

/** The table section as stages see it through `${table}`: the spec plus every axis's values and labels. */
export function tableScope(spec: PipelineSpec): JSONValue {
  const table = spec.raw['table'];
  if (!table) return null;
  const axes: JSONObject = {};
  for (const [name, axis] of spec.axes) axes[name] = axis.values.map((v) => ({ value: v, label: axis.labels.get(v) ?? String(v) }));
  return { ...(table as JSONObject), axes };
}

/**
 * Expands every stage over its matrix, resolves parameters (cases, interpolation, the kind's
 * defaults) and wires each input to the matching upstream instances. Pure: no I/O.
 */
export function expandPipeline(spec: PipelineSpec, registry: Registry): ExpandedPipeline {
  const errors: ConfigError[] = [];
  const seen = new Set<string>();
  const push = (err: ConfigError) => {
    if (!seen.has(err.message)) {
      seen.add(err.message);
      errors.push(err);
    }
  };
  const pos = (pointer: string) => positionOf(spec.positions, pointer);
  const field = (pointer: string) => pointer.slice(1).replace(/\//g, '.');

  for (const stage of spec.stages.values()) {
    if (!registry.has(stage.uses)) {
      push(new ConfigError(`unknown stage kind "${stage.uses}" (known: ${[...registry.keys()].sort().join(', ')})`, pos(childPointer(stage.pointer, 'uses')), `${field(stage.pointer)}.uses`));
    }
  }
  const cycle = findStageCycle(spec.stages);
  if (cycle) push(new ConfigError(`cycle: ${cycle.join(' -> ')}`, pos(spec.stages.get(cycle[0]!)!.pointer), field(spec.stages.get(cycle[0]!)!.pointer)));
  if (errors.length > 0) throw new ConfigErrors(errors);

  const nodes = new Map<string, NodeInstance>();
  const byStage = new Map<string, string[]>();
  const coordsOf = new Map<string, Coords[]>();
  for (const stage of spec.stages.values()) coordsOf.set(stage.name, product(spec, stage));
  const table = tableScope(spec);

  for (const stage of spec.stages.values()) {
    const { kind } = registry.get(stage.uses)!;
    const paramsSchema = { additionalProperties: false, ...kind.params };
    const validate = compileSchema(paramsSchema);
    const ids: string[] = [];
    for (const coords of coordsOf.get(stage.name)!) {
      const id = nodeId(stage.name, stage.matrix, coords);
      ids.push(id);
      let merged = stage.with;
      for (const c of stage.cases) if (matches(coords, c.when)) merged = deepMerge(merged, c.with);
      const scope = { ...coords, vars: spec.vars, table, stage: stage.name, pipeline: spec.name };
      let params: JSONObject;
      try {
        params = interpolate(merged, scope) as JSONObject;
      } catch (err) {
        if (!(err instanceof InterpolationError)) throw err;
        const ptr = err.path.reduce((p, k) => childPointer(p, k), childPointer(stage.pointer, 'with'));
        push(new ConfigError(err.message, pos(ptr), field(ptr)));
        continue;
      }
      for (const e of validateAt(validate, params, childPointer(stage.pointer, 'with'), spec.positions, `${field(stage.pointer)}.with`)) {
        push(new ConfigError(`${e.problem} (kind ${kind.kind})`, e.pos, e.field));
      }

      const inputs: Record<string, ResolvedInput> = {};
      const declared = kind.inputs ?? {};
      for (const [name, refs] of Object.entries(stage.inputs)) {
        const inputPtr = childPointer(childPointer(stage.pointer, 'inputs'), name);
        const spec_ = declared[name];
        if (!spec_) {
          push(new ConfigError(`kind ${kind.kind} has no input "${name}" (inputs: ${Object.keys(declared).join(', ') || 'none'})`, pos(inputPtr), field(inputPtr)));
          continue;
        }
        const ref = refs.find((r) => !r.when || matches(coords, r.when));
        if (!ref) continue;
        const resolved = resolveRef(ref, coords, spec_.many ?? false, spec_.type, id);
        if (resolved) inputs[name] = { type: spec_.type, many: spec_.many ?? false, upstream: resolved };
      }
      for (const [name, inputSpec] of Object.entries(declared)) {
        if (!inputSpec.optional && !inputs[name] && !errors.some((e) => e.field?.startsWith(field(childPointer(childPointer(stage.pointer, 'inputs'), name))))) {
          push(new ConfigError(`${id}: required input "${name}" of kind ${kind.kind} is not connected`, pos(stage.pointer), `${field(stage.pointer)}.inputs`));
        }
      }
      nodes.set(id, {
        id,
        stage: stage.name,
        kind: kind.kind,
        axes: coords,
        params,
        inputs,
        resources: { cpus: 1, ...kind.resources, ...stage.resources },
      });
    }
    byStage.set(stage.name, ids);
  }
  if (errors.length > 0) throw new ConfigErrors(errors);
  return { spec, nodes, byStage };

  function resolveRef(ref: InputRef, coords: Coords, many: boolean, type: ArtifactType, consumer: string): UpstreamRef[] | undefined {
    const up = spec.stages.get(ref.stage)!;
    const upKind = registry.get(up.uses)!.kind;
    const refField = field(ref.pointer);
    const outType = upKind.outputs[ref.output];
    if (!outType) {
      push(new ConfigError(`reference to a missing output "${ref.output}" of stage ${ref.stage} (kind ${upKind.kind} outputs: ${Object.keys(upKind.outputs).join(', ')})`, pos(ref.pointer), refField));
      return undefined;
    }
    if (outType !== type) {
      push(new ConfigError(`output ${ref.stage}.${ref.output} is ${outType}, but the input takes ${type}`, pos(ref.pointer), refField));
      return undefined;
    }
    for (const axis of Object.keys(ref.pins)) {
      if (!up.matrix.includes(axis)) {
        push(new ConfigError(`stage ${ref.stage} does not run over axis "${axis}"`, pos(ref.pointer), refField));
        return undefined;
      }
    }
    const candidates = coordsOf.get(ref.stage)!.filter((c) =>
      up.matrix.every((axis) => {
        if (axis in ref.pins) return String(c[axis]) === String(ref.pins[axis]);
        if (axis in coords) return String(c[axis]) === String(coords[axis]);
        return true;
      }),
    );
    if (candidates.length === 0) {
      push(new ConfigError(`${consumer}: no instance of ${ref.stage} matches (it runs over ${up.matrix.join(', ') || 'no axes'}; pin the axis, e.g. ${ref.stage}[axis=value].${ref.output}, or add a when: condition)`, pos(ref.pointer), refField));
      return undefined;
    }
    if (!many && candidates.length > 1) {
      const free = up.matrix.filter((a) => !(a in ref.pins) && !(a in coords));
      push(new ConfigError(`${consumer}: input matches ${candidates.length} instances of ${ref.stage} (axes ${free.join(', ')} are free); pin them or use a kind whose input gathers many`, pos(ref.pointer), refField));
      return undefined;
    }
    return candidates.map((c) => ({ node: nodeId(up.name, up.matrix, c), output: ref.output, axes: c }));
  }
}
