// `pipeline run` and `pipeline status`: plan the selected nodes, run them (here or on SLURM) or
// say why they would run, and print the summary. Loaded on use by main.ts, like every verb's code,
// so that `pipeline --help` and a mistyped option load commander and little else.
import { LocalExecutor } from '../run/executors/local.js';
import { LineReporter } from './reporters/line.js';
import { stageDurations } from './reporters/progress.js';
import type { Reporter } from '../run/reporter.js';
import { runNodes, type NodeOutcome } from '../run/scheduler.js';
import { SlurmExecutor } from '../run/batch/slurm/system.js';
import { ancestorsOf, descendantsOf } from '../graph/dag.js';
import { cellNodes, selectNodes, targetNodes } from '../graph/select.js';
import { remoteFor } from './cache-remote.js';
import { confirmCancel, recordedJobs } from './slurm.js';
import { holdingCache } from '../store/cache-lock.js';
import { defaultCacheDir, Store } from '../store/store.js';
import { ConfigError } from '../util/errors.js';
import { codeTriggerOf, existingCacheDir } from './options.js';
import { selectedTable } from './variants.js';
import { toMarkdown } from '../report/render.js';
import { median, valueAt } from '../report/table.js';
import { summarize, table } from './output.js';
import { capacityOf, openPipeline, type CliEnv, type Opened } from './session.js';

export interface Common {
  cache?: string;
  set: string[];
  remote?: string;
  remoteTrust?: string;
}
export interface RunFlags extends Common {
  only: string[];
  cell?: string;
  jobs?: number;
  resources?: string;
  dryRun?: boolean;
  plain?: boolean;
  executor?: 'local' | 'slurm';
  detach?: boolean;
  json?: boolean;
  rerunTriggers?: string;
  force?: boolean;
  forceDownstream?: boolean;
}

/** `--force`: the targets (every selected node without targets); `--force-downstream`: and what depends on them. */
function forcedNodes(opened: Opened, selected: Set<string>, targets: string[], flags: RunFlags): Set<string> {
  if (!flags.force && !flags.forceDownstream) return new Set();
  const named = targets.length > 0 ? targetNodes(opened.pipeline, opened.dag, targets) : [...selected];
  const forced = new Set(named);
  if (flags.forceDownstream) for (const id of named) for (const d of descendantsOf(opened.dag.graph, id)) forced.add(d);
  return forced;
}

/** Values of one table cell (one per `over` axis value), read from the table stage's json output. */
function cellValues(opened: Opened, cell: string, outcomes: Map<string, NodeOutcome>): string {
  const t = opened.pipeline.spec.table!;
  const [output, ...field] = t.value.split('.');
  const rows: string[][] = [[t.over, t.value]];
  const values: number[] = [];
  for (const id of cellNodes(opened.pipeline, cell)) {
    const o = outcomes.get(id);
    const artifact = o?.manifest?.outputs[output!];
    const v = artifact?.type === 'json' ? valueAt(artifact.value, field) : undefined;
    if (typeof v === 'number') values.push(v);
    rows.push([String(opened.pipeline.nodes.get(id)!.axes[t.over]), typeof v === 'number' ? v.toFixed(4) : `(${o?.state ?? 'not run'})`]);
  }
  const m = median(values);
  return `${cell}\n${table(rows)}\nmedian ${m === null ? 'n/a' : m.toFixed(4)} over ${values.length} ${t.over} value(s)`;
}

