import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BACKEND_ORDER, initBackend, parseBackendChoice, wasmBinaryDir } from '../src/engine/backend.js';
import { engineProvenance, requestedBackend } from '../src/engine/activate.js';
import { assignedGpus, gpuEnv } from '../src/engine/gpus.js';
import { displayPciAddresses, parseAdapterList, requestedLimits, selectAdapter, BATCH64_224_BUFFER_BYTES } from '../src/engine/webgpu.js';
import { Slots } from '../src/run/slots.js';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

test('backend order and choice parsing', () => {
  assert.deepEqual([...BACKEND_ORDER], ['node-gpu', 'webgpu', 'node', 'wasm', 'cpu']);
  assert.equal(parseBackendChoice('wasm'), 'wasm');
  assert.equal(parseBackendChoice('webgpu'), 'webgpu');
  assert.throws(() => parseBackendChoice('metal'), /unknown backend 'metal': expected one of node-gpu, webgpu, node, wasm, cpu/);
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
    assert.deepEqual(info.skipped.map((s) => s.choice), ['node-gpu', 'webgpu', 'node']);
    assert.ok(info.skipped.every((s) => s.reason.length > 0));
    // On this machine WebGPU is either absent or a software adapter, which auto never takes.
    assert.match(info.skipped[1]!.reason, /software adapter|not installed|dawn\.node|no WebGPU adapter/);
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

test('MEDPIPE_BACKEND applies to stages that say auto; a stage naming a backend keeps it', () => {
  assert.equal(requestedBackend('auto', { MEDPIPE_BACKEND: 'webgpu' }), 'webgpu');
  assert.equal(requestedBackend('wasm', { MEDPIPE_BACKEND: 'webgpu' }), 'wasm');
  assert.equal(requestedBackend('auto', {}), 'auto');
  assert.throws(() => requestedBackend('auto', { MEDPIPE_BACKEND: 'cuda' }), /unknown backend 'cuda'/);
});

test('GPU slots reach the worker as MEDPIPE_GPUS and CUDA_VISIBLE_DEVICES (through a user mask)', () => {
  assert.deepEqual(gpuEnv([1], {}), { MEDPIPE_GPUS: '1', CUDA_VISIBLE_DEVICES: '1' });
  assert.deepEqual(gpuEnv([0, 1], { CUDA_VISIBLE_DEVICES: '4,6' }), { MEDPIPE_GPUS: '0,1', CUDA_VISIBLE_DEVICES: '4,6' });
  assert.deepEqual(gpuEnv([1], { CUDA_VISIBLE_DEVICES: '4,6' }), { MEDPIPE_GPUS: '1', CUDA_VISIBLE_DEVICES: '6' });
  assert.deepEqual(gpuEnv([], { CUDA_VISIBLE_DEVICES: '4' }), {});
  assert.deepEqual(assignedGpus({ MEDPIPE_GPUS: '2,3' }), [2, 3]);
  assert.equal(assignedGpus({}), undefined);
  assert.throws(() => assignedGpus({ MEDPIPE_GPUS: 'gpu0' }), /MEDPIPE_GPUS: expected GPU indices/);
});

test('the scheduler gives each running node its own GPUs and takes them back', async () => {
  const slots = new Slots({ jobs: 4, cpus: 4, gpu: 3, memory_gb: 64 });
  const signal = new AbortController().signal;
  const a = await slots.acquire(slots.needOf({ gpu: 1 }, 'a'), signal);
  const b = await slots.acquire(slots.needOf({ gpu: 2 }, 'b'), signal);
  assert.deepEqual([a.gpus, b.gpus], [[0], [1, 2]]);
  const c = slots.acquire(slots.needOf({ gpu: 1 }, 'c'), signal);
  a();
  assert.deepEqual((await c).gpus, [0]);
  b();
  const d = await slots.acquire(slots.needOf({ gpu: 2 }, 'd'), signal);
  assert.deepEqual(d.gpus, [1, 2]);
  const cpuOnly = await slots.acquire(slots.needOf({}, 'e'), signal);
  assert.deepEqual(cpuOnly.gpus, []);
  // Planning runs with an unbounded GPU count: no indices to hand out.
  const plan = new Slots({ jobs: 1, cpus: 1, gpu: Number.MAX_SAFE_INTEGER, memory_gb: 1 });
  assert.deepEqual((await plan.acquire(plan.needOf({ gpu: 1 }, 'p'), signal)).gpus, []);
});

test("Dawn's adapter list is parsed, and a GPU index picks an adapter by name or, for identical GPUs, by PCI address", () => {
  const msg = "no suitable backends found\nAvailable adapters:\n * backend: 'vulkan', name: 'NVIDIA H100 80GB HBM3'\n * backend: 'vulkan', name: 'NVIDIA H100 80GB HBM3'\n * backend: 'vulkan', name: 'llvmpipe (LLVM 15.0.6, 256 bits)'\n";
  const list = parseAdapterList(msg);
  assert.deepEqual(list.map((a) => a.software), [false, false, true]);
  const sel = selectAdapter(list, 1, ['0000:18:00.0', '0000:2a:00.0']);
  assert.equal(sel.selectedBy, 'pci 0000:2a:00.0');
  assert.deepEqual(sel.env, { DRI_PRIME: 'pci-0000_2a_00_0', MESA_VK_DEVICE_SELECT_FORCE_DEFAULT_DEVICE: '1' });
  const mixed = parseAdapterList(" * backend: 'vulkan', name: 'NVIDIA RTX A6000'\n * backend: 'vulkan', name: 'AMD Radeon Pro W7900'");
  assert.deepEqual(selectAdapter(mixed, 1, []), { flags: ['adapter=AMD Radeon Pro W7900'], env: {}, selectedBy: 'name' });
  assert.throws(() => selectAdapter(list, 2, []), /GPU 2 was assigned but Dawn sees 2 hardware adapter/);
  assert.throws(() => selectAdapter(list, 0, []), /no PCI address/);
});

test('PCI display controllers are listed in bus order; requested limits are the adapter maxima', () => {
  const root = mkdtempSync(join(tmpdir(), 'pci-'));
  for (const [dev, cls] of [['0000:2a:00.0', '0x030200'], ['0000:18:00.0', '0x030000'], ['0000:00:1f.0', '0x060100']]) {
    mkdirSync(join(root, dev));
    writeFileSync(join(root, dev, 'class'), `${cls}\n`);
  }
  assert.deepEqual(displayPciAddresses(root), ['0000:18:00.0', '0000:2a:00.0']);
  assert.deepEqual(displayPciAddresses(join(root, 'absent')), []);
  const lim = requestedLimits({ maxStorageBufferBindingSize: 2 ** 32 - 4, maxBufferSize: 2 ** 34, maxTextureDimension2D: 8192 });
  assert.deepEqual(lim, { maxStorageBufferBindingSize: 2 ** 32 - 4, maxBufferSize: 2 ** 34 });
  assert.ok(lim.maxStorageBufferBindingSize! >= BATCH64_224_BUFFER_BYTES);
});

test('provenance of a webgpu engine names the adapter, the limits and the GPU slot', () => {
  const p = engineProvenance({
    choice: 'webgpu', backend: 'webgpu', threads: 1, versions: { node: '20' }, details: { webgpuKernels: 'Conv2DBackpropFilter' }, skipped: [],
    webgpu: { adapter: { vendor: 'nvidia', architecture: 'hopper', device: 'NVIDIA H100', driver: 'NVIDIA 560', software: false, gpuIndex: 1, selectedBy: 'name' }, limits: { maxBufferSize: 1 }, features: [], kernels: ['Conv2DBackpropFilter'], syncReads: true },
  }, [1]);
  assert.deepEqual(p.gpus, [1]);
  assert.deepEqual(p.adapter, { vendor: 'nvidia', architecture: 'hopper', device: 'NVIDIA H100', driver: 'NVIDIA 560', software: false, gpuIndex: 1, selectedBy: 'name' });
  assert.deepEqual(p.limits, { maxBufferSize: 1 });
  assert.equal(p.kernels, 'Conv2DBackpropFilter');
});
