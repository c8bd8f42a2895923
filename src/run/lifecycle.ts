// One node's life, written once for every executor: decide (key, hit, reason), acquire (a slot,
// the local lock, then the remote lease), execute (an Executor runs the prepared Job), publish
// (commit is the worker's; here: remember the name, push to the remote).
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { NodeInstance } from '../config/expand.js';
import { expectedDurationMs } from '../remote/coordinate.js';
import type { RemoteCache } from '../remote/remote-cache.js';
import type { Manifest } from '../store/artifacts.js';
import { withLocalLock, withRemoteLease, defaultLockWaitMs } from './acquire.js';
import { codeDrift, localHit, resolveKey, whyRun, type Resolved } from './decide.js';
import type { Executor } from './executor.js';
import { jobFor } from './job.js';
import { error, type Reason } from './reason.js';
import type { KeyContext, NodeOutcome } from './types.js';

/** A node whose parents are done: everything its lifecycle needs to know about it. */
export interface NodeToRun {
  node: NodeInstance;
  kindModule: string;
  pipeline: string;
  parents: Map<string, Manifest>;
  /** Batch jobs: the key the node had where it was submitted; another key here is an error. */
  submittedKey?: string;
  /** The log, relative to the cache dir (default: the store's per-node log path). */
  log?: string;
  /** The stage kind wants a process of its own. */
  isolate?: boolean;
  /** Recompute even when a result is cached (`run --force`); the new result replaces the old. */
  force?: boolean;
}

export interface LifecycleOptions {
  kc: KeyContext;
  executor: Executor;
  signal: AbortSignal;
  remote?: RemoteCache;
  /**
   * A batch job's compute node, whose only channel is the remote: a local hit is pushed, and
   * without the lease or a successful push the node fails.
   */
  remoteRequired?: boolean;
  dryRun?: boolean;
  /** With dryRun, download remote hits instead of only looking at their manifests. */
  pullInDryRun?: boolean;
  lockTtlMs?: number;
  lockWaitMs?: number;
  /** Waits for the resources the node needs (the scheduler's slots); returns their release. */
  admit?(): Promise<(() => void) & { gpus?: number[] }>;
  /** The node's key, once known (a batch job logs it). */
  onDecided?(key: string): void;
  onState(state: 'waiting' | 'running', detail: Reason | string): void;
  onProgress(text: string): void;
}

const short = (key: string) => key.slice(0, 12);
/**
 * An interrupted node's reason: its error, unless that only says it was stopped (a stage's
 * "interrupted", an AbortError), which the state says already ("interrupted (interrupted)").
 */
const interruptedReason = (message: string): { reason?: Reason } =>
  /^(?:\S+: )?(?:interrupted|aborted|stopped|the operation was aborted|this operation was aborted)\.?$/i.test(message.trim()) ? {} : { reason: error(message) };
/** What the body under a lease returns when the node has no slot to run in: the lease goes back. */
const REQUEUE = Symbol('requeue');
const withExpected = (ms: number | undefined) => (ms !== undefined ? { expectedMs: ms } : {});

