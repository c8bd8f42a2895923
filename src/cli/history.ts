import { requireNode, selectNodes } from '../graph/select.js';
import { planNodes } from '../run/plan.js';
import type { Manifest } from '../store/artifacts.js';
import { listManifests } from '../store/maintenance.js';
import { Store } from '../store/store.js';
import { existingCacheDir } from './options.js';
import { table } from './output.js';
import { openPipeline, type CliEnv } from './session.js';
import { flattenLeaves } from '../keys.js';
import { numericOutputs } from './variants.js';

export interface Variant {
  key: string;
  current: boolean;
  finished: string;
  duration_s: number;
  /** Only the parameters (and inputs) whose values differ between the cached variants. */
  differs: Record<string, string>;
  metrics: Record<string, number>;
}

/** Which leaf paths take more than one value over the variants. */
function differingPaths(maps: Map<string, string>[]): string[] {
  const all = new Set(maps.flatMap((m) => [...m.keys()]));
  return [...all].filter((k) => new Set(maps.map((m) => m.get(k) ?? '(unset)')).size > 1).sort();
}

function keyed(m: Manifest): Map<string, string> {
  const out = flattenLeaves(m.material.params, 'params');
  for (const [name, input] of Object.entries(m.material.inputs)) out.set(`input.${name}`, typeof input === 'string' ? input.slice(0, 12) : `${input.length} items`);
  out.set('version', String(m.version));
  // Variants told apart only by their code or their raw files would show as identical rows.
  if (m.material.code !== undefined) out.set('code', m.material.code.slice(0, 12));
  for (const [path, value] of flattenLeaves(m.material.external, 'external')) out.set(path, /^"[0-9a-f]{64}"$/.test(value) ? value.slice(1, 13) : value);
  return out;
}

/** The cached variants of one node (every key it has had that is still in the cache), oldest first. */
export async function nodeHistory(file: string, node: string, sets: string[], cacheDir: string, env: CliEnv): Promise<Variant[]> {
  const opened = await openPipeline(file, sets, env);
  requireNode(opened.pipeline, file, node);
  const store = new Store(cacheDir);
  try {
    const current = (await planNodes({ ...opened, store }, selectNodes(opened.pipeline, opened.dag, { targets: [node] }))).get(node)?.key;
    const manifests = listManifests(store).filter((m) => m.pipeline === opened.pipeline.spec.name && m.node === node);
    const maps = manifests.map(keyed);
    const paths = differingPaths(maps);
    return manifests.map((m, i) => ({
      key: m.key,
      current: m.key === current,
      finished: m.provenance.started,
      duration_s: m.provenance.duration_s,
      differs: Object.fromEntries(paths.map((p) => [p, maps[i]!.get(p) ?? '(unset)'])),
      metrics: numericOutputs(m),
    }));
  } finally {
    await store.close();
  }
}

export function renderHistory(node: string, variants: Variant[]): string {
  if (variants.length === 0) return `${node}: no cached result\n`;
  const paths = Object.keys(variants[0]!.differs);
  const metrics = [...new Set(variants.flatMap((v) => Object.keys(v.metrics)))];
  const rows = [['', 'key', 'started', 'took', ...paths, ...metrics]];
  for (const v of variants) {
    rows.push([v.current ? '*' : '', v.key.slice(0, 12), v.finished.slice(0, 19), `${v.duration_s.toFixed(1)} s`, ...paths.map((p) => v.differs[p]!), ...metrics.map((k) => (k in v.metrics ? String(Number(v.metrics[k]!.toPrecision(4))) : ''))]);
  }
  const hint = variants.some((v) => v.current) ? '* = what the pipeline resolves to now' : 'none of them is what the pipeline resolves to now';
  return `${node}: ${variants.length} cached variant(s); ${hint}\n${table(rows)}\n`;
}

export async function historyCommand(file: string, node: string, flags: { set: string[]; cache?: string; json?: boolean }, env: CliEnv, write: (s: string) => void): Promise<number> {
  const variants = await nodeHistory(file, node, flags.set, existingCacheDir(flags.cache), env);
  write(flags.json ? JSON.stringify(variants, null, 2) + '\n' : renderHistory(node, variants));
  return 0;
}
