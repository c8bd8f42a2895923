// Per-kernel wall-clock profile of a tfjs backend whose kernels run synchronously (wasm,
// cpu): every kernel registered for the backend is wrapped with a timer. Used by the bench
// to say where a training step spends its time; never on in normal runs.

import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { kernelFlops } from './flops.js';

type Tf = typeof import('@tensorflow/tfjs');

export interface KernelTime {
  name: string;
  ms: number;
  calls: number;
  /** Forward convolution and matrix-product FLOPs of its calls (./flops.ts); 0 for the rest. */
  flops: number;
}

export interface KernelProfiler {
  /** Zeroes the counters (e.g. after a warm-up step). */
  reset(): void;
  /** The counters so far, slowest first. */
  read(): KernelTime[];
  /** Puts the original kernels back. */
  stop(): void;
}

const PROFILED = Symbol.for('medpipe.profiled-kernel');

export function profileKernels(tf: Tf, backendName: string): KernelProfiler {
  const table = new Map<string, KernelTime>();
  let childMs = 0;
  const replaced: KernelConfig[] = [];
  for (const k of tf.getKernelsForBackend(backendName)) {
    if ((k as KernelConfig & { [PROFILED]?: true })[PROFILED]) continue;
    const inner = k.kernelFunc;
    const entry: KernelTime = { name: k.kernelName, ms: 0, calls: 0, flops: 0 };
    table.set(k.kernelName, entry);
    // Self time: a kernel that runs other kernels (our wrappers do) is not counted twice.
    const timed: KernelFunc = (args) => {
      const saved = childMs;
      childMs = 0;
      const t0 = performance.now();
      const out: TensorInfo | TensorInfo[] = inner(args);
      const total = performance.now() - t0;
      entry.ms += total - childMs;
      entry.calls++;
      entry.flops += kernelFlops(k.kernelName, args.inputs, args.attrs as Record<string, unknown> | undefined, Array.isArray(out) ? out : [out]);
      childMs = saved + total;
      return out;
    };
    tf.unregisterKernel(k.kernelName, backendName);
    const wrapped: KernelConfig & { [PROFILED]: true } = { ...k, kernelFunc: timed, [PROFILED]: true };
    tf.registerKernel(wrapped);
    replaced.push(k);
  }
  return {
    reset() {
      for (const e of table.values()) {
        e.ms = 0;
        e.calls = 0;
        e.flops = 0;
      }
    },
    read() {
      return [...table.values()].filter((e) => e.calls > 0).map((e) => ({ ...e })).sort((a, b) => b.ms - a.ms);
    },
    stop() {
      for (const k of replaced) {
        tf.unregisterKernel(k.kernelName, backendName);
        tf.registerKernel(k);
      }
      replaced.length = 0;
    },
  };
}
