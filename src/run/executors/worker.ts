// Entry of a persistent worker process (forked by the local executor): it runs the nodes it is
// sent, one at a time, and stays for the next. While a node runs, the process's stdout and
// stderr go to that node's log file; it talks to the parent over IPC.
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Store } from '../../store/store.js';
import { executeJob } from '../execute.js';
import type { Job, ParentMessage, WorkerMessage } from '../job.js';

const send = (msg: WorkerMessage) => {
  if (process.connected) process.send?.(msg);
};
const stamp = () => new Date().toISOString().slice(11, 19);

let store: Store | undefined;
let current: { abort: AbortController; logFd: number } | undefined;
let leaving = false;

function leave(): void {
  void (store ? store.close() : Promise.resolve()).finally(() => process.exit(0));
}

const realWrite = { out: process.stdout.write.bind(process.stdout), err: process.stderr.write.bind(process.stderr) };

/** Points this process's JS stdout/stderr at the node's log while it runs. */
function redirect(fd: number | undefined): void {
  for (const [stream, real] of [
    [process.stdout, realWrite.out],
    [process.stderr, realWrite.err],
  ] as const) {
    stream.write = (fd === undefined
      ? real
      : (chunk: string | Uint8Array, encodingOrCb?: BufferEncoding | ((err?: Error | null) => void), cb?: (err?: Error | null) => void) => {
          if (typeof chunk === "string") writeSync(fd, chunk);
          else writeSync(fd, chunk);
          const done = typeof encodingOrCb === 'function' ? encodingOrCb : cb;
          done?.(null);
          return true;
        }) as typeof stream.write;
  }
}

/** The node's log, opened for appending; its folder is made only when missing (a syscall saved per node). */
function openLog(file: string): number {
  try {
    return openSync(file, 'a');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    mkdirSync(dirname(file), { recursive: true });
    return openSync(file, 'a');
  }
}

async function runJob(job: Job): Promise<void> {
  const logFile = join(job.cacheDir, job.log);
  const logFd = openLog(logFile);
  const abort = new AbortController();
  current = { abort, logFd };
  redirect(logFd);
  send({ type: 'alive' });
  const alive = setInterval(() => send({ type: 'alive' }), 1000);
  let lastLogged = 0;
  let result: WorkerMessage;
  try {
    console.log(`[${stamp()}] ${job.node.id} key ${job.key} (worker pid ${process.pid})`);
    if (store?.dir !== job.cacheDir) {
      await store?.close();
      store = new Store(job.cacheDir);
    }
    // A reused worker must see what other processes committed since its last node.
    store.root.resetReadTxn();
    await executeJob(job, store, {
      signal: abort.signal,
      progress(text) {
        send({ type: 'progress', text });
        if (Date.now() - lastLogged > 2000) {
          lastLogged = Date.now();
          console.log(`[${stamp()}] ${text}`);
        }
      },
      log: (text) => console.log(`[${stamp()}] ${text}`),
    });
    console.log(`[${stamp()}] done`);
    result = { type: 'done', key: job.key, rss: process.memoryUsage().rss };
  } catch (err) {
    console.error(`[${stamp()}] failed: ${(err as Error).stack ?? err}`);
    result = { type: 'failed', error: (err as Error).message ?? String(err), rss: process.memoryUsage().rss };
  } finally {
    clearInterval(alive);
    redirect(undefined);
    closeSync(logFd);
    current = undefined;
  }
  send(result);
  if (leaving) leave();
}

process.on('message', (msg: ParentMessage) => {
  if (msg.type === 'abort') current?.abort.abort();
  else void runJob(msg.job);
});
process.on('SIGINT', () => current?.abort.abort());
process.on('SIGTERM', () => current?.abort.abort());
// The parent is gone or retired this worker: stop the node, if any, and leave.
process.on('disconnect', () => {
  leaving = true;
  if (current) current.abort.abort();
  else leave();
});
// A failure outside the awaited chain (an LMDB batch, a stream) still reaches the parent in
// words (the cache path and the cause), not as "worker exited with code 70".
const crash = (err: unknown) => {
  const e = err as Error | undefined;
  if (current) writeSync(current.logFd, `[${stamp()}] uncaught: ${e?.stack ?? err}\n`);
  const message: WorkerMessage = { type: 'failed', error: e?.message ?? String(err), rss: process.memoryUsage().rss };
  if (!process.send || !process.connected) process.exit(70);
  process.send(message, () => process.exit(70));
  setTimeout(() => process.exit(70), 1000).unref();
};
process.on('uncaughtException', crash);
process.on('unhandledRejection', crash);
