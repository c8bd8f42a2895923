// Entry of the process that runs one node (forked by the local executor). Its stdout and
// stderr are the node's log file; it talks to the parent over IPC.
import { Store } from '../store/store.js';
import { executeJob } from './execute.js';
import type { ParentMessage, WorkerMessage } from './job.js';

const abort = new AbortController();
const send = (msg: WorkerMessage) => process.send?.(msg);
const sendThenExit = (msg: WorkerMessage, code: number) => {
  if (process.send && process.connected) process.send(msg, () => process.exit(code));
  else process.exit(code);
};
const stamp = () => new Date().toISOString().slice(11, 19);
let lastLogged = 0;

async function main(msg: ParentMessage): Promise<void> {
  if (msg.type !== 'job') return;
  const { job } = msg;
  console.log(`[${stamp()}] ${job.node.id} key ${job.key}`);
  const store = new Store(job.cacheDir);
  try {
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
    await store.close();
    sendThenExit({ type: 'done', key: job.key }, 0);
  } catch (err) {
    console.error(`[${stamp()}] failed: ${(err as Error).stack ?? err}`);
    sendThenExit({ type: 'failed', error: (err as Error).message ?? String(err) }, abort.signal.aborted ? 130 : 1);
  }
}

process.on('message', (msg: ParentMessage) => {
  if (msg.type === 'abort') abort.abort();
  else void main(msg);
});
// A failure outside the awaited chain (an LMDB batch, a stream) still reaches the parent in words.
const crash = (err: unknown) => {
  console.error(`[${stamp()}] failed: ${(err as Error)?.stack ?? err}`);
  sendThenExit({ type: 'failed', error: (err as Error)?.message ?? String(err) }, 1);
};
process.on('unhandledRejection', crash);
process.on('uncaughtException', crash);
process.on('SIGINT', () => abort.abort());
process.on('SIGTERM', () => abort.abort());
process.on('disconnect', () => abort.abort());
