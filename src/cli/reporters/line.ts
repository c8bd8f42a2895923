import type { NodeState, PlannedNode, Reporter } from '../../run/reporter.js';

const SYMBOL: Partial<Record<NodeState, string>> = {
  running: '▶',
  waiting: '…',
  ran: '✔',
  failed: '✖',
  skipped: '↷',
  'would-run': '○',
  interrupted: '■',
};

/** Plain timestamped lines, for CI logs and pipes: cached nodes are counted, not listed. */
export class LineReporter implements Reporter {
  private cached = 0;
  private readonly lastProgress = new Map<string, number>();

  constructor(
    private readonly write: (line: string) => void = (l) => process.stdout.write(l + '\n'),
    private readonly progressEveryMs = 5000,
  ) {}

  private line(text: string): void {
    this.write(`[${new Date().toISOString().slice(11, 19)}] ${text}`);
  }

  start(pipeline: string, nodes: PlannedNode[]): void {
    this.line(`${pipeline}: ${nodes.length} node(s) selected`);
  }

  update(id: string, state: NodeState, detail?: string): void {
    if (state === 'cached' && !detail) {
      this.cached++;
      return;
    }
    const symbol = SYMBOL[state] ?? '·';
    this.line(`${symbol} ${id} ${state}${detail ? ` (${detail})` : ''}`);
  }

  progress(id: string, text: string): void {
    const now = Date.now();
    if (now - (this.lastProgress.get(id) ?? 0) < this.progressEveryMs) return;
    this.lastProgress.set(id, now);
    this.line(`  ${id}: ${text}`);
  }

  async finish(): Promise<void> {
    if (this.cached > 0) this.line(`${this.cached} node(s) cached`);
  }
}
