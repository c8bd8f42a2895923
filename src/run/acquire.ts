// The two exclusions a node is computed under, each a scoped helper: it waits, holds, renews
// by heartbeat while the body runs, and releases however the body ends. A result another
// runner publishes while this one waits ends the wait.
import { leaseOrWait } from '../remote/coordinate.js';
import type { Lease } from '../remote/leases.js';
import type { RemoteCache } from '../remote/remote-cache.js';
import type { Manifest } from '../store/artifacts.js';
import type { LockRecord, Store } from '../store/store.js';
import { sleep } from '../util/sleep.js';

export type Held<T> =
  /** The body ran under the lock. */
  | { held: true; value: T }
  /** Another runner published the result meanwhile. */
  | { held: false; manifest: Manifest }
  | { held: false; interrupted: true };

const LOCK_POLL_MS = 200;

/** Default bound on waiting for a local lock a live process holds ($MEDPIPE_LOCK_WAIT_S, else 6 h). */
export function defaultLockWaitMs(): number {
  const s = Number(process.env['MEDPIPE_LOCK_WAIT_S']);
  return Number.isFinite(s) && s > 0 ? s * 1000 : 6 * 3600_000;
}

export class LockWaitError extends Error {
  constructor(node: string, key: string, holder: LockRecord | undefined, waitedMs: number) {
    const who = holder ? `${holder.host} pid ${holder.pid}` : 'another run';
    super(
      `gave up after ${(waitedMs / 1000).toFixed(0)} s waiting for the local lock on ${node} (key ${key.slice(0, 12)}): ${who} is still computing it and renewing the lock. ` +
        `Let it finish, stop that process, or wait longer with MEDPIPE_LOCK_WAIT_S=<seconds>`,
    );
    this.name = 'LockWaitError';
  }
}

export interface LocalLockArgs {
  store: Store;
  key: string;
  node: string;
  owner: string;
  ttlMs: number;
  /** Fails the node with LockWaitError once waiting for a live holder took this long. */
  maxWaitMs: number;
  signal: AbortSignal;
  /** Looked at while waiting and once the lock is held: a committed result ends it. */
  recheck(): Promise<Manifest | undefined>;
  onWait(holder: LockRecord | undefined): void;
}

/** The cache's per-key LMDB lock: one process of this cache computes a key at a time. */
export async function withLocalLock<T>(a: LocalLockArgs, body: () => Promise<T>): Promise<Held<T>> {
  const started = Date.now();
  for (let announced = false; !(await a.store.tryLock(a.key, a.node, a.owner, a.ttlMs)); ) {
    const found = await a.recheck();
    if (found) return { held: false, manifest: found };
    if (!announced) {
      a.onWait(a.store.lockHolder(a.key));
      announced = true;
    }
    if (Date.now() - started > a.maxWaitMs) throw new LockWaitError(a.node, a.key, a.store.lockHolder(a.key), Date.now() - started);
    await sleep(LOCK_POLL_MS, a.signal);
    if (a.signal.aborted) return { held: false, interrupted: true };
  }
  const heartbeat = setInterval(() => void a.store.renewLock(a.key, a.owner, a.ttlMs), a.ttlMs / 3);
  try {
    const found = await a.recheck();
    if (found) return { held: false, manifest: found };
    return { held: true, value: await body() };
  } finally {
    clearInterval(heartbeat);
    await a.store.unlock(a.key, a.owner);
  }
}

export interface LeaseArgs {
  remote: RemoteCache;
  key: string;
  node: string;
  owner: string;
  signal: AbortSignal;
  /** Without a lease (remote unreachable) the body still runs, unless the lease is required. */
  required: boolean;
  /** How long this node usually takes (this cache's last run), to tell a stale lease from a live one. */
  expectedMs?: number;
  onWait(holder: Lease | undefined): void;
}

/** The remote's per-key lease: one runner of every cache sharing the remote computes a key at a time. */
export async function withRemoteLease<T>(a: LeaseArgs, body: () => Promise<T>): Promise<Held<T>> {
  const waited = await leaseOrWait(a.remote, a.key, a.owner, a.signal, { ...(a.expectedMs !== undefined ? { expectedMs: a.expectedMs } : {}), onWait: a.onWait });
  if ('interrupted' in waited) return { held: false, interrupted: true };
  if (!waited.compute) return { held: false, manifest: waited.manifest };
  if (!waited.leased) {
    if (a.required) throw new Error(`remote ${a.remote.url} unavailable: cannot take the lease for ${a.node}`);
    return { held: true, value: await body() };
  }
  const heartbeat = setInterval(() => void a.remote.renew(a.key, a.owner), a.remote.leaseTtlMs / 3);
  try {
    return { held: true, value: await body() };
  } finally {
    clearInterval(heartbeat);
    await a.remote.release(a.key, a.owner);
  }
}
