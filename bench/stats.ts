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
