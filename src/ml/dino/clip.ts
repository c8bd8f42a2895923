// DINO's utils.clip_gradients: each parameter's gradient is clipped to its own L2 norm limit
// (not one global norm as torch.nn.utils.clip_grad_norm_).
import * as tf from '@tensorflow/tfjs';
import { sumsOfSquares } from '../train/grad-norm.js';

/** Scales, in the map, every gradient whose norm exceeds maxNorm; returns the norms before. */
export function clipPerParameter(grads: Map<string, tf.Tensor>, maxNorm: number): Map<string, number> {
  const names = [...grads.keys()];
  if (names.length === 0) return new Map();
  const squares = sumsOfSquares(names.map((n) => grads.get(n)!), tf);
  const norms = new Map<string, number>();
  names.forEach((name, i) => {
    // torch returns the norm as a float32 tensor; the clip coefficient is computed from it.
    const value = Math.fround(Math.sqrt(squares[i]!));
    norms.set(name, value);
    const coef = maxNorm / (value + 1e-6);
    if (coef < 1) {
      const g = grads.get(name)!;
      grads.set(name, tf.tidy(() => tf.mul(g, coef)));
      g.dispose();
    }
  });
  return norms;
}
