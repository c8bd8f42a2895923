// Planning without importing plugins (`pipeline dag`): a plugin module is code, and looking at a
// graph must not run it. What a plugin kind declares (its parameter schema, input and output
// types) is only known by importing it, so here each one is given the shape the YAML implies:
// the inputs its stages connect, the outputs other stages read, parameters unchecked. Node
// ids and edges follow from the YAML alone; the kind's own checks wait for run and status.
import { accessSync, constants } from 'node:fs';
import type { ArtifactType, InputSpec, StageKind } from '../contract.js';
import type { Registry } from '../registry.js';
import { ConfigError, fsProblem } from '../util/errors.js';
import type { PipelineSpec } from './types.js';

function unimported(name: string, spec: PipelineSpec): StageKind {
  return {
    kind: name,
    version: 0,
    description: `a kind from plugins: (${spec.plugins.join(', ')}), not imported`,
    params: { type: 'object', additionalProperties: true },
    inputs: {},
    outputs: {},
    run: () => Promise.reject(new Error(`stage kind ${name} was planned without importing its plugin: it cannot run`)),
  };
}

/**
 * Adds to `registry` (the built-in kinds) a shape for every kind the stages use that it lacks,
 * when the pipeline has plugins to define them; checks that each plugin file is there to import.
 */
export function withUnimportedPlugins(spec: PipelineSpec, registry: Registry): Registry {
  if (spec.plugins.length === 0) return registry;
  spec.plugins.forEach((plugin, i) => {
    try {
      accessSync(plugin, constants.R_OK);
    } catch (err) {
      const { line, col } = spec.positions.get(`/plugins/${i}`) ?? { line: 0, col: 0 };
      throw new ConfigError(`plugin ${plugin} cannot be read (${fsProblem(err)})`, { file: spec.file, line, col });
    }
  });
  const out: Registry = new Map(registry);
  const shapes = new Map<string, StageKind>();
  for (const stage of spec.stages.values()) {
    if (out.has(stage.uses) || shapes.has(stage.uses)) continue;
    const kind = unimported(stage.uses, spec);
    shapes.set(stage.uses, kind);
    out.set(stage.uses, { kind, module: spec.plugins[0]! });
  }
  const kindOf = (stage: string) => out.get(spec.stages.get(stage)?.uses ?? '')?.kind;
  // An unimported output takes the type of a built-in input that reads it; the rest are json,
  // and an unimported input takes the type of what it reads (many: any number of instances).
  for (const stage of spec.stages.values()) {
    const consumer = out.get(stage.uses)!.kind;
    for (const [name, refs] of Object.entries(stage.inputs)) {
      for (const ref of refs) {
        const upstream = kindOf(ref.stage);
        const declared: InputSpec | undefined = consumer.inputs?.[name];
        if (upstream && shapes.has(upstream.kind) && !shapes.has(consumer.kind) && declared) upstream.outputs[ref.output] ??= declared.type;
      }
    }
  }
  for (const stage of spec.stages.values()) {
    const consumer = shapes.get(stage.uses);
    if (!consumer) continue;
    for (const [name, refs] of Object.entries(stage.inputs)) {
      const upstream = refs.map((r) => ({ ref: r, kind: kindOf(r.stage) })).find((u) => u.kind);
      if (!upstream) continue;
      const outputs = upstream.kind!.outputs;
      if (shapes.has(upstream.kind!.kind)) outputs[upstream.ref.output] ??= 'json';
      // A built-in output that does not exist: expansion names the reference.
      const type: ArtifactType = outputs[upstream.ref.output] ?? 'json';
      consumer.inputs![name] ??= { type, many: true, optional: true };
    }
  }
  return out;
}
