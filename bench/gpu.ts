// `npm run bench -- gpu`: medpipe's WebGPU engine against PyTorch on the same GPU, for a GPU
// user to run (none was available where this was written: no figure here is measured).
// ResNet50@224 and DeiT-S@224 at batch 64, a training step (forward, cross-entropy, backward,
// Adam) and inference, images/s (medians):
//   - medpipe on webgpu (fp32; Dawn over Vulkan/Metal/D3D12; a hardware adapter only),
//   - PyTorch fp32 with TF32 off: the like-for-like anchor (WebGPU has no tensor cores),
//   - PyTorch AMP (float16 autocast + GradScaler): what users compare against.
// Prints the ratios (target: medpipe >= 0.5x PyTorch fp32 training) and a per-kernel GPU-time
// profile of one medpipe training step (timestamp queries).
//
// Needs: a Vulkan driver for the GPU (NVIDIA's proprietary driver ships one; check with
// `pipeline engines`), and for the PyTorch rows python3 with a CUDA build of torch
// (MEDPIPE_BENCH_PYTHON=/path/to/python to pick one). MEDPIPE_BENCH_STEPS=n sets the steps.
// MEDPIPE_BENCH_GPU_MODELS=resnet_demo@64,... and MEDPIPE_BENCH_GPU_BATCH=8 run other rows
// (with MEDPIPE_BENCH_WEBGPU=1 on a software adapter: a dry run of this script without a GPU).

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { measureInChild, type TorchResult } from './engine.js';

const MODELS = process.env.MEDPIPE_BENCH_GPU_MODELS ? process.env.MEDPIPE_BENCH_GPU_MODELS.split(',') : ['resnet50@224', 'deit_s@224'];
const BATCH = Number(process.env.MEDPIPE_BENCH_GPU_BATCH) > 0 ? Number(process.env.MEDPIPE_BENCH_GPU_BATCH) : 64;

interface TorchGpu extends TorchResult {
  gpu?: string;
  torch?: string;
  error?: string;
}

function torchGpu(label: string, precision: 'fp32' | 'amp', steps: number): TorchGpu | string {
  const script = fileURLToPath(new URL('../../bench/torch_step.py', import.meta.url));
  const py = process.env.MEDPIPE_BENCH_PYTHON ?? 'python3';
  const r = spawnSync(py, [script, '--device', 'cuda', '--precision', precision, '--steps', String(steps), `${label}:${BATCH}`], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.error) return `${py}: ${r.error.message}`;
  if (r.status !== 0) return `torch_step.py failed: ${(r.stderr || r.stdout).trim().split('\n').slice(-2).join(' | ')}`;
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
  if (!line) return 'torch_step.py printed nothing';
  const res = JSON.parse(line) as TorchGpu;
  return res.error ?? res;
}

const f2 = (v: number): string => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const ratio = (a: number, b: TorchGpu | string | undefined, k: 'train' | 'infer'): string =>
  typeof b === 'object' ? `${(a / b[k]).toFixed(2)}x` : '-';

export async function benchGpu(log: (line: string) => void): Promise<void> {
  const steps = Number(process.env.MEDPIPE_BENCH_STEPS) > 0 ? Number(process.env.MEDPIPE_BENCH_STEPS) : 10;
  log(`batch ${BATCH}, images/s, medians of ${steps} steps after warm-up; PyTorch on CUDA device 0, medpipe on the WebGPU adapter medpipe picks`);
  for (const label of MODELS) {
    const ours = measureInChild(label, steps, true, { backend: 'webgpu', batch: BATCH });
    if (!ours.measured) {
      log(`${label}: medpipe webgpu unavailable: ${ours.error ?? 'no result'}`);
      if (label === MODELS[0] && /adapter|dawn|webgpu/i.test(ours.error ?? '')) {
        log('no hardware WebGPU adapter here: run this on a GPU machine (see README, GPU)');
        return;
      }
      continue;
    }
    if (label === MODELS[0]) log(ours.info ?? '');
    const fp32 = torchGpu(label, 'fp32', steps);
    const amp = torchGpu(label, 'amp', steps);
    const m = ours.measured;
    const cell = (t: TorchGpu | string, k: 'train' | 'infer') => (typeof t === 'object' ? f2(t[k]) : '-');
    log(`${label}`);
    log(`  train  medpipe ${f2(m.train)} | torch fp32 ${cell(fp32, 'train')} amp ${cell(amp, 'train')} | medpipe/fp32 ${ratio(m.train, fp32, 'train')} medpipe/amp ${ratio(m.train, amp, 'train')}` +
      (typeof fp32 === 'object' ? (m.train / fp32.train >= 0.5 ? '  (target 0.5x fp32: met)' : '  (target 0.5x fp32: NOT met)') : ''));
    log(`  infer  medpipe ${f2(m.infer)} | torch fp32 ${cell(fp32, 'infer')} amp ${cell(amp, 'infer')} | medpipe/fp32 ${ratio(m.infer, fp32, 'infer')} medpipe/amp ${ratio(m.infer, amp, 'infer')}`);
    for (const [name, t] of [['fp32', fp32], ['amp', amp]] as const) {
      if (typeof t === 'string') log(`  torch ${name}: ${t}`);
      else if (name === 'fp32') log(`  torch ${t.torch ?? '?'} on ${t.gpu ?? '?'}`);
    }
    if (m.profile && m.profileTotalMs) {
      const sum = m.profile.reduce((a, k) => a + k.ms, 0);
      log(`  profile of one medpipe training step: ${m.profileTotalMs.toFixed(0)} ms wall (profiled: each kernel timed alone, slower than a plain step), GPU time in kernels ${sum.toFixed(0)} ms`);
      if (sum === 0) log('  (GPU times read 0: the adapter lacks timestamp-query; only the call counts mean anything)');
      for (const k of m.profile.slice(0, 20)) log(`    ${k.name.padEnd(28)} ${k.ms.toFixed(1).padStart(8)} ms ${(sum > 0 ? (100 * k.ms) / sum : 0).toFixed(1).padStart(5)}%  ${k.calls} calls`);
    } else log('  no per-kernel profile came back');
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await benchGpu((l) => console.log(l));
