// Gradient norms for clipping, summed in float64 on the CPU: a float32 sum over a whole
// tensor (tfjs's wasm Sum) drifts by ~1e-4 relative over DeiT-S's millions of elements,
// while torch reduces pairwise. On the wasm backend the sum reads the gradient where it lies
// on the heap: dataSync() would copy it out first (7 MB a step for vit_demo, plus the GC).
import type * as tfTypes from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

type Tf = typeof tfTypes;

function sumOfSquares(values: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i]! * values[i]!;
  return sum;
}

/** The wasm backend when it holds `t`'s float32 data, so the heap can be read in place. */
function heapOf(tf: Tf | undefined, t: tfTypes.Tensor): BackendWasm | undefined {
  if (tf === undefined || t.dtype !== 'float32' || tf.getBackend() !== 'wasm') return undefined;
  const be = tf.backend() as BackendWasm;
  return be.dataIdMap.has(t.dataId) ? be : undefined;
}

/** The sum of squares of each tensor's elements, accumulated in float64 in element order.
 *  With `tf`, wasm tensors are read in place (the same values, so the same sums). */
export function sumsOfSquares(tensors: readonly tfTypes.Tensor[], tf?: Tf): number[] {
  return tensors.map((t) => {
    const be = heapOf(tf, t);
    // No allocation happens between taking the view and the end of the loop (growth would move the heap).
    const values = be ? (be.typedArrayFromHeap(t) as Float32Array) : (t.dataSync() as Float32Array);
    return sumOfSquares(values);
  });
}
