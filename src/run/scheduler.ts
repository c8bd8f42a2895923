// The local scheduler: a node is dispatched once its parents are done and the resources it
// needs are free. What happens to one node is the lifecycle's (lifecycle.ts).
import { setMaxListeners } from 'node:events';
import { gate } from './decide.js';
import { isGraphExecutor } from './types.js';
import { runNodeLifecycle } from './lifecycle.js';
import { describeReason, type Reason } from './reason.js';
import { Slots } from './slots.js';
import type { NodeOutcome, RunContext, RunOptions } from './types.js';

export type { NodeOutcome, RunContext, RunOptions } from './types.js';

/** Runs the selected nodes in dependency order, in parallel where resources allow. */
export async function runNodes(rc: RunContext, selected: Set<string>, options: RunOptions): Promise<Map<string, NodeOutcome>> {
  const { executor } = options;
  if (isGraphExecutor(executor)) {
    if (!options.dryRun) return executor.runGraph(rc, selected, options);
  }
  const { dag, pipeline, registry } = rc;
  const { reporter } = options;
  const slots = new Slots(options.capacity);
  // Every node waiting for a lock or a slot listens to the one signal.
  setMaxListeners(0, options.signal);
  const outcomes = new Map<string, Promise<NodeOutcome>>();
  const order = dag.order.filter((id) => selected.has(id));
  reporter.start(
    pipeline.spec.name,
    order.map((id) => ({ id, stage: pipeline.nodes.get(id)!.stage })),
  );
  // "ran (never run)" reads as a contradiction: a node that runs for the first time says so.
  const say = (r: Reason | string | undefined, state?: string) =>
    r === undefined || typeof r === 'string' ? r : r.why === 'never-run' && (state === 'running' || state === 'ran') ? (r.resumes ? 'first run, resuming from the checkpoints an interrupted run left' : 'first run') : describeReason(r);

  const dispatch = async (id: string): Promise<NodeOutcome> => {
    const node = pipeline.nodes.get(id)!;
    const parents = dag.graph.inNeighbors(id);
    const gated = gate(parents, await Promise.all(parents.map((p) => outcomes.get(p)!)));
    const entry = registry.get(node.kind)!;
    const outcome = gated.ready
      ? await runNodeLifecycle(
          { node, kindModule: entry.module, pipeline: pipeline.spec.name, parents: gated.manifests, ...(entry.kind.isolate ? { isolate: true } : {}), ...(options.force?.has(id) ? { force: true } : {}) },
          {
            kc: rc,
            executor: isGraphExecutor(executor) ? refuse(executor.name) : executor,
            signal: options.signal,
            ...(options.remote ? { remote: options.remote } : {}),
            dryRun: options.dryRun,
            ...(options.pullInDryRun ? { pullInDryRun: true } : {}),
            ...(options.lockTtlMs ? { lockTtlMs: options.lockTtlMs } : {}),
            ...(options.lockWaitMs ? { lockWaitMs: options.lockWaitMs } : {}),
            admit: async () => slots.acquire(slots.needOf(node.resources, id), options.signal),
            onState: (state, detail) => reporter.update(id, state, say(detail, state)),
            onProgress: (text) => reporter.progress(id, text),
          },
        )
      : gated.outcome;
    reporter.update(id, outcome.state, say(outcome.reason, outcome.state));
    return outcome;
  };

  for (const id of order) {
    const outcome = dispatch(id);
    // A node that throws (a damaged index) before an earlier one is awaited must not be an
    // unhandled rejection, which kills the process with a stack trace: it is rethrown below.
    outcome.catch(() => {});
    outcomes.set(id, outcome);
  }
  const results = new Map<string, NodeOutcome>();
  for (const id of order) results.set(id, await outcomes.get(id)!);
  await reporter.finish();
  return results;
}

/** A batch executor plans with the scheduler in dry runs only; it never runs single jobs. */
function refuse(name: string) {
  return {
    name,
    run: () => Promise.reject(new Error(`executor ${name} cannot run single jobs`)),
  };
}