export async function runCommand(file: string, targets: string[], flags: RunFlags, env: CliEnv, mode: 'run' | 'status'): Promise<number> {
  const opened = await openPipeline(file, flags.set, env);
  const chosen = selectNodes(opened.pipeline, opened.dag, { targets, only: flags.only, cell: flags.cell });
  const force = forcedNodes(opened, chosen, targets, flags);
  // What depends on a forced node runs too, with whatever else it needs.
  const selected = flags.forceDownstream ? new Set([...chosen, ...ancestorsOf(opened.dag.graph, force)]) : chosen;
  // A dry run, like status, only reads: a mistyped --cache must not become a new, empty cache.
  const store = new Store(mode === 'status' || flags.dryRun ? existingCacheDir(flags.cache) : defaultCacheDir(flags.cache));
  let remote: ReturnType<typeof remoteFor>;
  try {
    remote = remoteFor(flags, opened, store);
  } catch (err) {
    await store.close();
    throw err;
  }
  const slurm = mode === 'run' && flags.executor === 'slurm';
  if (flags.detach && !slurm) throw new ConfigError('--detach needs --executor slurm', { file: '--detach', line: 0, col: 0 });
  if (slurm && !remote) {
    await store.close();
    throw new ConfigError('--executor slurm needs a remote cache every compute node can reach: pass --remote URL, set $MEDPIPE_REMOTE, or add `remote:` to the pipeline', { file: '--executor', line: 0, col: 0 });
  }
  if (force.size > 0 && slurm) {
    await store.close();
    throw new ConfigError('--force runs on this machine only: it cannot be combined with --executor slurm', { file: '--force', line: 0, col: 0 });
  }
  const abort = new AbortController();
  let interrupts = 0;
  let firstAt = 0;
  const onSigint = () => {
    // A terminal's Ctrl-C comes twice under bin/pipeline: to the process group, and passed on by
    // the launcher, which must pass on an INT sent to it alone. Within a second it is one.
    if (interrupts > 0 && Date.now() - firstAt < 1000) return;
    interrupts++;
    if (interrupts === 1) {
      firstAt = Date.now();
      process.stderr.write(slurm ? '\nstopping: nothing more is submitted\n' : '\nstopping: finished nodes are kept (Ctrl-C again to kill running nodes)\n');
      abort.abort();
    } else process.exit(130);
  };
  process.on('SIGINT', onSigint);
  const dryRun = mode === 'status' || Boolean(flags.dryRun);
  const interactive = process.stdout.isTTY && !process.env['CI'] && !flags.plain && !dryRun;
  const statusRows: string[][] = [['node', 'state', 'why']];
  // A pass over every cached manifest, made only once a view first shows an ETA (never in a no-op run).
  const view = () => ({ expected: () => stageDurations(store, opened.pipeline.spec.name), jobs: capacityOf(opened.pipeline.spec.resources, flags.resources, flags.jobs).jobs });
  const reporter: Reporter =
    mode === 'status'
      ? {
          start() {},
          update(id, state, detail) {
            const shown: Partial<Record<typeof state, string>> = { cached: 'cached', 'would-run': 'to run', failed: 'error', skipped: 'blocked' };
            if (shown[state]) statusRows.push([id, shown[state]!, detail ?? '']);
          },
          progress() {},
          async finish() {},
        }
      : interactive
        ? new (await import('./reporters/listr.js')).ListrReporter(view())
        : new LineReporter(undefined, undefined, view());
  const started = Date.now();
  const executor = slurm ? new SlurmExecutor({ detach: Boolean(flags.detach), confirmCancel }) : new LocalExecutor();
  try {
    const run = () =>
      runNodes({ ...opened, store, codeTrigger: codeTriggerOf(flags.rerunTriggers) }, selected, {
        capacity: capacityOf(opened.pipeline.spec.resources, flags.resources, flags.jobs),
        dryRun,
        signal: abort.signal,
        executor,
        reporter,
        ...(remote ? { remote } : {}),
        ...(force.size > 0 ? { force } : {}),
      });
    // A run holds the cache shared, so `cache gc` cannot delete what its running nodes write.
    const outcomes = dryRun ? await run() : await holdingCache(store, 'shared', `pipeline run ${file}`, run, (m) => process.stderr.write(m));
    if (mode === 'status') {
      const jobs = await recordedJobs(store.dir, opened.pipeline.spec.name);
      const byNode = new Map(jobs.map((j) => [j.node, j]));
      for (const row of statusRows.slice(1)) {
        const j = byNode.get(row[0]!);
        if (j && row[1] === 'to run' && /^(PENDING|RUNNING|CONFIGURING|COMPLETING)/.test(j.state)) row[1] = `${j.state === 'PENDING' ? 'queued' : 'running'} (SLURM ${j.job})`;
      }
      if (flags.json) {
        process.stdout.write(JSON.stringify({ nodes: statusRows.slice(1).map(([node, state, why]) => ({ node, state, why, key: outcomes.get(node!)?.key ?? null })), slurm: jobs }, null, 2) + '\n');
        return [...outcomes.values()].some((o) => o.state === 'failed') ? 1 : 0;
      }
      process.stdout.write(table(statusRows) + '\n');
      if (jobs.length > 0) {
        const rows = [['node', 'SLURM job', 'state', 'detail', 'log'], ...jobs.map((j) => [j.node, j.job, j.state, j.detail, j.log])];
        process.stdout.write(`\nSLURM jobs submitted from this cache:\n${table(rows)}\n`);
      }
      const count = (state: NodeOutcome['state']) => [...outcomes.values()].filter((o) => o.state === state).length;
      const errors = count('failed');
      const blocked = count('skipped');
      process.stdout.write(`\n${count('cached')} cached, ${count('would-run')} to run${errors ? `, ${errors} with errors` : ''}${blocked ? `, ${blocked} blocked by them` : ''}\n`);
      return errors > 0 ? 1 : 0;
    }
    if (flags.detach) {
      const queued = [...outcomes.values()].filter((o) => o.state === 'would-run' && o.reason?.why === 'queued').length;
      process.stdout.write(`${summarize(outcomes, store.dir, (Date.now() - started) / 1000)}\n${queued} node(s) queued on SLURM: \`pipeline status\` shows them, \`pipeline run --executor slurm\` follows them again\n`);
      const states = [...outcomes.values()].map((o) => o.state);
      return states.includes('failed') ? 1 : 0;
    }
    process.stdout.write(summarize(outcomes, store.dir, (Date.now() - started) / 1000) + '\n');
    // Reports of the nodes that end this run (nothing selected depends on them), ran or cached.
    for (const [id, o] of outcomes) {
      const report = o.manifest?.report;
      if (report && !opened.dag.graph.outNeighbors(id).some((d) => selected.has(d))) process.stdout.write(`\n${id}:\n${report}`);
    }
    if (flags.cell && !dryRun) process.stdout.write('\n' + cellValues(opened, flags.cell, outcomes) + '\n');
    // The report node gathers every cell, so an --only run leaves it out: its cells are shown here.
    const partial = flags.only.length > 0 && !dryRun ? selectedTable(opened, outcomes, selected) : undefined;
    if (partial) process.stdout.write(`\ntable of the selected cells (--only ${flags.only.join(' --only ')}; the report needs every cell: run without --only for it):\n${toMarkdown(partial)}`);
    const states = [...outcomes.values()].map((o) => o.state);
    if (states.includes('interrupted') || states.includes('not-started')) return 130;
    return states.includes('failed') || states.includes('skipped') ? 1 : 0;
  } finally {
    process.off('SIGINT', onSigint);
    if (!(executor instanceof SlurmExecutor)) await executor.close();
    await remote?.close();
    await store.close();
  }
}
