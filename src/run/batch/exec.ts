// `pipeline exec`: what a batch job runs on the compute node. It talks to nothing but the
// remote cache: inputs are pulled from it, the result is pushed to it. The node itself goes
// through the same lifecycle as a local run's, executed in this process.
import { hostname } from 'node:os';
import { isAbsolute, relative } from 'node:path';
import type { RemoteCache } from '../../remote/remote-cache.js';
import { loadKinds, type Registry } from '../../registry.js';
import type { Manifest } from '../../store/artifacts.js';
import type { Store } from '../../store/store.js';
import { artifactsPresent, resolveKey } from '../decide.js';
import { InProcessExecutor } from '../executors/in-process.js';
import { runNodeLifecycle } from '../lifecycle.js';
import { describeReason } from '../reason.js';
import type { KeyContext } from '../types.js';
import type { BatchTask } from './task.js';

export interface ExecHooks {
  signal: AbortSignal;
  /** A line for the job's log (stdout, which the batch system writes to the log file). */
  log(text: string): void;
}

export type TaskResult = { state: 'ran' | 'cached'; manifest: Manifest } | { state: 'interrupted' } | { state: 'failed'; reason: string };

const short = (key: string) => key.slice(0, 12);

export async function execTask(task: BatchTask, store: Store, remote: RemoteCache, hooks: ExecHooks): Promise<TaskResult> {
  const registry: Registry = new Map();
  for (const module of new Set(task.nodes.map((n) => n.kindModule))) {
    await loadKinds([module], registry, { builtin: task.nodes.some((n) => n.kindModule === module && n.builtin) });
  }
  const kc: KeyContext = { pipeline: { spec: { baseDir: task.baseDir } }, registry, store, ...(task.codeTrigger ? { codeTrigger: task.codeTrigger } : {}) };
  const target = task.nodes.find((n) => n.node.id === task.target)!;
  const parentIds = new Set(Object.values(target.node.inputs).flatMap((i) => i.upstream.map((u) => u.node)));
  const manifests = new Map<string, Manifest>();

  // Upstream results: the target's parents with their artifacts, the others' manifests only.
  for (const { node, key: known } of task.nodes) {
    if (node.id === task.target) continue;
    const key = known ?? (await resolveKey(kc, node, (p) => manifests.get(p)!)).key;
    const local = store.manifest(key);
    let m: Manifest | undefined;
    if (local && (!parentIds.has(node.id) || (await artifactsPresent(store, local)))) m = local;
    else m = parentIds.has(node.id) ? await remote.pull(key) : await remote.peek(key);
    if (!m) throw new Error(`upstream ${node.id} (key ${short(key)}) is on neither this node's cache nor the remote ${remote.url}: did its job push it?`);
    manifests.set(node.id, m);
  }

  const outcome = await runNodeLifecycle(
    {
      node: target.node,
      kindModule: target.kindModule,
      pipeline: task.pipeline,
      parents: new Map([...manifests].filter(([id]) => parentIds.has(id))),
      ...(target.key ? { submittedKey: target.key } : {}),
      // Job.log is relative to the cache; the batch log is where this node's lines go.
      log: isAbsolute(task.log) ? relative(store.dir, task.log) : task.log,
    },
    {
      kc,
      executor: new InProcessExecutor(store, hooks.log),
      signal: hooks.signal,
      remote,
      remoteRequired: true,
      onDecided: (key) => hooks.log(`${task.target} key ${key} on ${hostname()}`),
      onState: (state, detail) => {
        if (state === 'waiting') hooks.log(`waiting: ${typeof detail === 'string' ? detail : describeReason(detail)}`);
      },
      onProgress: () => {},
    },
  );
  if (outcome.state === 'interrupted' || outcome.state === 'not-started') return { state: 'interrupted' };
  if ((outcome.state === 'ran' || outcome.state === 'cached') && outcome.manifest) return { state: outcome.state, manifest: outcome.manifest };
  return { state: 'failed', reason: outcome.reason ? describeReason(outcome.reason) : `${task.target} ${outcome.state}` };
}
