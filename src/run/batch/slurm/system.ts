// SLURM as a BatchSystem: sbatch with afterok chains, squeue/sacct for states, scancel.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { JSONObject } from '../../../contract.js';
import type { NodeInstance } from '../../../config/expand.js';
import type { BatchSystem, JobInfo, SubmitRequest } from '../system.js';
import { BatchExecutor, type BatchExecutorOptions } from '../driver.js';
import { SlurmQueue, type Queue } from './queue.js';
import { batchScript, jobName, sbatchArgs, settingsFor } from './settings.js';

// dist/src/run/batch/slurm/system.js -> the package root. The launcher, not pipeline.js: a job
// that faults reading its cache index then says so in its log instead of dying without a word.
const BIN = fileURLToPath(new URL('../../../../../bin/pipeline', import.meta.url));

const safeName = (id: string) => id.replace(/[^A-Za-z0-9_.=,-]+/g, '_').slice(0, 150);

export class SlurmSystem implements BatchSystem {
  readonly name = 'SLURM';
  readonly ledgerDir = 'slurm';

  constructor(private readonly queue: Queue = new SlurmQueue()) {}

  logTemplate(args: { cacheDir: string; pipeline: string; raw: JSONObject; node: NodeInstance }): string {
    const logs = settingsFor(args.raw, args.node.stage).logs ?? join(args.cacheDir, 'slurm', 'logs');
    return join(logs, args.pipeline, `${safeName(args.node.id)}.%j.log`);
  }

  logOf(template: string, job: string): string {
    return template.replace('%j', job);
  }

  submit(req: SubmitRequest): Promise<string> {
    const settings = settingsFor(req.raw, req.node.stage);
    const script = batchScript({
      node: process.execPath,
      bin: BIN,
      task: req.task,
      ...(settings.setup ? { setup: settings.setup } : {}),
      ...(settings.cache ? { cache: settings.cache } : {}),
      comment: `medpipe ${req.pipeline} node ${req.node.id}`,
    });
    const args = sbatchArgs({ name: jobName(req.pipeline, req.node.id), resources: req.node.resources, settings, after: req.after, output: req.log });
    return this.queue.submit(args, script);
  }

  states(jobs: string[]): Promise<Map<string, JobInfo>> {
    return this.queue.states(jobs);
  }

  cancel(jobs: string[]): Promise<void> {
    return this.queue.cancel(jobs);
  }

  stopHint(job: string): string {
    return `scancel ${job}`;
  }
}

export interface SlurmExecutorOptions extends BatchExecutorOptions {
  /** The SLURM tools (default: sbatch, squeue, sacct, scancel from $PATH); tests substitute them. */
  queue?: Queue;
}

/** `pipeline run --executor slurm`. */
export class SlurmExecutor extends BatchExecutor {
  constructor(opts: SlurmExecutorOptions = {}) {
    super(new SlurmSystem(opts.queue), opts);
  }
}
