// `pipeline cache ls`, `cache verify` and `cache repair`: the verbs that look after the local
// cache itself (the remote's are in cache-remote.ts). Loaded on use by main.ts.
import { holdingCache } from '../store/cache-lock.js';
import { assertIndexReadable } from '../store/index-probe.js';
import { listManifests, verifyStore } from '../store/maintenance.js';
import { formatRepair, repairIndex } from '../store/repair.js';
import { Store } from '../store/store.js';
import { existingCacheDir } from './options.js';
import { table } from './output.js';

export async function cacheList(flags: { cache?: string; json?: boolean }): Promise<void> {
  const store = new Store(existingCacheDir(flags.cache));
  try {
    if (flags.json) {
      const list = listManifests(store).map((m) => ({ key: m.key, pipeline: m.pipeline, node: m.node, stage: m.stage, kind: m.kind, started: m.provenance.started, duration_s: m.provenance.duration_s }));
      process.stdout.write(JSON.stringify(list, null, 2) + '\n');
      return;
    }
    const rows = [['key', 'pipeline', 'node', 'finished', 'took']];
    for (const m of listManifests(store)) rows.push([m.key.slice(0, 12), m.pipeline, m.node, m.provenance.started.slice(0, 19), `${m.provenance.duration_s.toFixed(1)} s`]);
    process.stdout.write(table(rows) + `\n${rows.length - 1} result(s) in ${store.dir}\n`);
  } finally {
    await store.close();
  }
}

/** 0, or 1 when a result failed its check. */
export async function cacheVerify(flags: { cache?: string; keep?: boolean }): Promise<number> {
  const dir = existingCacheDir(flags.cache);
  // Read through in a child first: a damaged page can fault instead of failing, and verify must say "damaged", never crash.
  await assertIndexReadable(dir);
  const store = new Store(dir);
  const { checked, problems } = await holdingCache(store, 'shared', 'pipeline cache verify', () => verifyStore(store, { drop: !flags.keep }), (m) => process.stderr.write(m));
  for (const p of problems) process.stdout.write(`✖ ${p.node} (${p.key.slice(0, 12)}) output ${p.output}: ${p.problem}${flags.keep ? '' : ' — dropped'}\n`);
  process.stdout.write(`${checked} result(s) checked, ${problems.length} problem(s)\n`);
  await store.close();
  return problems.length > 0 ? 1 : 0;
}

export async function cacheRepair(flags: { cache?: string }): Promise<void> {
  // A mistyped --cache is not a healthy cache: repairing it would make an empty one there.
  process.stdout.write(formatRepair(await repairIndex(existingCacheDir(flags.cache))));
}
