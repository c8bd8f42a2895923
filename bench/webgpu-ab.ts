// A/B of medpipe's WebGPU kernels against tfjs-webgpu's own, one training step of a model:
// per-kernel GPU time (timestamp queries), dispatches, and the step's process CPU time.
// Variants run in alternating child processes (A B, B A, A B, ...) so that both see the same
// machine load; each child warms up (pipeline compiles) before it measures.
//
//   node dist/bench/webgpu-ab.js [model@size] [batch] [rounds] [kernel,...]
//   (default resnet50@64 2 3 Conv2DBackpropInput; MEDPIPE_BENCH_WEBGPU=1 on a software adapter)
//
// Variant A leaves the named kernels out (MEDPIPE_WEBGPU_KERNELS=-Name,...: tfjs's own run),
// B is medpipe's default. On a software adapter (lavapipe: the "GPU" is the CPU, workgroups
// are loops on CPU threads, workgroup memory is ordinary cache) the ratios say how much
// arithmetic and addressing each kernel does, not how it uses a GPU's memory hierarchy.

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../src/engine/backend.js';
import { trainableVariables } from '../src/ml/models/params.js';
import { makeTrainer, profileGpuStep } from './engine.js';
import type { KernelTime } from '../src/engine/profile.js';

interface ChildOut {
  adapter?: string;
  cpuMs?: number;
  wallMs?: number;
  kernels?: KernelTime[];
  error?: string;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function child(label: string, batch: number): Promise<void> {
  const [model, size] = label.split('@');
  const info = await initBackend({ prefer: 'webgpu' });
  const a = info.webgpu!.adapter;
  if (a.software && process.env.MEDPIPE_BENCH_WEBGPU !== '1') throw new Error(`only a software adapter (${a.device}); MEDPIPE_BENCH_WEBGPU=1 runs it anyway`);
  const t = makeTrainer({ label, model: model!, imageSize: Number(size), batch, micro: batch, steps: 1 });
  const probe = trainableVariables(t.params)[0]!;
  // The step reads its loss; reading a weight after it waits for Adam too.
  const step = () => {
    t.step();
    probe.dataSync();
  };
  step();
  const c0 = process.cpuUsage();
  const w0 = performance.now();
  step();
  const c = process.cpuUsage(c0);
  const wallMs = performance.now() - w0;
  const p = await profileGpuStep(step);
  t.dispose();
  const out: ChildOut = { adapter: `${a.device} (${a.driver})`, cpuMs: (c.user + c.system) / 1000, wallMs, kernels: p.kernels };
  console.log(JSON.stringify(out));
}

function runChild(label: string, batch: number, leaveOut: string[] | undefined): ChildOut {
  const env = { ...process.env };
  if (leaveOut) env.MEDPIPE_WEBGPU_KERNELS = leaveOut.map((k) => `-${k}`).join(',');
  else delete env.MEDPIPE_WEBGPU_KERNELS;
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', label, String(batch)], { encoding: 'utf8', env, maxBuffer: 1 << 24 });
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
  if (line === undefined) return { error: (r.stderr || r.stdout).trim().split('\n').find((l) => /Error/.test(l)) ?? `exit ${r.status}` };
  return JSON.parse(line) as ChildOut;
}

async function main(): Promise<void> {
  const [label = 'resnet50@64', batchArg = '2', roundsArg = '3', names = 'Conv2DBackpropInput'] = process.argv.slice(2);
  const batch = Number(batchArg);
  const rounds = Number(roundsArg);
  const leaveOut = names.split(',');
  const runs: { A: ChildOut[]; B: ChildOut[] } = { A: [], B: [] };
  for (let r = 0; r < rounds; r++) {
    for (const v of r % 2 === 0 ? (['A', 'B'] as const) : (['B', 'A'] as const)) {
      const out = runChild(label, batch, v === 'A' ? leaveOut : undefined);
      if (out.error) throw new Error(`variant ${v}: ${out.error}`);
      runs[v].push(out);
      console.log(`round ${r + 1} ${v}: step CPU ${out.cpuMs!.toFixed(0)} ms, wall ${out.wallMs!.toFixed(0)} ms`);
    }
  }
  console.log(`${label} batch ${batch}, ${runs.B[0]!.adapter}; A = tfjs-webgpu's ${leaveOut.join(', ')}, B = medpipe's; medians of ${rounds} alternating child processes`);
  const stepCpu = (v: 'A' | 'B') => median(runs[v].map((o) => o.cpuMs!));
  console.log(`step process CPU time (all threads): A ${stepCpu('A').toFixed(0)} ms, B ${stepCpu('B').toFixed(0)} ms, B/A ${(stepCpu('B') / stepCpu('A')).toFixed(2)}`);
  const gpuMs = (v: 'A' | 'B', name?: string) => median(runs[v].map((o) => o.kernels!.filter((k) => name === undefined || k.name === name).reduce((s, k) => s + k.ms, 0)));
  const calls = (v: 'A' | 'B', name?: string) => runs[v][0]!.kernels!.filter((k) => name === undefined || k.name === name).reduce((s, k) => s + k.calls, 0);
  console.log(`GPU time in kernels: A ${gpuMs('A').toFixed(0)} ms (${calls('A')} kernels), B ${gpuMs('B').toFixed(0)} ms (${calls('B')} kernels), B/A ${(gpuMs('B') / gpuMs('A')).toFixed(2)}`);
  const top = runs.B[0]!.kernels!.slice(0, 12).map((k) => k.name);
  for (const n of new Set([...leaveOut, ...top])) {
    const a = gpuMs('A', n);
    const b = gpuMs('B', n);
    console.log(`  ${n.padEnd(28)} A ${a.toFixed(1).padStart(8)} ms  B ${b.toFixed(1).padStart(8)} ms  ${a > 0 ? `B/A ${(b / a).toFixed(2)}` : ''}  (${calls('B', n)} calls)`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  if (args[0] === '--child') await child(args[1]!, Number(args[2]));
  else await main();
}
