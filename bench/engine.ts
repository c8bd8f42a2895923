// CPU engine throughput: training (forward, cross-entropy, backward, medpipe's Adam) and
// inference images/s of ResNet50@224, DeiT-S@224 and the demo's small models at the demo's
// 48 px and at 64 px, batch 8 in one piece, on the backend medpipe chooses, beside PyTorch's
// (bench/torch_step.py) where it is installed. Below the target (0.5x PyTorch) a
// per-kernel profile of one training step is printed.
//
// Standalone: node dist/bench/engine.js [model ...]
// (env MEDPIPE_BENCH_STEPS=n overrides each model's step count; MEDPIPE_BENCH_WARMUP_S=s the
// training warm-up, default 2 s, at least one step; MEDPIPE_BENCH_PROFILE=1 always profiles,
// 0 never)

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { initBackend, parseBackendChoice } from '../src/engine/backend.js';
import { bf16Unavailable } from '../src/engine/precision.js';
import { softmaxCrossEntropy } from '../src/engine/fused-ops.js';
import { loadNative } from '../src/engine/native.js';
import { fmaPeak, type Peak } from './peak.js';
import { profileKernels, type KernelTime } from '../src/engine/profile.js';
import { forward, trainStep } from '../src/ml/models/forward.js';
import { createParams, disposeParams, trainableVariables, type ParamMap } from '../src/ml/models/params.js';
import { modelSpec } from '../src/ml/models/registry.js';
import { initState } from '../src/ml/models/state.js';
import { Adam } from '../src/ml/train/adam.js';
import type { ModelSpec } from '../src/ml/models/types.js';

export interface BenchModel {
  /** Row label, also the name bench/torch_step.py takes. */
  label: string;
  model: string;
  imageSize: number;
  /** Effective batch. */
  batch: number;
  /** Micro-batch of the training step (gradient accumulation over batch / micro). */
  micro: number;
  /** Timed steps (median reported): more for the millisecond-scale small models, whose
   *  single steps swing with the machine's noise. */
  steps: number;
}

export const BENCH_MODELS: BenchModel[] = [
  { label: 'resnet50@224', model: 'resnet50', imageSize: 224, batch: 8, micro: 8, steps: 3 },
  { label: 'deit_s@224', model: 'deit_small_patch16_224', imageSize: 224, batch: 8, micro: 8, steps: 3 },
  // The demo pipeline's resolution (pipelines/table1-demo.yaml), and 64 px.
  { label: 'resnet_demo@48', model: 'resnet_demo', imageSize: 48, batch: 8, micro: 8, steps: 15 },
  { label: 'vit_demo@48', model: 'vit_demo', imageSize: 48, batch: 8, micro: 8, steps: 15 },
  { label: 'resnet_demo@64', model: 'resnet_demo', imageSize: 64, batch: 8, micro: 8, steps: 15 },
  { label: 'vit_demo@64', model: 'vit_demo', imageSize: 64, batch: 8, micro: 8, steps: 15 },
];

const NUM_CLASSES = 10;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function seededValues(n: number, seed: number): Float32Array {
  const v = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    v[i] = s / 2 ** 31 - 1;
  }
  return v;
}

export interface Trainer {
  spec: ModelSpec;
  params: ParamMap;
  step(): number;
  infer(): void;
  dispose(): void;
}

