import { randomUUID } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { link, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Database } from 'lmdb';
import { processAlive } from '../util/process.js';
import { cannotLink, cannotWrite, ReadOnlyCacheError } from './errors.js';
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

/**
 * `cache repair` replaces the index, so it cannot keep its hold in it: it holds REPAIR_LOCK, a
 * file made with O_EXCL beside the index. Each side takes its own hold and then looks for the
 * other's (repair: the file, then the holders in the index; a run or gc: its holder, then the
 * file), so of a run and a repair that start together at least one sees the other and stops.
 */
export const REPAIR_LOCK = 'repair.lock';

type RepairHolder = Pick<Holder, 'host' | 'pid' | 'since'>;

/**
 * The repair holding DIR, or undefined. A live repair renews its file's mtime every RENEW_MS,
 * so one not renewed for TTL_MS is dead wherever it ran (a node that died, a pid reused): as
 * for the index's holders. An unreadable file still young is a repair starting (where the file
 * system cannot link, the file is written in place and may be read before it is whole).
 */
function liveRepair(dir: string): RepairHolder | undefined {
  const file = join(dir, REPAIR_LOCK);
  let mtime: number;
  try {
    mtime = statSync(file).mtimeMs;
  } catch {
    return undefined;
  }
  if (Date.now() - mtime > TTL_MS) return undefined;
  let h: RepairHolder;
  try {
    h = JSON.parse(readFileSync(file, 'utf8')) as RepairHolder;
  } catch {
    return { host: '?', pid: 0, since: new Date(mtime).toISOString() };
  }
  return h.host !== hostname() || processAlive(h.pid) ? h : undefined;
}


export class RepairBusyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RepairBusyError';
  }
}

function repairing(dir: string, h: RepairHolder): RepairBusyError {
  return new RepairBusyError(`\`pipeline cache repair\` (pid ${h.pid} on ${h.host}, since ${h.since}) is rebuilding the index of cache ${dir}; try again when it has finished (its lock, ${join(dir, REPAIR_LOCK)}, counts as dead once it has not been renewed for ${TTL_MS / 1000} s)`);
}

/** How repair says that someone holds the cache it was asked to rebuild. */
export function heldForRepair(dir: string, holder: Pick<Holder, 'what' | 'pid' | 'host' | 'since'>): RepairBusyError {
  const who = holder.what.startsWith('pipeline run') ? 'a run' : `\`${holder.what}\``;
  return new RepairBusyError(`${who} holds the cache; repair rebuilds the index of ${dir} only while nothing uses it: try again when \`${holder.what}\` (pid ${holder.pid} on ${holder.host}, since ${holder.since}) has finished`);
}

/**
 * Runs `body` holding DIR for `cache repair`: refused with RepairBusyError when another repair
 * holds it. `body` must then check that no run holds the cache (heldForRepair says so): it
 * knows whether the index can be read for that. A lock file left by a repair that died (its
 * pid gone on this host) is taken over.
 */
export async function holdingForRepair<T>(dir: string, body: () => Promise<T>): Promise<T> {
  const file = join(dir, REPAIR_LOCK);
  const mine: RepairHolder = { host: hostname(), pid: process.pid, since: new Date().toISOString() };
  for (let attempt = 0; ; attempt++) {
    // Written whole under a name of its own, then linked into place (link fails if the name is
    // taken): a lock file is never seen empty, which would read as one left by a dead repair.
    const draft = `${file}.${process.pid}`;
    try {
      await writeFile(draft, JSON.stringify(mine));
    } catch (err) {
      if (cannotWrite(err)) throw new ReadOnlyCacheError(dir, `repair its index (repair writes ${REPAIR_LOCK} and the new index there; whoever may write the cache can run it)`);
      throw err;
    }
    try {
      try {
        await link(draft, file);
      } catch (err) {
        // Where links are refused, the lock is created in place, O_EXCL.
        if (!cannotLink(err)) throw err;
        await writeFile(file, JSON.stringify(mine), { flag: 'wx' });
      }
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const other = liveRepair(dir);
      if (other) throw repairing(dir, other);
      // Another repair took the dead one's lock over between our look and our take.
      if (attempt > 0) throw new RepairBusyError(`another \`pipeline cache repair\` is starting on cache ${dir}; try again when it has finished`);
      // Two repairs taking over one dead lock at once may both get it (the second's rm removes the
      // first's new file): rare, as it needs a repair that died, and both then rebuild the same index.
      await rm(file, { force: true });
    } finally {
      await rm(draft, { force: true });
    }
  }
  const touch = (): void => {
    const t = new Date();
    void utimes(file, t, t).catch(() => undefined);
  };
  return renewedWhile(touch, body, async () => {
    // Only our own file: a stale-lock takeover by another repair must not lose its lock to us.
    const now = await readFile(file, 'utf8').catch(() => '');
    if (now === JSON.stringify(mine)) await rm(file, { force: true });
  });
}

/** Runs `body` with a hold renewed every RENEW_MS (unrenewed for TTL_MS, it reads as dead), then releases it. */
async function renewedWhile<T>(renew: () => void, body: () => Promise<T>, release: () => Promise<void>): Promise<T> {
  const timer = setInterval(renew, RENEW_MS);
  timer.unref();
  try {
    return await body();
  } finally {
    clearInterval(timer);
    await release();
  }
}

/** The live holders of an index that reads (for repair of a healthy index, and its child for a damaged one). */
export function liveHolders(store: Store): Holder[] {
  const now = Date.now();
  return [...holders(store).getRange()].map((e) => e.value).filter((h) => live(h, now));
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
  // After taking our hold, as repair looks for holders after taking its file (see REPAIR_LOCK).
  const repair = liveRepair(store.dir);
  if (repair) {
    await db.remove(id);
    throw repairing(store.dir, repair);
  }
  const renew = (): void => {
    store.root.transactionSync(() => {
      const mine = db.get(id);
      if (mine) db.putSync(id, { ...mine, expires: Date.now() + TTL_MS });
    });
  };
  return renewedWhile(renew, body, async () => {
    await db.remove(id);
  });
}
