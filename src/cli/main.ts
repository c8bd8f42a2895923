// The CLI's wiring: verbs, their options and help. Each verb's code is imported when the verb
// runs, so `pipeline --help`, `--version` and a usage error load commander and little else
// (test/cli-startup.test.ts); only type imports and light modules stay static here.
import { Command, Option } from 'commander';
import type { DagFormat } from '../graph/render.js';
import { packageVersions } from '../run/versions.js';
import { withIndexHint } from '../store/errors.js';
import { ConfigError, ConfigErrors } from '../util/errors.js';
import { pointErrorsToHelp, wholeNumber } from './options.js';
import type { CompareFlags } from './compare.js';
import type { RemoveFlags } from './cache-rm.js';
import type { GcFlags } from './gc.js';
import type { PredictFlags } from './predict.js';
import type { ReportFlags } from './report.js';
import type { CliEnv } from './session.js';
import type { Common, RunFlags } from './run-command.js';
import type { ShowFlags } from './show.js';

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
    .action(async (file: string, targets: string[], flags: RunFlags) => setExit(await (await import('./run-command.js')).runCommand(file, targets, flags, env, 'run')));

  withSelection(withCommon(program.command('status <pipeline> [targets...]')))
    .description('per node: cached, or to run and why (never run, params changed, input changed, kind version bumped)')
    .option('--json', 'machine-readable output: one {node, state, why, key} per node')
    .option('-f, --force', 'show what `run --force` would recompute')
    .option('--force-downstream', 'show what `run --force-downstream` would recompute')
    .action(async (file: string, targets: string[], flags: RunFlags) => setExit(await (await import('./run-command.js')).runCommand(file, targets, flags, env, 'status')));

  withSelection(withCommon(program.command('dag <pipeline> [targets...]')))
    .description('print the graph, planned from the YAML alone: plugins are not imported (their kinds\' parameters and types are checked by run and status)')
    .addOption(new Option('-f, --format <format>', 'output format').choices(['text', 'dot', 'mermaid']).default('text'))
    .option('--stages', 'one vertex per stage instead of per node')
    .action(async (file: string, targets: string[], flags: RunFlags & { format: DagFormat; stages?: boolean }) => {
      const [{ openPipelineStatically }, { selectNodes }, { renderDag }] = await Promise.all([import('./session.js'), import('../graph/select.js'), import('../graph/render.js')]);
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
    .action(async (task: string, flags: { cache?: string; remote?: string }) => setExit(await (await import('./slurm.js')).execCommand(task, flags)));

  withCommon(program.command('show <pipeline> <node>'))
    .description("a node's cached result: a summary of its outputs and provenance (--full for the whole manifest, -o NAME for one output)")
    .option('-o, --output <name>', 'print one output instead: a json value, or a file\'s bytes (e.g. -o html > report.html)')
    .option('--full', 'the whole manifest as JSON (outputs, provenance, key material)')
    .option('--json', 'the same as --full')
    .action(async (file: string, node: string, flags: ShowFlags) => setExit(await (await import('./show.js')).showCommand(file, node, flags, env)));

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
    .action(async (file: string, node: string, flags: { set: string[]; cache?: string; json?: boolean }) => setExit(await (await import('./history.js')).historyCommand(file, node, flags, env, (t) => process.stdout.write(t))));

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
    .action(async () => {
      process.stdout.write((await import('./models.js')).modelsTable());
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
    .action(async (images: string[], flags: PredictFlags) => setExit(await (await import('./predict.js')).predictCommand(images, flags, env, (s) => process.stdout.write(s))));

  const cache = program.command('cache').description('inspect and maintain the local cache, share it through a remote');
  withCommon(cache.command('push [pipeline] [targets...]'))
    .description("upload local results to the remote cache: the pipeline's (or the targets') cached nodes, or with no pipeline every local result")
    .option('--repair', "also download and hash the remote's entries for these results, replacing any that fail verification")
    .action(async (file: string | undefined, targets: string[], flags: Common & { repair?: boolean }) => setExit(await (await import('./cache-remote.js')).cachePush(file, targets, flags, env)));
  withCommon(cache.command('pull <pipeline> [targets...]'))
    .description('download, verified, what the remote cache has of the pipeline (or the targets and their ancestors)')
    .action(async (file: string, targets: string[], flags: Common) => setExit(await (await import('./cache-remote.js')).cachePull(file, targets, flags, env)));
  cache
    .command('rm <pipeline> <targets...>')
    .description("drop the cached results of the targets (node ids, stage names, globs; not their ancestors) so they rerun; the variant the pipeline resolves to now, or every variant")
    .option('--cache <dir>', 'local cache directory')
    .option('--set <path=value>', 'override a value, to name another variant (repeatable)', collect, [])
    .option('--all-variants', 'every cached variant of those nodes, whatever their parameters')
    .option('-n, --dry-run', 'list what would be removed')
    .action(async (file: string, targets: string[], flags: RemoveFlags) => setExit(await (await import('./cache-rm.js')).cacheRemove(file, targets, flags, env, (t) => process.stdout.write(t))));
  cache
    .command('ls')
    .option('--cache <dir>', 'local cache directory')
    .description('list cached results')
    .option('--json', 'machine-readable output')
    .action(async (flags: { cache?: string; json?: boolean }) => (await import('./cache-local.js')).cacheList(flags));
  cache
    .command('verify')
    .option('--cache <dir>', 'local cache directory')
    .option('--keep', 'report broken entries without dropping them')
    .description('rehash every artifact; broken entries are dropped so their nodes rerun')
    .action(async (flags: { cache?: string; keep?: boolean }) => setExit(await (await import('./cache-local.js')).cacheVerify(flags)));
  cache
    .command('repair')
    .option('--cache <dir>', 'local cache directory')
    .description('rebuild a damaged index from the results that still verify (no run may use the cache meanwhile)')
    .action(async (flags: { cache?: string }) => (await import('./cache-local.js')).cacheRepair(flags));
  cache
    .command('gc <pipelines...>')
    .option('--cache <dir>', 'local cache directory')
    .option('-n, --dry-run', 'list what would be deleted, by node and variant')
    .option('-y, --yes', 'delete without asking (needed when not on a terminal)')
    .option('--keep-variants <n>', 'older variants kept per node of the given pipelines, besides the current one', wholeNumber(0), 2)
    .description('delete everything the given pipelines do not reach (their current results, the newest older variants of their nodes, and resumable checkpoints stay); lists what goes and asks first')
    .action(async (files: string[], flags: GcFlags) => setExit(await (await import('./gc.js')).gcCommand(files, flags, env, (t) => process.stdout.write(t))));
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