/** A model with fresh weights, Adam, and one fixed synthetic batch. */
export function makeTrainer(m: BenchModel, seed = 1): Trainer {
  const spec = modelSpec(m.model, { numClasses: NUM_CLASSES, imageSize: m.imageSize });
  const params = createParams(spec, initState(spec, seed));
  const vars = trainableVariables(params);
  const named = new Map(vars.map((v) => [v.name, v]));
  // medpipe's Adam, as the finetune and DINO stages run it (fused on the native engine).
  const opt = new Adam(tf);
  const px = m.imageSize * m.imageSize * spec.config.channels;
  const x = tf.tensor4d(seededValues(m.batch * px, seed + 1), [m.batch, m.imageSize, m.imageSize, spec.config.channels]);
  const labels = tf.tensor1d(Array.from({ length: m.batch }, (_, i) => i % NUM_CLASSES), 'int32');
  const chunks: { x: tf.Tensor4D; y: tf.Tensor2D }[] = [];
  for (let o = 0; o < m.batch; o += m.micro) {
    const n = Math.min(m.micro, m.batch - o);
    chunks.push({
      x: tf.slice(x, [o, 0, 0, 0], [n, -1, -1, -1]),
      y: tf.oneHot(tf.slice(labels, [o], [n]), NUM_CLASSES).toFloat() as tf.Tensor2D,
    });
  }
  return {
    spec,
    params,
    step() {
      // Sum of per-example losses / effective batch: micro-batch gradients add up exactly
      // (BatchNorm aside: each micro-batch normalises with its own statistics).
      let acc: tf.Tensor[] | undefined;
      let total = 0;
      chunks.forEach((c, i) => {
        // The tape-free step graph where the family has one (finetune's choice too).
        const { value, grads } = trainStep(spec, params, c.x, c.y, 1 / m.batch, { updateStats: i === 0 }) ?? tf.variableGrads(() => {
          const logits = forward(spec, params, c.x, { training: true, updateStats: i === 0 });
          return softmaxCrossEntropy(tf, logits, c.y, 1 / m.batch) ?? (tf.div(tf.neg(tf.sum(tf.mul(c.y, tf.logSoftmax(logits)))), m.batch) as tf.Scalar);
        }, vars);
        total += value.dataSync()[0];
        value.dispose();
        const gs = vars.map((v) => grads[v.name]);
        if (acc === undefined) acc = gs;
        else {
          const prev: tf.Tensor[] = acc;
          acc = prev.map((a, j) => tf.add(a, gs[j]));
          tf.dispose([...prev, ...gs]);
        }
      });
      const summed: tf.Tensor[] = acc ?? [];
      opt.apply(named, new Map(vars.map((v, j) => [v.name, summed[j]])), 1e-4);
      tf.dispose(acc);
      return total;
    },
    infer() {
      const y = tf.tidy(() => forward(spec, params, x, { training: false }));
      y.dataSync();
      y.dispose();
    },
    dispose() {
      tf.dispose([x, labels, ...chunks.flatMap((c) => [c.x, c.y])]);
      opt.dispose();
      disposeParams(params);
    },
  };
}

export interface Measured {
  train: number;
  infer: number;
  trainRuns: number[];
  /** Convolution and matrix-product FLOPs of one image's inference forward (src/engine/flops.ts). */
  forwardFlops?: number;
  profile?: KernelTime[];
  profileTotalMs?: number;
}

function timeIt(f: () => void): number {
  const t0 = performance.now();
  f();
  return (performance.now() - t0) / 1000;
}

/** Seconds from the environment variable `name`: a finite number >= 0, else `fallback`
 *  (bench/torch_step.py's env_seconds reads them by the same rule). */
function envSeconds(name: string, fallback: number): number {
  const raw = process.env[name];
  const v = Number(raw);
  return raw !== undefined && raw !== '' && Number.isFinite(v) && v >= 0 ? v : fallback;
}

/** Seconds of warm-up before the timed steps (env MEDPIPE_BENCH_WARMUP_S overrides). */
const warmupSeconds = (): number => envSeconds('MEDPIPE_BENCH_WARMUP_S', 2);

/** Calls f at least once, then until `seconds` have passed. V8 optimises the JS of a step
 *  (tfjs's and medpipe's) in background compiler threads for about the first 100 steps of
 *  a small model (~0.5 s of CPU, measured at resnet_demo@48): on 2 cores those threads take
 *  a core from the native pool, and one warm-up step left every timed step of the demo
 *  rows inside that transient (runs 2-4x apart). A training run of thousands of steps pays
 *  it once; a step of ResNet50@224 is longer than the whole warm-up. */
function warmUp(f: () => void, seconds: number): void {
  const t0 = performance.now();
  do f();
  while (performance.now() - t0 < seconds * 1000);
}

/** Seconds the timed runs of one measurement last at least (env MEDPIPE_BENCH_TIMED_S
 *  overrides; bench/torch_step.py reads the same). */
const timedSeconds = (): number => envSeconds('MEDPIPE_BENCH_TIMED_S', 1);

/** Images/s of each call of f: at least `n` calls and at least `seconds` of them. A fixed
 *  count of millisecond-scale inference calls (15 of resnet_demo's, ~15 ms in all) let
 *  one scheduler hiccup or a late JIT tier move the median by 2x between processes. */
