import { resolve } from 'node:path';

// Apart from store.ts so that the CLI can name the cache (its help, its option checks) without
// loading LMDB.
export const CACHE_ENV = 'MEDPIPE_CACHE';

export function defaultCacheDir(explicit?: string): string {
  return resolve(explicit ?? process.env[CACHE_ENV] ?? 'cache');
}
