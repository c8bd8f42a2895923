import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
let cached: Record<string, string> | undefined;

function versionOf(pkg: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(require.resolve(`${pkg}/package.json`), 'utf8')) as { version: string }).version;
  } catch {
    return undefined;
  }
}

/** Versions recorded in every manifest's provenance (never in a key). */
export function packageVersions(): Record<string, string> {
  if (cached) return cached;
  const out: Record<string, string> = { node: process.versions.node };
  const medpipe = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  out['medpipe'] = medpipe.version;
  for (const pkg of ['@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu', 'sharp', 'lmdb']) {
    const v = versionOf(pkg);
    if (v) out[pkg] = v;
  }
  cached = out;
  return out;
}

export interface RepoState {
  commit: string;
  /** Tracked files differ from the commit (as `git describe --dirty`; untracked files do not count). */
  dirty: boolean;
}

const repoStates = new Map<string, RepoState | null>();

/** The git commit of the repository holding `dir` (the pipeline file's), or null outside one
 *  or without git. Asked once per directory and process. */
export function repoState(dir: string): RepoState | null {
  if (repoStates.has(dir)) return repoStates.get(dir)!;
  const git = (...args: string[]) => execFileSync('git', ['-C', dir, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).trim();
  let state: RepoState | null = null;
  try {
    state = { commit: git('rev-parse', 'HEAD'), dirty: git('status', '--porcelain', '--untracked-files=no') !== '' };
  } catch {
    state = null;
  }
  repoStates.set(dir, state);
  return state;
}
