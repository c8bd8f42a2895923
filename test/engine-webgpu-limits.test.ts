// What batch 64 at 224 px asks of a GPU: ResNet50's and DeiT-S's training steps traced on
// wasm at batch 2 and 3 and extrapolated (every tensor is constant or proportional in the
// batch): the largest tensor against the binding limits medpipe requests, and the peak of
// live tensor bytes against device memory. Then, on the adapter at hand, a tensor over its
// binding limit is refused with the sizes instead of corrupting the command stream.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/engine/backend.js';
import { BATCH64_224_BUFFER_BYTES, requestedLimits } from '../src/engine/webgpu.js';
import { bindingShortfall, needsAtBatch, traceStep, type StepNeeds } from '../src/engine/webgpu-limits.js';
import { makeTrainer } from '../bench/engine.js';

const MiB = 2 ** 20;
const GiB = 2 ** 30;
/** WebGPU's default limits: what a device gets unless more is requested. */
const WEBGPU_DEFAULTS = { maxStorageBufferBindingSize: 128 * MiB, maxBufferSize: 256 * MiB };

async function needs(model: string): Promise<{ b64: StepNeeds; b32: StepNeeds }> {
  await initBackend({ prefer: 'wasm' });
  await tf.setBackend('wasm');
  const traces = [2, 3].map((batch) => {
    const t = makeTrainer({ label: model, model, imageSize: 224, batch, micro: batch, steps: 1 }, 1);
    try {
      return { batch, trace: traceStep(tf, () => t.step()) };
    } finally {
      t.dispose();
    }
  });
  return { b64: needsAtBatch(traces[0]!, traces[1]!, 64), b32: needsAtBatch(traces[0]!, traces[1]!, 32) };
}

test('extrapolation from two traced batches: constant and proportional tensors, and a different step refused', () => {
  // Weights of 40 bytes, an activation of 100 bytes per image, peak 1000 + 500 per image.
  // A kernel seen at one batch only (a shape-dependent shortcut) is left out.
  const at = (b: number, extra: [string, number][] = []) => ({
    batch: b,
    trace: { outputs: new Map([['Weights', 40], ['Conv2D', 100 * b], ['Sum', 7], ...extra]), peakBytes: 1000 + 500 * b },
  });
  assert.deepEqual(needsAtBatch(at(2), at(3, [['Reshape', 10 ** 9]]), 64), { batch: 64, largestTensorBytes: 6400, peakBytes: 33_000 });
  assert.throws(() => needsAtBatch(at(2), { batch: 3, trace: { outputs: new Map([['Other', 1]]), peakBytes: 1 } }, 64), /not the same step/);
  assert.match(bindingShortfall(WEBGPU_DEFAULTS, 200 * MiB)!, /200\.0 MiB tensor exceeds this device's maxStorageBufferBindingSize \(128\.0 MiB\)/);
  assert.equal(bindingShortfall({ maxStorageBufferBindingSize: 4 * GiB - 4, maxBufferSize: 4 * GiB }, 200 * MiB), undefined);
});

test('[slow] ResNet50 and DeiT-S at batch 64, 224 px: the largest tensors and what the requested limits hold', async (t) => {
  const r = await needs('resnet50');
  const d = await needs('deit_small_patch16_224');
  const [resnet, deit] = [r.b64, d.b64];
  for (const [name, n] of [['resnet50', r], ['deit_s', d]] as const) {
    t.diagnostic(`${name}: largest tensor ${(n.b64.largestTensorBytes / MiB).toFixed(1)} MiB; peak live tensors ${(n.b64.peakBytes / 1e9).toFixed(1)} GB at batch 64, ${(n.b32.peakBytes / 1e9).toFixed(1)} GB per micro-batch of 32`);
  }
  // ResNet50: the stem's [64, 112, 112, 64] output (and layer1's [64, 56, 56, 256]).
  assert.equal(resnet.largestTensorBytes, BATCH64_224_BUFFER_BYTES);
  assert.equal(resnet.largestTensorBytes, 64 * 112 * 112 * 64 * 4);
  // DeiT-S: the MLP's hidden activations, [64 x 197 tokens, 1536] (the attention maps,
  // [64 x 6 heads, 197, 197], are smaller).
  assert.equal(deit.largestTensorBytes, 64 * 197 * 1536 * 4);
  // WebGPU's default binding limit does not hold ResNet50's: medpipe requests the adapter's own.
  assert.ok(bindingShortfall(WEBGPU_DEFAULTS, resnet.largestTensorBytes) !== undefined);
  assert.equal(bindingShortfall(WEBGPU_DEFAULTS, deit.largestTensorBytes), undefined);
  const asked = requestedLimits({ maxStorageBufferBindingSize: 4 * GiB - 4, maxBufferSize: 4 * GiB, maxComputeWorkgroupsPerDimension: 65535, maxTextureDimension2D: 16384 });
  assert.deepEqual(asked, { maxStorageBufferBindingSize: 4 * GiB - 4, maxBufferSize: 4 * GiB, maxComputeWorkgroupsPerDimension: 65535 });
  assert.equal(bindingShortfall(asked, resnet.largestTensorBytes), undefined);
  // Device memory: live tensors grow with the batch (tfjs's tape keeps every intermediate):
  // ~22 GB for either model at batch 64 in one piece. In micro-batches of 32
  // (micro_batch: 32) a 16 GB card holds the step with room for tfjs's buffer pool.
  for (const [name, n] of [['ResNet50', r], ['DeiT-S', d]] as const) {
    assert.ok(n.b32.peakBytes < 14e9, `${name}: ${n.b32.peakBytes} bytes live at micro-batch 32`);
    assert.ok(n.b64.peakBytes > n.b32.peakBytes);
  }
});

test('on the adapter at hand, a tensor over its binding limit is refused with the sizes', async (t) => {
  let limit: number;
  try {
    limit = (await initBackend({ prefer: 'webgpu' })).webgpu!.limits.maxStorageBufferBindingSize!;
  } catch (e) {
    return t.skip(`no WebGPU adapter: ${(e as Error).message}`);
  }
  if (limit > 512 * MiB) return t.skip(`this adapter binds ${(limit / GiB).toFixed(1)} GiB: too large to allocate in a test`);
  await tf.setBackend('webgpu');
  try {
    assert.throws(() => tf.tidy(() => tf.add(tf.zeros([limit / 4 + 64]), 1).dataSync()),
      /webgpu: a \d+\.\d MiB tensor exceeds this device's maxStorageBufferBindingSize \(\d+\.\d MiB\); lower batch_size/);
    // The device is still sound: nothing invalid reached it.
    assert.deepEqual(Array.from(tf.tidy(() => tf.add(tf.ones([3]), 1).dataSync())), [2, 2, 2]);
  } finally {
    await tf.setBackend('cpu');
  }
});
