// Local execution on a pool of persistent worker processes (like Bazel's workers): a worker
// runs one node at a time and is reused for the next, so Node start-up and module loading
// (tfjs, the native kernels) are paid once per worker instead of once per node. CPU-bound
// stages still run in parallel, each worker with its own heap, and a crash or kill -9 of one
// takes nothing else with it.
import { gpuEnv } from '../../engine/gpus.js';
import { fork, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecResult, Executor } from '../executor.js';
import type { Job, ParentMessage, WorkerMessage } from '../job.js';
import { isFaultSignal } from '../../store/index-probe.js';
import { shellCommand } from '../../util/shell.js';

const WORKER = join(dirname(fileURLToPath(import.meta.url)), 'worker.js');

export interface LocalExecutorOptions {
  /** A worker whose resident memory grew past this after a node is replaced (default $MEDPIPE_WORKER_MAX_RSS_MB, else 3072). */
  maxRssMb?: number;
  /** A worker silent this long while running a node (stopped, hung) is killed and the node fails (default $MEDPIPE_STALL_S, else 600 s). */
  stallMs?: number;
  /** Grace period between asking a worker to stop (Ctrl-C) and killing it. */
  abortGraceMs?: number;
}

const envNumber = (name: string): number | undefined => {
  const v = Number(process.env[name]);
  return process.env[name] !== undefined && Number.isFinite(v) && v > 0 ? v : undefined;
};

interface Worker {
  child: ChildProcess;
  /** The GPU slots its environment names (MEDPIPE_GPUS): a worker serves only nodes holding the same ones. */
  gpus: string;
  /** Exit code or signal, once it is gone. */
  exited?: string;
  onExit?(how: string): void;
  onMessage?(msg: WorkerMessage): void;
}

export class LocalExecutor implements Executor {
  readonly name = 'local';
  private readonly idle: Worker[] = [];
  private readonly all = new Set<Worker>();
  private readonly maxRss: number;
  private readonly stallMs: number;
  private readonly graceMs: number;
  /** Workers started, for the bench and the tests. */
  started = 0;

  constructor(opts: LocalExecutorOptions = {}) {
    this.maxRss = (opts.maxRssMb ?? envNumber('MEDPIPE_WORKER_MAX_RSS_MB') ?? 3072) * 2 ** 20;
    this.stallMs = opts.stallMs ?? (envNumber('MEDPIPE_STALL_S') ?? 600) * 1000;
    this.graceMs = opts.abortGraceMs ?? 10_000;
  }

  private spawn(cacheDir: string, gpus: readonly number[]): Worker {
    // What the worker prints outside a node's JS streams (the runtime's own messages) goes here.
    const raw = join(cacheDir, 'logs', 'workers.log');
    mkdirSync(dirname(raw), { recursive: true });
    const fd = openSync(raw, 'a');
    // GPU placement is fixed at start-up (tfjs-node-gpu reads CUDA_VISIBLE_DEVICES once).
    const env = { ...process.env, ...gpuEnv(gpus, process.env) };
    const child = fork(WORKER, [], { stdio: ['ignore', fd, fd, 'ipc'], execArgv: [...process.execArgv, '--enable-source-maps'], env });
    closeSync(fd);
    this.started++;
    const w: Worker = { child, gpus: gpus.join(',') };
    this.all.add(w);
    child.on('message', (msg: WorkerMessage) => w.onMessage?.(msg));
    child.on('error', () => {});
    child.on('exit', (code, sig) => {
      w.exited = sig ?? `code ${code}`;
      this.all.delete(w);
      const i = this.idle.indexOf(w);
      if (i >= 0) this.idle.splice(i, 1);
      w.onExit?.(w.exited);
    });
    return w;
  }

  /** An idle worker is not a reason for this process to stay alive. */
  private park(w: Worker): void {
    w.onMessage = undefined;
    w.onExit = undefined;
    w.child.unref();
    (w.child.channel as { unref?(): void } | undefined)?.unref?.();
    this.idle.push(w);
  }

  private take(cacheDir: string, fresh: boolean, gpus: readonly number[]): Worker {
    let i = -1;
    if (!fresh) for (let k = this.idle.length - 1; k >= 0 && i < 0; k--) if (this.idle[k]!.gpus === gpus.join(',')) i = k;
    const w = i >= 0 ? this.idle.splice(i, 1)[0]! : this.spawn(cacheDir, gpus);
    w.child.ref();
    (w.child.channel as { ref?(): void } | undefined)?.ref?.();
    return w;
  }

