// precision: bf16 against fp32 on this machine, each bf16 kernel (AMX tiles, vdpbf16ps) in
// its own child processes (MEDPIPE_NATIVE_BF16 picks the kernel at load): the native GEMM's
// GFLOP/s on shapes of the bench models' layers, and training images/s of bench models.
// A shared, loaded machine makes wall times meaningless, so every figure is per CPU-second
// of the child (process.cpuUsage, user + system) on ONE native thread (MEDPIPE_THREADS=1),
// and the configurations alternate (A B C A B C ...) so that all see the same load; the ratio
// is of medians.
// Standalone: node dist/bench/bf16.js [model ...]   (MEDPIPE_BENCH_ROUNDS=n, default 3)
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/engine/backend.js';
import { loadNative } from '../src/engine/native.js';
import { bf16Unavailable } from '../src/engine/precision.js';
import { BENCH_MODELS, makeTrainer } from './engine.js';

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

/** CPU seconds (user + system, every thread of this process) of f. */
function cpuSeconds(f: () => void): number {
  const c0 = process.cpuUsage();
  f();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1e6;
}

type Config = 'fp32' | 'amx' | 'avx512bf16';
const KERNELS: Exclude<Config, 'fp32'>[] = ['amx', 'avx512bf16'];

/** Child: GFLOP per CPU-second of each GEMM row in `precision`. */
function gemmChild(precision: 'fp32' | 'bf16', calls: number): number[] {
  const nat = loadNative()!;
  if (!nat.setPrecision(precision)) throw new Error(`${precision} refused`);
  return GEMMS.map(([, M, K, N]) => {
    const a = tf.randomUniform([M, K], -1, 1, 'float32', 1);
    const b = tf.randomUniform([K, N], -1, 1, 'float32', 2);
    const once = (): void => {
      const c = tf.matMul(a, b);
      c.dataSync();
      c.dispose();
    };
    once();
    const rates: number[] = [];
    for (let i = 0; i < calls; i++) rates.push((2 * M * N * K) / cpuSeconds(once) / 1e9);
    tf.dispose([a, b]);
    return median(rates);
  });
}

/** Child: images per CPU-second of training steps of `label`. */
function trainChild(label: string, steps: number): number {
  const m = BENCH_MODELS.find((b) => b.label === label);
  if (!m) throw new Error(`unknown bench model ${label}`);
  const t = makeTrainer(m);
  try {
    t.step();
    const runs: number[] = [];
    for (let i = 0; i < steps; i++) runs.push(m.batch / cpuSeconds(() => t.step()));
    return median(runs);
  } finally {
    t.dispose();
  }
}

/** One child run of `config` (kernel chosen by env at load), its JSON answer or an error. */
function inChild(config: Config, args: string[]): { value?: number | number[]; error?: string } {
  const env = { ...process.env, MEDPIPE_THREADS: '1', MEDPIPE_NATIVE_BF16: config === 'fp32' ? 'amx' : config };
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', config === 'fp32' ? 'fp32' : 'bf16', config, ...args], { encoding: 'utf8', env, maxBuffer: 1 << 24 });
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
  if (line === undefined) return { error: (r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ') || `exit ${r.status}` };
  return JSON.parse(line) as { value?: number | number[]; error?: string };
}

export async function benchBf16(log: (line: string) => void, only: string[] = []): Promise<void> {
  const info = await initBackend({ prefer: 'wasm' });
  const why = bf16Unavailable(info);
  if (why !== undefined) {
    log(`no bf16 rows: ${why}`);
    return;
  }
  const have = loadNative()!.info().bf16Kernel;
  // Without AMX only the vdpbf16ps kernel runs (a forced 'amx' child would have no bf16).
  const kernels = have === 'amx' ? KERNELS : KERNELS.filter((k) => k !== 'amx');
  const configs: Config[] = ['fp32', ...kernels];
  const rounds = Number(process.env.MEDPIPE_BENCH_ROUNDS) > 0 ? Number(process.env.MEDPIPE_BENCH_ROUNDS) : 3;
  log(`GEMM GFLOP per CPU-second, 1 native thread, ${rounds} alternating child runs per configuration (each the median of 5 calls)`);
  const gemm: Record<string, number[][]> = Object.fromEntries(configs.map((c) => [c, []]));
  for (let r = 0; r < rounds; r++) {
    for (const c of configs) {
      const res = inChild(c, ['gemm', '5']);
      if (res.error !== undefined) throw new Error(`gemm child ${c}: ${res.error}`);
      gemm[c]!.push(res.value as number[]);
    }
  }
  GEMMS.forEach(([label, M, K, N], i) => {
    const med = Object.fromEntries(configs.map((c) => [c, median(gemm[c]!.map((v) => v[i]!))]));
    const cols = configs.map((c) => `${c} ${med[c]!.toFixed(0).padStart(4)}`).join('  ');
    const ratios = kernels.map((c) => `${c}/fp32 ${(med[c]! / med.fp32!).toFixed(2)}x`).join('  ');
    log(`  ${label.padEnd(32)} [${M}x${K}]x[${K}x${N}]  ${cols}  ${ratios}`);
  });
  const defaults = ['resnet50@224', 'resnet_demo@48'];
  const models = BENCH_MODELS.filter((m) => (only.length === 0 ? defaults.includes(m.label) : only.some((o) => m.label.includes(o))));
  log(`training images per CPU-second, batch 8, 1 native thread, ${rounds} alternating child runs per configuration (each the median of its steps)`);
  for (const m of models) {
    const runs: Record<string, number[]> = Object.fromEntries(configs.map((c) => [c, []]));
    let error: string | undefined;
    for (let r = 0; r < rounds && error === undefined; r++) {
      for (const c of configs) {
        const res = inChild(c, ['train', m.label, String(m.steps)]);
        if (res.error !== undefined) error = res.error;
        else runs[c]!.push(res.value as number);
      }
    }
    if (error !== undefined) {
      log(`  ${m.label.padEnd(15)} FAILED: ${error}`);
      continue;
    }
    const med = Object.fromEntries(configs.map((c) => [c, median(runs[c]!)]));
    const list = (xs: number[]): string => xs.map((x) => x.toFixed(3)).join(' ');
    const cols = configs.map((c) => `${c} ${med[c]!.toFixed(3)} [${list(runs[c]!)}]`).join('  ');
    const ratios = kernels.map((c) => `${c}/fp32 ${(med[c]! / med.fp32!).toFixed(2)}x`).join('  ');
    log(`  ${m.label.padEnd(15)} ${cols}  ${ratios}`);
  }
}

async function child(precision: 'fp32' | 'bf16', config: string, what: string, args: string[]): Promise<void> {
  const info = await initBackend({ prefer: 'wasm' });
  const nat = loadNative();
  if (nat === undefined || (precision === 'bf16' && (bf16Unavailable(info) !== undefined || nat.info().bf16Kernel !== config))) {
    console.log(JSON.stringify({ error: `${config} not available here (${nat?.info().bf16Kernel ?? 'no native kernels'})` }));
    return;
  }
  if (!nat.setPrecision(precision)) throw new Error(`${precision} refused`);
  const value = what === 'gemm' ? gemmChild(precision, Number(args[0])) : trainChild(args[0]!, Number(args[1]));
  console.log(JSON.stringify({ value }));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [flag, precision, config, what, ...rest] = process.argv.slice(2);
  if (flag === '--child') await child(precision as 'fp32' | 'bf16', config!, what!, rest);
  else await benchBf16((l) => console.log(l), process.argv.slice(2));
}
