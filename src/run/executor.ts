// Where a prepared node runs: the one interface every executor implements (a leaf).
import type { Job } from './job.js';

export type ExecResult = { ok: true } | { ok: false; error: string; interrupted: boolean };

/** Runs one prepared Job somewhere that reaches the cache, and says whether it published. */
export interface Executor {
  readonly name: string;
  run(job: Job, onProgress: (text: string) => void, signal: AbortSignal): Promise<ExecResult>;
  /** Stops what the executor keeps between jobs (worker processes). */
  close?(): Promise<void>;
}
