// Fresh parameter values, computed in plain JS in PyTorch layout, so that a seed gives the
// same bytes on every backend and machine (the init stage's output is content-hashed).
// Each tensor draws from its own stream, seeded by (seed, hash of its name): adding a
// parameter or re-initialising only the head leaves every other tensor unchanged.

import { mix32, Rng } from '../../data/rng.js';
import type { InitRule, ParamSpec } from './types.js';

export function nameHash(name: string): number {
  const words: number[] = [];
  for (let i = 0; i < name.length; i++) words.push(name.charCodeAt(i));
  return mix32(...words);
}

/** PyTorch's fan_in / fan_out (torch.nn.init._calculate_fan_in_and_fan_out). */
export function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  if (shape.length < 2) throw new Error(`fan in/out needs at least 2 dimensions, got [${shape}]`);
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: shape[1] * receptive, fanOut: shape[0] * receptive };
}

function fill(n: number, rule: InitRule, shape: readonly number[], rng: Rng): Float32Array {
  const out = new Float32Array(n);
  switch (rule.kind) {
    case 'constant':
      out.fill(rule.value);
      return out;
    case 'normal':
      for (let i = 0; i < n; i++) out[i] = rule.std * rng.normal();
      return out;
    case 'kaimingNormalFanOut': {
      // kaiming_normal_(mode='fan_out', nonlinearity='relu'): gain sqrt(2).
      const std = Math.sqrt(2 / fans(shape).fanOut);
      for (let i = 0; i < n; i++) out[i] = std * rng.normal();
      return out;
    }
    case 'torchDefaultWeight': {
      // kaiming_uniform_(a=sqrt(5)): bound = sqrt(6 / ((1 + 5) fan_in)) = 1 / sqrt(fan_in).
      const bound = 1 / Math.sqrt(fans(shape).fanIn);
      for (let i = 0; i < n; i++) out[i] = rng.uniform(-bound, bound);
      return out;
    }
    case 'torchDefaultBias': {
      const bound = rule.fanIn > 0 ? 1 / Math.sqrt(rule.fanIn) : 0;
      for (let i = 0; i < n; i++) out[i] = rng.uniform(-bound, bound);
      return out;
    }
    case 'truncNormal': {
      // timm's trunc_normal_(std) truncates at absolute a=-2, b=2 (not +-2 std): for std
      // 0.02 that never bites, but redraw outside it to keep the same distribution.
      for (let i = 0; i < n; i++) {
        let v: number;
        do v = rule.std * rng.normal();
        while (v < -2 || v > 2);
        out[i] = v;
      }
      return out;
    }
  }
}

/** Initial values of one parameter (PyTorch layout, float32; int64 buffers as floats). */
export function initialValues(spec: ParamSpec, seed: number): Float32Array {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  return fill(n, spec.init, spec.shape, new Rng(seed, nameHash(spec.name)));
}
