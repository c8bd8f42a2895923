import type { Manifest } from '../store/artifacts.js';
import { sleep } from '../util/sleep.js';
import type { Lease } from './leases.js';
import type { RemoteCache } from './remote-cache.js';

/** How often a runner waiting on another's lease looks for its result. */
export const POLL_MS = Number(process.env['MEDPIPE_REMOTE_POLL_MS'] ?? 250);

export type LeaseWait =
  /** Compute it: `leased` says whether we hold the remote lease (false: remote unreachable). */
  | { compute: true; leased: boolean }
  | { compute: false; manifest: Manifest }
  | { compute: false; interrupted: true };


/**
 * Takes the node's remote lease, or waits for the runner holding it to publish the result.
 * An expired lease (its owner crashed) is taken over by tryAcquire.
 */
export async function leaseOrWait(remote: RemoteCache, key: string, owner: string, signal: AbortSignal, onWait: (holder: Lease | undefined) => void): Promise<LeaseWait> {
  for (let announced = false; ; ) {
    const lease = await remote.lease(key, owner);
    // Also after winning: the previous holder may have pushed and released since our miss.
    const done = await remote.pull(key);
    if (done) {
      if (lease === 'acquired') await remote.release(key, owner);
      return { compute: false, manifest: done };
    }
    if (lease !== 'held') return { compute: true, leased: lease === 'acquired' };
    if (!announced) {
      onWait(await remote.holder(key));
      announced = true;
    }
    await sleep(POLL_MS, signal);
    if (signal.aborted) return { compute: false, interrupted: true };
  }
}
