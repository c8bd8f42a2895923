// Learning-rate and other schedules, as pure functions or small state machines whose state is
// plain JSON (so a resumed run continues exactly where it stopped).

/** Linear warm-up from 0 to the base value over `warmup` iterations (the paper: 1,000). */
export function warmupFactor(iteration: number, warmup: number): number {
  if (warmup <= 0) return 1;
  return Math.min(1, (iteration + 1) / warmup);
}

/** DINO's cosine schedule: `base` -> `final` over `total` steps, after a linear warm-up from `start`. */
export function cosineSchedule(step: number, total: number, base: number, final: number, warmupSteps = 0, start = 0): number {
  if (step < warmupSteps) return start + ((base - start) * step) / warmupSteps;
  const t = Math.min(1, (step - warmupSteps) / Math.max(1, total - warmupSteps));
  return final + 0.5 * (base - final) * (1 + Math.cos(Math.PI * t));
}

export interface PlateauOptions {
  mode: 'max' | 'min';
  factor: number;
  patience: number;
  /** Relative threshold, as torch's default threshold_mode='rel'. */
  threshold: number;
  cooldown: number;
  minLr: number;
}

export interface PlateauState {
  lr: number;
  best: number | null;
  badEpochs: number;
  cooldownLeft: number;
}

export const PLATEAU_DEFAULTS: PlateauOptions = { mode: 'max', factor: 0.1, patience: 10, threshold: 1e-4, cooldown: 0, minLr: 1e-6 };

/** torch.optim.lr_scheduler.ReduceLROnPlateau, one `step(metric)` per validation. */
export function plateauStep(state: PlateauState, metric: number, o: PlateauOptions): PlateauState {
  const better =
    state.best === null || (o.mode === 'max' ? metric > state.best * (state.best >= 0 ? 1 + o.threshold : 1 - o.threshold) : metric < state.best * (1 - o.threshold));
  let { lr, best, badEpochs, cooldownLeft } = state;
  if (better) {
    best = metric;
    badEpochs = 0;
  } else badEpochs++;
  if (cooldownLeft > 0) {
    cooldownLeft--;
    badEpochs = 0;
  }
  if (badEpochs > o.patience) {
    const next = Math.max(lr * o.factor, o.minLr);
    // torch ignores decreases smaller than eps=1e-8
    if (lr - next > 1e-8) lr = next;
    cooldownLeft = o.cooldown;
    badEpochs = 0;
  }
  return { lr, best, badEpochs, cooldownLeft };
}
