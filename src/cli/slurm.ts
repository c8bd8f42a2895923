// CLI glue for SLURM: the `pipeline exec` verb (compute node side) and the job rows that
// `pipeline status` shows (submit side).
import { readFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { openRemote } from '../remote/open.js';
import { RemoteCache } from '../remote/remote-cache.js';
import { CACHE_KEY_ENV } from '../remote/sign.js';
import { checkTrust } from '../remote/trust.js';
import { execTask } from '../run/batch/exec.js';
import { readLedger } from '../run/batch/ledger.js';
import { SlurmQueue, type Queue } from '../run/batch/slurm/queue.js';
import { parseTask } from '../run/batch/task.js';
import { holdingCache } from '../store/cache-lock.js';
import { Store } from '../store/store.js';

const stamp = () => new Date().toISOString().slice(11, 19);

/** The compute node's cache: node-local disk, reused by the jobs that land on the same node. */
export function execCacheDir(flag: string | undefined): string {
  return flag ?? process.env['MEDPIPE_EXEC_CACHE'] ?? join(tmpdir(), `medpipe-cache-${userInfo().uid}`);
}

/** `pipeline exec <task.json | ->`: 0 done (ran or found), 1 failed, 130 interrupted. */
export async function execCommand(source: string, flags: { cache?: string; remote?: string }): Promise<number> {
  const task = parseTask(source === '-' ? readFileSync(0, 'utf8') : readFileSync(source, 'utf8'));
  const teamKey = process.env[CACHE_KEY_ENV] || undefined;
  const backend = openRemote(flags.remote ?? task.remote);
  checkTrust(task.signed ? 'signed' : 'any', teamKey, backend.url, `${source} (submitted by a run with ${CACHE_KEY_ENV} set)`);
  const store = new Store(execCacheDir(flags.cache));
  const say = (text: string) => process.stdout.write(`[${stamp()}] ${text}\n`);
  const remote = new RemoteCache(backend, store, {
    ...(teamKey ? { teamKey } : {}),
    warn: (message) => say(`warning: ${message}`),
  });
  // scancel and a time limit send SIGTERM, then SIGKILL after KillWait: stop the stage cleanly.
  const abort = new AbortController();
  const stop = (sig: NodeJS.Signals) => {
    say(`${sig}: stopping ${task.target}`);
    abort.abort();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  const started = Date.now();
  say(`medpipe exec ${task.pipeline} ${task.target} (remote ${remote.url}, cache ${store.dir}${process.env['SLURM_JOB_ID'] ? `, SLURM job ${process.env['SLURM_JOB_ID']}` : ''})`);
  try {
    // Shared, as a run: gc on the node-local cache must not delete the inputs it pulled or the result before it is pushed.
    const result = await holdingCache(store, 'shared', `pipeline exec ${task.target}`, () => execTask(task, store, remote, { signal: abort.signal, log: say }), (m) => say(m.trimEnd()));
    const took = ((Date.now() - started) / 1000).toFixed(1);
    if (result.state === 'interrupted') {
      say(`interrupted after ${took} s`);
      return 130;
    }
    if (result.state === 'failed') {
      say(`failed: ${result.reason}`);
      return abort.signal.aborted ? 130 : 1;
    }
    say(result.state === 'ran' ? `done in ${took} s, pushed ${result.manifest.key.slice(0, 12)}` : `already on the remote (${result.manifest.key.slice(0, 12)}): nothing to do`);
    return 0;
  } catch (err) {
    // The stack first: the last lines of the log (what `run` shows) say what went wrong.
    if ((err as Error).stack) say((err as Error).stack!);
    say(`failed: ${(err as Error).message ?? String(err)}`);
    return abort.signal.aborted ? 130 : 1;
  } finally {
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
    await remote.close();
    await store.close();
  }
}

export interface JobRow {
  node: string;
  job: string;
  state: string;
  detail: string;
  log: string;
}

/** Jobs recorded for this pipeline under the cache dir, with what SLURM says of them now. */
export async function recordedJobs(cacheDir: string, pipeline: string, queue: Queue = new SlurmQueue()): Promise<JobRow[]> {
  const ledger = readLedger(cacheDir, 'slurm', pipeline);
  const entries = Object.entries(ledger);
  if (entries.length === 0) return [];
  const states = await queue.states(entries.map(([, e]) => e.job)).catch(() => undefined);
  return entries.map(([node, e]) => {
    const info = states?.get(e.job);
    const detail = info ? [info.reason, info.nodes && info.state === 'RUNNING' ? `on ${info.nodes}` : '', info.exitCode && info.exitCode !== '0:0' ? `exit ${info.exitCode}` : ''].filter(Boolean).join(', ') : '';
    return { node, job: e.job, state: info?.raw ?? (states ? 'gone from the queue' : 'unknown (squeue failed)'), detail, log: e.log };
  });
}

/** Ctrl-C with jobs queued: asks on a terminal; elsewhere leaves them and says so. */
export async function confirmCancel(jobs: string[]): Promise<boolean> {
  if (!process.stdin.isTTY || !process.stderr.isTTY) {
    process.stderr.write(`\n${jobs.length} SLURM job(s) left in the queue (${jobs.join(', ')}): \`pipeline run\` reattaches to them, \`scancel\` stops them\n`);
    return false;
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await new Promise<string>((resolve) => {
      rl.on('SIGINT', () => resolve('n'));
      void rl.question(`\ncancel the ${jobs.length} submitted SLURM job(s) (${jobs.join(', ')})? [y/N] `).then(resolve);
    });
    const yes = /^y(es)?$/i.test(answer.trim());
    if (!yes) process.stderr.write('left in the queue: `pipeline run` reattaches to them\n');
    return yes;
  } finally {
    rl.close();
  }
}
