import type { NodeState, PlannedNode, Reporter } from '../../run/reporter.js';
import { RunProgress, stageLine } from './progress.js';
import type { ViewOptions } from './listr.js';

const SYMBOL: Partial<Record<NodeState, string>> = {
  running: '▶',
  waiting: '…',
  ran: '✔',
  failed: '✖',
  skipped: '↷',
  'would-run': '○',
  interrupted: '■',
  'not-started': '□',
};

const ENDS = new Set<NodeState>(['ran', 'failed', 'skipped', 'interrupted', 'not-started']);

/**
 * Plain timestamped lines, for CI logs and pipes: cached nodes are counted, not listed; every
 * node that ends carries the run's N/M, elapsed and ETA; the end lists each stage's outcomes.
 */
export class LineReporter implements Reporter {
  private cached = 0;
  private readonly lastProgress = new Map<string, number>();
  private progressOf?: RunProgress;

  constructor(
    private readonly write: (line: string) => void = (l) => process.stdout.write(l + '\n'),
    private readonly progressEveryMs = 5000,
    private readonly options: ViewOptions = {},
  ) {}

  private line(text: string): void {
    this.write(`[${new Date().toISOString().slice(11, 19)}] ${text}`);
  }

  start(pipeline: string, nodes: PlannedNode[]): void {
    this.progressOf = new RunProgress(nodes, this.options.expected ?? new Map(), this.options.jobs ?? 1);
    this.line(`${pipeline}: ${nodes.length} node(s) selected`);
  }

  update(id: string, state: NodeState, detail?: string): void {
    this.progressOf?.update(id, state);
    if (state === 'cached' && !detail) {
      this.cached++;
      return;
    }
    const symbol = SYMBOL[state] ?? '·';
    const where = ENDS.has(state) && this.progressOf ? `  [${this.progressOf.summary()}]` : '';
    this.line(`${symbol} ${id} ${state === 'not-started' ? 'not started' : state}${detail ? ` (${detail})` : ''}${where}`);
  }

  progress(id: string, text: string): void {
    const now = Date.now();
    if (now - (this.lastProgress.get(id) ?? 0) < this.progressEveryMs) return;
    this.lastProgress.set(id, now);
    this.line(`  ${id}: ${text}`);
  }

  async finish(): Promise<void> {
    if (this.cached > 0) this.line(`${this.cached} node(s) cached`);
    const stages = this.progressOf?.stages() ?? [];
    if (stages.some((c) => (c.counts['ran'] ?? 0) + (c.counts['failed'] ?? 0) + (c.counts['interrupted'] ?? 0) > 0)) for (const c of stages) this.line(`  ${stageLine(c)}`);
  }
}
