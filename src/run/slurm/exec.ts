// `pipeline exec`: what a SLURM job runs on the compute node. It talks to nothing but the
// remote cache: inputs are pulled from it, the result is pushed to it.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { isAbsolute, relative } from 'node:path';
import { leaseOrWait } from '../../remote/coordinate.js';
import type { RemoteCache } from '../../remote/remote-cache.js';
import { loadKinds } from '../../registry.js';
import type { Manifest } from '../../store/artifacts.js';
import type { Store } from '../../store/store.js';
import { executeJob } from '../execute.js';
import type { Job } from '../job.js';
import { artifactsPresent, resolveKey, type KeyContext } from '../scheduler.js';
import type { SlurmTask } from './task.js';

export interface ExecHooks {
  signal: AbortSignal;
  /** A line for the job's log (stdout, which SLURM writes to the log file). */
  log(text: string): void;
}

export type ExecResult = { state: 'ran' | 'cached'; manifest: Manifest } | { state: 'interrupted' };

const short = (key: string) => key.slice(0, 12);

export async function execTask(task: SlurmTask, store: Store, remote: RemoteCache, hooks: ExecHooks): Promise<ExecResult> {
  const registry = await loadKinds([...new Set(task.nodes.map((n) => n.kindModule))]);
  const kc: KeyContext = { pipeline: { spec: { baseDir: task.baseDir } }, registry, store };
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

  const { key, material } = await resolveKey(kc, target.node, (p) => manifests.get(p)!);
  if (target.key && target.key !== key) {
    throw new Error(`${task.target} has key ${short(key)} here but ${short(target.key)} where it was submitted: the code, a stage kind or an external file differs between the two machines`);
  }
  hooks.log(`${task.target} key ${key} on ${hostname()}`);
  const local = store.manifest(key);
  if (local && (await artifactsPresent(store, local))) {
    if ((await remote.push(local)) === 'failed') throw new Error(`could not push ${task.target} to ${remote.url}`);
    return { state: 'cached', manifest: local };
  }
  const owner = `${hostname()}:${process.pid}:${randomUUID()}`;
  const waited = await leaseOrWait(remote, key, owner, hooks.signal, {
    onWait: (holder) => hooks.log(`waiting: ${holder ? `${holder.host} pid ${holder.pid}` : 'another runner'} holds the lease`),
  });
  if ('interrupted' in waited) return { state: 'interrupted' };
  if (!waited.compute) return { state: 'cached', manifest: waited.manifest };
  // Without a lease (remote unreachable) the result could not be pushed either: fail now.
  if (!waited.leased) throw new Error(`remote ${remote.url} unavailable: cannot take the lease for ${task.target}`);
  const heartbeat = setInterval(() => void remote.renew(key, owner), remote.leaseTtlMs / 3);
  try {
    const job: Job = {
      cacheDir: store.dir,
      pipeline: task.pipeline,
      baseDir: task.baseDir,
      node: { id: target.node.id, stage: target.node.stage, kind: target.node.kind, axes: target.node.axes, params: target.node.params },
      kindModule: target.kindModule,
      key,
      material,
      inputs: Object.fromEntries(
        Object.entries(target.node.inputs).map(([name, input]) => [
          name,
          { many: input.many, entries: input.upstream.map((u) => ({ node: u.node, axes: u.axes, artifact: manifests.get(u.node)!.outputs[u.output]! })) },
        ]),
      ),
      // Job.log is relative to the cache; the SLURM log is where this node's lines go.
      log: isAbsolute(task.log) ? relative(store.dir, task.log) : task.log,
      remote: remote.spec,
    };
    let lastProgress = 0;
    const manifest = await executeJob(job, store, {
      signal: hooks.signal,
      log: hooks.log,
      progress(text) {
        if (Date.now() - lastProgress < 5000) return;
        lastProgress = Date.now();
        hooks.log(text);
      },
    });
    if (hooks.signal.aborted) return { state: 'interrupted' };
    // Before the lease goes, so a runner waiting on it finds the result.
    if ((await remote.push(manifest)) === 'failed') throw new Error(`${task.target} ran but could not be pushed to ${remote.url}`);
    await store.remember(task.pipeline, task.target, { key, material });
    return { state: 'ran', manifest };
  } finally {
    clearInterval(heartbeat);
    await remote.release(key, owner);
  }
}
