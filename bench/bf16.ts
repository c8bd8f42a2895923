// precision: bf16 against fp32 on this machine: the native GEMM's GFLOP/s on shapes of the
// bench models' layers, and training images/s of each bench model, fp32 and bf16 runs
// interleaved (A B A B ...) so that both see the same machine load; the ratio is of medians.
// Standalone: node dist/bench/bf16.js [model ...]   (MEDPIPE_BENCH_ROUNDS=n, default 3)
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/engine/backend.js';
import { loadNative } from '../src/engine/native.js';
import { bf16Unavailable } from '../src/engine/precision.js';
import { BENCH_MODELS, measureInChild } from './engine.js';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** [label, M, K, N]: im2col GEMMs of ResNet50@224 batch 8 and a DeiT-S MLP matmul. */
const GEMMS: [string, number, number, number][] = [
  ['resnet50 3x3 conv 14x14x256', 8 * 14 * 14, 9 * 256, 256],
  ['resnet50 1x1 conv 56x56 64->256', 8 * 56 * 56, 64, 256],
  ['deit_s mlp 1576x384 . 384x1536', 8 * 197, 384, 1536],
];

export async function benchBf16(log: (line: string) => void, only: string[] = []): Promise<void> {
  const info = await initBackend({ prefer: 'wasm' });
  const why = bf16Unavailable(info);
  if (why !== undefined) {
    log(`no bf16 rows: ${why}`);
    return;
  }
  const nat = loadNative()!;
  const rounds = Number(process.env.MEDPIPE_BENCH_ROUNDS) > 0 ? Number(process.env.MEDPIPE_BENCH_ROUNDS) : 3;
  log(`native GEMM (${nat.info().isa}, ${nat.info().threads} threads) GFLOP/s, median of ${4 * rounds} calls each, fp32 and bf16 alternating`);
  for (const [label, M, K, N] of GEMMS) {
    const a = tf.randomUniform([M, K], -1, 1, 'float32', 1);
    const b = tf.randomUniform([K, N], -1, 1, 'float32', 2);
    const time = (): number => {
      const t0 = performance.now();
      const c = tf.matMul(a, b);
      c.dataSync();
      const s = (performance.now() - t0) / 1000;
      c.dispose();
      return s;
    };
    time();
    const runs: Record<'fp32' | 'bf16', number[]> = { fp32: [], bf16: [] };
    for (let i = 0; i < 4 * rounds; i++) {
      for (const p of ['fp32', 'bf16'] as const) {
        nat.setPrecision(p);
        runs[p].push((2 * M * N * K) / time() / 1e9);
      }
    }
    nat.setPrecision('fp32');
    tf.dispose([a, b]);
    const f = median(runs.fp32);
    const h = median(runs.bf16);
    log(`  ${label.padEnd(34)} [${M}x${K}]x[${K}x${N}]  fp32 ${f.toFixed(0).padStart(4)}  bf16 ${h.toFixed(0).padStart(4)}  bf16/fp32 ${(h / f).toFixed(2)}x`);
  }
  const models = BENCH_MODELS.filter((m) => only.length === 0 || only.some((o) => m.label.includes(o)));
  log(`training img/s, batch 8, ${rounds} interleaved fp32/bf16 child runs per model (each the median of its steps)`);
  for (const m of models) {
    const runs: Record<'fp32' | 'bf16', number[]> = { fp32: [], bf16: [] };
    let error: string | undefined;
    for (let r = 0; r < rounds && error === undefined; r++) {
      for (const precision of ['fp32', 'bf16'] as const) {
        const res = measureInChild(m.label, m.steps, false, { precision });
        if (!res.measured) error = res.error ?? 'no result';
        else runs[precision].push(res.measured.train);
      }
    }
    if (error !== undefined) {
      log(`  ${m.label.padEnd(15)} FAILED: ${error}`);
      continue;
    }
    const f = median(runs.fp32);
    const h = median(runs.bf16);
    const list = (xs: number[]): string => xs.map((x) => x.toFixed(2)).join(' ');
    log(`  ${m.label.padEnd(15)} fp32 ${f.toFixed(2).padStart(6)} [${list(runs.fp32)}]  bf16 ${h.toFixed(2).padStart(6)} [${list(runs.bf16)}]  bf16/fp32 ${(h / f).toFixed(2)}x`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await benchBf16((l) => console.log(l), process.argv.slice(2));
}
