// The machine's fp32 FMA peak (bench/fma-peak.c, compiled here with the system's C
// compiler), against which the engine rows' GFLOP/s are quoted as "% of peak".

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Peak {
  gflops: number;
  threads: number;
  isa: string;
}

/** The best of `tries` runs on `threads` threads, or why there is no figure. */
export function fmaPeak(threads: number, tries = 3): Peak | string {
  const source = fileURLToPath(new URL('../../bench/fma-peak.c', import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), 'medpipe-peak-'));
  try {
    const exe = join(dir, 'fma-peak');
    const cc = process.env.CC ?? 'cc';
    const built = spawnSync(cc, ['-O3', '-march=native', '-pthread', source, '-o', exe], { encoding: 'utf8' });
    if (built.error) return `no C compiler (${cc}: ${built.error.message})`;
    if (built.status !== 0) return `${cc} could not build bench/fma-peak.c: ${(built.stderr.trim().split('\n')[0] ?? '').slice(0, 160)}`;
    let best: Peak | undefined;
    for (let i = 0; i < tries; i++) {
      const r = spawnSync(exe, [String(threads)], { encoding: 'utf8' });
      if (r.status !== 0) return `bench/fma-peak.c exited ${r.status ?? r.signal}`;
      const p = JSON.parse(r.stdout) as Peak;
      if (best === undefined || p.gflops > best.gflops) best = p;
    }
    return best ?? 'no run';
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
