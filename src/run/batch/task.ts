// What a batch job carries: enough of the pipeline to compute one node's key on the compute
// node and run it. Plain JSON, embedded in the batch script.
import type { NodeInstance } from '../../config/expand.js';
import type { Dag } from '../../graph/dag.js';
import type { CodeTrigger } from '../../code/kind-code.js';
import type { JSONValue } from '../../contract.js';
import type { Registry } from '../../registry.js';

// The format name predates other batch systems; jobs queued by earlier versions still parse.
export const TASK_FORMAT = 'medpipe-slurm-task/1';

export interface TaskNode {
  node: NodeInstance;
  /** Module URL of the node's stage kind (the same path must exist on the compute node). */
  kindModule: string;
  /** Known at submission when every input was already cached; otherwise computed on the node. */
  key?: string;
  /** A built-in kind (keyed by version, not by its code), so the compute node keys it alike. */
  builtin?: boolean;
}

export interface BatchTask {
  format: typeof TASK_FORMAT;
  pipeline: string;
  baseDir: string;
  /** The remote cache, the only channel between the submit host and the compute nodes. */
  remote: string;
  /** The submitting run signs with a team key: a compute node without one must not use the remote. */
  signed?: boolean;
  target: string;
  /**
   * The target, its parents, and, up from every node whose key is not known yet, that node's
   * parents: every node here comes after its parents. Keys are content hashes of the inputs, so
   * a node queued behind another job gets its key only when that job's result is on the remote.
   */
  nodes: TaskNode[];
  /** The batch log, which the stage's log lines go to (recorded in the manifest's provenance). */
  log: string;
  /** Which kinds are keyed by their code (the submitting run's --rerun-triggers). */
  codeTrigger?: CodeTrigger;
}

export function buildTask(
  args: { pipeline: string; baseDir: string; remote: string; signed?: boolean; log: string; codeTrigger?: CodeTrigger },
  dag: Dag,
  registry: Registry,
  target: string,
  knownKey: (id: string) => string | undefined,
): BatchTask {
  const needed = new Set<string>();
  const visit = (id: string, isTarget: boolean) => {
    if (needed.has(id)) return;
    needed.add(id);
    // A node whose key is known stops the walk: its manifest (by key) gives its outputs.
    if (isTarget || knownKey(id) === undefined) dag.graph.forEachInNeighbor(id, (up) => visit(up, false));
  };
  visit(target, true);
  const nodes = dag.order
    .filter((id) => needed.has(id))
    .map((id): TaskNode => {
      const node = dag.graph.getNodeAttribute(id, 'node');
      const key = knownKey(id);
      const entry = registry.get(node.kind)!;
      return { node, kindModule: entry.module, ...(key ? { key } : {}), ...(entry.builtin ? { builtin: true } : {}) };
    });
  return { format: TASK_FORMAT, ...args, target, nodes };
}

/**
 * What a task is without the keys it carries: a job queued before its parents finished was
 * given fewer keys than a task built now, and computes the missing ones itself on the node.
 */
export function taskShape(task: BatchTask): { shape: JSONValue; known: Record<string, string> } {
  const known: Record<string, string> = {};
  for (const n of task.nodes) if (n.key) known[n.node.id] = n.key;
  const shape = { ...task, nodes: task.nodes.map(({ key: _key, ...rest }) => rest) };
  return { shape: shape as unknown as JSONValue, known };
}

export function parseTask(text: string): BatchTask {
  const task = JSON.parse(text) as Partial<BatchTask>;
  if (task.format !== TASK_FORMAT) throw new Error(`not a medpipe SLURM task (expected format ${TASK_FORMAT}, got ${JSON.stringify(task.format)})`);
  if (!task.target || !Array.isArray(task.nodes) || !task.nodes.some((n) => n.node.id === task.target)) throw new Error('task has no target node');
  return task as BatchTask;
}
