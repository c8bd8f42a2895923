// What every wasm kernel family shares: the types, a kernel's context (the backend, its
// original kernels, heap views), heap offsets for the native addon, attribute access.

import type {
  GradConfig,
  KernelConfig,
  NamedAttrMap,
  NamedTensorInfoMap,
  TensorInfo,
  backend_util as BackendUtil,
} from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { activeNative, type NativeAddon } from '../native.js';

export type Tf = typeof import('@tensorflow/tfjs');
export type Conv2DInfo = BackendUtil.Conv2DInfo;
export type Pad = 'valid' | 'same' | number | BackendUtil.ExplicitPadding;
export type Rounding = 'floor' | 'round' | 'ceil' | undefined;
export type Shape4 = [number, number, number, number];
export type KernelArgs = { inputs: NamedTensorInfoMap; backend: {}; attrs?: NamedAttrMap };
export type GradFunc = GradConfig['gradFunc'];

export const BACKEND = 'wasm';
export const WRAPPED = Symbol.for('medpipe.wasm-kernel-wrapper');

export interface Ctx {
  tf: Tf;
  be: BackendWasm;
  /** The kernel as wasm registered it (before our wrappers), for ops we delegate to. */
  run(name: string, inputs: NamedTensorInfoMap, attrs?: NamedAttrMap): TensorInfo;
  free(...infos: TensorInfo[]): void;
  f32(info: TensorInfo): Float32Array;
}

/** wasm's own kernels that ours replaced, by name (filled at registration). */
export const originals = new Map<string, KernelConfig>();

/** The native addon when it is built and switched on (tests compare both paths). */
export const native = activeNative;

/** The addon, for kernels that exist only with it (the fused layers ask before calling). */
export function nativeOnly(kernel: string): NativeAddon {
  const nat = native();
  if (nat === undefined) throw new Error(`${kernel} needs medpipe's native kernels, which are off or not built`);
  return nat;
}

/** Float index of a tensor's data in the wasm heap. */
export function heapIndex(be: BackendWasm, info: TensorInfo): number {
  const d = be.dataIdMap.get(info.dataId);
  if (d === undefined) throw new Error('wasm kernel: tensor data not found');
  return d.memoryOffset / 4;
}

/** heapIndex, or -1 (the addon's "none") for an absent optional operand. */
export function heapIndexOrNone(be: BackendWasm, info: TensorInfo | undefined): number {
  return info === undefined ? -1 : heapIndex(be, info);
}

/** The heap's current buffer: read after every allocation (growth replaces it). */
export function heapOf(be: BackendWasm): ArrayBufferLike {
  return (be.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8.buffer;
}

export function makeCtx(tf: Tf, backend: {}): Ctx {
  const be = backend as BackendWasm;
  return {
    tf,
    be,
    run(name, inputs, attrs) {
      const k = originals.get(name) ?? tf.getKernel(name, BACKEND);
      const out = k.kernelFunc({ inputs, backend, attrs });
      if (Array.isArray(out)) throw new Error(`wasm kernel ${name} returned several outputs`);
      return out;
    },
    free(...infos) {
      for (const i of infos) be.disposeData(i.dataId);
    },
    // A fresh view every time: any allocation may grow (and so move) the wasm memory.
    f32(info) {
      return be.typedArrayFromHeap(info) as Float32Array;
    },
  };
}

export function attr<T>(attrs: NamedAttrMap | undefined, name: string): T {
  return (attrs ?? {})[name] as unknown as T;
}

export function need(inputs: NamedTensorInfoMap, name: string): TensorInfo {
  const t = inputs[name];
  if (t === undefined) throw new Error(`wasm kernel: input '${name}' missing`);
  return t;
}

export function checkNHWC(dataFormat: string | undefined, kernel: string): void {
  if (dataFormat !== undefined && dataFormat !== 'NHWC') {
    throw new Error(`${kernel} on wasm supports NHWC only, got ${dataFormat}`);
  }
}

/** Below this many output elements the N-API call and thread hand-off cost more than they save. */
export const NATIVE_MIN_ELEMENTS = 4096;

export const sameShape = (s: number[], t: number[]): boolean => s.length === t.length && s.every((d, i) => d === t[i]);

/** [..., 1, C] or [C]: one row broadcast down every leading axis of `out`. */
export const isRow = (s: number[], out: number[]): boolean =>
  s.length >= 1 && s.length <= out.length && s[s.length - 1] === out[out.length - 1] && s.slice(0, -1).every((d) => d === 1);

/** Names of medpipe's own kernels (no tfjs op has them). */
export const KERNELS = {
  bnReduce: 'MedpipeBatchNormReduce',
  bnTrain: 'MedpipeBatchNormTrain',
  bnTrainGrad: 'MedpipeBatchNormTrainGrad',
  bnRelu: 'MedpipeBatchNormRelu',
  convBn: 'MedpipeConv2DBatchNorm',
  bnReluTrain: 'MedpipeBatchNormReluTrain',
  bnReluTrainGrad: 'MedpipeBatchNormReluTrainGrad',
  layerNorm: 'MedpipeLayerNorm',
  layerNormGrad: 'MedpipeLayerNormGrad',
  gelu: 'MedpipeGelu',
  geluGrad: 'MedpipeGeluGrad',
  reluGrad: 'MedpipeReluGrad',
  softmaxCrossEntropy: 'MedpipeSoftmaxCrossEntropy',
  softmaxCrossEntropyGrad: 'MedpipeSoftmaxCrossEntropyGrad',
  linear: 'MedpipeLinear',
  splitHeads: 'MedpipeSplitHeads',
  mergeHeads: 'MedpipeMergeHeads',
} as const;