function timedRuns(f: () => void, batch: number, n: number, seconds: number): number[] {
  const out: number[] = [];
  const t0 = performance.now();
  while (out.length < n || performance.now() - t0 < seconds * 1000) out.push(batch / timeIt(f));
  return out;
}

/** One inference forward's FLOPs per image, counted by the kernel profiler (synchronous
 *  backends only: webgpu's kernels are not wrapped). */
function forwardFlops(t: Trainer, batch: number): number | undefined {
  if (tf.getBackend() === 'webgpu') return undefined;
  const p = profileKernels(tf, tf.getBackend());
  try {
    t.infer();
    return p.read().reduce((acc, k) => acc + k.flops, 0) / batch;
  } finally {
    p.stop();
  }
}

export function measure(m: BenchModel, steps: number, withProfile: boolean): Measured {
  const t = makeTrainer(m);
  try {
    const warm = warmupSeconds();
    warmUp(() => t.step(), warm); // also kernel setup, XNNPACK packing, heap growth
    const timed = steps > 0 ? timedSeconds() : 0;
    const trainRuns = steps > 0 ? timedRuns(() => t.step(), m.batch, steps, timed) : [];
    warmUp(() => t.infer(), warm / 4);
    const inferRuns = timedRuns(() => t.infer(), m.batch, Math.max(3, steps), timed);
    const out: Measured = { train: median(trainRuns), infer: median(inferRuns), trainRuns, forwardFlops: forwardFlops(t, m.batch) };
    if (withProfile) {
      const p = profileKernels(tf, tf.getBackend());
      try {
        out.profileTotalMs = timeIt(() => t.step()) * 1000;
        out.profile = p.read();
      } finally {
        p.stop();
      }
    }
    return out;
  } finally {
    t.dispose();
  }
}

export interface TorchResult {
  label: string;
  train: number;
  infer: number;
}

/** PyTorch's numbers; `missing` when no python3 here imports torch (no row will have
 *  them), `failed` when torch_step.py failed on these models (the next may not). */
export type TorchOutcome = { rows: TorchResult[] } | { missing: string } | { failed: string };

