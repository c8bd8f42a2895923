import { selectNodes, targetNodes } from '../graph/select.js';
import { planNodes } from '../run/plan.js';
import { holdingCache } from '../store/cache-lock.js';
import { listManifests } from '../store/maintenance.js';
import { Store } from '../store/store.js';
import { existingCacheDir } from './options.js';
import { openPipeline, type CliEnv } from './session.js';

export interface RemoveFlags {
  set: string[];
  cache?: string;
  allVariants?: boolean;
  dryRun?: boolean;
}

/**
 * Drops the cached results of the targets (not their ancestors): the variant the pipeline
 * resolves to now, or with --all-variants every cached variant of those nodes. Their bytes stay
 * until `cache gc`, so a mistaken rm costs a recomputation at worst, never a shared blob.
 */
export async function cacheRemove(file: string, targets: string[], flags: RemoveFlags, env: CliEnv, write: (s: string) => void): Promise<number> {
  const opened = await openPipeline(file, flags.set, env);
  const ids = targetNodes(opened.pipeline, opened.dag, targets);
  const store = new Store(existingCacheDir(flags.cache));
  try {
    const outcomes = await planNodes({ ...opened, store }, selectNodes(opened.pipeline, opened.dag, { targets: ids }));
    const wanted = new Set(ids);
    const drop: { node: string; key: string }[] = [];
    if (flags.allVariants) {
      for (const m of listManifests(store)) if (m.pipeline === opened.pipeline.spec.name && wanted.has(m.node)) drop.push({ node: m.node, key: m.key });
    } else {
      for (const id of ids) {
        const o = outcomes.get(id);
        if (o?.state === 'cached' && o.key) drop.push({ node: id, key: o.key });
      }
    }
    // Held shared, as a run holds it: a repair rebuilding the index meanwhile would re-index a
    // manifest read before this removed it, and serve the removed result again.
    const remove = async (): Promise<void> => {
      for (const d of drop) {
        if (!flags.dryRun) await store.invalidate(d.key);
        write(`${flags.dryRun ? 'would remove' : 'removed'} ${d.node} (${d.key.slice(0, 12)})\n`);
      }
    };
    await (flags.dryRun || drop.length === 0 ? remove() : holdingCache(store, 'shared', 'pipeline cache rm', remove));
    const uncached = flags.allVariants ? 0 : ids.length - drop.length;
    write(`${drop.length} result(s) ${flags.dryRun ? 'would be ' : ''}removed${uncached ? `; ${uncached} target(s) had no cached result for these parameters` : ''}; their files go at the next \`cache gc\`\n`);
    return 0;
  } finally {
    await store.close();
  }
}
