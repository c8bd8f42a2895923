import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Median and spread of repeated timings: the machine is noisy, single numbers lie. */
export function summary(samples: number[]): { median: number; min: number; max: number; n: number } {
  const s = [...samples].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]!, n: s.length };
}

export function fmt(seconds: number): string {
  return seconds < 1 ? `${(seconds * 1000).toFixed(1)} ms` : `${seconds.toFixed(2)} s`;
}

export async function time<T>(fn: () => Promise<T> | T): Promise<[T, number]> {
  const t0 = process.hrtime.bigint();
  const out = await fn();
  return [out, Number(process.hrtime.bigint() - t0) / 1e9];
}

let ticks: number | undefined;

/**
 * CPU seconds (user + sys) of this process's finished children and everything they waited for
 * (Linux: /proc/self/stat cutime + cstime); undefined elsewhere. Less moved by other load on
 * the machine than wall time, so two tools can be compared on a shared machine.
 */
export function childrenCpuSeconds(): number | undefined {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks ??= Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
    return (Number(fields[13]) + Number(fields[14])) / ticks;
  } catch {
    return undefined;
  }
}
