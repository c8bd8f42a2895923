import { existsSync, readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import type { CodeTrigger } from '../code/kind-code.js';
import { CACHE_ENV, defaultCacheDir } from '../store/cache-dir.js';
import { ConfigError, fsProblem } from '../util/errors.js';

/** `--rerun-triggers`: the list may name code (and the triggers that always hold); anything else is a typo. */
export function codeTriggerOf(flag: string | undefined): CodeTrigger {
  const known = ['code', 'params', 'input', 'version'];
  const parts = (flag ?? '').split(/[\s,]+/).filter(Boolean);
  const bad = parts.filter((p) => !known.includes(p));
  if (bad.length > 0) throw new ConfigError(`unknown rerun trigger(s) ${bad.join(', ')} (known: code; params, input and version always apply)`, { file: `--rerun-triggers ${flag}`, line: 0, col: 0 });
  return parts.includes('code') ? 'all' : 'plugins';
}

/** A commander parser for a whole number >= min; commander names the option in its message and exits 2. */
export function wholeNumber(min: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`expected a whole number >= ${min}, got "${value}"`);
    return n;
  };
}

/**
 * A usage error (a bad option value, a missing argument) is followed by one line naming the
 * verb's help, not the whole help, which pushes the error itself off the screen.
 */
export function pointErrorsToHelp(cmd: Command, path = cmd.name()): void {
  cmd.showHelpAfterError(`see ${path} --help`);
  for (const sub of cmd.commands) pointErrorsToHelp(sub, `${path} ${sub.name()}`);
}

/**
 * The cache a verb that only reads should open. A `--cache` that does not exist is almost
 * always a typo, and opening it would create an empty cache that answers "nothing cached".
 */
export function existingCacheDir(explicit: string | undefined): string {
  const dir = defaultCacheDir(explicit);
  if (explicit !== undefined && !existsSync(dir)) throw new ConfigError(`no cache at ${dir} (this verb only reads a cache; check the path, or run the pipeline first)`, { file: `--cache ${explicit}`, line: 0, col: 0 });
  if (!looksLikeCache(dir)) {
    const named = explicit !== undefined ? `--cache ${explicit}` : process.env[CACHE_ENV] !== undefined ? `$${CACHE_ENV}` : 'the default cache';
    throw new ConfigError(`not a medpipe cache: ${dir} (it holds files but neither index.lmdb nor manifests/; check the path)`, { file: named, line: 0, col: 0 });
  }
  return dir;
}

/**
 * A cache is marked by index.lmdb, which the first command on a cache writes, or by manifests/,
 * which outlives a lost index for `cache repair`. A missing or empty folder is a cache yet to
 * be made; any other folder is someone else's, and opening it would write an index.lmdb there.
 */
function looksLikeCache(dir: string): boolean {
  if (!existsSync(dir)) return true;
  if (existsSync(join(dir, 'index.lmdb')) || existsSync(join(dir, 'manifests'))) return true;
  try {
    return readdirSync(dir).length === 0;
  } catch {
    return true; // not a folder, or not readable: the Store says so in its own words
  }
}

/** Writes a file the user named with an option (`-o`, `--html`); one that cannot be written is bad input, said in words. */
export async function writeNamedFile(option: string, path: string, content: string): Promise<void> {
  try {
    await writeFile(path, content);
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? `there is no folder ${dirname(resolve(path))}` : fsProblem(err);
    throw new ConfigError(`cannot write the file: ${why}`, { file: `${option} ${path}`, line: 0, col: 0 });
  }
}
