import type * as tfTypes from '@tensorflow/tfjs';
import { fusedAdamStep, type AdamUpdate } from '../../engine/fused-adam.js';
import { sumsOfSquares } from './grad-norm.js';

type Tf = typeof tfTypes;

export interface AdamOptions {
  beta1: number;
  beta2: number;
  eps: number;
  /** L2 penalty added to the gradient, as torch.optim.Adam's weight_decay. */
  weightDecay: number;
  /** Names that get no weight decay (biases, norms), when weightDecay > 0. */
  noDecay?: (name: string) => boolean;
  /** Decoupled weight decay, as torch.optim.AdamW: p *= 1 - lr * weightDecay before the Adam
   *  step, instead of adding the L2 term to the gradient. */
  decoupled?: boolean;
}

export const ADAM_DEFAULTS: AdamOptions = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };

/**
 * torch.optim.Adam, step for step, with its moments held in named variables so that they can
 * be checkpointed with the weights (`adam.m.<param>`, `adam.v.<param>`) and a resumed run
 * continues bit for bit. As torch, each parameter counts its own steps: one that gets no
 * gradient for a while (DINO's frozen last layer) starts its bias correction at step 1.
 */
export class Adam {
  /** Steps taken by each parameter (torch's per-parameter `state['step']`). */
  readonly steps = new Map<string, number>();
  readonly m = new Map<string, tfTypes.Variable>();
  readonly v = new Map<string, tfTypes.Variable>();

  constructor(
    private readonly tf: Tf,
    readonly options: AdamOptions = ADAM_DEFAULTS,
  ) {}

  private moments(name: string, like: tfTypes.Tensor): [tfTypes.Variable, tfTypes.Variable] {
    let m = this.m.get(name);
    let v = this.v.get(name);
    if (!m || !v) {
      // tidy frees the zeros; each variable keeps its own buffer (updated in place when fused).
      m = this.tf.tidy(() => this.tf.variable(this.tf.zerosLike(like), false));
      v = this.tf.tidy(() => this.tf.variable(this.tf.zerosLike(like), false));
      this.m.set(name, m);
      this.v.set(name, v);
    }
    return [m, v];
  }

  /** One step over the parameters that have a gradient; `weightDecay` overrides the option's
   *  value for this step (DINO schedules it). */
  apply(params: Map<string, tfTypes.Variable>, grads: Map<string, tfTypes.Tensor>, lr: number, weightDecay = this.options.weightDecay): void {
    const { tf } = this;
    const { beta1, beta2, eps, noDecay, decoupled } = this.options;
    // Parameters at the same step share their bias correction: one fused call per group.
    const groups = new Map<number, AdamUpdate[]>();
    for (const [name, g] of grads) {
      const p = params.get(name);
      if (!p) throw new Error(`gradient for unknown parameter ${name}`);
      const [m, v] = this.moments(name, p);
      const step = (this.steps.get(name) ?? 0) + 1;
      this.steps.set(name, step);
      const decay = weightDecay > 0 && !noDecay?.(name);
      const group = groups.get(step) ?? [];
      group.push({ p, m, v, g, mode: decay ? (decoupled ? 'decoupled' : 'l2') : 'plain' });
      groups.set(step, group);
    }
    for (const [step, updates] of groups) {
      const bc1 = 1 - beta1 ** step;
      const bc2 = 1 - beta2 ** step;
      if (!fusedAdamStep(tf, updates, { beta1, beta2, eps, lr, weightDecay, bc1, bc2 })) this.composedStep(updates, lr, weightDecay, bc1, bc2);
    }
  }

  private composedStep(updates: AdamUpdate[], lr: number, weightDecay: number, bc1: number, bc2: number): void {
    const { tf } = this;
    const { beta1, beta2, eps } = this.options;
    for (const { p, m, v, g: g0, mode } of updates) {
      tf.tidy(() => {
        if (mode === 'decoupled') p.assign(p.mul(1 - lr * weightDecay));
        const g = mode === 'l2' ? g0.add(p.mul(weightDecay)) : g0;
        m.assign(m.mul(beta1).add(g.mul(1 - beta1)));
        v.assign(v.mul(beta2).add(g.square().mul(1 - beta2)));
        const denom = v.div(bc2).sqrt().add(eps);
        p.assign(p.sub(m.div(denom).mul(lr / bc1)));
      });
    }
  }

  /** Named tensors for a checkpoint; the step counts go in its metadata (`stepsJson`). */
  state(): Map<string, tfTypes.Tensor> {
    const out = new Map<string, tfTypes.Tensor>();
    for (const [k, t] of this.m) out.set(`adam.m.${k}`, t);
    for (const [k, t] of this.v) out.set(`adam.v.${k}`, t);
    return out;
  }

  /** The per-parameter step counts, for the checkpoint's metadata. */
  metadata(): Record<string, string> {
    return { adam_steps: JSON.stringify(Object.fromEntries(this.steps)) };
  }

  /** Moments and step counts from a checkpoint. One written before steps were counted per
   *  parameter has a single `adam_step`, which every moment then takes. */
  restore(metadata: Record<string, string>, tensors: Map<string, tfTypes.Tensor>): void {
    this.steps.clear();
    const counts = metadata['adam_steps'] === undefined ? undefined : (JSON.parse(metadata['adam_steps']) as Record<string, number>);
    for (const [key, t] of tensors) {
      const match = /^adam\.([mv])\.(.+)$/.exec(key);
      if (!match) continue;
      const name = match[2]!;
      const target = match[1] === 'm' ? this.m : this.v;
      target.get(name)?.dispose();
      target.set(name, this.tf.variable(t, false));
      const step = counts ? counts[name] : Number(metadata['adam_step']);
      if (step === undefined || !Number.isInteger(step)) throw new Error(`checkpoint: the Adam moments of ${name} have no step count`);
      this.steps.set(name, step);
    }
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
    this.m.clear();
    this.v.clear();
    this.steps.clear();
  }
}

/** Scales gradients so their global L2 norm is at most maxNorm (torch.nn.utils.clip_grad_norm_). Returns the norm before clipping. */
export function clipByGlobalNorm(tf: Tf, grads: Map<string, tfTypes.Tensor>, maxNorm: number): number {
  const total = Math.fround(Math.sqrt(sumsOfSquares([...grads.values()], tf).reduce((a, b) => a + b, 0)));
  const coef = maxNorm / (total + 1e-6);
  if (coef < 1) {
    for (const [k, g] of grads) {
      grads.set(k, tf.tidy(() => g.mul(coef)));
      g.dispose();
    }
  }
  return total;
}
