export type NodeState = 'pending' | 'waiting' | 'running' | 'cached' | 'ran' | 'failed' | 'skipped' | 'would-run' | 'interrupted' | 'not-started';

export interface PlannedNode {
  id: string;
  stage: string;
}

/** What the scheduler tells a view. Implementations: listr2 (TTY) and plain lines (CI, pipes). */
export interface Reporter {
  start(pipeline: string, nodes: PlannedNode[]): void;
  update(id: string, state: NodeState, detail?: string): void;
  progress(id: string, text: string): void;
  finish(): Promise<void>;
}

export const FINAL_STATES: ReadonlySet<NodeState> = new Set(['cached', 'ran', 'failed', 'skipped', 'would-run', 'interrupted', 'not-started']);
