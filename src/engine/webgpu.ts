// The WebGPU engine: Dawn's Node bindings (the optional npm package `webgpu`, whose tarball
// carries a prebuilt dawn.node) under @tensorflow/tfjs-backend-webgpu. Dawn is loaded only
// when asked for, inside try/catch: a machine where dawn.node cannot load (older glibc, no
// Vulkan loader, another platform) falls back to the next backend and says why.
//
// Adapter choice: a hardware adapter by default; a software one (Mesa's lavapipe/llvmpipe,
// SwiftShader) only when the caller allows it, since it is far slower than the CPU engine.
// With a GPU index (the scheduler's slot, MEDPIPE_GPUS), the index-th hardware adapter.

import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { activeNative } from './native.js';
import { bindingShortfall } from './webgpu-limits.js';

type Tf = typeof import('@tensorflow/tfjs');

/** The parts of the WebGPU API this module touches (the `webgpu` package's types are not a
 *  dependency of the build: the package is optional). */
interface GpuInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter?: boolean;
}
interface GpuAdapter {
  info: GpuInfo;
  limits: Record<string, number>;
  features: ReadonlySet<string>;
  requestDevice(desc: { requiredLimits: Record<string, number>; requiredFeatures: string[] }): Promise<GpuDevice>;
}
export interface GpuDevice {
  limits: Record<string, number>;
  lost: Promise<{ reason: string; message: string }>;
  onuncapturederror: ((ev: { error?: { message?: string } }) => void) | null;
  destroy(): void;
}
interface Gpu {
  requestAdapter(opts?: { powerPreference?: string }): Promise<GpuAdapter | null>;
}
interface Dawn {
  create(flags: string[]): Gpu;
  globals: Record<string, unknown>;
}

/** What provenance records about the adapter a node computed on. */
export interface AdapterFacts {
  vendor: string;
  architecture: string;
  device: string;
  /** Dawn's description: driver name and version on Vulkan. */
  driver: string;
  software: boolean;
  /** Index among this machine's hardware adapters (the GPU slot), when one was asked for. */
  gpuIndex?: number;
  /** How the adapter was picked: 'first' (Dawn's default), 'name' or 'pci' (for an index). */
  selectedBy: string;
}

export interface WebGPUStart {
  adapter: AdapterFacts;
  /** The limits requested from the device (and granted: requestDevice fails otherwise). */
  limits: Record<string, number>;
  features: string[];
  /** medpipe's WGSL kernels registered over tfjs-webgpu's. */
  kernels: string[];
  /** Whether tfjs dataSync works (needs the native addon's event-loop pump). */
  syncReads: boolean;
}

export interface WebGPUOptions {
  /** Accept a software adapter (asked for by name: `backend: webgpu`). */
  allowSoftware: boolean;
  /** Use the index-th hardware adapter (the GPU slot the scheduler gave this node). */
  gpuIndex?: number;
}

const SOFTWARE = /llvmpipe|lavapipe|swiftshader|software|softpipe/i;

/** The largest activation a ResNet50 training step at batch 64, 224 px holds in one buffer:
 *  the stem's [64, 112, 112, 64] float32 output (and layer1's [64, 56, 56, 256], the same
 *  size). WebGPU's default binding limit (128 MiB) is below it. */
export const BATCH64_224_BUFFER_BYTES = 64 * 112 * 112 * 64 * 4;

let dawnCache: { dawn?: Dawn; reason?: string } | undefined;

/** dawn.node, or why it cannot load (not installed, glibc too old, platform without a build). */
export function loadDawn(): { dawn?: Dawn; reason?: string } {
  if (dawnCache) return dawnCache;
  try {
    // `webgpu` is an ES module whose entry requires dawn.node; require() of its build keeps
    // this synchronous and the failure catchable here.
    const require = createRequire(import.meta.url);
    const pkgDir = require.resolve('webgpu/package.json').replace(/package\.json$/, '');
    const arch = process.platform === 'darwin' ? 'universal' : process.arch;
    dawnCache = { dawn: require(join(pkgDir, 'dist', `${process.platform}-${arch}`, 'dawn.node')) as Dawn };
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const why = /Cannot find (module|package)|ERR_MODULE_NOT_FOUND|MODULE_NOT_FOUND/.test(msg) && /webgpu\/package\.json/.test(msg)
      ? 'npm package `webgpu` not installed (an optional dependency)'
      : `dawn.node failed to load: ${msg.split('\n')[0]}`;
    dawnCache = { reason: why };
  }
  return dawnCache;
}