  private retire(w: Worker): void {
    if (w.exited !== undefined) return;
    if (w.child.connected) w.child.disconnect();
    setTimeout(() => w.child.kill('SIGKILL'), 5000).unref();
  }

  run(job: Job, onProgress: (text: string) => void, signal: AbortSignal): Promise<ExecResult> {
    const w = this.take(job.cacheDir, Boolean(job.isolate), job.gpus ?? []);
    return new Promise((resolve) => {
      let error: string | undefined;
      let settled = false;
      let lastHeard = Date.now();
      // A worker still starting (Node, the store, the stage's modules) is given a minute at least.
      let heard = false;
      const finish = (result: ExecResult, reusable: boolean) => {
        if (settled) return;
        settled = true;
        clearInterval(watchdog);
        signal.removeEventListener('abort', onAbort);
        if (reusable && !job.isolate && !signal.aborted && w.exited === undefined) this.park(w);
        else {
          w.onMessage = undefined;
          w.onExit = undefined;
          this.retire(w);
        }
        resolve(result);
      };
      const onAbort = () => {
        const msg: ParentMessage = { type: 'abort' };
        if (w.child.connected) w.child.send(msg);
        // A stage that ignores its abort signal is stopped after a grace period.
        setTimeout(() => w.child.kill('SIGKILL'), this.graceMs).unref();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      // A SIGSTOPped or hung worker sends nothing; its node must not be waited for forever.
      const watchdog = setInterval(() => {
        const silent = Date.now() - lastHeard;
        if (silent <= (heard ? this.stallMs : Math.max(this.stallMs, 60_000))) return;
        w.child.kill('SIGKILL');
        finish(
          {
            ok: false,
            interrupted: false,
            error: `worker pid ${w.child.pid} made no progress for ${(silent / 1000).toFixed(0)} s (stopped or hung): killed. Allow longer with MEDPIPE_STALL_S=<seconds>`,
          },
          false,
        );
      }, Math.min(1000, this.stallMs / 4));
      w.onMessage = (msg) => {
        lastHeard = Date.now();
        heard = true;
        if (msg.type === 'progress') onProgress(msg.text);
        else if (msg.type === 'done') finish({ ok: true }, msg.rss <= this.maxRss);
        else if (msg.type === 'failed') {
          error = msg.error;
          finish({ ok: false, interrupted: signal.aborted, error }, msg.rss <= this.maxRss);
        }
      };
      // A worker killed by INT or TERM got the terminal's Ctrl-C (or a job runner's stop) through
      // the process group, maybe before its handlers were set and before this process's own
      // handler aborted the run: it was interrupted, not failed.
      w.onExit = (how) => finish({ ok: false, interrupted: signal.aborted || how === 'SIGINT' || how === 'SIGTERM', error: error ?? `worker exited with ${how}${faultHint(how, job.cacheDir)}` }, false);
      if (w.exited !== undefined) {
        w.onExit(w.exited);
        return;
      }
      const msg: ParentMessage = { type: 'job', job };
      w.child.send(msg);
    });
  }

  async close(): Promise<void> {
    const gone = [...this.all].map((w) => new Promise<void>((r) => (w.exited !== undefined ? r() : w.child.once('exit', () => r()))));
    for (const w of [...this.all]) {
      // Parked workers are unref'd; waiting for their exit must keep this process up.
      w.child.ref();
      this.retire(w);
    }
    this.idle.length = 0;
    await Promise.all(gone);
  }
}

/**
 * A worker killed by a fault in native code: a damaged page of the memory-mapped cache index is
 * one cause, a native kernel (the engine's, a stage's addon) or V8 aborting is another, and only a
 * read-through of the index tells which. Both are said, and how to tell.
 */
function faultHint(how: string, cacheDir: string): string {
  if (!isFaultSignal(how)) return '';
  const index = join(cacheDir, 'index.lmdb');
  const verify = shellCommand('pipeline', 'cache', 'verify', '--cache', cacheDir);
  const repair = shellCommand('pipeline', 'cache', 'repair', '--cache', cacheDir);
  const native = how === 'SIGABRT' ? 'native code aborting (a kernel, a stage\'s addon, V8 out of memory)' : 'a fault in native code (a kernel, a stage\'s addon)';
  return ` (a crash: a damaged page of the cache index ${index} or ${native} can cause it; \`${verify}\` tells which: if the index is damaged, \`${repair}\` rebuilds it, and if it reads whole the worker's last words are in ${join(cacheDir, 'logs', 'workers.log')})`;
}
