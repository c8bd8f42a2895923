import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeReason } from '../run/reason.js';
import type { NodeOutcome } from '../run/types.js';

/** A stack frame ("    at f (file:line)"): in the log for whoever debugs the kind, noise in a summary. */
const STACK_FRAME = /^\s+at \S/;

/** The last lines of a node's log, stack frames left out (the log keeps them). */
export function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').filter((l) => !STACK_FRAME.test(l)).slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export function summarize(outcomes: Map<string, NodeOutcome>, cacheDir: string, seconds: number): string {
  const counts = new Map<string, number>();
  for (const o of outcomes.values()) counts.set(o.state, (counts.get(o.state) ?? 0) + 1);
  const parts = ['ran', 'cached', 'would-run', 'failed', 'skipped', 'interrupted', 'not-started'].filter((s) => counts.get(s)).map((s) => `${counts.get(s)} ${s === 'not-started' ? 'not started' : s}`);
  const lines = [`${parts.join(', ') || 'nothing to do'} in ${seconds.toFixed(2)} s`];
  for (const [id, o] of outcomes) {
    if (o.state !== 'failed') continue;
    lines.push('', `✖ ${id}: ${o.reason ? describeReason(o.reason) : 'failed'}`);
    if (o.log) {
      const path = join(cacheDir, o.log);
      lines.push(`  log: ${path}`);
      const last = tail(path, 8);
      if (last) lines.push(last.replace(/^/gm, '  | '));
    }
  }
  return lines.join('\n');
}

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}
