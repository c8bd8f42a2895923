import type { Manifest } from '../store/artifacts.js';
import { sleep } from '../util/sleep.js';
import { describeHolder, type Lease } from './leases.js';
import type { RemoteCache } from './remote-cache.js';

/** How often a runner waiting on another's lease looks for its result. */
export const POLL_MS = Number(process.env['MEDPIPE_REMOTE_POLL_MS'] ?? 250);

export type LeaseWait =
  /** Compute it: `leased` says whether we hold the remote lease (false: remote unreachable). */
  | { compute: true; leased: boolean }
  | { compute: false; manifest: Manifest }
  | { compute: false; interrupted: true };

export interface WaitOptions {
  /** What the node took last time (this cache's record of it), for judging a lease's age. */
  expectedMs?: number;
  onWait(holder: Lease | undefined): void;
}

/**
 * How long one holder may keep a node before waiters take it as stale: its expected duration
 * plus the margin, never more than the remote's max wait.
 */
export function staleAfterMs(remote: Pick<RemoteCache, 'maxWaitMs' | 'waitMarginMs'>, expectedMs: number | undefined): { ms: number; why: string } {
  const s = (ms: number) => `${Math.round(ms / 1000)} s`;
  if (expectedMs === undefined || expectedMs + remote.waitMarginMs >= remote.maxWaitMs) return { ms: remote.maxWaitMs, why: `the longest wait (${s(remote.maxWaitMs)}, MEDPIPE_REMOTE_MAX_WAIT_MS)` };
  return { ms: expectedMs + remote.waitMarginMs, why: `the node's expected ${s(expectedMs)} plus a margin of ${s(remote.waitMarginMs)} (MEDPIPE_REMOTE_WAIT_MARGIN_MS)` };
}

/**
 * Whether a waiter that has watched `holder` since `since` should stop waiting on it, warning
 * (once) when so. The age is the lease's stated one or our own wait, whichever is longer, so a
 * lease rewritten to look fresh still ends.
 */
export function leaseIsStale(remote: Pick<RemoteCache, 'maxWaitMs' | 'waitMarginMs' | 'warn'>, key: string, holder: Lease, since: number, expectedMs: number | undefined): boolean {
  // Both are estimates (a last run, maybe of other params): the longer errs towards waiting.
  const estimates = [expectedMs, holder.expectedMs].filter((ms): ms is number => ms !== undefined);
  const bound = staleAfterMs(remote, estimates.length > 0 ? Math.max(...estimates) : undefined);
  const now = Date.now();
  const claimedAge = holder.acquired > 0 && holder.acquired <= now ? now - holder.acquired : 0;
  if (Math.max(claimedAge, now - since) <= bound.ms) return false;
  remote.warn(
    `remote lease on ${key.slice(0, 12)} held by ${describeHolder(holder)}${holder.acquired > 0 ? ` since ${new Date(holder.acquired).toISOString()}` : ''} ` +
      `has outlived ${bound.why}: taking it as stale and computing the node here (if its result lands first, it is the one kept)`,
  );
  return true;
}

/**
 * Takes the node's remote lease, or waits for the runner holding it to publish the result.
 * An expired lease (its owner crashed) is taken over by tryAcquire. Waiting is bounded: a holder
 * that has had the lease longer than staleAfterMs (leaseIsStale) is taken as stuck, said so, and
 * the node is computed here; if its result lands first, ours is replaced by it on push.
 */
export async function leaseOrWait(remote: RemoteCache, key: string, owner: string, signal: AbortSignal, options: WaitOptions): Promise<LeaseWait> {
  let watching: { owner: string; since: number } | undefined;
  let staleOwner: string | undefined;
  for (;;) {
    const lease = await remote.lease(key, owner, { ...(options.expectedMs !== undefined ? { expectedMs: options.expectedMs } : {}), ...(staleOwner !== undefined ? { staleOwner } : {}) });
    // Also after winning: the previous holder may have pushed and released since our miss.
    const done = await remote.pull(key);
    if (done) {
      if (lease === 'acquired') await remote.release(key, owner);
      return { compute: false, manifest: done };
    }
    if (lease !== 'held') return { compute: true, leased: lease === 'acquired' };
    const holder = await remote.holder(key);
    if (!watching || watching.owner !== (holder?.owner ?? '')) {
      // A new holder (or the first seen) starts its own clock.
      if (watching) staleOwner = undefined;
      watching = { owner: holder?.owner ?? '', since: Date.now() };
      options.onWait(holder);
    }
    if (holder && staleOwner === undefined && leaseIsStale(remote, key, holder, watching.since, options.expectedMs)) {
      staleOwner = holder.owner;
      continue;
    }
    await sleep(POLL_MS, signal);
    if (signal.aborted) return { compute: false, interrupted: true };
  }
}

/** The node's last recorded duration in this cache, for judging how long a lease may take. */
export function expectedDurationMs(store: { lastKnown(pipeline: string, node: string): { key: string } | undefined; manifest(key: string): Manifest | undefined }, pipeline: string, node: string): number | undefined {
  const last = store.lastKnown(pipeline, node);
  const seconds = last ? store.manifest(last.key)?.provenance.duration_s : undefined;
  return typeof seconds === 'number' && Number.isFinite(seconds) ? seconds * 1000 : undefined;
}
