import { createInterface } from 'node:readline/promises';
import { planNodes } from '../run/plan.js';
import { collectGarbage, listManifests, type GcReport } from '../store/maintenance.js';
import { holdingCache } from '../store/cache-lock.js';
import { Store } from '../store/store.js';
import { ConfigError } from '../util/errors.js';
import { existingCacheDir } from './options.js';
import { table } from './output.js';
import { openPipeline, type CliEnv } from './session.js';

export interface GcFlags {
  cache?: string;
  dryRun?: boolean;
  yes?: boolean;
  keepVariants: number;
}

/** What gc keeps: every key the pipelines resolve to now, and the newest older variants of each of their nodes. */
async function keptKeys(store: Store, files: string[], keepVariants: number, env: CliEnv): Promise<{ keep: Set<string>; defined: Set<string> }> {
  const keep = new Set<string>();
  const defined = new Set<string>();
  const byNode = new Map<string, { key: string; started: string }[]>();
  for (const m of listManifests(store)) {
    const id = `${m.pipeline}\u0000${m.node}`;
    byNode.set(id, [...(byNode.get(id) ?? []), { key: m.key, started: m.provenance.started }]);
  }
  for (const file of files) {
    const opened = await openPipeline(file, [], env);
    const outcomes = await planNodes({ ...opened, store }, new Set(opened.dag.order));
    for (const [id, o] of outcomes) {
      defined.add(`${opened.pipeline.spec.name}\u0000${id}`);
      if (o.key) keep.add(o.key);
      const older = (byNode.get(`${opened.pipeline.spec.name}\u0000${id}`) ?? []).filter((v) => v.key !== o.key).sort((a, b) => b.started.localeCompare(a.started));
      for (const v of older.slice(0, keepVariants)) keep.add(v.key);
    }
  }
  return { keep, defined };
}

function listing(report: GcReport, defined: Set<string>): string {
  const rows = [['pipeline', 'node', 'key', '']];
  for (const d of report.dropped) rows.push([d.pipeline, d.node, d.key.slice(0, 12), defined.has(`${d.pipeline}\u0000${d.node}`) ? 'older variant' : 'not in the given pipelines']);
  return table(rows);
}

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

/**
 * `cache gc`: lists what would go by node and variant, keeps the newest variants of every node
 * the pipelines define (so reverting a --set stays a hit), and never deletes a result without
 * a yes: asked on a terminal, `--yes` otherwise.
 */
export async function gcCommand(files: string[], flags: GcFlags, env: CliEnv, write: (s: string) => void): Promise<number> {
  const store = new Store(existingCacheDir(flags.cache));
  try {
    const { keep, defined } = await keptKeys(store, files, flags.keepVariants, env);
    const plan = await collectGarbage(store, keep, { dryRun: true });
    if (plan.dropped.length > 0) write(`${listing(plan, defined)}\n`);
    const sizes = (r: GcReport) => `${r.manifests} result(s), ${r.blobs} blob(s) (${(r.bytes / 2 ** 20).toFixed(1)} MiB), ${r.recordSets} record set(s), ${r.checkpoints} checkpoint dir(s)`;
    if (flags.dryRun) {
      write(`would delete ${sizes(plan)}\n`);
      return 0;
    }
    if (plan.dropped.length > 0 && !flags.yes) {
      const question = `delete these ${plan.dropped.length} result(s)? [y/N] `;
      if (!process.stdin.isTTY) throw new ConfigError(`would delete the ${plan.dropped.length} result(s) above: pass --yes to delete them (or -n to only list)`, { file: 'cache gc', line: 0, col: 0 });
      if (!(await confirm(question))) {
        write('nothing deleted\n');
        return 1;
      }
    }
    // Exclusive: a run holds the cache shared, and its running nodes' blobs are in no manifest yet.
    const done = await holdingCache(store, 'exclusive', 'pipeline cache gc', () => collectGarbage(store, keep, { dryRun: false, onlyDrop: new Set(plan.dropped.map((d) => d.key)) }));
    write(`deleted ${sizes(done)}\n`);
    return 0;
  } finally {
    await store.close();
  }
}
