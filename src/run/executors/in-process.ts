import type { Store } from '../../store/store.js';
import { executeJob } from '../execute.js';
import type { ExecResult, Executor } from '../executor.js';
import type { Job } from '../job.js';

/**
 * Runs the job in this process: what a batch job's compute node does (it is one process for
 * one node already), and what the lifecycle tests use.
 */
export class InProcessExecutor implements Executor {
  readonly name = 'in-process';

  constructor(
    private readonly store: Store,
    private readonly log: (text: string) => void,
    private readonly progressEveryMs = 5000,
  ) {}

  async run(job: Job, onProgress: (text: string) => void, signal: AbortSignal): Promise<ExecResult> {
    let lastProgress = 0;
    try {
      await executeJob(job, this.store, {
        signal,
        log: this.log,
        progress: (text) => {
          onProgress(text);
          if (Date.now() - lastProgress < this.progressEveryMs) return;
          lastProgress = Date.now();
          this.log(text);
        },
      });
      // executeJob throws 'interrupted' when the stage saw the Ctrl-C; a result it returned
      // without seeing it is committed, and pushed and counted like any other.
      return { ok: true };
    } catch (err) {
      // The stack in the log: its last lines are what the submit side shows.
      if ((err as Error).stack) this.log((err as Error).stack!);
      return { ok: false, interrupted: signal.aborted, error: (err as Error).message ?? String(err) };
    }
  }
}
