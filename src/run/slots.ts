import type { Resources } from '../contract.js';

export interface Capacity {
  jobs: number;
  cpus: number;
  gpu: number;
  memory_gb: number;
}

type Need = Capacity;

/** Gives back what a node held; `gpus` are the GPU slots (0..gpu-1) it was given. */
export type Release = (() => void) & { gpus: number[] };

/** Capacities above this are "unbounded" (planning), not real GPUs with indices. */
const MAX_GPU_SLOTS = 4096;

/** Counting semaphore over several resources: a node starts only when all of its needs fit. */
export class Slots {
  private free: Capacity;
  private readonly freeGpus: number[];
  private readonly waiting: { need: Need; resolve: (release: Release) => void }[] = [];

  constructor(readonly capacity: Capacity) {
    this.free = { ...capacity };
    this.freeGpus = capacity.gpu <= MAX_GPU_SLOTS ? Array.from({ length: capacity.gpu }, (_, i) => i) : [];
  }

  /** What a node holds: cpus and memory are capped at the machine's capacity, GPUs are not. */
  needOf(resources: Resources, node: string): Need {
    const gpu = resources.gpu ?? 0;
    if (gpu > this.capacity.gpu) {
      throw new Error(`${node} needs ${gpu} GPU(s) but this run has ${this.capacity.gpu} (set --resources gpu=N, or the stage's resources:)`);
    }
    return {
      jobs: 1,
      cpus: Math.min(resources.cpus ?? 1, this.capacity.cpus),
      gpu,
      memory_gb: Math.min(resources.memory_gb ?? 0, this.capacity.memory_gb),
    };
  }

  private fits(need: Need): boolean {
    return (Object.keys(need) as (keyof Capacity)[]).every((k) => need[k] <= this.free[k] + 1e-9);
  }

  private take(need: Need): Release {
    for (const k of Object.keys(need) as (keyof Capacity)[]) this.free[k] -= need[k];
    // Lowest free indices first; none when the capacity is unbounded.
    this.freeGpus.sort((a, b) => a - b);
    const gpus = this.freeGpus.splice(0, Math.min(need.gpu, this.freeGpus.length));
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      for (const k of Object.keys(need) as (keyof Capacity)[]) this.free[k] += need[k];
      this.freeGpus.push(...gpus);
      this.drain();
    };
    return Object.assign(release, { gpus });
  }

  private drain(): void {
    // Every need takes a job slot: with none free, nothing waiting can fit (the queue can be a
    // thousand nodes long, and this runs after every node).
    for (let i = 0; i < this.waiting.length && this.free.jobs >= 1 - 1e-9; ) {
      const w = this.waiting[i]!;
      if (this.fits(w.need)) {
        this.waiting.splice(i, 1);
        w.resolve(this.take(w.need));
      } else i++;
    }
  }

  async acquire(need: Need, signal: AbortSignal): Promise<Release> {
    // An abort listener added after the abort never fires: the wait would last forever, or end
    // when a slot frees and start the node after Ctrl-C (a lock taken just as INT came).
    if (signal.aborted) throw new Error('interrupted');
    if (this.fits(need) && this.waiting.length === 0) return this.take(need);
    return new Promise<Release>((resolve, reject) => {
      const onAbort = () => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(new Error('interrupted'));
      };
      const entry = {
        need,
        resolve: (release: Release) => {
          signal.removeEventListener('abort', onAbort);
          resolve(release);
        },
      };
      this.waiting.push(entry);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
