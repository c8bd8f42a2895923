import { readFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { ancestorsOf, descendantsOf } from '../graph/dag.js';
import { cellNodes, selectNodes, targetNodes } from '../graph/select.js';
import { renderDag, type DagFormat } from '../graph/render.js';
import { LocalExecutor } from '../run/executors/local.js';
import { LineReporter } from './reporters/line.js';
import { stageDurations } from './reporters/progress.js';
import type { Reporter } from '../run/reporter.js';
import { planNodes } from '../run/plan.js';
import { packageVersions } from '../run/versions.js';
import { runNodes, type NodeOutcome } from '../run/scheduler.js';
import { SlurmExecutor } from '../run/batch/slurm/system.js';
import { describeReason } from '../run/reason.js';
import { cachePull, cachePush, remoteFor } from './cache-remote.js';
import { confirmCancel, execCommand, recordedJobs } from './slurm.js';
import { listManifests, verifyStore } from '../store/maintenance.js';
import { holdingCache } from '../store/cache-lock.js';
import { withIndexHint } from '../store/errors.js';
import { formatRepair, repairIndex } from '../store/repair.js';
import { assertIndexReadable } from '../store/index-probe.js';
import { defaultCacheDir, Store } from '../store/store.js';
import { ConfigError, ConfigErrors } from '../util/errors.js';
import { modelsTable } from './models.js';
import { codeTriggerOf, existingCacheDir, pointErrorsToHelp, wholeNumber } from './options.js';
import type { CompareFlags } from './compare.js';
import { historyCommand } from './history.js';
import { cacheRemove, type RemoveFlags } from './cache-rm.js';
import { manifestSummary } from './show.js';
import { selectedTable } from './variants.js';
import { toMarkdown } from '../report/render.js';
import { gcCommand, type GcFlags } from './gc.js';
import { median, valueAt } from '../report/table.js';
import { summarize, table } from './output.js';
import { predictCommand, type PredictFlags } from './predict.js';
import type { ReportFlags } from './report.js';
import { capacityOf, openPipeline, openPipelineStatically, type CliEnv, type Opened } from './session.js';
import { shellCommand } from '../util/shell.js';

interface Common {
  cache?: string;
  set: string[];
  remote?: string;
  remoteTrust?: string;
}
interface RunFlags extends Common {
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

const collect = (value: string, previous: string[]) => [...previous, value];

function withCommon(cmd: Command): Command {
  return cmd
    .option('--cache <dir>', 'local cache directory (default: $MEDPIPE_CACHE or ./cache)')
    .option('--set <path=value>', 'override a value, e.g. finetune.with.epochs=2 (repeatable)', collect, [])
    .option('--remote <url>', 'shared cache: file:///dir, http(s)://host/prefix, s3://bucket/prefix, or none (default: $MEDPIPE_REMOTE, then the pipeline\'s remote:)')
    .option('--remote-trust <mode>', "signed: use the remote only with a team key ($MEDPIPE_CACHE_KEY), trusting only what is signed; any: also unsigned when no key is set (default: the pipeline's remote_trust:, else any)");
}

function withSelection(cmd: Command): Command {
  return cmd
    .option('--rerun-triggers <triggers>', 'what makes a cached result stale besides params, inputs and version: "code" also reruns built-in kinds whose code changed (plugins always are)')
    .option('--only <axis=value>', 'only nodes with this axis value, and their ancestors (repeatable)', collect, [])
    .option('--cell <labels>', 'one table cell by its row/column labels, e.g. "DeiT-S/ImageNet/APTOS2019"');
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

async function runCommand(file: string, targets: string[], flags: RunFlags, env: CliEnv, mode: 'run' | 'status'): Promise<number> {
  const opened = await openPipeline(file, flags.set, env);
  const chosen = selectNodes(opened.pipeline, opened.dag, { targets, only: flags.only, cell: flags.cell });
  const force = forcedNodes(opened, chosen, targets, flags);
  // What depends on a forced node runs too, with whatever else it needs.
  const selected = flags.forceDownstream ? new Set([...chosen, ...ancestorsOf(opened.dag.graph, force)]) : chosen;
  const store = new Store(mode === 'status' ? existingCacheDir(flags.cache) : defaultCacheDir(flags.cache));
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

export function buildProgram(env: CliEnv, setExit: (code: number) => void): Command {
  const program = new Command('pipeline')
    .description('medpipe: declarative ML pipelines with content-hashed caching')
    .version(`medpipe ${packageVersions()['medpipe']} (node ${process.versions.node})`, '-V, --version', 'print the medpipe version')
    .exitOverride();

  withSelection(withCommon(program.command('run <pipeline> [targets...]')))
    .description('run the pipeline (or the targets: node ids, stage names, globs) and their ancestors; cached nodes are skipped')
    .option('-j, --jobs <n>', 'nodes run in parallel (default: number of cores)', wholeNumber(1))
    .option('--resources <k=v,...>', 'capacity of this machine: cpus, gpu, memory_gb')
    .option('-n, --dry-run', 'say what would run, and why, without running it')
    .option('--plain', 'plain line output even on a terminal')
    .addOption(new Option('--executor <name>', 'where nodes run: this machine, or SLURM jobs (needs a remote cache)').choices(['local', 'slurm']).default('local'))
    .option('--detach', 'with --executor slurm: submit every job and exit; `status` shows them, a later `run` reattaches')
    .option('-f, --force', 'recompute the targets (every selected node when none is given) even when cached; the new result replaces the old once it succeeded')
    .option('--force-downstream', 'like --force, and also everything that depends on the targets')
    .action(async (file: string, targets: string[], flags: RunFlags) => setExit(await runCommand(file, targets, flags, env, 'run')));

  withSelection(withCommon(program.command('status <pipeline> [targets...]')))
    .description('per node: cached, or to run and why (never run, params changed, input changed, kind version bumped)')
    .option('--json', 'machine-readable output: one {node, state, why, key} per node')
    .option('-f, --force', 'show what `run --force` would recompute')
    .option('--force-downstream', 'show what `run --force-downstream` would recompute')
    .action(async (file: string, targets: string[], flags: RunFlags) => setExit(await runCommand(file, targets, flags, env, 'status')));

  withSelection(withCommon(program.command('dag <pipeline> [targets...]')))
    .description('print the graph, planned from the YAML alone: plugins are not imported (their kinds\' parameters and types are checked by run and status)')
    .addOption(new Option('-f, --format <format>', 'output format').choices(['text', 'dot', 'mermaid']).default('text'))
    .option('--stages', 'one vertex per stage instead of per node')
    .action(async (file: string, targets: string[], flags: RunFlags & { format: DagFormat; stages?: boolean }) => {
      // Static: looking at the graph runs no plugin code.
      const opened = await openPipelineStatically(file, flags.set, env);
      const selected = selectNodes(opened.pipeline, opened.dag, { targets, only: flags.only, cell: flags.cell });
      process.stdout.write(renderDag(opened.pipeline, opened.dag, selected, flags.format, flags.stages) + '\n');
    });

  program
    .command('exec <task>')
    .description('run one node of a SLURM job (what `run --executor slurm` submits; the task JSON from a file or - for stdin): pulls its inputs from the remote cache, runs it, pushes the result')
    .option('--cache <dir>', "this machine's local cache (default: $MEDPIPE_EXEC_CACHE, else $TMPDIR/medpipe-cache-<uid>)")
    .option('--remote <url>', "override the task's remote cache")
    .action(async (task: string, flags: { cache?: string; remote?: string }) => setExit(await execCommand(task, flags)));

  withCommon(program.command('show <pipeline> <node>'))
    .description("a node's cached result: a summary of its outputs and provenance (--full for the whole manifest, -o NAME for one output)")
    .option('-o, --output <name>', 'print one output instead: a json value, or a file\'s bytes (e.g. -o html > report.html)')
    .option('--full', 'the whole manifest as JSON (outputs, provenance, key material)')
    .option('--json', 'the same as --full')
    .action(async (file: string, node: string, flags: Common & { output?: string; full?: boolean; json?: boolean }) => {
      const opened = await openPipeline(file, flags.set, env);
      if (!opened.pipeline.nodes.has(node)) throw new ConfigError(`${file} has no node "${node}" (try \`${shellCommand('pipeline', 'dag', file)}\`)`);
      const store = new Store(existingCacheDir(flags.cache));
      try {
        const outcomes = await planNodes({ ...opened, store }, selectNodes(opened.pipeline, opened.dag, { targets: [node] }));
        const o = outcomes.get(node)!;
        if (o.manifest && flags.output !== undefined) {
          const artifact = o.manifest.outputs[flags.output];
          if (!artifact) throw new ConfigError(`${node} has no output "${flags.output}" (outputs: ${Object.keys(o.manifest.outputs).join(', ')})`, { file: `--output ${flags.output}`, line: 0, col: 0 });
          if (artifact.type === 'json') process.stdout.write(JSON.stringify(artifact.value, null, 2) + '\n');
          else if (artifact.type === 'file') process.stdout.write(await readFile(await store.blobs.verified(artifact.digest, `${node} output ${flags.output}`)));
          else if (artifact.type === 'dir') process.stdout.write(`${await store.trees.materialize(artifact.digest, `${node} output ${flags.output}`)}\n`);
          else process.stdout.write(JSON.stringify({ type: 'records', count: artifact.count, meta: artifact.meta }, null, 2) + '\n');
        } else if (o.manifest) {
          process.stdout.write(flags.full || flags.json ? JSON.stringify(o.manifest, null, 2) + '\n' : manifestSummary(o.manifest, store.dir));
        } else {
          const last = store.lastKnown(opened.pipeline.spec.name, node);
          const lastManifest = last && store.manifest(last.key);
          process.stdout.write(`${node} is not cached: ${o.reason ? describeReason(o.reason) : o.state}\n`);
          if (lastManifest) process.stdout.write(`last result (key ${last.key.slice(0, 12)}):\n${flags.full || flags.json ? JSON.stringify(lastManifest, null, 2) + '\n' : manifestSummary(lastManifest, store.dir)}`);
          setExit(1);
        }
      } finally {
        await store.close();
      }
    });

  program
    .command('compare <pipeline> [other]')
    .description('two variants side by side: parameters that differ, then each table cell (median ± std, per-seed values) with its delta. A is <pipeline> with --set, B is [other] (default: the same file) with --against')
    .option('--cache <dir>', 'local cache directory')
    .option('--set <path=value>', 'override for variant A (repeatable)', collect, [])
    .option('--against <path=value>', 'override for variant B (repeatable)', collect, [])
    .option('--digits <n>', 'decimals shown', wholeNumber(0), 3)
    .option('--html <file>', 'also write an offline page with the comparison and both variants\' learning curves overlaid')
    .option('--commit <rev>', 'A is the cached results as of this commit of the pipeline\'s git repository (instead of --set)')
    .option('--against-commit <rev>', 'B is the cached results as of this commit (instead of --against)')
    .option('--json', 'machine-readable output')
    // Loaded on use, like report: its HTML curves pull in d3.
    .action(async (file: string, other: string | undefined, flags: CompareFlags) => setExit(await (await import('./compare.js')).compareCommand(file, other, flags, env, (t) => process.stdout.write(t))));

  program
    .command('history <pipeline> <node>')
    .description("the cached variants of a node: the parameters and inputs that differ between them, their metrics and dates; * marks what the pipeline resolves to now")
    .option('--cache <dir>', 'local cache directory')
    .option('--set <path=value>', 'override a value, e.g. finetune.with.epochs=2 (repeatable)', collect, [])
    .option('--json', 'machine-readable output')
    .action(async (file: string, node: string, flags: { set: string[]; cache?: string; json?: boolean }) => setExit(await historyCommand(file, node, flags, env, (t) => process.stdout.write(t))));

  program
    .command('report <pipeline>')
    .description('one self-contained HTML report from the cache: table with per-seed values, Figure 1, learning curves, confusion matrices, provenance')
    .option('--cache <dir>', 'local cache directory (default: $MEDPIPE_CACHE or ./cache)')
    .option('--set <path=value>', 'override a value, as given to `run` (repeatable)', collect, [])
    .option('-o, --output <file>', 'where to write the HTML', 'report.html')
    // Loaded on use: the report's imports (sharp, d3) stay out of every other verb's start-up.
    .action(async (file: string, flags: ReportFlags) => setExit(await (await import('./report.js')).reportCommand(file, flags, env, (s) => process.stdout.write(s))));

  program
    .command('models')
    .description('the model architectures medpipe knows, with parameter counts')
    .action(() => {
      process.stdout.write(modelsTable());
    });

  program
    .command('engines')
    .description('every compute backend (CUDA, WebGPU, tfjs-node, wasm, cpu): available on this machine or not, and why; which one auto picks')
    .action(async () => {
      const { probeEngines, enginesTable } = await import('../engine/engines.js');
      process.stdout.write(enginesTable(await probeEngines()));
    });

  program
    .command('predict <images...>')
    .description('class probabilities for new images, prepared as the model was trained (CSV or JSON on stdout)')
    .requiredOption('-w, --weights <file|pipeline.yaml:node>', 'a finetune/pretrain checkpoint file, or the node whose weights to use')
    .addOption(new Option('-f, --format <format>', 'output format').choices(['csv', 'json']).default('csv'))
    .option('--cache <dir>', 'local cache directory (for pipeline.yaml:node)')
    .option('--set <path=value>', 'override a value of the pipeline (for pipeline.yaml:node)', collect, [])
    .action(async (images: string[], flags: PredictFlags) => setExit(await predictCommand(images, flags, env, (s) => process.stdout.write(s))));

  const cache = program.command('cache').description('inspect and maintain the local cache, share it through a remote');
  withCommon(cache.command('push [pipeline] [targets...]'))
    .description("upload local results to the remote cache: the pipeline's (or the targets') cached nodes, or with no pipeline every local result")
    .option('--repair', "also download and hash the remote's entries for these results, replacing any that fail verification")
    .action(async (file: string | undefined, targets: string[], flags: Common & { repair?: boolean }) => setExit(await cachePush(file, targets, flags, env)));
  withCommon(cache.command('pull <pipeline> [targets...]'))
    .description('download, verified, what the remote cache has of the pipeline (or the targets and their ancestors)')
    .action(async (file: string, targets: string[], flags: Common) => setExit(await cachePull(file, targets, flags, env)));
  cache
    .command('rm <pipeline> <targets...>')
    .description("drop the cached results of the targets (node ids, stage names, globs; not their ancestors) so they rerun; the variant the pipeline resolves to now, or every variant")
    .option('--cache <dir>', 'local cache directory')
    .option('--set <path=value>', 'override a value, to name another variant (repeatable)', collect, [])
    .option('--all-variants', 'every cached variant of those nodes, whatever their parameters')
    .option('-n, --dry-run', 'list what would be removed')
    .action(async (file: string, targets: string[], flags: RemoveFlags) => setExit(await cacheRemove(file, targets, flags, env, (t) => process.stdout.write(t))));
  cache
    .command('ls')
    .option('--cache <dir>', 'local cache directory')
    .description('list cached results')
    .option('--json', 'machine-readable output')
    .action(async (flags: { cache?: string; json?: boolean }) => {
      const store = new Store(existingCacheDir(flags.cache));
      if (flags.json) {
        const list = listManifests(store).map((m) => ({ key: m.key, pipeline: m.pipeline, node: m.node, stage: m.stage, kind: m.kind, started: m.provenance.started, duration_s: m.provenance.duration_s }));
        process.stdout.write(JSON.stringify(list, null, 2) + '\n');
        await store.close();
        return;
      }
      const rows = [['key', 'pipeline', 'node', 'finished', 'took']];
      for (const m of listManifests(store)) rows.push([m.key.slice(0, 12), m.pipeline, m.node, m.provenance.started.slice(0, 19), `${m.provenance.duration_s.toFixed(1)} s`]);
      process.stdout.write(table(rows) + `\n${rows.length - 1} result(s) in ${store.dir}\n`);
      await store.close();
    });
  cache
    .command('verify')
    .option('--cache <dir>', 'local cache directory')
    .option('--keep', 'report broken entries without dropping them')
    .description('rehash every artifact; broken entries are dropped so their nodes rerun')
    .action(async (flags: { cache?: string; keep?: boolean }) => {
      const dir = existingCacheDir(flags.cache);
      // Read through in a child first: a damaged page can fault instead of failing, and verify must say "damaged", never crash.
      await assertIndexReadable(dir);
      const store = new Store(dir);
      const { checked, problems } = await holdingCache(store, 'shared', 'pipeline cache verify', () => verifyStore(store, { drop: !flags.keep }), (m) => process.stderr.write(m));
      for (const p of problems) process.stdout.write(`✖ ${p.node} (${p.key.slice(0, 12)}) output ${p.output}: ${p.problem}${flags.keep ? '' : ' — dropped'}\n`);
      process.stdout.write(`${checked} result(s) checked, ${problems.length} problem(s)\n`);
      await store.close();
      setExit(problems.length > 0 ? 1 : 0);
    });
  cache
    .command('repair')
    .option('--cache <dir>', 'local cache directory')
    .description('rebuild a damaged index from the results that still verify (no run may use the cache meanwhile)')
    .action(async (flags: { cache?: string }) => {
      process.stdout.write(formatRepair(await repairIndex(defaultCacheDir(flags.cache))));
    });
  cache
    .command('gc <pipelines...>')
    .option('--cache <dir>', 'local cache directory')
    .option('-n, --dry-run', 'list what would be deleted, by node and variant')
    .option('-y, --yes', 'delete without asking (needed when not on a terminal)')
    .option('--keep-variants <n>', 'older variants kept per node of the given pipelines, besides the current one', wholeNumber(0), 2)
    .description('delete everything the given pipelines do not reach (their current results, the newest older variants of their nodes, and resumable checkpoints stay); lists what goes and asks first')
    .action(async (files: string[], flags: GcFlags) => setExit(await gcCommand(files, flags, env, (t) => process.stdout.write(t))));
  pointErrorsToHelp(program);
  return program;
}

/** Runs the CLI; returns the process exit code (0 ok, 1 failed nodes, 2 bad input, 130 interrupted). */
export async function main(argv: string[], env: CliEnv): Promise<number> {
  let code = 0;
  const program = buildProgram(env, (c) => (code = c));
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    const e = err as { code?: string; exitCode?: number };
    if (typeof e.code === 'string' && e.code.startsWith('commander.')) return e.code === 'commander.helpDisplayed' || e.code === 'commander.version' ? 0 : 2;
    if (err instanceof ConfigError || err instanceof ConfigErrors) {
      process.stderr.write(`error: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`error: ${withIndexHint((err as Error).message)}\n`);
    return 1;
  }
}
