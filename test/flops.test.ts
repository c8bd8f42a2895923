// The FLOP counter behind the engine bench's GFLOP/s and "% of peak" figures: per-kernel
// rules, and the forward FLOPs of three models counted off their kernels against the
// figures their reference implementations publish (torchvision's model tables list
// ResNet50 at 4.09 and ConvNeXt-T at 4.46 GFLOPS, counted as multiply-adds; timm's
// deit_small_patch16_224 at 4.6 GMACs).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/engine/backend.js';
import { kernelFlops } from '../src/engine/flops.js';
import { profileKernels } from '../src/engine/profile.js';
import { forward } from '../src/ml/models/forward.js';
import { createParams, disposeParams } from '../src/ml/models/params.js';
import { modelSpec } from '../src/ml/models/registry.js';
import { initState } from '../src/ml/models/state.js';

before(async () => {
  await initBackend({});
});

const s = (...shape: number[]): { shape: number[] } => ({ shape });

test('kernelFlops: a conv counts 2 x outputs x taps x input channels; depthwise one channel per output', () => {
  // 3x3 conv, 5 -> 7 channels, output 2 x 4 x 6.
  assert.equal(kernelFlops('Conv2D', { x: s(2, 8, 12, 5), filter: s(3, 3, 5, 7) }, { strides: 2 }, [s(2, 4, 6, 7)]), 2 * 2 * 4 * 6 * 7 * 9 * 5);
  assert.equal(kernelFlops('MedpipeConv2DBatchNorm', { x: s(1, 4, 4, 3), filter: s(1, 1, 3, 2), mean: s(2) }, {}, [s(1, 4, 4, 2)]), 2 * 16 * 2 * 3);
  assert.equal(kernelFlops('DepthwiseConv2dNative', { x: s(1, 5, 5, 4), filter: s(7, 7, 4, 1) }, {}, [s(1, 5, 5, 4)]), 2 * 25 * 4 * 49);
});

test('kernelFlops: a matmul counts 2 x outputs x inner size, transposed or not; element-wise kernels count 0', () => {
  assert.equal(kernelFlops('BatchMatMul', { a: s(3, 5, 4), b: s(3, 4, 6) }, { transposeA: false, transposeB: false }, [s(3, 5, 6)]), 2 * 90 * 4);
  assert.equal(kernelFlops('BatchMatMul', { a: s(3, 4, 5), b: s(3, 6, 4) }, { transposeA: true, transposeB: true }, [s(3, 5, 6)]), 2 * 90 * 4);
  assert.equal(kernelFlops('_FusedMatMul', { a: s(5, 4), b: s(4, 6), bias: s(6) }, {}, [s(5, 6)]), 2 * 30 * 4);
  assert.equal(kernelFlops('MedpipeLinear', { a: s(5, 4), b: s(4, 6), bias: s(6) }, {}, [s(5, 6)]), 2 * 30 * 4);
  assert.equal(kernelFlops('Add', { a: s(5, 4), b: s(5, 4) }, {}, [s(5, 4)]), 0);
  assert.equal(kernelFlops('Multiply', { a: s(5, 4), b: s(4) }, {}, [s(5, 4)]), 0);
  assert.equal(kernelFlops('Conv2D', { x: s(1, 4, 4, 3), filter: s(1, 1, 3, 2) }, {}, []), 0);
});

/** Multiply-adds (FLOPs / 2) of one image's eval forward, counted by the kernel profiler. */
function countedMacs(model: string): number {
  const spec = modelSpec(model, { numClasses: 1000, imageSize: 224 });
  const params = createParams(spec, initState(spec, 1));
  const x = tf.zeros([1, 224, 224, 3]) as tf.Tensor4D;
  const p = profileKernels(tf, tf.getBackend());
  try {
    tf.tidy(() => forward(spec, params, x, { training: false }).dataSync());
    return p.read().reduce((acc, k) => acc + k.flops, 0) / 2;
  } finally {
    p.stop();
    x.dispose();
    disposeParams(params);
  }
}

for (const [model, published, digits] of [['resnet50', 4.09, 2], ['convnext_tiny', 4.46, 2], ['deit_small_patch16_224', 4.6, 1]] as const) {
  test(`${model}'s counted forward is the ${published} GMACs its reference publishes`, () => {
    const g = countedMacs(model) / 1e9;
    assert.equal(g.toFixed(digits), published.toFixed(digits), `${g} GMACs`);
  });
}
