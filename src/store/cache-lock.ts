import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Database } from 'lmdb';
import { processAlive } from '../util/process.js';
import type { Store } from './store.js';

/**
 * Who is using the cache, so that `cache gc` and running nodes exclude each other: a run holds
 * the cache shared (many at once), gc exclusive (it deletes what no manifest it knows of names,
 * which includes the blobs and record sets of nodes still running). Kept in the index itself,
 * where one write transaction at a time makes check-and-take atomic across processes.
 */
export type CacheUse = 'shared' | 'exclusive';

interface Holder {
  use: CacheUse;
  what: string;
  host: string;
  pid: number;
  since: string;
  expires: number;
}

const TTL_MS = 60_000;
const RENEW_MS = 15_000;
const POLL_MS = 250;

export class CacheBusyError extends Error {
  constructor(
    readonly cacheDir: string,
    holder: Holder,
  ) {
    super(`cache ${cacheDir} is in use by \`${holder.what}\` (pid ${holder.pid} on ${holder.host}, since ${holder.since}); ${holder.use === 'shared' ? 'gc deletes nothing while a run is going: try again when it has finished' : 'wait for it to finish'}`);
    this.name = 'CacheBusyError';
  }
}

function holders(store: Store): Database<Holder, string> {
  return store.root.openDB<Holder, string>(store.jsonTable('cache-holders'));
}

function live(h: Holder, now: number): boolean {
  if (h.expires <= now) return false;
  return h.host !== hostname() || processAlive(h.pid);
}

/** Takes the cache for `use` if nothing conflicting holds it; returns the conflicting holder otherwise. */
function tryTake(db: Database<Holder, string>, store: Store, id: string, use: CacheUse, what: string): Holder | undefined {
  return store.root.transactionSync(() => {
    const now = Date.now();
    for (const { key, value } of db.getRange()) {
      if (!live(value, now)) {
        db.removeSync(key);
        continue;
      }
      if (use === 'exclusive' || value.use === 'exclusive') return value;
    }
    db.putSync(id, { use, what, host: hostname(), pid: process.pid, since: new Date().toISOString(), expires: now + TTL_MS });
    return undefined;
  });
}

/**
 * Runs `body` while holding the cache for `use`, and always lets go after. A shared holder
 * waits for an exclusive one (gc is short; `onWait` says so once); an exclusive one never
 * waits for a run, which may take days: it fails with CacheBusyError naming the run.
 */
export async function holdingCache<T>(store: Store, use: CacheUse, what: string, body: () => Promise<T>, onWait?: (message: string) => void): Promise<T> {
  // A reader of a cache it cannot write cannot say so in it either: a run there stores nothing
  // for gc to spare (its owner's gc may still delete under it, as under any reader of a file).
  if (store.readOnly) {
    if (use === 'exclusive') store.assertWritable(`hold it for \`${what}\``);
    return body();
  }
  const db = holders(store);
  const id = randomUUID();
  let said = false;
  for (;;) {
    const holder = tryTake(db, store, id, use, what);
    if (!holder) break;
    if (use === 'exclusive') throw new CacheBusyError(store.dir, holder);
    if (!said) onWait?.(`waiting for \`${holder.what}\` (pid ${holder.pid} on ${holder.host}) to finish with cache ${store.dir}\n`);
    said = true;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  const renew = setInterval(() => {
    store.root.transactionSync(() => {
      const mine = db.get(id);
      if (mine) db.putSync(id, { ...mine, expires: Date.now() + TTL_MS });
    });
  }, RENEW_MS);
  renew.unref();
  try {
    return await body();
  } finally {
    clearInterval(renew);
    await db.remove(id);
  }
}
