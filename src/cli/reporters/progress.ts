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

/**
 * What a run has done and has left, for the live view and the plain lines: N of M, running,
 * cached, elapsed, and an ETA from the durations the cache has seen for each stage.
 */
export class RunProgress {
  private readonly state = new Map<string, NodeState>();
  private readonly startedAt = new Map<string, number>();
  private readonly tookHere = new Map<string, number[]>();
  private readonly began: number;

  constructor(
    private readonly nodes: PlannedNode[],
    private readonly expected: Map<string, number>,
    private readonly jobs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.began = now();
    for (const n of nodes) this.state.set(n.id, 'pending');
  }

  update(id: string, state: NodeState): void {
    const before = this.state.get(id);
    if (before === undefined) return;
    this.state.set(id, state);
    if (state === 'running') this.startedAt.set(id, this.now());
    if (state === 'ran' && this.startedAt.has(id)) {
      const stage = this.nodes.find((n) => n.id === id)!.stage;
      this.tookHere.set(stage, [...(this.tookHere.get(stage) ?? []), (this.now() - this.startedAt.get(id)!) / 1000]);
    }
  }

  private count(pred: (s: NodeState) => boolean): number {
    let n = 0;
    for (const s of this.state.values()) if (pred(s)) n++;
    return n;
  }

  /** Seconds left, or undefined when a stage still to run has never been timed. */
  eta(): number | undefined {
    let work = 0;
    let left = 0;
    for (const n of this.nodes) {
      const s = this.state.get(n.id)!;
      if (FINAL_STATES.has(s)) continue;
      const here = this.tookHere.get(n.stage);
      const expected = here ? median(here)! : this.expected.get(n.stage);
      if (expected === undefined) return undefined;
      left++;
      work += s === 'running' ? Math.max(0, expected - (this.now() - (this.startedAt.get(n.id) ?? this.now())) / 1000) : expected;
    }
    return left === 0 ? 0 : work / Math.min(this.jobs, left);
  }

  elapsed(): number {
    return (this.now() - this.began) / 1000;
  }

  /** `12/106 done · 2 running · 3 cached · 1 failed · 2:31 elapsed · ETA 4:10` */
  summary(): string {
    const done = this.count((s) => FINAL_STATES.has(s));
    const parts = [`${done}/${this.nodes.length} done`];
    const running = this.count((s) => s === 'running');
    const waiting = this.count((s) => s === 'waiting');
    const cached = this.count((s) => s === 'cached');
    const failed = this.count((s) => s === 'failed');
    if (running) parts.push(`${running} running`);
    if (waiting) parts.push(`${waiting} waiting`);
    if (cached) parts.push(`${cached} cached`);
    if (failed) parts.push(`${failed} failed`);
    parts.push(`${clock(this.elapsed())} elapsed`);
    const eta = this.eta();
    if (done < this.nodes.length) parts.push(eta === undefined ? 'ETA n/a (first run of a stage)' : `ETA ${clock(eta)}`);
    return parts.join(' · ');
  }

  /** Per stage, in pipeline order (the order of first appearance). */
  stages(): StageCounts[] {
    const out = new Map<string, StageCounts>();
    for (const n of this.nodes) {
      const c = out.get(n.stage) ?? { stage: n.stage, total: 0, counts: {}, running: [] };
      const s = this.state.get(n.id)!;
      c.total++;
      c.counts[s] = (c.counts[s] ?? 0) + 1;
      if (s === 'running' || s === 'waiting') c.running.push(n.id);
      out.set(n.stage, c);
    }
    return [...out.values()];
  }
}

const ORDER: NodeState[] = ['ran', 'cached', 'would-run', 'failed', 'skipped', 'interrupted', 'running', 'waiting', 'pending'];
const WORD: Partial<Record<NodeState, string>> = { pending: 'queued' };

/** `finetune: 3 ran, 2 cached, 1 running, 30 queued` */
export function stageLine(c: StageCounts): string {
  const parts = ORDER.filter((s) => c.counts[s]).map((s) => `${c.counts[s]} ${WORD[s] ?? s}`);
  return `${c.stage} (${c.total}): ${parts.join(', ')}`;
}
