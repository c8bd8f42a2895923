// Run by bin/pipeline when the CLI died of a fault (SIGBUS, SIGSEGV, SIGABRT): the likely cause
// is a damaged page of the memory-mapped cache index, which no JavaScript can catch. This says
// so in words, naming the index and the repair, after checking the index in a child process.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { constants } from 'node:os';
import { IndexDamagedError } from '../store/index-file.js';
import { probeIndex } from '../store/index-probe.js';
import { defaultCacheDir } from '../store/store.js';
import { execCacheDir } from './slurm.js';
import { shellCommand } from '../util/shell.js';

/** The --cache the command was given (`--cache DIR` or `--cache=DIR`), if any. */
function cacheOption(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--cache') return argv[i + 1];
    if (argv[i]!.startsWith('--cache=')) return argv[i]!.slice('--cache='.length);
  }
  return undefined;
}

const [statusText, ...argv] = process.argv.slice(2);
const status = Number(statusText);
const signal = Object.entries(constants.signals).find(([, n]) => n === status - 128)?.[0] ?? `exit status ${status}`;
// `exec` (a SLURM task) keeps its own node-local cache.
const dir = argv[0] === 'exec' ? execCacheDir(cacheOption(argv)) : defaultCacheDir(cacheOption(argv));
const index = join(dir, 'index.lmdb');
let unchecked: string | undefined;
const problem = existsSync(index)
  ? await probeIndex(dir).catch((e: unknown) => {
      unchecked = e instanceof Error ? e.message : String(e);
      return undefined;
    })
  : undefined;
if (unchecked !== undefined) {
  process.stderr.write(`error: medpipe was killed by ${signal}; its cache index ${index} could not be checked (${unchecked}): run \`${shellCommand('pipeline', 'cache', 'verify', '--cache', dir)}\`\n`);
  process.exitCode = status;
} else if (problem !== undefined) {
  process.stderr.write(`error: medpipe stopped (${signal}) reading the cache: ${new IndexDamagedError(index, problem).message}. Results already computed are kept as manifest files and blobs, and repair re-indexes them\n`);
  process.exitCode = 1;
} else {
  process.stderr.write(`error: medpipe was killed by ${signal}; its cache index ${index} ${existsSync(index) ? 'reads whole, so the cache is not the cause' : 'does not exist'}\n`);
  process.exitCode = status;
}
