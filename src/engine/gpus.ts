// Which GPU(s) a node computes on. The scheduler hands each running node GPU slots 0..N-1
// (`--resources gpu=N`); the executor passes them to the worker in MEDPIPE_GPUS, and for
// tfjs-node-gpu (which otherwise takes every GPU's memory) in CUDA_VISIBLE_DEVICES, mapped
// through any CUDA_VISIBLE_DEVICES the user set, so slot i is the user's i-th device.

/** The environment a worker holding `slots` gets, given the parent's environment. */
export function gpuEnv(slots: readonly number[], parent: NodeJS.ProcessEnv): Record<string, string> {
  if (slots.length === 0) return {};
  const visible = parent.CUDA_VISIBLE_DEVICES?.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const cuda = slots.map((i) => (visible !== undefined && visible.length > 0 ? visible[i] ?? String(i) : String(i)));
  return { MEDPIPE_GPUS: slots.join(','), CUDA_VISIBLE_DEVICES: cuda.join(',') };
}

/** The GPU slots this process was given, or undefined when none were (no --resources gpu). */
export function assignedGpus(env: NodeJS.ProcessEnv): number[] | undefined {
  const v = env.MEDPIPE_GPUS;
  if (v === undefined || v.trim() === '') return undefined;
  return v.split(',').map((s) => {
    const n = Number(s.trim());
    if (!Number.isInteger(n) || n < 0) throw new Error(`MEDPIPE_GPUS: expected GPU indices like "0" or "0,1", got "${v}"`);
    return n;
  });
}