export function torchBench(models: BenchModel[], steps: number): TorchOutcome {
  const script = fileURLToPath(new URL('../../bench/torch_step.py', import.meta.url));
  const pythons = ['/usr/bin/python3', 'python3'].filter((p) => !p.startsWith('/') || existsSync(p));
  for (const py of pythons) {
    const probe = spawnSync(py, ['-c', 'import torch'], { encoding: 'utf8' });
    if (probe.status !== 0) continue;
    const args = [script, '--steps', String(steps), ...models.map((m) => `${m.label}:${m.batch}`)];
    const r = spawnSync(py, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (r.status !== 0) return { failed: `torch_step.py failed: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}` };
    const rows: TorchResult[] = [];
    for (const line of r.stdout.split('\n')) {
      if (line.startsWith('{')) rows.push(JSON.parse(line) as TorchResult);
    }
    return { rows };
  }
  return { missing: 'PyTorch not installed (python3 -c "import torch" fails): no yardstick' };
}

const f2 = (v: number): string => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
/** Every run when there are few, else the range. */
const runs = (xs: number[]): string => (xs.length <= 5 ? xs.map(f2).join(' ') : `${f2(Math.min(...xs))}..${f2(Math.max(...xs))}`);

interface ChildResult {
  info?: string;
  measured?: Measured;
  error?: string;
}

export interface ChildOptions {
  /** A backend to ask for by name (default: medpipe's automatic choice). */
  backend?: string;
  /** Effective batch (and micro-batch) instead of the model's. */
  batch?: number;
  /** The native GEMMs' arithmetic (precision: of the training stages); default fp32. */
  precision?: 'fp32' | 'bf16';
}

/** One model in a fresh process: a wasm heap abort cannot take the other rows with it. */
export function measureInChild(label: string, steps: number, profile: boolean, opts: ChildOptions = {}): ChildResult {
  const self = fileURLToPath(import.meta.url);
  const r = spawnSync(process.execPath, [self, '--child', label, String(steps), profile ? '1' : '0', opts.backend ?? 'auto', String(opts.batch ?? 0), opts.precision ?? 'fp32'], {
    encoding: 'utf8', maxBuffer: 1 << 24, env: process.env,
  });
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
  if (line === undefined) {
    // An uncaught error prints its source line first: the message is the line naming the error.
    const lines = (r.stderr || r.stdout).trim().split('\n');
    const why = lines.find((l) => /^\w*Error: |^Aborted/.test(l.trim())) ?? lines.find((l) => /Error|Abort/.test(l)) ?? `exit ${r.status}`;
    return { error: why };
  }
  return JSON.parse(line) as ChildResult;
}

async function child(label: string, steps: number, profile: boolean, backend: string, batch: number, precision: string): Promise<void> {
  const base = BENCH_MODELS.find((b) => b.label === label);
  if (!base) throw new Error(`unknown bench model ${label}`);
  const m = batch > 0 ? { ...base, batch, micro: batch } : base;
  let info;
  try {
    info = await initBackend(backend === 'auto' ? {} : { prefer: parseBackendChoice(backend) });
  } catch (e) {
    console.log(JSON.stringify({ error: (e as Error).message.replace(/^no tfjs backend could start: [^:]+: /, '') }));
    return;
  }
  if (precision === 'bf16') {
    // As the training stages' precision: bf16 (src/engine/precision.ts), for the process.
    const why = bf16Unavailable(info);
    if (why !== undefined || !loadNative()!.setPrecision('bf16')) {
      console.log(JSON.stringify({ error: `bf16: ${why ?? 'refused'}` }));
      return;
    }
  }
  const a = info.webgpu?.adapter;
  // A software adapter (lavapipe) is orders of magnitude slower than the CPU engine: benched
  // only when asked for.
  if (a?.software && process.env.MEDPIPE_BENCH_WEBGPU !== '1') {
    console.log(JSON.stringify({ error: `only a software adapter (${a.device}); MEDPIPE_BENCH_WEBGPU=1 benches it anyway` }));
    return;
  }
  const what = a ? `adapter ${a.device} (${a.vendor} ${a.architecture}, ${a.driver})` : `threads ${info.threads}, native ${String(info.details.native ?? 'n/a')}`;
  // On webgpu the host-side kernel timer would see only dispatch times: profiled below instead.
  const measured = measure(m, steps, profile && info.backend !== 'webgpu');
  if (profile && info.backend === 'webgpu') {
    // GPU time per kernel (timestamp queries) rather than the host's dispatch time.
    const t = makeTrainer(m);
    try {
      t.step();
      const p = await profileGpuStep(() => t.step());
      measured.profile = p.kernels;
      measured.profileTotalMs = p.wallMs;
    } finally {
      t.dispose();
    }
  }
  console.log(JSON.stringify({ info: `backend ${info.backend}, ${what}`, measured }));
}

/** One call of `f` under tf.profile: each kernel's GPU time (webgpu timestamp queries), by name. */
export async function profileGpuStep(f: () => void): Promise<{ kernels: KernelTime[]; wallMs: number }> {
  const t0 = performance.now();
  const info = await tf.profile(() => {
    f();
  });
  const wallMs = performance.now() - t0;
  const by = new Map<string, KernelTime>();
  for (const k of info.kernels) {
    const ms = await k.kernelTimeMs;
    const e = by.get(k.name) ?? { name: k.name, ms: 0, calls: 0, flops: 0 };
    e.ms += typeof ms === 'number' ? ms : 0;
    e.calls++;
    by.set(k.name, e);
  }
  return { kernels: [...by.values()].sort((a, b) => b.ms - a.ms), wallMs };
}

/** Rounds of (PyTorch, medpipe) pairs per row (env MEDPIPE_BENCH_ROUNDS overrides). */
function benchRounds(): number {
  const v = Number(process.env.MEDPIPE_BENCH_ROUNDS);
  return Number.isInteger(v) && v > 0 ? v : 3;
}

export async function benchEngine(log: (line: string) => void, only: string[] = []): Promise<void> {
  const override = Number(process.env.MEDPIPE_BENCH_STEPS);
  const models = BENCH_MODELS.filter((m) => only.length === 0 || only.some((o) => m.label.includes(o)));
  const rounds = benchRounds();
  // The peak before the rows and after them, the better kept: one reading taken while the
  // machine was busy would flatter every "% of peak".
  const peakThreads = loadNative()?.info().threads ?? availableParallelism();
  const peakBefore = fmaPeak(peakThreads);
  log(`images/s, batch 8 (micro-batch); each row ${rounds} rounds of a PyTorch and a medpipe child back to back, the order alternating;`);
  log('img/s: median of the rounds (each round the median of its timed runs); ratio: median of the rounds\' ratios [their range]');
  log('model           batch(micro)  train img/s [rounds]      infer img/s | torch train  infer | ratio train [range]  infer [range]');
  let printedInfo = false;
  let torchWhy: string | undefined;
  const arithmetic: { label: string; forwardFlops: number; train: number; infer: number }[] = [];
  // Set once the webgpu engine is found missing (or only a software adapter): no more rows.
  let webgpuWhy: string | undefined;
  for (const m of models) {
    const steps = override > 0 ? override : m.steps;
    // The machine's speed drifts by up to 2x over minutes (a shared VM): a pair measured back
    // to back sees the same machine, and alternating who goes first cancels a drift within it.
    const ours: Measured[] = [];
    const theirs: TorchResult[] = [];
    const pairs: { train: number; infer: number }[] = [];
    let error: string | undefined;
    let rowTorchError: string | undefined;
    for (let round = 0; round < (torchWhy === undefined ? rounds : 1); round++) {
      let ref: TorchResult | undefined;
      let mine: Measured | undefined;
      const runTorch = (): void => {
        if (torchWhy !== undefined) return;
        const torch = torchBench([m], steps);
        // Not installed: no yardstick for any row. A failure is this row's own (one model
        // torch cannot build, an OOM): said on the row, and the next row tries again.
        if ('missing' in torch) torchWhy = torch.missing;
        else if ('failed' in torch) rowTorchError = torch.failed;
        else ref = torch.rows.find((r) => r.label === m.label);
      };
      const runOurs = (): void => {
        const res = measureInChild(m.label, steps, false);
        if (res.info && !printedInfo) {
          log(res.info);
          printedInfo = true;
        }
        mine = res.measured;
        if (!mine) error = res.error ?? 'no result';
      };
      if (round % 2 === 0) {
        runTorch();
        runOurs();
      } else {
        runOurs();
        runTorch();
      }
      if (torchWhy !== undefined && round === 0 && m === models[0]) log(torchWhy);
      if (!mine) break;
      ours.push(mine);
      if (rowTorchError !== undefined) break;
      if (ref) {
        theirs.push(ref);
        pairs.push({ train: mine.train / ref.train, infer: mine.infer / ref.infer });
      }
    }
    if (ours.length === 0) {
      log(`${m.label.padEnd(15)} FAILED: ${error ?? 'no result'}`);
      continue;
    }
    const r = { train: median(ours.map((o) => o.train)), infer: median(ours.map((o) => o.infer)) };
    const fwd = ours[0].forwardFlops;
    if (fwd !== undefined && fwd > 0) arithmetic.push({ label: m.label, forwardFlops: fwd, ...r });
    const ref = theirs.length > 0 ? { train: median(theirs.map((t) => t.train)), infer: median(theirs.map((t) => t.infer)) } : undefined;
    const ratioT = pairs.length > 0 ? median(pairs.map((p) => p.train)) : NaN;
    const ratioI = pairs.length > 0 ? median(pairs.map((p) => p.infer)) : NaN;
    const range = (xs: number[]): string => (xs.length > 1 ? ` [${Math.min(...xs).toFixed(2)}..${Math.max(...xs).toFixed(2)}]` : '');
    const shownRuns = ours.length > 1 ? ours.map((o) => o.train) : ours[0].trainRuns;
    log(`${m.label.padEnd(15)} ${`${m.batch}(${m.micro})`.padEnd(13)} ${f2(r.train).padStart(6)} [${runs(shownRuns)}]`.padEnd(58) +
      `${f2(r.infer).padStart(6)} | ${ref ? f2(ref.train).padStart(6) : '     -'} ${ref ? f2(ref.infer).padStart(6) : '     -'} | ` +
      (ref ? `${ratioT.toFixed(2).padStart(5)}x${range(pairs.map((p) => p.train))}  ${ratioI.toFixed(2).padStart(5)}x${range(pairs.map((p) => p.infer))}` : '    -x     -x') +
      (rowTorchError !== undefined ? `  (PyTorch: ${rowTorchError})` : ''));
    if (webgpuWhy === undefined) {
      const g = measureInChild(m.label, steps, false, { backend: 'webgpu' });
      if (g.measured) {
        const w = g.measured;
        log(`${(m.label + ' webgpu').padEnd(15)} ${`${m.batch}(${m.micro})`.padEnd(13)} ${f2(w.train).padStart(6)} [${runs(w.trainRuns)}]`.padEnd(58) +
          `${f2(w.infer).padStart(6)} | ${ref ? f2(ref.train).padStart(6) : '     -'} ${ref ? f2(ref.infer).padStart(6) : '     -'} | ` +
          `${ref ? (w.train / ref.train).toFixed(2).padStart(5) : '    -'}x ${ref ? (w.infer / ref.infer).toFixed(2).padStart(5) : '    -'}x  (${g.info ?? ''}; torch on the CPU)`);
      } else {
        webgpuWhy = g.error ?? 'no result';
        log(`webgpu rows: none (${webgpuWhy})`);
      }
    }
    const below = !ref || ratioT < 0.5 || ratioI < 0.5 || process.env.MEDPIPE_BENCH_PROFILE === '1';
    if (below && process.env.MEDPIPE_BENCH_PROFILE !== '0') {
      const p = measureInChild(m.label, 0, true).measured;
      if (p?.profile && p.profileTotalMs) {
        const sum = p.profile.reduce((acc, k) => acc + k.ms, 0);
        log(`  profile of one ${m.label} step: ${p.profileTotalMs.toFixed(0)} ms, kernels ${sum.toFixed(0)} ms, rest (JS, tape) ${(p.profileTotalMs - sum).toFixed(0)} ms`);
        for (const k of p.profile.slice(0, 12)) {
          log(`    ${k.name.padEnd(28)} ${k.ms.toFixed(0).padStart(7)} ms ${(100 * k.ms / p.profileTotalMs).toFixed(1).padStart(5)}%  ${k.calls} calls`);
        }
      }
    }
  }
  if (arithmetic.length > 0) logArithmetic(log, arithmetic, betterPeak(peakBefore, fmaPeak(peakThreads)));
}

/** The higher of two peak readings (or the one there is, or why there is none). */
function betterPeak(a: Peak | string, b: Peak | string): Peak | string {
  if (typeof a === 'string') return b;
  return typeof b === 'string' || a.gflops >= b.gflops ? a : b;
}

/** GFLOP/s of each row and its share of the machine's FMA peak. Training is counted as 3x
 *  the forward's FLOPs (forward, input gradient, weight gradient: the usual convention;
 *  the first layer's input gradient, which no step computes, is counted too). */
function logArithmetic(log: (line: string) => void, rows: { label: string; forwardFlops: number; train: number; infer: number }[], peak: Peak | string): void {
  log(typeof peak === 'string'
    ? `arithmetic (no peak: ${peak})`
    : `arithmetic: conv + matmul FLOPs of the inference forward, training 3x; peak ${peak.gflops.toFixed(0)} GFLOP/s (bench/fma-peak.c, ${peak.isa}, ${peak.threads} threads, best of 3 before the rows and 3 after)`);
  for (const r of rows) {
    const t = (r.train * 3 * r.forwardFlops) / 1e9;
    const i = (r.infer * r.forwardFlops) / 1e9;
    const pct = (g: number): string => (typeof peak === 'string' ? '' : ` (${((100 * g) / peak.gflops).toFixed(0)}%)`);
    log(`${r.label.padEnd(15)} ${(r.forwardFlops / 1e9).toFixed(3).padStart(7)} GFLOP/img forward  train ${t.toFixed(0).padStart(4)} GFLOP/s${pct(t)}  infer ${i.toFixed(0).padStart(4)} GFLOP/s${pct(i)}`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  if (args[0] === '--child') await child(args[1], Number(args[2]), args[3] === '1', args[4] ?? 'auto', Number(args[5] ?? 0), args[6] ?? 'fp32');
  else await benchEngine((l) => console.log(l), args);
}
