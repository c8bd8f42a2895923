/**
 * Disk and index failures said in words: which cache, what was being written, and the cause
 * (a full disk, an I/O error), instead of a worker that "exited with code 1".
 */
import { shellCommand } from '../util/shell.js';

const CAUSES: [codes: (string | number)[], hint: string][] = [
  [['ENOSPC', 28], 'the disk is full'],
  [['EDQUOT', 122], 'the disk quota is exhausted'],
  [['EIO', 5], 'the disk reported an I/O error'],
  [['EROFS', 30], 'the file system is read-only'],
  [['EACCES', 13, 'EPERM', 1], 'permission denied'],
  [['EFBIG', 27], 'a file size limit was hit'],
];

export class CacheIOError extends Error {
  constructor(
    readonly cacheDir: string,
    readonly doing: string,
    cause: unknown,
  ) {
    super(`cache ${cacheDir}: could not ${doing}: ${describeCause(cacheDir, cause)}`, { cause });
    this.name = 'CacheIOError';
  }
}

function describeCause(cacheDir: string, err: unknown): string {
  const e = err as { message?: string; code?: string | number };
  const message = e?.message ?? String(err);
  const known = CAUSES.find(([codes]) => e?.code !== undefined && codes.includes(e.code));
  if (known) return `${message} (${known[1]})`;
  // LMDB's own codes (MDB_PAGE_FULL, MDB_CORRUPTED, MDB_BAD_TXN...) mean a damaged index.
  if (/MDB_/.test(message)) return `${message} (the index may be damaged: run \`${shellCommand('pipeline', 'cache', 'repair', '--cache', cacheDir)}\`)`;
  return e?.code !== undefined ? `${message} (${e.code})` : message;
}

const CANNOT_WRITE = new Set<string | number>(['EACCES', 'EPERM', 'EROFS', 13, 1, 30]);

/** Whether a failed write failed because this user may not write there (mode bits, a read-only mount). */
export function cannotWrite(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code !== undefined && CANNOT_WRITE.has(code);
}

const CANNOT_LINK = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/** A file system that refuses hard links (exFAT, vfat, many SMB mounts): the caller falls back to a copy or an O_EXCL create. */
export function cannotLink(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code !== undefined && CANNOT_LINK.has(code);
}

/** A write to a cache this user may only read (another user's, a read-only mount). */
export class ReadOnlyCacheError extends Error {
  constructor(
    readonly cacheDir: string,
    readonly doing: string,
  ) {
    super(`cache ${cacheDir} is read-only for this user: cannot ${doing}. Reading it works (status, cache ls, show, cache verify --keep, a run whose nodes are all cached); to compute, use a cache you can write (--cache DIR)`);
    this.name = 'ReadOnlyCacheError';
  }
}

/** Runs a write against the cache; any failure comes back as a CacheIOError naming it. */
export async function writingCache<T>(cacheDir: string, doing: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (err) {
    if (err instanceof CacheIOError) throw err;
    throw new CacheIOError(cacheDir, doing, err);
  }
}

/** An LMDB failure that reached the top unwrapped (a read deep in planning) still says what to do. */
export function withIndexHint(message: string): string {
  return /MDB_/.test(message) && !/cache repair/.test(message) ? `${message} (the cache index may be damaged: run \`pipeline cache repair\`)` : message;
}
