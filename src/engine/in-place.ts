// Writing a variable's data in place on a backend whose tensors live in host memory (the
// wasm heap): a fresh tensor and an assign per update is an allocation, a free and engine
// bookkeeping each, which for the small models cost more than the arithmetic.

import type * as tfTypes from '@tensorflow/tfjs';

type Tf = typeof tfTypes;

/** Makes `t` the only holder of its data (a variable made from a tensor, or an Identity of
 *  it, still shares it), so that writing in place changes nothing else. */
export function ownData(tf: Tf, be: { refCount(id: object): number }, t: tfTypes.Variable): void {
  if (be.refCount(t.dataId) === 1) return;
  tf.tidy(() => t.assign(tf.mul(t, tf.scalar(1, t.dtype))));
}
