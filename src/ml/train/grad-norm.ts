// Gradient norms for clipping, summed in float64 on the CPU: a float32 sum over a whole
// tensor (tfjs's wasm Sum) drifts by ~1e-4 relative over DeiT-S's millions of elements,
// while torch reduces pairwise. Reading the gradient back is a copy on the CPU backends.
import type * as tfTypes from '@tensorflow/tfjs';

/** The sum of squares of each tensor's elements, accumulated in float64. */
export function sumsOfSquares(tensors: readonly tfTypes.Tensor[]): number[] {
  return tensors.map((t) => {
    const values = t.dataSync() as Float32Array;
    let sum = 0;
    for (let i = 0; i < values.length; i++) sum += values[i]! * values[i]!;
    return sum;
  });
}
