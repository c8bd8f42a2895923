// What a training step asks of a GPU's limits: the largest single tensor (it must fit one
// storage-buffer binding, maxStorageBufferBindingSize, and one buffer, maxBufferSize) and
// the peak of live tensor bytes (device memory). Traced on any backend at batch 1 and 2:
// every tensor of a step is either independent of the batch (weights, Adam moments) or
// proportional to it (activations, their gradients), so each size is affine in the batch and
// two traces give it at any batch without running that batch. Sizes are matched per kernel
// (its largest output), not per call: tfjs takes shape-dependent shortcuts (a reshape, a
// squeeze), so the call sequence can differ by a few calls between batches.

import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

type Tf = typeof import('@tensorflow/tfjs');

export interface StepTrace {
  /** Bytes of the largest output of each kernel that ran. */
  outputs: Map<string, number>;
  /** Live tensor bytes (all of tfjs's) at their highest during the call. */
  peakBytes: number;
}

const TRACED = Symbol.for('medpipe.traced-kernel');

const bytesOf = (t: TensorInfo): number => t.shape.reduce((a, b) => a * b, 1) * (t.dtype === 'complex64' ? 8 : 4);

/** Runs `f` with every kernel of the active backend wrapped to record its outputs' sizes. */
export function traceStep(tf: Tf, f: () => void): StepTrace {
  const backend = tf.getBackend();
  const outputs = new Map<string, number>();
  let peak = tf.memory().numBytes;
  const replaced: KernelConfig[] = [];
  for (const k of tf.getKernelsForBackend(backend)) {
    if ((k as KernelConfig & { [TRACED]?: true })[TRACED]) continue;
    const inner = k.kernelFunc;
    const traced: KernelFunc = (args) => {
      const out = inner(args);
      const list = Array.isArray(out) ? out : [out];
      const made = list.reduce((s, t) => s + bytesOf(t), 0);
      // Outputs are counted by the engine only once the kernel returns: added here.
      peak = Math.max(peak, tf.memory().numBytes + made);
      outputs.set(k.kernelName, list.reduce((m, t) => Math.max(m, bytesOf(t)), outputs.get(k.kernelName) ?? 0));
      return out;
    };
    tf.unregisterKernel(k.kernelName, backend);
    tf.registerKernel({ ...k, kernelFunc: traced, [TRACED]: true } as KernelConfig);
    replaced.push(k);
  }
  try {
    f();
  } finally {
    for (const k of replaced) {
      tf.unregisterKernel(k.kernelName, backend);
      tf.registerKernel(k);
    }
  }
  return { outputs, peakBytes: peak };
}

export interface StepNeeds {
  batch: number;
  /** The largest tensor of the step. */
  largestTensorBytes: number;
  /** Peak live tensor bytes (what device memory must hold, the allocator's slack aside). */
  peakBytes: number;
}

/** The step's needs at `batch`, from traces of the same step at two smaller batches. */
export function needsAtBatch(a: { batch: number; trace: StepTrace }, b: { batch: number; trace: StepTrace }, batch: number): StepNeeds {
  const [at1, at2] = [a.trace, b.trace];
  const names = [...at1.outputs.keys()].filter((k) => at2.outputs.has(k));
  if (a.batch === b.batch || names.length < Math.max(at1.outputs.size, at2.outputs.size) / 2) {
    throw new Error(`kernels at batch ${a.batch} (${at1.outputs.size}) and ${b.batch} (${at2.outputs.size}) have ${names.length} in common: not the same step`);
  }
  const at = (s1: number, s2: number) => s1 + ((batch - a.batch) * (s2 - s1)) / (b.batch - a.batch);
  let largest = 0;
  for (const k of names) largest = Math.max(largest, at(at1.outputs.get(k)!, at2.outputs.get(k)!));
  return { batch, largestTensorBytes: largest, peakBytes: at(at1.peakBytes, at2.peakBytes) };
}

/** Why these device limits cannot hold a tensor of `bytes`, or undefined when they can. */
export function bindingShortfall(limits: Record<string, number>, bytes: number): string | undefined {
  const MiB = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
  for (const k of ['maxStorageBufferBindingSize', 'maxBufferSize']) {
    const v = limits[k];
    if (v !== undefined && v < bytes) return `a ${MiB(bytes)} tensor exceeds this device's ${k} (${MiB(v)})`;
  }
  return undefined;
}
