// The run layer's shared vocabulary, a leaf: the scheduler, the planning module, the lifecycle
// and every executor import these, and these import none of them.
import type { ExpandedPipeline } from '../config/expand.js';
import type { Dag } from '../graph/dag.js';
import type { CodeTrigger } from '../code/kind-code.js';
import type { Registry } from '../registry.js';
import type { RemoteCache } from '../remote/remote-cache.js';
import type { Manifest } from '../store/artifacts.js';
import type { Store } from '../store/store.js';
import type { Reason } from './reason.js';
import type { NodeState, Reporter } from './reporter.js';
import type { Capacity } from './slots.js';
import type { Executor } from './executor.js';

export interface RunContext {
  pipeline: ExpandedPipeline;
  dag: Dag;
  registry: Registry;
  store: Store;
  /** Which kinds are keyed by their code digest (default: plugins only). */
  codeTrigger?: CodeTrigger;
}

/** What computing a key needs: a compute node running one batch task has no whole pipeline. */
export interface KeyContext {
  pipeline: { spec: { baseDir: string } };
  registry: Registry;
  store: Store;
  /** Which kinds are keyed by their code digest (default: plugins only). */
  codeTrigger?: CodeTrigger;
}

export interface RunOptions {
  capacity: Capacity;
  dryRun: boolean;
  signal: AbortSignal;
  /** A GraphExecutor (a batch system) takes over real runs whole; dry runs always plan here. */
  executor: Executor | GraphExecutor;
  reporter: Reporter;
  lockTtlMs?: number;
  /** How long a node waits for the local lock another live process holds before failing (default $MEDPIPE_LOCK_WAIT_S, else 6 h). */
  lockWaitMs?: number;
  /** Shared cache: pulled on a local miss, leased while computing, pushed after each success. */
  remote?: RemoteCache;
  /** With dryRun, download remote hits (`cache pull`) instead of only looking at their manifests. */
  pullInDryRun?: boolean;
  /** Nodes recomputed even when cached (`run --force`). */
  force?: Set<string>;
}

export type OutcomeState = Extract<NodeState, 'cached' | 'ran' | 'failed' | 'skipped' | 'would-run' | 'interrupted' | 'not-started'>;

export interface NodeOutcome {
  state: OutcomeState;
  key?: string;
  manifest?: Manifest;
  /** Why it ran (or would run), why it failed, or which upstream stopped it. */
  reason?: Reason;
  log?: string;
}

/**
 * An executor that takes the whole selection at once: a batch system queues every node up
 * front, chained by dependencies, so it cannot wait for parents the way the scheduler does (a
 * node's key needs its parents' output digests, which exist only after they ran). Dry runs
 * (`status`, `show`, `cache pull`) never reach it: planning is the same for every executor.
 */
export interface GraphExecutor {
  readonly name: string;
  runGraph(rc: RunContext, selected: Set<string>, options: RunOptions): Promise<Map<string, NodeOutcome>>;
}

export function isGraphExecutor(e: Executor | GraphExecutor): e is GraphExecutor {
  return 'runGraph' in e;
}
