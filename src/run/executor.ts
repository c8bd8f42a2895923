import { fork } from 'node:child_process';
import { mkdirSync, openSync, closeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gpuEnv } from '../engine/gpus.js';
import type { Job, ParentMessage, WorkerMessage } from './job.js';
import type { NodeOutcome, RunContext, RunOptions } from './scheduler.js';

export type ExecResult = { ok: true } | { ok: false; error: string; interrupted: boolean };

/** Where nodes run, one Job at a time once its inputs are done: `local` forks a worker per node. */
export interface Executor {
  run(job: Job, onProgress: (text: string) => void, signal: AbortSignal): Promise<ExecResult>;
}

/**
 * An executor that takes the whole selection at once: a batch system (SLURM) queues every node
 * up front, chained by dependencies, so it cannot wait for parents the way `runNodes` does (a
 * node's key needs its parents' output digests, which exist only after they ran). Dry runs
 * (`status`, `show`, `cache pull`) never reach it: planning is the same for every executor.
 */
export interface GraphExecutor {
  readonly name: string;
  runGraph(rc: RunContext, selected: Set<string>, options: RunOptions): Promise<Map<string, NodeOutcome>>;
}

export function isGraphExecutor(e: Executor | GraphExecutor): e is GraphExecutor {
  return 'runGraph' in e;
}

const WORKER = join(dirname(fileURLToPath(import.meta.url)), 'worker.js');

/**
 * One process per node: CPU-bound stages run in parallel on all cores, each with its own
 * (wasm) heap, and a crash or kill -9 of one node takes nothing else with it.
 */
export class LocalExecutor implements Executor {
  run(job: Job, onProgress: (text: string) => void, signal: AbortSignal): Promise<ExecResult> {
    const logFile = join(job.cacheDir, job.log);
    mkdirSync(dirname(logFile), { recursive: true });
    const fd = openSync(logFile, 'a');
    return new Promise((resolve) => {
      const env = { ...process.env, ...gpuEnv(job.gpus ?? [], process.env) };
      const child = fork(WORKER, [], { stdio: ['ignore', fd, fd, 'ipc'], execArgv: [...process.execArgv, '--enable-source-maps'], env });
      closeSync(fd);
      let error: string | undefined;
      let done = false;
      const onAbort = () => {
        const msg: ParentMessage = { type: 'abort' };
        if (child.connected) child.send(msg);
        // A stage that ignores its abort signal is stopped after a grace period.
        setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      child.on('message', (msg: WorkerMessage) => {
        if (msg.type === 'progress') onProgress(msg.text);
        else if (msg.type === 'done') done = true;
        else if (msg.type === 'failed') error = msg.error;
      });
      child.on('error', (err) => (error ??= err.message));
      child.on('exit', (code, sig) => {
        signal.removeEventListener('abort', onAbort);
        if (done && code === 0) resolve({ ok: true });
        else resolve({ ok: false, interrupted: signal.aborted, error: error ?? `worker exited with ${sig ?? `code ${code}`}` });
      });
      const msg: ParentMessage = { type: 'job', job };
      child.send(msg);
    });
  }
}