export interface ListedAdapter {
  backend: string;
  name: string;
  software: boolean;
}

/** Dawn lists its adapters only in the error of an adapter name that matches none. */
export function parseAdapterList(message: string): ListedAdapter[] {
  const out: ListedAdapter[] = [];
  for (const m of message.matchAll(/\* backend: '([^']*)', name: '([^']*)'/g)) {
    out.push({ backend: m[1]!, name: m[2]!, software: SOFTWARE.test(m[2]!) });
  }
  return out;
}

/** Every adapter Dawn sees on this machine ([] when dawn.node does not load). */
export async function listAdapters(): Promise<ListedAdapter[]> {
  const { dawn } = loadDawn();
  if (!dawn) return [];
  try {
    // A name no adapter has: resolves to null only when Dawn finds no backend at all.
    await dawn.create(['adapter=\u0001medpipe-list-adapters']).requestAdapter();
    return [];
  } catch (e) {
    return parseAdapterList(e instanceof Error ? e.message : String(e));
  }
}

/** PCI addresses of display controllers (class 0x03xxxx), in bus order: how CUDA and
 *  nvidia-smi number identical GPUs. */
export function displayPciAddresses(sysfs = '/sys/bus/pci/devices'): string[] {
  try {
    return readdirSync(sysfs)
      .filter((d) => readFileSync(join(sysfs, d, 'class'), 'utf8').startsWith('0x03'))
      .sort();
  } catch {
    return [];
  }
}

export interface Selection {
  /** Flags for dawn's create(). */
  flags: string[];
  /** Environment for the Vulkan loader, set before the instance exists. */
  env: Record<string, string>;
  selectedBy: string;
}

/**
 * How to open the index-th hardware adapter. Distinct names: Dawn's `adapter=` flag (a
 * substring match, so the name must be unique). Identical GPUs (8 x H100) share a name; then
 * Mesa's device-select Vulkan layer (shipped with mesa-vulkan-drivers) is told the PCI address
 * and to hide the other devices.
 */
export function selectAdapter(adapters: ListedAdapter[], index: number, pci: string[]): Selection {
  const hw = adapters.filter((a) => !a.software && a.backend !== 'null');
  if (index < 0 || index >= hw.length) {
    throw new Error(`GPU ${index} was assigned but Dawn sees ${hw.length} hardware adapter(s)${hw.length ? `: ${hw.map((a) => a.name).join(', ')}` : ''}`);
  }
  const name = hw[index]!.name;
  if (hw.filter((a) => a.name === name).length === 1 && hw.every((a) => a === hw[index] || !a.name.includes(name))) {
    return { flags: [`adapter=${name}`], env: {}, selectedBy: 'name' };
  }
  const addr = pci[index];
  if (addr === undefined) throw new Error(`GPU ${index}: ${hw.length} adapters named '${name}' and no PCI address to tell them apart`);
  return {
    flags: [`adapter=${name}`],
    env: { DRI_PRIME: `pci-${addr.replace(/[:.]/g, '_')}`, MESA_VK_DEVICE_SELECT_FORCE_DEFAULT_DEVICE: '1' },
    selectedBy: `pci ${addr}`,
  };
}

/** The limits asked of the device: the adapter's maxima for what tfjs-webgpu sizes its
 *  dispatches and buffers by, so a batch-64 ResNet50/DeiT-S step at 224 px fits. */
export function requestedLimits(adapterLimits: Record<string, number>): Record<string, number> {
  const keys = [
    'maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize', 'maxComputeWorkgroupsPerDimension',
    'maxComputeWorkgroupSizeX', 'maxComputeInvocationsPerWorkgroup', 'maxStorageBuffersPerShaderStage',
  ];
  const out: Record<string, number> = {};
  for (const k of keys) {
    const v = adapterLimits[k];
    if (typeof v === 'number') out[k] = v;
  }
  return out;
}

function installNavigator(gpu: Gpu, globals: Record<string, unknown>): void {
  // GPUBufferUsage, GPUMapMode, ... are read as globals by tfjs-backend-webgpu.
  for (const [k, v] of Object.entries(globals)) {
    if (!(k in globalThis)) Object.defineProperty(globalThis, k, { value: v, configurable: true, writable: true });
  }
  // Node >= 21 has a global `navigator` (a getter, without gpu); older Node has none.
  const g = globalThis as { navigator?: object };
  if (g.navigator === undefined) Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  else Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true, writable: true });
}

