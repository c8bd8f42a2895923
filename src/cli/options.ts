import { existsSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';
import { defaultCacheDir } from '../store/store.js';
import { ConfigError } from '../util/errors.js';

/** A commander parser for a whole number >= min; commander names the option in its message and exits 2. */
export function wholeNumber(min: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`expected a whole number >= ${min}, got "${value}"`);
    return n;
  };
}

/**
 * The cache a verb that only reads should open. A `--cache` that does not exist is almost
 * always a typo, and opening it would create an empty cache that answers "nothing cached".
 */
export function existingCacheDir(explicit: string | undefined): string {
  const dir = defaultCacheDir(explicit);
  if (explicit !== undefined && !existsSync(dir)) throw new ConfigError(`no cache at ${dir} (this verb only reads a cache; check the path, or run the pipeline first)`, { file: `--cache ${explicit}`, line: 0, col: 0 });
  return dir;
}
