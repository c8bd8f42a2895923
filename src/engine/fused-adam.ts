// One Adam / AdamW step over every parameter in a single native call, in place on the wasm
// heap (on webgpu: one WGSL dispatch per parameter, src/engine/webgpu-adam.ts). The composed form (src/ml/train/adam.ts) runs about ten tfjs ops per parameter
// tensor; for the small models each op's fixed cost, not its arithmetic, was most of a
// training step. Same float32 operations in the same order: both forms agree bit for bit.

import type * as tfTypes from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { ownData as own } from './in-place.js';
import { activeNative, type NativeCodes } from './native.js';
import { WEBGPU_ADAM, type AdamAttrs, type AdamConstants } from './webgpu-adam.js';

export type AdamMode = keyof NativeCodes['adamMode'];

/** The WGSL kernel's codes for the modes (src/engine/webgpu-adam.ts). */
const WEBGPU_ADAM_MODE: Record<AdamMode, number> = { plain: 0, l2: 1, decoupled: 2 };

type Tf = typeof tfTypes;

export interface AdamUpdate {
  p: tfTypes.Variable;
  m: tfTypes.Variable;
  v: tfTypes.Variable;
  g: tfTypes.Tensor;
  /** plain; l2: the penalty added to the gradient; decoupled: AdamW's decay. */
  mode: AdamMode;
}

/** Runs the step natively (wasm) or as WGSL (webgpu) and returns true, or returns false
 *  (nothing changed) on other backends, when medpipe's kernels are off, or when a tensor is
 *  not float32. */
export function fusedAdamStep(tf: Tf, updates: AdamUpdate[], k: AdamConstants): boolean {
  if (updates.some((u) => [u.p, u.m, u.v, u.g].some((t) => t.dtype !== 'float32' || t.size !== u.p.size))) return false;
  if (tf.getBackend() === 'webgpu' && tf.getKernel(WEBGPU_ADAM, 'webgpu') !== undefined) return webgpuStep(tf, updates, k);
  const nat = activeNative();
  if (nat === undefined || tf.getBackend() !== 'wasm') return false;
  const be = tf.backend() as BackendWasm;
  for (const u of updates) for (const t of [u.p, u.m, u.v]) own(tf, be, t);
  const offset = (t: tfTypes.Tensor): number => {
    const d = be.dataIdMap.get(t.dataId);
    if (d === undefined) throw new Error('fused Adam: tensor data not on the wasm heap');
    return d.memoryOffset / 4;
  };
  // [b1, 1-b1, b2, 1-b2, bc2, eps, lr/bc1, wd, 1-lr*wd] then (p, m, v, g, n, mode) per tensor.
  const args = new Float64Array(9 + updates.length * 6);
  args.set([k.beta1, 1 - k.beta1, k.beta2, 1 - k.beta2, k.bc2, k.eps, k.lr / k.bc1, k.weightDecay, 1 - k.lr * k.weightDecay]);
  updates.forEach((u, i) => args.set([offset(u.p), offset(u.m), offset(u.v), offset(u.g), u.p.size, nat.codes.adamMode[u.mode]], 9 + i * 6));
  // Read after the copies above: an allocation may have grown (replaced) the heap.
  const heap = (be.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8.buffer;
  nat.run('adam', heap, args);
  return true;
}

function webgpuStep(tf: Tf, updates: AdamUpdate[], k: AdamConstants): boolean {
  const be = tf.backend() as unknown as { refCount(id: object): number };
  for (const u of updates) for (const t of [u.p, u.m, u.v]) own(tf, be, t);
  const inputs: Record<string, tfTypes.Tensor> = {};
  updates.forEach((u, i) => Object.assign(inputs, { [`p${i}`]: u.p, [`m${i}`]: u.m, [`v${i}`]: u.v, [`g${i}`]: u.g }));
  const attrs: AdamAttrs = { modes: updates.map((u) => WEBGPU_ADAM_MODE[u.mode]), ...k };
  tf.engine().runKernel(WEBGPU_ADAM, inputs, attrs as unknown as tfTypes.NamedAttrMap);
  return true;
}
