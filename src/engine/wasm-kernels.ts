// Kernels registered on tfjs-backend-wasm 4.22 so that ResNet / ViT training steps run there
// (native/README.md has the measurements behind each choice). One module per op family
// under ./wasm/: conv, matmul, pooling, norms, elementwise, loss, memory (data movement), and
// gradients (tfjs gradient overrides); ./wasm/context.ts is what they share. This module
// registers them and restores wasm's own.
//
// Every kernel reads inputs through heap views and allocates outputs with makeOutput, never
// calling tf ops, so nothing is recorded on the gradient tape and nothing leaks into scopes.

import type { KernelConfig, KernelFunc } from '@tensorflow/tfjs-core';
import { BACKEND, KERNELS, WRAPPED, originals, type Tf } from './wasm/context.js';
export { NATIVE_MIN_ELEMENTS } from './wasm/context.js';
import { conv2D, conv2DBatchNorm, conv2DBackpropFilter, conv2DBackpropInput, depthwiseBackpropFilter, depthwiseBackpropInput } from './wasm/conv.js';
import { binaryOp, geluKernel, reluGrad, unaryOp } from './wasm/elementwise.js';
import { registerGradients, restoreGradients } from './wasm/gradients.js';
import { batchMatMul, fusedMatMul, linearKernel } from './wasm/matmul.js';
import { cast, identity, mergeHeads, slice, splitHeads, splitV, tile } from './wasm/memory.js';
import { batchNormReduce, batchNormRelu, batchNormReluTrain, batchNormReluTrainGrad, batchNormTrain, batchNormTrainGrad, columnReduce, fusedBatchNorm, layerNormGradKernel, layerNormKernel } from './wasm/norms.js';
import { softmaxCrossEntropy, softmaxCrossEntropyGrad } from './wasm/loss.js';
import { maxPoolGrad, unsortedSegmentSum } from './wasm/pooling.js';

export { setNativeKernels } from './native.js';

/** Names of the fused layer kernels (src/engine/fused-ops.ts calls them). */
export const BN_TRAIN = KERNELS.bnTrain;
export const BN_TRAIN_GRAD = KERNELS.bnTrainGrad;
export const BN_RELU = KERNELS.bnRelu;
export const CONV_BN = KERNELS.convBn;
export const BN_RELU_TRAIN = KERNELS.bnReluTrain;
export const BN_RELU_TRAIN_GRAD = KERNELS.bnReluTrainGrad;
export const LN = KERNELS.layerNorm;
export const LN_GRAD = KERNELS.layerNormGrad;
export const GELU = KERNELS.gelu;
export const GELU_GRAD = KERNELS.geluGrad;
export const SOFTMAX_CE = KERNELS.softmaxCrossEntropy;
export const SOFTMAX_CE_GRAD = KERNELS.softmaxCrossEntropyGrad;
export const LINEAR = KERNELS.linear;
export const SPLIT_HEADS = KERNELS.splitHeads;
export const MERGE_HEADS = KERNELS.mergeHeads;

