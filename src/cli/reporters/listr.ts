import { Listr, type ListrTaskWrapper, type ListrRendererFactory } from 'listr2';
import type { NodeState, PlannedNode, Reporter } from '../../run/reporter.js';

type Wrapper = ListrTaskWrapper<unknown, ListrRendererFactory, ListrRendererFactory>;

interface Pending {
  task?: Wrapper;
  settle?: (err?: Error) => void;
  final?: { state: NodeState; detail?: string };
  output?: string;
}

/** The interactive view: pipeline > stage group > node, each node with its live progress line. */
export class ListrReporter implements Reporter {
  private readonly nodes = new Map<string, Pending>();
  private done: Promise<unknown> = Promise.resolve();

  start(pipeline: string, planned: PlannedNode[]): void {
    const groups = new Map<string, string[]>();
    for (const n of planned) {
      this.nodes.set(n.id, {});
      groups.set(n.stage, [...(groups.get(n.stage) ?? []), n.id]);
    }
    const list = new Listr(
      [
        {
          title: pipeline,
          task: (_ctx, task) =>
            task.newListr(
              [...groups].map(([stage, ids]) => ({
                title: `${stage} (${ids.length})`,
                task: (_c, group) =>
                  group.newListr(
                    ids.map((id) => ({ title: id, task: (_cc, t) => this.attach(id, t as unknown as Wrapper) })),
                    { concurrent: true, exitOnError: false, rendererOptions: { collapseSubtasks: true } },
                  ),
              })),
              { concurrent: true, exitOnError: false },
            ),
        },
      ],
      { exitOnError: false, rendererOptions: { collapseErrors: false, showErrorMessage: true }, fallbackRenderer: 'simple' },
    );
    this.done = list.run().catch(() => undefined);
  }

  private attach(id: string, task: Wrapper): Promise<void> {
    const entry = this.nodes.get(id)!;
    entry.task = task;
    if (entry.output) task.output = entry.output;
    return new Promise<void>((resolve, reject) => {
      entry.settle = (err) => (err ? reject(err) : resolve());
      if (entry.final) this.settle(id, entry.final.state, entry.final.detail);
    });
  }

  private settle(id: string, state: NodeState, detail?: string): void {
    const entry = this.nodes.get(id)!;
    const { task, settle } = entry;
    if (!task || !settle) return;
    if (state === 'failed') {
      settle(new Error(`${id}: ${detail ?? 'failed'}`));
      return;
    }
    if (state === 'skipped' || state === 'interrupted') task.skip(`${id}: ${state}${detail ? ` (${detail})` : ''}`);
    else task.title = `${id} — ${state}${detail ? ` (${detail})` : ''}`;
    settle();
  }

  update(id: string, state: NodeState, detail?: string): void {
    const entry = this.nodes.get(id);
    if (!entry) return;
    if (['cached', 'ran', 'failed', 'skipped', 'would-run', 'interrupted'].includes(state)) {
      entry.final = { state, detail };
      this.settle(id, state, detail);
    } else if (entry.task) entry.task.title = `${id} — ${state}${detail ? ` (${detail})` : ''}`;
  }

  progress(id: string, text: string): void {
    const entry = this.nodes.get(id);
    if (!entry) return;
    entry.output = text;
    if (entry.task) entry.task.output = text;
  }

  async finish(): Promise<void> {
    await this.done;
  }
}
