// Per-node sbatch options from the pipeline: a node's `resources:` (cpus, gpu, memory_gb) and
// the `slurm:` blocks (pipeline-level default, then the stage's). Pure: tested without SLURM.
import type { JSONObject, JSONValue, Resources } from '../../../contract.js';
import { shellWord } from '../../../util/shell.js';

/** A `slurm:` block as written in YAML (schema: src/config/schema.ts). */
export interface SlurmSettings {
  partition?: string;
  account?: string;
  qos?: string;
  /** Wall-clock limit: minutes, or SLURM's "[D-]HH:MM:SS" forms. */
  time?: string | number;
  /** GPU model for --gres=gpu:<type>:N on clusters that name them. */
  gpu_type?: string;
  /** More sbatch options, verbatim (e.g. --constraint=a100, --exclusive). */
  extra?: string[];
  /** Shell lines run on the compute node before `pipeline exec` (module load, conda activate). */
  setup?: string;
}

/** Pipeline-level only: where things live on the compute nodes and the shared file system. */
export interface SlurmPipelineSettings extends SlurmSettings {
  /** The compute node's local cache (default $MEDPIPE_EXEC_CACHE, else $TMPDIR/medpipe-cache-<uid>). */
  cache?: string;
  /** Directory for job logs, reachable from the submit host (default <cache dir>/slurm/logs). */
  logs?: string;
}

const STRING_KEYS = ['partition', 'account', 'qos', 'gpu_type', 'setup'] as const;

function asObject(v: JSONValue | undefined): JSONObject | undefined {
  return v && typeof v === 'object' && !Array.isArray(v) ? v : undefined;
}

/** Reads a validated `slurm:` block (the schema already checked the types). */
export function readSettings(block: JSONValue | undefined): SlurmPipelineSettings {
  const o = asObject(block);
  if (!o) return {};
  const out: SlurmPipelineSettings = {};
  for (const k of STRING_KEYS) if (typeof o[k] === 'string') out[k] = o[k];
  if (typeof o['time'] === 'string' || typeof o['time'] === 'number') out.time = o['time'];
  if (Array.isArray(o['extra'])) out.extra = o['extra'].map(String);
  if (typeof o['cache'] === 'string') out.cache = o['cache'];
  if (typeof o['logs'] === 'string') out.logs = o['logs'];
  return out;
}

/** The pipeline's default, then the stage's block: scalars override, `extra` and `setup` add up. */
export function settingsFor(raw: JSONObject, stage: string): SlurmPipelineSettings {
  const base = readSettings(raw['slurm']);
  const own = readSettings(asObject(asObject(raw['stages'])?.[stage])?.['slurm']);
  const merged: SlurmPipelineSettings = { ...base, ...own };
  const extra = [...(base.extra ?? []), ...(own.extra ?? [])];
  if (extra.length > 0) merged.extra = extra;
  const setup = [base.setup, own.setup].filter((s): s is string => Boolean(s?.trim())).join('\n');
  if (setup) merged.setup = setup;
  else delete merged.setup;
  // Where things live is one answer per pipeline, whatever a stage says.
  if (base.cache) merged.cache = base.cache;
  else delete merged.cache;
  if (base.logs) merged.logs = base.logs;
  else delete merged.logs;
  return merged;
}

/** SLURM's job name, which says which node: `medpipe:<pipeline>:<node>`. */
export function jobName(pipeline: string, node: string): string {
  return `medpipe:${pipeline}:${node}`;
}

export interface SbatchRequest {
  name: string;
  resources: Resources;
  settings: SlurmSettings;
  /** Job ids this one runs after (afterok): its parents that are themselves queued. */
  after: string[];
  /** Log file; `%j` becomes the job id. */
  output: string;
}

/**
 * The sbatch command line (the script goes on stdin). `--kill-on-invalid-dep=yes` makes SLURM
 * cancel a node whose upstream job failed even when nobody follows the jobs (`--detach`);
 * otherwise it would sit in the queue forever with reason DependencyNeverSatisfied.
 */
export function sbatchArgs(req: SbatchRequest): string[] {
  const { resources: r, settings: s } = req;
  const args = ['--parsable', `--job-name=${req.name}`, `--output=${req.output}`, '--open-mode=append'];
  args.push(`--cpus-per-task=${Math.max(1, Math.ceil(r.cpus ?? 1))}`);
  if ((r.gpu ?? 0) > 0) args.push(`--gres=gpu:${s.gpu_type ? `${s.gpu_type}:` : ''}${Math.ceil(r.gpu!)}`);
  // Whole MiB: SLURM's --mem takes integers, and 0 would mean "all of the node's memory".
  if ((r.memory_gb ?? 0) > 0) args.push(`--mem=${Math.ceil(r.memory_gb! * 1024)}M`);
  if (s.partition) args.push(`--partition=${s.partition}`);
  if (s.account) args.push(`--account=${s.account}`);
  if (s.qos) args.push(`--qos=${s.qos}`);
  if (s.time !== undefined) args.push(`--time=${s.time}`);
  if (req.after.length > 0) args.push(`--dependency=afterok:${req.after.join(':')}`, '--kill-on-invalid-dep=yes');
  args.push(...(s.extra ?? []));
  return args;
}

export interface ScriptParts {
  /**
   * The node binary and the medpipe launcher (bin/pipeline, not bin/pipeline.js: a fault in the
   * node-local cache index then ends in words in the job's log, as on a workstation), as the
   * compute node will find them. The launcher runs $MEDPIPE_NODE.
   */
  node: string;
  bin: string;
  /** The task JSON (one line), fed to `pipeline exec -` through a quoted here-document. */
  task: string;
  setup?: string;
  cache?: string;
  comment: string;
}

const TASK_END = 'MEDPIPE_TASK_END';

/**
 * The batch script. The task travels inside it (sbatch copies the script to the controller),
 * so no job file has to be on a shared disk: only medpipe itself and the remote cache do.
 */
export function batchScript(p: ScriptParts): string {
  if (p.task.includes('\n')) throw new Error('the task must be one line of JSON');
  const cache = p.cache ? shellWord(p.cache) : '"${MEDPIPE_EXEC_CACHE:-${TMPDIR:-/tmp}/medpipe-cache-$(id -u)}"';
  return [
    '#!/bin/bash',
    `# ${p.comment.replace(/\n/g, ' ')}`,
    '# Generated by `pipeline run --executor slurm`: runs one node with `pipeline exec`.',
    'set -eo pipefail',
    ...(p.setup ? [p.setup] : []),
    `MEDPIPE_NODE=${shellWord(p.node)} exec ${shellWord(p.bin)} exec - --cache ${cache} <<'${TASK_END}'`,
    p.task,
    TASK_END,
    '',
  ].join('\n');
}
