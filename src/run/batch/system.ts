// What the batch driver needs of a batch system (SLURM, and PBS, LSF or Kubernetes Jobs the
// same way): submit a node's job behind its parents' jobs, ask for states, cancel. Adding one is
// one file implementing this, plus its settings schema.
import type { JSONObject } from '../../contract.js';
import type { NodeInstance } from '../../config/expand.js';

export type JobState = 'PENDING' | 'RUNNING' | 'COMPLETED' | 'FAILED' | 'CANCELLED' | 'UNKNOWN';

export interface JobInfo {
  id: string;
  /** The system's own word (TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, ...), kept for messages. */
  raw: string;
  state: JobState;
  reason?: string;
  nodes?: string;
  exitCode?: string;
}

export const isFinal = (s: JobState) => s === 'COMPLETED' || s === 'FAILED' || s === 'CANCELLED';

export interface SubmitRequest {
  pipeline: string;
  /** The pipeline file as written, for the system's own settings block (`slurm:`). */
  raw: JSONObject;
  node: NodeInstance;
  /** The task JSON that `pipeline exec -` reads on the compute node. */
  task: string;
  /** Jobs that must succeed first. */
  after: string[];
  /** From logTemplate. */
  log: string;
}

export interface BatchSystem {
  /** As users know it, in messages: "SLURM job 42". */
  readonly name: string;
  /** Folder under the cache dir with the ledger of submitted jobs. */
  readonly ledgerDir: string;
  /** Where a job's log goes, before its id is known (may hold the system's id placeholder). */
  logTemplate(args: { cacheDir: string; pipeline: string; raw: JSONObject; node: NodeInstance }): string;
  /** The log of a submitted job. */
  logOf(template: string, job: string): string;
  submit(req: SubmitRequest): Promise<string>;
  /** What the system says about these jobs; a job it has forgotten is absent from the map. */
  states(jobs: string[]): Promise<Map<string, JobInfo>>;
  cancel(jobs: string[]): Promise<void>;
  /** The command that stops a job, for messages. */
  stopHint(job: string): string;
}
