// Why a node ran, would run, was found, failed or was stopped: data that commands match on
// (`cache pull` counts remote hits, `--detach` counts queued jobs), turned into words only
// where a person reads them.

export type Reason =
  /** Would run / ran: no earlier result under any key. */
  | { why: 'never-run'; resumes?: true }
  /** Would run / ran: what differs from the last key this node had (keys.explainChange). `resumes`: checkpoints of an interrupted run of this key are kept. */
  | { why: 'changed'; changes: string[]; resumes?: true }
  /** Would run: a parent will run first, so this node's key is not known yet. */
  | { why: 'upstream-will-run'; upstream: string }
  /** Would run (batch): a parent is neither cached nor finished. */
  | { why: 'upstream-not-done'; upstream: string }
  /** Skipped: a parent failed, was skipped or interrupted. `detail` names what stopped this node. */
  | { why: 'upstream-stopped'; upstream: string; detail?: string }
  /** Cached: the remote had it. */
  | { why: 'on-remote'; url: string }
  /** Cached: another runner computed it while this one waited on its lock or lease. */
  | { why: 'computed-elsewhere'; via: 'lock' | 'lease' }
  /** Would run: another runner holds the remote lease (a detached batch run does not wait). */
  | { why: 'leased-elsewhere'; host: string; pid: number }
  /** Would run (batch, detached): submitted and queued. */
  | { why: 'queued'; system: string; job: string }
  /** Ran (batch): the job that computed it. */
  | { why: 'batch-job'; system: string; job: string }
  /** Cached (batch): the job found the result already on the remote when it started. */
  | { why: 'found-by-job'; system: string; job: string }
  /** Failed (batch): the job ended without a result. */
  | { why: 'batch-failed'; system: string; job: string; state: string; detail?: string }
  /** Interrupted (batch): the job was cancelled, or left queued for a later run to reattach. */
  | { why: 'batch-interrupted'; system: string; job: string; cancelled: boolean; stopHint?: string }
  /** Would run / ran: `run --force` named it (or an upstream of it, with --force-downstream). */
  | { why: 'forced' }
  /** Cached, but the code of its (version-keyed) kind changed since the result was made. */
  | { why: 'code-changed-unkeyed'; kind: string }
  /** Failed: a check, the stage, the worker or the remote said what went wrong. */
  | { why: 'error'; message: string };

const RESUMES = ' (an interrupted run left checkpoints: it resumes from them if they verify)';

export const error = (message: string): Reason => ({ why: 'error', message });

export function describeReason(r: Reason): string {
  switch (r.why) {
    case 'never-run':
      return `never run${r.resumes ? RESUMES : ''}`;
    case 'changed':
      return `${r.changes.join('; ')}${r.resumes ? RESUMES : ''}`;
    case 'upstream-will-run':
      return `upstream ${r.upstream} will run`;
    case 'upstream-not-done':
      return `upstream ${r.upstream} is not done`;
    case 'upstream-stopped':
      return r.detail ? `upstream ${r.upstream} ${r.detail}` : `upstream ${r.upstream} did not finish`;
    case 'on-remote':
      return `on remote ${r.url}`;
    case 'computed-elsewhere':
      return r.via === 'lease' ? 'computed by another run (remote)' : 'computed by another run';
    case 'leased-elsewhere':
      return `computed by ${r.host} pid ${r.pid} (remote lease): run again once it is done`;
    case 'queued':
      return `queued as ${r.system} job ${r.job}`;
    case 'batch-job':
      return `${r.system} job ${r.job}`;
    case 'found-by-job':
      return 'on the remote when its job started';
    case 'batch-failed':
      return `${r.system} job ${r.job} ${r.state}${r.detail ? ` (${r.detail})` : ''}`;
    case 'batch-interrupted':
      return r.cancelled
        ? `${r.system} job ${r.job} cancelled`
        : `${r.system} job ${r.job} left in the queue (a later \`pipeline run\` reattaches${r.stopHint ? `; ${r.stopHint} stops it` : ''})`;
    case 'forced':
      return 'forced (--force)';
    case 'code-changed-unkeyed':
      return `code of kind ${r.kind} changed since this result (kept: built-in kinds are keyed by version; \`--rerun-triggers code\` reruns it)`;
    case 'error':
      return r.message;
  }
}
