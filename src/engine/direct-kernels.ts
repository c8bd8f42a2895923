// Kernels called straight from the backend's registry, outside tfjs's engine: no gradient
// tape, no saved copies (an Identity per tensor saved for backward), no scopes or tensor
// tracking. For a fixed sequence of kernel calls whose lifetimes the caller knows (a training
// step graph, src/ml/models/resnet/step.ts and vit/step.ts); the same kernels as through the engine, so the
// same values. The step of a small model was about a third engine bookkeeping.

import type * as tfTypes from '@tensorflow/tfjs';
import type { KernelFunc, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { activeNative } from './native.js';

type Tf = typeof tfTypes;

/** Whether the wasm backend with medpipe's native kernels is active (what direct runs need). */
export function directKernelsAvailable(tf: Tf, kernels: readonly string[]): boolean {
  if (tf.getBackend() !== 'wasm' || activeNative() === undefined) return false;
  return kernels.every((k) => tf.getKernel(k, 'wasm') !== undefined);
}

/** One run's kernel calls; every output is freed by `free()` unless handed out by `tensor()`. */
export class DirectKernels {
  readonly be: BackendWasm;
  private readonly owned = new Set<TensorInfo>();
  /** Looked up once per run: registration may change between runs (setNativeKernels). */
  private readonly funcs = new Map<string, KernelFunc>();

  constructor(private readonly tf: Tf) {
    this.be = tf.backend() as BackendWasm;
  }

  /** Runs kernel `name` of the wasm backend; its outputs, in the kernel's order. */
  run(name: string, inputs: NamedTensorInfoMap, attrs: NamedAttrMap = {}): TensorInfo[] {
    let f = this.funcs.get(name);
    if (f === undefined) {
      const k = this.tf.getKernel(name, 'wasm');
      if (k === undefined) throw new Error(`direct kernels: no wasm kernel ${name}`);
      this.funcs.set(name, (f = k.kernelFunc));
    }
    const out = f({ inputs, backend: this.be, attrs });
    const outs = Array.isArray(out) ? out : [out];
    for (const o of outs) this.owned.add(o);
    return outs;
  }

  /** A fresh float32 output of the given shape (values unset). */
  output(shape: number[]): TensorInfo {
    const o = this.be.makeOutput(shape, 'float32');
    this.owned.add(o);
    return o;
  }

  /** A float32 view of the data: take it after the last allocation (growth moves the heap). */
  f32(info: TensorInfo): Float32Array {
    return this.be.typedArrayFromHeap(info) as Float32Array;
  }

  /** The same data seen with another shape (no copy; freed with the original). */
  reshaped(info: TensorInfo, shape: number[]): TensorInfo {
    return { dataId: info.dataId, shape, dtype: info.dtype };
  }

  /** An output seen with another shape from now on (no copy): the result is what is owned
   *  and freed; the original is not to be used again. */
  reshapedOwned(info: TensorInfo, shape: number[]): TensorInfo {
    if (!this.owned.delete(info)) throw new Error('direct kernels: reshapedOwned() of data this run does not own');
    const out = { dataId: info.dataId, shape, dtype: info.dtype };
    this.owned.add(out);
    return out;
  }

  /** Hands an output to the engine as an ordinary tensor (the caller disposes it). */
  tensor<T extends tfTypes.Tensor>(info: TensorInfo, shape: number[] = info.shape): T {
    if (!this.owned.delete(info)) throw new Error('direct kernels: tensor() of data this run does not own');
    return this.tf.engine().makeTensorFromTensorInfo({ ...info, shape }, this.be) as T;
  }

  free(...infos: TensorInfo[]): void {
    for (const i of infos) if (this.owned.delete(i)) this.be.disposeData(i.dataId);
  }

  /** Frees every output not handed out. */
  dispose(): void {
    for (const i of this.owned) this.be.disposeData(i.dataId);
    this.owned.clear();
  }
}