export async function runNodeLifecycle(n: NodeToRun, o: LifecycleOptions): Promise<NodeOutcome> {
  const { store } = o.kc;
  const id = n.node.id;
  // ---- decide ----
  let resolved: Resolved;
  try {
    resolved = await resolveKey(o.kc, n.node, (p) => n.parents.get(p)!);
  } catch (err) {
    return { state: 'failed', reason: error((err as Error).message) };
  }
  const { key, material, code } = resolved;
  o.onDecided?.(key);
  if (n.submittedKey && n.submittedKey !== key) {
    return {
      state: 'failed',
      key,
      reason: error(`${id} has key ${short(key)} here but ${short(n.submittedKey)} where it was submitted: the code, a stage kind or an external file differs between the two machines`),
    };
  }
  const remember = () => store.remember(n.pipeline, id, { key, material });
  const found = async (manifest: Manifest, reason?: Reason): Promise<NodeOutcome> => {
    await remember();
    return { state: 'cached', key, manifest, ...(reason ? { reason } : {}) };
  };

  const local = n.force ? undefined : await localHit(store, key);
  if (local) {
    if (o.remoteRequired && o.remote && (await o.remote.push(local)) === 'failed') {
      return { state: 'failed', key, reason: error(`could not push ${id} to ${o.remote.url}`) };
    }
    return found(local, codeDrift(local, resolved, n.node.kind));
  }
  if (o.remote && !n.force) {
    const peekOnly = o.dryRun && !o.pullInDryRun;
    const pulled = peekOnly ? await o.remote.peek(key) : await o.remote.pull(key);
    if (pulled) {
      const reason: Reason = { why: 'on-remote', url: o.remote.url };
      return peekOnly ? { state: 'cached', key, manifest: pulled, reason } : found(pulled, reason);
    }
  }
  const reason: Reason = n.force ? { why: 'forced' } : whyRun(store, n.pipeline, id, material);
  if (o.dryRun) return { state: 'would-run', key, reason };
  // Stopped while queued (a slot, a lock, a lease): never started, which a summary tells apart.
  if (o.signal.aborted) return { state: 'not-started', key };
  let started = false;

  // ---- acquire ----
  // The slot first, then the lock and the lease: a node queued behind others holds neither, so
  // another run on this cache (or a team's runner, for the lease) computes it instead of
  // waiting for a node that has not started, and only running nodes renew a lock. While it
  // waits for someone else's lock or lease, its slot goes to the next node in the queue.
  // One owner per attempt: two instances of this run with the same key must not share a lock.
  const owner = `${hostname()}:${process.pid}:${randomUUID()}`;
  const log = n.log ?? store.logPath(id, key);
  let slot: Awaited<ReturnType<NonNullable<LifecycleOptions['admit']>>> | undefined;
  const yieldSlot = () => {
    slot?.();
    slot = undefined;
  };
  try {
    slot = o.admit ? await o.admit() : undefined;
    const locked = await withLocalLock(
      {
        store,
        key,
        node: id,
        owner,
        ttlMs: o.lockTtlMs ?? 30_000,
        maxWaitMs: o.lockWaitMs ?? defaultLockWaitMs(),
        signal: o.signal,
        // A forced node is not satisfied by the result it is replacing.
        recheck: n.force ? async () => undefined : () => localHit(store, key),
        onWait: (holder) => {
          yieldSlot();
          o.onState('waiting', holder ? `computed by ${holder.host} pid ${holder.pid}` : 'waiting for lock');
        },
      },
      async (): Promise<NodeOutcome> => {
        // A forced node recomputes here: the lease would hand it the very result it replaces.
        if (!o.remote || n.force) return execute();
        // The lease is held only with a slot: a lease held by a node queued for a slot ages past
        // its expected duration, and another cache's runner then takes it as stale and computes
        // the node a second time. The slot given back while waiting for the lock is taken again
        // first; one given back while waiting for the lease sends the lease back and queues again.
        const remote = o.remote;
        for (;;) {
          await readmit();
          if (o.signal.aborted) return { state: 'not-started', key };
          const leased = await withRemoteLease(
            {
              remote,
              key,
              node: id,
              owner,
              signal: o.signal,
              required: Boolean(o.remoteRequired),
              ...withExpected(expectedDurationMs(store, n.pipeline, id)),
              onWait: (holder) => {
                yieldSlot();
                o.onState('waiting', holder ? `computed by ${holder.host} pid ${holder.pid} (remote lease)` : 'waiting for remote lease');
              },
            },
            async () => (slot === undefined && o.admit ? REQUEUE : execute()),
          );
          if (leased.held) {
            if (leased.value === REQUEUE) continue;
            return leased.value;
          }
          if ('interrupted' in leased) return { state: 'not-started', key };
          return found(leased.manifest, { why: 'computed-elsewhere', via: 'lease' });
        }
      },
    );
    if (locked.held) return locked.value;
    if ('interrupted' in locked) return { state: 'not-started', key };
    return found(locked.manifest, { why: 'computed-elsewhere', via: 'lock' });
  } catch (err) {
    if (o.signal.aborted && !started) return { state: 'not-started', key };
    if (o.signal.aborted) return { state: 'interrupted', key, ...interruptedReason((err as Error).message) };
    return { state: 'failed', key, reason: error((err as Error).message) };
  } finally {
    yieldSlot();
  }

  // ---- execute, publish ----
  async function readmit(): Promise<void> {
    if (slot === undefined && o.admit) slot = await o.admit();
  }
  async function execute(): Promise<NodeOutcome> {
    // Given back while waiting for a lock or a lease: taken again, under them.
    await readmit();
    const release = slot;
    try {
      started = true;
      o.onState('running', reason);
      const job = jobFor({
        node: n.node,
        kindModule: n.kindModule,
        key,
        material,
        code: { digest: code.digest, files: code.files.length },
        parents: (p) => n.parents.get(p)!,
        cacheDir: store.dir,
        pipeline: n.pipeline,
        baseDir: o.kc.pipeline.spec.baseDir,
        log,
        ...(o.remote ? { remote: o.remote.spec } : {}),
        ...(n.isolate ? { isolate: true } : {}),
        ...(n.force ? { replace: true } : {}),
        ...(release?.gpus && release.gpus.length > 0 ? { gpus: release.gpus } : {}),
      });
      const result = await o.executor.run(job, o.onProgress, o.signal);
      // The slot stands for the worker and its CPU, GPU and memory, free from here on: the next
      // node starts while this one's name record and push are written.
      release?.();
      const computed = store.committedManifest(key);
      if (!result.ok || !computed) {
        const message = result.ok ? 'worker finished without publishing a result' : result.error;
        if (!result.ok && result.interrupted) return { state: 'interrupted', key, ...interruptedReason(message), log };
        return { state: 'failed', key, reason: error(message), log };
      }
      await remember();
      // Before the lease goes, so whoever waits on it finds the result; a push that finds
      // another valid result there first adopts it (first committed wins), so read back.
      if (o.remote && (await o.remote.push(computed)) === 'failed' && o.remoteRequired) {
        return { state: 'failed', key, reason: error(`${id} ran but could not be pushed to ${o.remote.url}`), log };
      }
      // Only a push can have put another result under the key (commits are write-once).
      const manifest = o.remote ? (store.manifest(key) ?? computed) : computed;
      return { state: 'ran', key, manifest, reason, log };
    } finally {
      release?.();
    }
  }
}
