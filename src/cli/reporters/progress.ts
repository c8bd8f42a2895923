import { FINAL_STATES, type NodeState, type PlannedNode } from '../../run/reporter.js';
import { median } from '../../report/table.js';
import { listManifests } from '../../store/maintenance.js';
import type { Store } from '../../store/store.js';

/** Median seconds a node of each stage took, from the results this cache holds (this pipeline's first). */
export function stageDurations(store: Store, pipeline: string): Map<string, number> {
  const own = new Map<string, number[]>();
  const any = new Map<string, number[]>();
  for (const m of listManifests(store)) {
    const add = (into: Map<string, number[]>) => into.set(m.stage, [...(into.get(m.stage) ?? []), m.provenance.duration_s]);
    add(any);
    if (m.pipeline === pipeline) add(own);
  }
  const out = new Map<string, number>();
  for (const [stage, xs] of any) out.set(stage, median(own.get(stage) ?? xs)!);
  return out;
}

export function clock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(h > 0 ? 2 : 1, '0');
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

export interface StageCounts {
  stage: string;
  total: number;
  counts: Partial<Record<NodeState, number>>;
  /** Running nodes, in pipeline order. */
  running: string[];
}

/** A stage's nodes by state, and its running ones by pipeline position. */
interface StageTally {
  stage: string;
  total: number;
  counts: Partial<Record<NodeState, number>>;
  /** Running or waiting nodes: id -> position in the pipeline. */
  active: Map<string, number>;
  /** Seconds each node of the stage that ran here took, kept sorted for the median. */
  took: number[];
}

/**
 * What a run has done and has left, for the live view and the plain lines: N of M, running,
 * cached, elapsed, and an ETA from the durations the cache has seen for each stage. Counts are
 * kept as states change, so a summary costs one step per stage and running node, not per node:
 * it is asked for after every node, and a pass over all of them made a 1,000-node run quadratic.
 */
export class RunProgress {
  private readonly state = new Map<string, NodeState>();
  private readonly where = new Map<string, { tally: StageTally; position: number }>();
  private readonly tallies = new Map<string, StageTally>();
  private readonly totals: Partial<Record<NodeState, number>> = {};
  private readonly startedAt = new Map<string, number>();
  private readonly began: number;

  constructor(
    private readonly nodes: PlannedNode[],
    /** Median seconds per stage; a function is called on the first ETA (it reads every cached manifest). */
    private expected: ReadonlyMap<string, number> | (() => ReadonlyMap<string, number>),
    private readonly jobs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.began = now();
    nodes.forEach((n, position) => {
      let tally = this.tallies.get(n.stage);
      if (!tally) this.tallies.set(n.stage, (tally = { stage: n.stage, total: 0, counts: {}, active: new Map(), took: [] }));
      tally.total++;
      this.where.set(n.id, { tally, position });
      this.move(n.id, tally, position, undefined, 'pending');
    });
  }

  private move(id: string, tally: StageTally, position: number, from: NodeState | undefined, to: NodeState): void {
    if (from !== undefined) {
      tally.counts[from]! -= 1;
      this.totals[from]! -= 1;
    }
    tally.counts[to] = (tally.counts[to] ?? 0) + 1;
    this.totals[to] = (this.totals[to] ?? 0) + 1;
    this.state.set(id, to);
    if (to === 'running' || to === 'waiting') tally.active.set(id, position);
    else tally.active.delete(id);
  }

  update(id: string, state: NodeState): void {
    const before = this.state.get(id);
    const at = this.where.get(id);
    if (before === undefined || !at) return;
    this.move(id, at.tally, at.position, before, state);
    if (state === 'running') this.startedAt.set(id, this.now());
    if (state === 'ran' && this.startedAt.has(id)) insertSorted(at.tally.took, (this.now() - this.startedAt.get(id)!) / 1000);
  }

  private total(pred: (s: NodeState) => boolean): number {
    let n = 0;
    for (const [s, k] of Object.entries(this.totals) as [NodeState, number][]) if (pred(s)) n += k;
    return n;
  }

  /** Seconds left, or undefined when a stage still to run has never been timed. */
  eta(): number | undefined {
    let work = 0;
    let left = 0;
    for (const t of this.tallies.values()) {
      let open = 0;
      for (const [s, k] of Object.entries(t.counts) as [NodeState, number][]) if (!FINAL_STATES.has(s)) open += k;
      if (open === 0) continue;
      if (typeof this.expected === 'function') this.expected = this.expected();
      const expected = t.took.length > 0 ? sortedMedian(t.took) : this.expected.get(t.stage);
      if (expected === undefined) return undefined;
      left += open;
      const running = t.counts['running'] ?? 0;
      work += (open - running) * expected;
      for (const id of t.active.keys()) {
        if (this.state.get(id) !== 'running') continue;
        work += Math.max(0, expected - (this.now() - (this.startedAt.get(id) ?? this.now())) / 1000);
      }
    }
    return left === 0 ? 0 : work / Math.min(this.jobs, left);
  }

  elapsed(): number {
    return (this.now() - this.began) / 1000;
  }

  /** `12/106 done · 2 running · 3 cached · 1 failed · 2:31 elapsed · ETA 4:10` */
  summary(): string {
    const ended = this.total((s) => FINAL_STATES.has(s));
    const interrupted = this.totals['interrupted'] ?? 0;
    const notStarted = this.totals['not-started'] ?? 0;
    // Nodes stopped by Ctrl-C, or never started, have ended but are not done: said apart.
    const parts = [`${ended - interrupted - notStarted}/${this.nodes.length} done`];
    const running = this.totals['running'] ?? 0;
    const waiting = this.totals['waiting'] ?? 0;
    const cached = this.totals['cached'] ?? 0;
    const failed = this.totals['failed'] ?? 0;
    if (running) parts.push(`${running} running`);
    if (waiting) parts.push(`${waiting} waiting`);
    if (cached) parts.push(`${cached} cached`);
    if (failed) parts.push(`${failed} failed`);
    if (interrupted) parts.push(`${interrupted} interrupted`);
    if (notStarted) parts.push(`${notStarted} not started`);
    parts.push(`${clock(this.elapsed())} elapsed`);
    const eta = this.eta();
    if (ended < this.nodes.length) parts.push(eta === undefined ? 'ETA n/a (first run of a stage)' : `ETA ${clock(eta)}`);
    return parts.join(' · ');
  }

  /** Per stage, in pipeline order (the order of first appearance). */
  stages(): StageCounts[] {
    return [...this.tallies.values()].map((t) => ({
      stage: t.stage,
      total: t.total,
      counts: Object.fromEntries(Object.entries(t.counts).filter(([, k]) => k > 0)),
      running: [...t.active].sort((a, b) => a[1] - b[1]).map(([id]) => id),
    }));
  }
}

function insertSorted(xs: number[], x: number): void {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  xs.splice(lo, 0, x);
}

/** The median of a non-empty sorted list, as `median` computes it. */
function sortedMedian(s: number[]): number {
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const ORDER: NodeState[] = ['ran', 'cached', 'would-run', 'failed', 'skipped', 'interrupted', 'not-started', 'running', 'waiting', 'pending'];
const WORD: Partial<Record<NodeState, string>> = { pending: 'queued', 'not-started': 'not started' };

/** `finetune: 3 ran, 2 cached, 1 running, 30 queued` */
export function stageLine(c: StageCounts): string {
  const parts = ORDER.filter((s) => c.counts[s]).map((s) => `${c.counts[s]} ${WORD[s] ?? s}`);
  return `${c.stage} (${c.total}): ${parts.join(', ')}`;
}