let started: { start: WebGPUStart; device: GpuDevice } | undefined;
let deviceError: string | undefined;

/** Throws once the device has reported an error (sticky: later results are not trusted). */
export function failIfDeviceError(): void {
  if (deviceError !== undefined) throw new Error(`WebGPU device error, results since are invalid: ${deviceError}`);
}

/** The device this process computes on, once started (for tests and the bench). */
export function webgpuDevice(): GpuDevice | undefined {
  return started?.device;
}

/**
 * Opens the adapter, requests the device, and registers tfjs's 'webgpu' backend on it. One
 * device per process: later calls return the first start (a different GPU index throws).
 */
export async function startWebGPU(tf: Tf, opts: WebGPUOptions): Promise<WebGPUStart> {
  if (started) {
    if (opts.gpuIndex !== undefined && started.start.adapter.gpuIndex !== opts.gpuIndex) {
      throw new Error(`this process already computes on GPU ${started.start.adapter.gpuIndex ?? 'default'}`);
    }
    if (started.start.adapter.software && !opts.allowSoftware) throw softwareRefused(started.start.adapter);
    return started.start;
  }
  const { dawn, reason } = loadDawn();
  if (!dawn) throw new Error(reason);
  let sel: Selection = { flags: [], env: {}, selectedBy: 'first' };
  if (opts.gpuIndex !== undefined) sel = selectAdapter(await listAdapters(), opts.gpuIndex, displayPciAddresses());
  for (const [k, v] of Object.entries(sel.env)) process.env[k] = v;
  const gpu = dawn.create(sel.flags);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error('no WebGPU adapter (no Vulkan/Metal driver found; on Linux install a Vulkan driver: see README, GPU)');
  const info = adapter.info;
  const facts: AdapterFacts = {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    driver: info.description,
    software: info.isFallbackAdapter === true || SOFTWARE.test(`${info.device} ${info.description} ${info.architecture}`),
    ...(opts.gpuIndex !== undefined ? { gpuIndex: opts.gpuIndex } : {}),
    selectedBy: sel.selectedBy,
  };
  if (facts.software && !opts.allowSoftware) throw softwareRefused(facts);
  const limits = requestedLimits(adapter.limits);
  const features = ['timestamp-query'].filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({ requiredLimits: limits, requiredFeatures: features });
  void device.lost.then((l) => {
    if (l.reason !== 'destroyed') deviceError ??= `device lost (${l.reason}): ${l.message}`;
  });
  // A validation error drops the whole command buffer it was in: every result since is
  // wrong. tfjs never looks; reads check this and throw.
  device.onuncapturederror = (ev) => {
    deviceError ??= (ev.error?.message ?? 'unknown error').split('\n')[0]!;
  };
  installNavigator(gpu, dawn.globals);
  const webgpu = await import('@tensorflow/tfjs-backend-webgpu');
  // The package registers a factory of its own that picks Dawn's default adapter with its own
  // limits; ours opens the adapter chosen above.
  tf.removeBackend('webgpu');
  const backendInfo = info as unknown as ConstructorParameters<typeof webgpu.WebGPUBackend>[1];
  tf.registerBackend('webgpu', () => {
    const be = new webgpu.WebGPUBackend(device as unknown as ConstructorParameters<typeof webgpu.WebGPUBackend>[0], backendInfo);
    installSyncRead(tf, be as unknown as SyncReadable);
    guardBindingSize(be as unknown as SyncReadable, device.limits);
    return be;
  }, 0);
  // MEDPIPE_WEBGPU_KERNELS=0 keeps tfjs-webgpu's own kernels, =-A,-B all of medpipe's but
  // A and B (to compare both).
  const { registerWebGPUKernels, kernelsLeftOut } = await import('./webgpu-kernels.js');
  const off = kernelsLeftOut(process.env.MEDPIPE_WEBGPU_KERNELS);
  const kernels = off === 'all' ? [] : registerWebGPUKernels(tf, off);
  const start: WebGPUStart = { adapter: facts, limits, features, kernels, syncReads: activeNative()?.pumpEvents !== undefined };
  started = { start, device };
  return start;
}

