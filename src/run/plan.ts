import type { Reporter } from './reporter.js';
import { runNodes } from './scheduler.js';
import type { NodeOutcome, RunContext, RunOptions } from './types.js';

export const SILENT: Reporter = { start() {}, update() {}, progress() {}, async finish() {} };

/**
 * What a run would do, without doing it: each selected node's key where its inputs are known,
 * and its cached manifest (local, or on the remote when given). Used by show, predict, gc and
 * cache push/pull.
 */
export function planNodes(rc: RunContext, selected: Set<string>, options: Pick<RunOptions, 'remote' | 'pullInDryRun'> = {}): Promise<Map<string, NodeOutcome>> {
  return runNodes(rc, selected, {
    capacity: { jobs: 1, cpus: 1, gpu: Number.MAX_SAFE_INTEGER, memory_gb: Number.MAX_SAFE_INTEGER },
    dryRun: true,
    signal: new AbortController().signal,
    executor: { name: 'none', run: () => Promise.reject(new Error('a dry run executes nothing')) },
    reporter: SILENT,
    ...options,
  });
}
