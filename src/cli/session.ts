import { existsSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import { expandPipeline, type ExpandedPipeline } from '../config/expand.js';
import { loadPipeline } from '../config/load.js';
import { withUnimportedPlugins } from '../config/plugin-shapes.js';
import { buildDag, type Dag } from '../graph/dag.js';
import { loadKinds, type Registry } from '../registry.js';
import type { Capacity } from '../run/slots.js';
import type { Resources } from '../contract.js';
import { ConfigError, errorMessage } from '../util/errors.js';

export interface CliEnv {
  /** Modules exporting the built-in stage kinds (stages/index.js); src/ never imports stages/. */
  builtinKinds: string[];
}

export interface Opened {
  pipeline: ExpandedPipeline;
  dag: Dag;
  registry: Registry;
}

export async function openPipeline(file: string, sets: string[], env: CliEnv): Promise<Opened> {
  const spec = loadPipeline(file, { sets });
  const registry = await loadKinds(env.builtinKinds, new Map(), { allowEmpty: true, builtin: true });
  // A plugin that cannot be imported is a problem of the pipeline file, at its plugins: entry.
  for (const [i, plugin] of spec.plugins.entries()) {
    try {
      await loadKinds([plugin], registry);
    } catch (err) {
      const { line, col } = spec.positions.get(`/plugins/${i}`) ?? { line: 0, col: 0 };
      const missing = (err as { cause?: { code?: string } }).cause?.code === 'ERR_MODULE_NOT_FOUND' && !existsSync(plugin);
      throw new ConfigError(missing ? `plugin ${plugin} cannot be read (no such file)` : errorMessage(err), { file: spec.file, line, col });
    }
  }
  const pipeline = expandPipeline(spec, registry);
  return { pipeline, dag: buildDag(pipeline), registry };
}

/** The pipeline as planned from its YAML and the built-in kinds alone, no plugin imported (`dag`). */
export async function openPipelineStatically(file: string, sets: string[], env: CliEnv): Promise<Omit<Opened, 'registry'>> {
  const spec = loadPipeline(file, { sets });
  const registry = withUnimportedPlugins(spec, await loadKinds(env.builtinKinds, new Map(), { allowEmpty: true, builtin: true }));
  const pipeline = expandPipeline(spec, registry);
  return { pipeline, dag: buildDag(pipeline) };
}

/** Machine capacity: the pipeline's `resources:`, then `--resources k=v,...`, then `--jobs`. */
export function capacityOf(pipelineResources: Resources | undefined, flag: string | undefined, jobs: number | undefined): Capacity {
  const cap: Capacity = {
    jobs: jobs ?? availableParallelism(),
    cpus: availableParallelism(),
    gpu: 0,
    memory_gb: Math.floor(totalmem() / 2 ** 30),
    ...pipelineResources,
  };
  for (const part of (flag ?? '').split(',').filter(Boolean)) {
    const [k, v] = part.split('=');
    const n = Number(v);
    if (!k || !(k in cap) || !Number.isFinite(n) || n < 0) {
      throw new ConfigError(`expected cpus=N, gpu=N, memory_gb=N or jobs=N, got "${part}"`, { file: `--resources ${flag}`, line: 0, col: 0 });
    }
    cap[k as keyof Capacity] = n;
  }
  if (jobs !== undefined) cap.jobs = jobs;
  return cap;
}