function softwareRefused(a: AdapterFacts): Error {
  return new Error(`only a software adapter (${a.device}, ${a.driver}): used only when asked for (backend: webgpu, or MEDPIPE_BACKEND=webgpu)`);
}

/**
 * A tensor larger than one binding would fail validation on its first use and Dawn would
 * drop the command buffer (every later result invalid): refused when its buffer is made, with
 * the sizes and what to change.
 */
function guardBindingSize(be: SyncReadable, limits: Record<string, number>): void {
  const acquire = be.bufferManager.acquireBuffer.bind(be.bufferManager);
  const storage = (globalThis as unknown as { GPUBufferUsage: Record<string, number> }).GPUBufferUsage.STORAGE!;
  be.bufferManager.acquireBuffer = (size: number, usage: number, ...rest: unknown[]) => {
    const short = (usage & storage) !== 0 ? bindingShortfall(limits, size) : undefined;
    if (short !== undefined) throw new Error(`webgpu: ${short}; lower batch_size (or train in micro-batches), or use a GPU that allows larger bindings`);
    return (acquire as (...a: unknown[]) => StagingBuffer)(size, usage, ...rest);
  };
}

/** The pieces of tfjs-webgpu's backend a synchronous read uses. */
interface SyncReadable {
  tensorMap: { get(id: object): { values?: unknown; dtype: string; resource?: { size: number } } | undefined };
  bufferManager: { acquireBuffer(size: number, usage: number): StagingBuffer; releaseBuffer(b: StagingBuffer): void };
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  commandEncoder: { copyBufferToBuffer(a: unknown, ao: number, b: unknown, bo: number, n: number): void };
  convertAndCacheOnCPU(id: object, data: unknown): unknown;
  readSync(id: object): unknown;
  read(id: object): Promise<unknown>;
}
interface StagingBuffer {
  mapState: string;
  mapAsync(mode: number): Promise<void>;
  getMappedRange(): ArrayBuffer;
  unmap(): void;
}

/**
 * tfjs-webgpu's readSync (dataSync) draws through an OffscreenCanvas, which Node lacks. This
 * one copies to a staging buffer and turns Node's event loop (native addon) until Dawn has
 * mapped it: the stages' few host reads (a loss, a gradient norm) work unchanged.
 */
function installSyncRead(tf: Tf, be: SyncReadable): void {
  const original = be.readSync.bind(be);
  const asyncRead = be.read.bind(be);
  be.read = async (dataId: object) => {
    const v = await asyncRead(dataId);
    failIfDeviceError();
    return v;
  };
  const globals = globalThis as unknown as { GPUBufferUsage: Record<string, number>; GPUMapMode: Record<string, number> };
  be.readSync = (dataId: object) => {
    const d = be.tensorMap.get(dataId);
    failIfDeviceError();
    if (d === undefined || d.values != null || d.resource === undefined || d.dtype === 'complex64' || d.dtype === 'string') return original(dataId);
    const pump = activeNative()?.pumpEvents;
    if (pump === undefined) {
      throw new Error('dataSync on the webgpu backend needs medpipe\'s native addon (node native/build.mjs) to wait for the GPU; use await tensor.data()');
    }
    const size = d.resource.size;
    const staging = be.bufferManager.acquireBuffer(size, globals.GPUBufferUsage.COPY_DST! | globals.GPUBufferUsage.MAP_READ!);
    be.ensureCommandEncoderReady();
    be.endComputePassEncoder();
    be.commandEncoder.copyBufferToBuffer(d.resource, 0, staging, 0, size);
    be.submitQueue();
    // Promise reactions do not run inside this loop (no microtask checkpoint), so the map's
    // outcome is read from mapState: 'pending' until Dawn's callback, then mapped or not.
    staging.mapAsync(globals.GPUMapMode.READ!).catch(() => undefined);
    while (staging.mapState === 'pending') pump();
    if (staging.mapState !== 'mapped') throw new Error('webgpu: mapping a staging buffer for a synchronous read failed (device lost?)');
    const bytes = staging.getMappedRange().slice(0);
    staging.unmap();
    be.bufferManager.releaseBuffer(staging);
    failIfDeviceError();
    const values = tf.util.convertBackendValuesAndArrayBuffer(bytes, d.dtype as 'float32');
    return be.convertAndCacheOnCPU(dataId, values);
  };
}
