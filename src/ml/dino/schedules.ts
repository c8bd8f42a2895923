// DINO's schedules (utils.cosine_scheduler and DINOLoss.teacher_temp_schedule), value for value.
// They are functions of the global step or the epoch only, so a resumed run recomputes them.
import { cosineSchedule } from '../train/schedule.js';

/**
 * utils.cosine_scheduler(base, final, epochs, niter, warmup_epochs, start_warmup_value) at
 * iteration `step`: np.linspace(start, base, warmup) - which reaches `base` on the warm-up's last
 * step, unlike a `step / warmup` ramp - then base -> final over the remaining steps.
 */
export function dinoCosine(step: number, totalSteps: number, base: number, final: number, warmupSteps = 0, start = 0): number {
  const warm = Math.min(warmupSteps, totalSteps);
  if (step < warm) return warm === 1 ? start : start + ((base - start) * step) / (warm - 1);
  return cosineSchedule(step - warm, totalSteps - warm, base, final);
}

/** np.linspace(warmup_teacher_temp, teacher_temp, warmup_epochs) then teacher_temp. */
export function teacherTemperature(epoch: number, start: number, final: number, warmupEpochs: number): number {
  if (epoch >= warmupEpochs) return final;
  return warmupEpochs === 1 ? start : start + ((final - start) * epoch) / (warmupEpochs - 1);
}

export interface DinoScheduleOptions {
  epochs: number;
  stepsPerEpoch: number;
  /** Peak lr after DINO's linear scaling (lr * batch / 256). */
  lr: number;
  minLr: number;
  warmupEpochs: number;
  weightDecay: number;
  weightDecayEnd: number;
  momentum: number;
  teacherTemp: number;
  warmupTeacherTemp: number;
  warmupTeacherTempEpochs: number;
}

export interface StepValues {
  lr: number;
  weightDecay: number;
  momentum: number;
  teacherTemp: number;
}

/** Everything that varies along training, for the global step `step` (0-based) of `epoch`. */
export function stepValues(o: DinoScheduleOptions, step: number, epoch: number): StepValues {
  const total = o.epochs * o.stepsPerEpoch;
  return {
    lr: dinoCosine(step, total, o.lr, o.minLr, o.warmupEpochs * o.stepsPerEpoch),
    weightDecay: dinoCosine(step, total, o.weightDecay, o.weightDecayEnd),
    momentum: dinoCosine(step, total, o.momentum, 1),
    teacherTemp: teacherTemperature(epoch, o.warmupTeacherTemp, o.teacherTemp, o.warmupTeacherTempEpochs),
  };
}
