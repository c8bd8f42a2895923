import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BACKEND_ORDER, initBackend, parseBackendChoice, wasmBinaryDir } from '../src/engine/backend.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

test('backend order and choice parsing', () => {
  assert.deepEqual([...BACKEND_ORDER], ['node-gpu', 'node', 'wasm', 'cpu']);
  assert.equal(parseBackendChoice('wasm'), 'wasm');
  assert.throws(() => parseBackendChoice('webgpu'), /unknown backend 'webgpu': expected one of node-gpu, node, wasm, cpu/);
});

test('wasm binaries are found on disk, so nothing is fetched', () => {
  assert.ok(existsSync(join(wasmBinaryDir(), 'tfjs-backend-wasm-simd.wasm')));
});

test('default order falls through absent tfjs-node packages to wasm, with provenance', async () => {
  const tf = await import('@tensorflow/tfjs');
  const info = await initBackend();
  const haveNode = info.choice === 'node-gpu' || info.choice === 'node';
  if (!haveNode) {
    assert.equal(info.choice, 'wasm');
    assert.equal(info.backend, 'wasm');
    assert.deepEqual(info.skipped.map((s) => s.choice), ['node-gpu', 'node']);
    assert.ok(info.skipped.every((s) => s.reason.length > 0));
    assert.ok(info.threads >= 1);
    assert.equal(info.versions['tfjs-backend-wasm'], tf.version.tfjs);
    assert.match(String(info.details.wasmKernels), /Conv2DBackpropFilter/);
    assert.equal(tf.getBackend(), 'wasm');
  }
  assert.equal(info.versions['tfjs-core'], tf.version_core);
  assert.equal(info.versions.node, process.versions.node);

  const cpu = await initBackend({ prefer: 'cpu' });
  assert.equal(cpu.backend, 'cpu');
  assert.equal(cpu.threads, 1);
  assert.equal(tf.getBackend(), 'cpu');
});

test('asking only for an absent backend fails with every reason', async () => {
  let absent = false;
  try {
    await import('@tensorflow/tfjs-node' as string);
  } catch {
    absent = true;
  }
  if (!absent) return;
  await assert.rejects(initBackend({ prefer: ['node'] }), /no tfjs backend could start: node: not installed/);
});
