// Which batch jobs this cache submitted, per pipeline: lets `pipeline status` show queued and
// running jobs and lets a later `pipeline run` reattach to them instead of submitting again.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface LedgerEntry {
  job: string;
  /** Digest of the task the job runs: a job is reattached for the very same task... */
  task: string;
  /** ...or for one that differs only in keys learnt since (parents that finished meanwhile): the digest without keys, */
  shape?: string;
  /** and the keys the job was given, which must still hold. */
  known?: Record<string, string>;
  key?: string;
  log: string;
  submitted: string;
}

export type Ledger = Record<string, LedgerEntry>;

export function ledgerPath(cacheDir: string, system: string, pipeline: string): string {
  return join(cacheDir, system, `${pipeline}.jobs.json`);
}

export function readLedger(cacheDir: string, system: string, pipeline: string): Ledger {
  try {
    const parsed = JSON.parse(readFileSync(ledgerPath(cacheDir, system, pipeline), 'utf8')) as { jobs?: Ledger };
    return parsed.jobs ?? {};
  } catch {
    return {};
  }
}

/** Written whole through a rename: a reader never sees half a file. */
export function writeLedger(cacheDir: string, system: string, pipeline: string, jobs: Ledger): void {
  const path = ledgerPath(cacheDir, system, pipeline);
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify({ jobs }, null, 1));
  renameSync(tmp, path);
}
