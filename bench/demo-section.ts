// The README's demo table as `npm run demo:table` writes it: the table of a real cold run, what
// it ran on and how long it took, between two markers so that a rerun replaces it in place.
// Pure functions; the run itself is bench/demo-table.ts.

export const START = '<!-- demo-table:start (written by `npm run demo:table`; do not edit by hand) -->';
export const END = '<!-- demo-table:end -->';

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  /** The native kernels' ISA, or why they are not in use. */
  native: string;
  node: string;
  /** 1-minute load average when the run started: the machine may be shared. */
  load: number;
}

export interface RunFacts {
  /** The table as the report node wrote it (markdown). */
  table: string;
  machine: Machine;
  wallSeconds: number;
  /** CPU seconds of the run and every process it waited for; null where unknown. */
  cpuSeconds: number | null;
  commit: string | null;
  dirty: boolean;
  date: string;
  command: string;
}

export function formatDuration(seconds: number): string {
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds - m * 60);
  return m > 0 ? `${m} min ${s} s` : `${s} s`;
}

export function demoSection(f: RunFacts): string {
  const m = f.machine;
  const cpu = f.cpuSeconds === null ? '' : `, ${formatDuration(f.cpuSeconds)} of CPU time`;
  const commit = f.commit === null ? 'outside a git checkout' : `commit ${f.commit.slice(0, 12)}${f.dirty ? ' with uncommitted changes' : ''}`;
  return [
    START,
    `Cold run (\`${f.command}\`, empty cache) on ${f.date}: **${formatDuration(f.wallSeconds)}** wall clock${cpu};`,
    `${m.cores} × ${m.cpu}, ${m.memoryGiB} GiB, native kernels ${m.native}, node ${m.node}, load average ${m.load.toFixed(1)} at the start; ${commit}.`,
    '',
    '```',
    f.table.trim(),
    '```',
    END,
  ].join('\n');
}

/** `readme` with the section between the markers replaced (the markers must be there once). */
export function replaceSection(readme: string, section: string): string {
  const a = readme.indexOf(START);
  const b = readme.indexOf(END);
  if (a < 0 || b < a || readme.indexOf(START, a + 1) >= 0) throw new Error(`README.md: expected one "${START}" ... "${END}" block`);
  return readme.slice(0, a) + section + readme.slice(b + END.length);
}
