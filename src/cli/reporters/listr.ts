import { Listr, type ListrTaskWrapper, type ListrRendererFactory } from 'listr2';
import { FINAL_STATES, type NodeState, type PlannedNode, type Reporter } from '../../run/reporter.js';
import { RunProgress, stageLine } from './progress.js';

type Wrapper = ListrTaskWrapper<unknown, ListrRendererFactory, ListrRendererFactory>;

interface Group {
  stage: string;
  ids: string[];
  task?: Wrapper;
  settle?: (err?: Error) => void;
}

export interface ViewOptions {
  /** Median seconds per stage, from the cache: the ETA (a function: read when the first ETA is shown). */
  expected?: ReadonlyMap<string, number> | (() => ReadonlyMap<string, number>);
  /** Nodes that run at once. */
  jobs?: number;
  /** Terminal rows the view may take (default: the terminal's). */
  rows?: number;
}

/**
 * The interactive view, one line per stage in pipeline order (`finetune (36): 3 ran, 2 running,
 * 31 queued`) under a pipeline line with N/M, elapsed and ETA; running nodes are listed with
 * their progress under their stage, as many as fit the terminal. Finished stages keep their
 * counts, so the screen at the end is the run's summary.
 */
export class ListrReporter implements Reporter {
  private progressOf?: RunProgress;
  private readonly groups = new Map<string, Group>();
  private readonly stageOf = new Map<string, string>();
  private readonly lines = new Map<string, string>();
  private readonly failures = new Map<string, string>();
  private top?: Wrapper;
  private pipeline = '';
  private done: Promise<unknown> = Promise.resolve();
  private ticker?: NodeJS.Timeout;

  constructor(private readonly options: ViewOptions = {}) {}

  start(pipeline: string, planned: PlannedNode[]): void {
    this.pipeline = pipeline;
    this.progressOf = new RunProgress(planned, this.options.expected ?? new Map(), this.options.jobs ?? 1);
    for (const n of planned) {
      this.stageOf.set(n.id, n.stage);
      const g = this.groups.get(n.stage) ?? { stage: n.stage, ids: [] };
      g.ids.push(n.id);
      this.groups.set(n.stage, g);
    }
    const list = new Listr(
      [
        {
          title: pipeline,
          task: (_ctx, task) => {
            this.top = task as unknown as Wrapper;
            this.refresh();
            return task.newListr(
              [...this.groups.values()].map((g) => ({ title: g.stage, task: (_c, t) => this.attach(g, t as unknown as Wrapper), rendererOptions: { outputBar: 1, persistentOutput: false } })),
              { concurrent: true, exitOnError: false },
            );
          },
        },
      ],
      { exitOnError: false, rendererOptions: { collapseErrors: false, showErrorMessage: true, collapseSubtasks: false }, fallbackRenderer: 'simple' },
    );
    this.done = list.run().catch(() => undefined);
    this.ticker = setInterval(() => this.refresh(), 250);
    this.ticker.unref();
  }

  private attach(g: Group, task: Wrapper): Promise<void> {
    g.task = task;
    return new Promise<void>((resolve, reject) => {
      g.settle = (err) => (err ? reject(err) : resolve());
      this.refresh();
    });
  }

  /** How many running-node lines each stage may show so the view fits the terminal. */
  private budget(): number {
    const rows = this.options.rows ?? process.stdout.rows ?? 40;
    const fixed = 2 + this.groups.size;
    return Math.max(1, rows - fixed - 2);
  }

  private refresh(): void {
    const p = this.progressOf;
    if (!p) return;
    if (this.top) this.top.title = `${this.pipeline} — ${p.summary()}`;
    let room = this.budget();
    for (const c of p.stages()) {
      const g = this.groups.get(c.stage)!;
      // Not started yet, or finished: listr2 takes no more output from a task that completed.
      if (!g.task || !g.settle) continue;
      g.task.title = stageLine(c);
      const shown = c.running.slice(0, Math.max(0, room));
      room -= shown.length;
      const more = c.running.length - shown.length;
      const out = shown.map((id) => `▶ ${id}${this.lines.get(id) ? `: ${this.lines.get(id)}` : ''}`);
      if (more > 0) out.push(`… and ${more} more running`);
      g.task.output = out.join('\n');
      const finished = (Object.entries(c.counts) as [NodeState, number][]).reduce((n, [s, k]) => n + (FINAL_STATES.has(s) ? k : 0), 0) === c.total;
      if (finished && g.settle) {
        const settle = g.settle;
        g.settle = undefined;
        const failed = g.ids.filter((id) => this.failures.has(id));
        if (failed.length > 0) settle(new Error(`${stageLine(c)}\n${failed.map((id) => `  ✖ ${id}: ${this.failures.get(id)}`).join('\n')}`));
        else settle();
      }
    }
  }

  update(id: string, state: NodeState, detail?: string): void {
    if (!this.stageOf.has(id)) return;
    this.progressOf?.update(id, state);
    if (state === 'failed') this.failures.set(id, detail ?? 'failed');
    if (state === 'waiting' && detail) this.lines.set(id, detail);
    this.refresh();
  }

  /** Progress lines come often (every batch): kept here, drawn by the next tick or state change. */
  progress(id: string, text: string): void {
    if (!this.stageOf.has(id)) return;
    this.lines.set(id, text);
  }

  async finish(): Promise<void> {
    this.refresh();
    if (this.ticker) clearInterval(this.ticker);
    await this.done;
  }
}