const FACTORIES: Record<string, (tf: Tf) => KernelFunc> = {
  Conv2D: (tf) => conv2D(tf, 'Conv2D'),
  FusedConv2D: (tf) => conv2D(tf, 'FusedConv2D'),
  Conv2DBackpropFilter: conv2DBackpropFilter,
  Conv2DBackpropInput: conv2DBackpropInput,
  DepthwiseConv2dNativeBackpropFilter: depthwiseBackpropFilter,
  DepthwiseConv2dNativeBackpropInput: depthwiseBackpropInput,
  MaxPoolGrad: maxPoolGrad,
  UnsortedSegmentSum: unsortedSegmentSum,
  Tile: tile,
  Sum: (tf) => columnReduce(tf, 'Sum'),
  Mean: (tf) => columnReduce(tf, 'Mean'),
  [KERNELS.bnReduce]: batchNormReduce,
  BatchMatMul: batchMatMul,
  _FusedMatMul: fusedMatMul,
  Identity: identity,
  Cast: cast,
  Slice: slice,
  SplitV: splitV,
  Add: (tf) => binaryOp(tf, 'Add'),
  Sub: (tf) => binaryOp(tf, 'Sub'),
  Multiply: (tf) => binaryOp(tf, 'Multiply'),
  RealDiv: (tf) => binaryOp(tf, 'RealDiv'),
  Exp: (tf) => unaryOp(tf, 'Exp'),
  Erf: (tf) => unaryOp(tf, 'Erf'),
  FusedBatchNorm: fusedBatchNorm,
  [KERNELS.reluGrad]: reluGrad,
  [KERNELS.bnTrain]: batchNormTrain,
  [KERNELS.bnTrainGrad]: batchNormTrainGrad,
  [KERNELS.bnRelu]: batchNormRelu,
  [KERNELS.convBn]: conv2DBatchNorm,
  [KERNELS.bnReluTrain]: batchNormReluTrain,
  [KERNELS.bnReluTrainGrad]: batchNormReluTrainGrad,
  [KERNELS.layerNorm]: layerNormKernel,
  [KERNELS.layerNormGrad]: layerNormGradKernel,
  [KERNELS.gelu]: (tf) => geluKernel(tf, false),
  [KERNELS.geluGrad]: (tf) => geluKernel(tf, true),
  [KERNELS.softmaxCrossEntropy]: softmaxCrossEntropy,
  [KERNELS.softmaxCrossEntropyGrad]: softmaxCrossEntropyGrad,
  [KERNELS.linear]: linearKernel,
  [KERNELS.splitHeads]: splitHeads,
  [KERNELS.mergeHeads]: mergeHeads,
};

export const WASM_KERNEL_NAMES = Object.keys(FACTORIES);

/**
 * Registers (or re-registers, wrapping the original) our kernels on the wasm backend.
 * Idempotent. Call before or after the backend initialises: the original setup functions
 * are kept so the wrapped kernels still find their wasm exports.
 */
export async function registerWasmKernels(only: string[] = WASM_KERNEL_NAMES): Promise<string[]> {
  const tf = await import('@tensorflow/tfjs');
  await import('@tensorflow/tfjs-backend-wasm'); // registers the wasm backend and its kernels
  const done: string[] = [];
  for (const name of only) {
    const factory = FACTORIES[name];
    if (!factory) throw new Error(`registerWasmKernels: no kernel named ${name} (have ${WASM_KERNEL_NAMES.join(', ')})`);
    const existing = tf.getKernel(name, BACKEND) as (KernelConfig & { [WRAPPED]?: true }) | undefined;
    if (existing?.[WRAPPED]) continue;
    if (existing) {
      originals.set(name, existing);
      tf.unregisterKernel(name, BACKEND);
    }
    const config: KernelConfig & { [WRAPPED]: true } = {
      kernelName: name,
      backendName: BACKEND,
      kernelFunc: factory(tf),
      setupFunc: existing?.setupFunc,
      disposeFunc: existing?.disposeFunc,
      [WRAPPED]: true,
    };
    tf.registerKernel(config);
    done.push(name);
  }
  registerGradients(tf);
  return done;
}

/** Restores the wasm backend's own kernels (for before/after measurements and tests). */
export async function unregisterWasmKernels(): Promise<void> {
  const tf = await import('@tensorflow/tfjs');
  for (const name of WASM_KERNEL_NAMES) {
    const current = tf.getKernel(name, BACKEND) as (KernelConfig & { [WRAPPED]?: true }) | undefined;
    if (!current?.[WRAPPED]) continue;
    tf.unregisterKernel(name, BACKEND);
    const original = originals.get(name);
    if (original) tf.registerKernel(original);
  }
  restoreGradients(tf);
}
