// Chooses the tfjs backend at start. Order: tfjs-node-gpu (CUDA), WebGPU on a hardware
// adapter (Dawn, ./webgpu.ts), tfjs-node, wasm, cpu. A software WebGPU adapter (lavapipe) is
// used only when webgpu is asked for by name. tfjs-node(-gpu) are optional: their install
// downloads libtensorflow, which fails offline, so they are imported by name at run time and
// their absence is normal, not an error; so is the optional `webgpu` package.
// Nothing heavy is imported at module load: planning code may import this file cheaply.

import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname } from 'node:path';
import type { WebGPUStart } from './webgpu.js';

export const BACKEND_ORDER = ['node-gpu', 'webgpu', 'node', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof BACKEND_ORDER)[number];

export interface EngineInfo {
  /** Which of our choices won. */
  choice: BackendChoice;
  /** The tfjs backend name (tfjs-node registers 'tensorflow'). */
  backend: string;
  /** Threads the backend computes with (wasm under Node: 1, see native/README.md; the
   *  native kernels' pool size when they are loaded). */
  threads: number;
  /** Package and runtime versions, for provenance. */
  versions: Record<string, string>;
  /** Backend-specific facts worth recording (wasm SIMD, custom kernels). */
  details: Record<string, string | number | boolean>;
  /** On webgpu: the adapter and the device limits requested (provenance). */
  webgpu?: WebGPUStart;
  /** Choices tried before this one, and why each failed. */
  skipped: { choice: BackendChoice; reason: string }[];
}

export interface BackendOptions {
  /** One backend, or an order to try. Default: BACKEND_ORDER. */
  prefer?: BackendChoice | readonly BackendChoice[];
  /** Threads for backends that take a count (threaded wasm); ignored elsewhere. */
  threads?: number;
  /** Register medpipe's wasm kernels (training needs them). Default true. */
  wasmKernels?: boolean;
  /** The GPU this process was given (scheduler slot): adapter index for webgpu. */
  gpuIndex?: number;
}

const PACKAGES: Record<'node-gpu' | 'node', string> = {
  'node-gpu': '@tensorflow/tfjs-node-gpu',
  node: '@tensorflow/tfjs-node',
};

export function parseBackendChoice(s: string): BackendChoice {
  if ((BACKEND_ORDER as readonly string[]).includes(s)) return s as BackendChoice;
  throw new Error(`unknown backend '${s}': expected one of ${BACKEND_ORDER.join(', ')}`);
}

function packageVersion(name: string): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    const pkg = require(`${name}/package.json`) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : undefined;
  } catch {
    return undefined;
  }
}

/** The directory holding the .wasm binaries, as a file path, so nothing is fetched. */
export function wasmBinaryDir(): string {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve('@tensorflow/tfjs-backend-wasm')) + '/';
}

async function tryNode(choice: 'node-gpu' | 'node'): Promise<string> {
  // A variable specifier: the packages are optional and may be absent at compile time too.
  const spec: string = PACKAGES[choice];
  await import(spec);
  const tf = await import('@tensorflow/tfjs');
  if (!(await tf.setBackend('tensorflow'))) throw new Error(`${spec} loaded but the 'tensorflow' backend failed to start`);
  return 'tensorflow';
}

async function tryWasm(opts: BackendOptions, details: EngineInfo['details']): Promise<string> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const tf = await import('@tensorflow/tfjs');
  wasm.setWasmPaths(wasmBinaryDir());
  if (opts.threads !== undefined) wasm.setThreadsCount(opts.threads);
  if (opts.wasmKernels !== false) {
    // Native kernels (native/src, see native/README.md) for the heavy ops, when built.
    const { loadNative, nativeStatus } = await import('./native.js');
    const nat = loadNative();
    if (nat !== undefined && opts.threads !== undefined) nat.setThreads(opts.threads);
    details.native = nativeStatus();
    if (nat !== undefined) {
      details.nativeIsa = nat.info().isa;
      details.nativeThreads = nat.info().threads;
    }
    const { registerWasmKernels } = await import('./wasm-kernels.js');
    const registered = await registerWasmKernels();
    details.wasmKernels = registered.join(',');
  }
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend failed to initialise');
  details.simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
  details.multithread = tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT');
  return 'wasm';
}

async function tryWebGPU(opts: BackendOptions, asked: boolean): Promise<WebGPUStart> {
  const tf = await import('@tensorflow/tfjs');
  const { startWebGPU } = await import('./webgpu.js');
  const start = await startWebGPU(tf, { allowSoftware: asked, ...(opts.gpuIndex !== undefined ? { gpuIndex: opts.gpuIndex } : {}) });
  if (!(await tf.setBackend('webgpu'))) throw new Error('the webgpu backend failed to initialise');
  return start;
}

async function threadsOf(choice: BackendChoice): Promise<number> {
  if (choice === 'wasm') {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    // The heavy kernels run on the native addon's pool when it is loaded.
    const { loadNative } = await import('./native.js');
    const nat = loadNative();
    return nat !== undefined ? Math.max(nat.info().threads, wasm.getThreadsCount()) : wasm.getThreadsCount();
  }
  // libtensorflow sizes its thread pools to the machine; the cpu backend is plain JS; on
  // webgpu one host thread drives the device.
  return choice === 'cpu' || choice === 'webgpu' ? 1 : availableParallelism();
}

function describe(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  if (/Cannot find (module|package)|ERR_MODULE_NOT_FOUND/.test(msg)) return 'not installed';
  return msg.split('\n')[0];
}

/**
 * Starts the first backend of the order that works and says what it chose, with versions
 * and thread count for each training node's provenance. Throws only when none works.
 */
export async function initBackend(opts: BackendOptions = {}): Promise<EngineInfo> {
  const order: readonly BackendChoice[] =
    opts.prefer === undefined ? BACKEND_ORDER : typeof opts.prefer === 'string' ? [opts.prefer] : opts.prefer;
  const skipped: EngineInfo['skipped'] = [];
  const details: EngineInfo['details'] = {};
  for (const choice of order) {
    try {
      let backend: string;
      let webgpu: WebGPUStart | undefined;
      if (choice === 'webgpu') {
        // Asked for by name (alone): a software adapter will do; in an order, hardware only.
        webgpu = await tryWebGPU(opts, order.length === 1);
        backend = 'webgpu';
        details.webgpuKernels = webgpu.kernels.join(',') || 'none';
      } else if (choice === 'node-gpu' || choice === 'node') backend = await tryNode(choice);
      else if (choice === 'wasm') backend = await tryWasm(opts, details);
      else {
        const tf = await import('@tensorflow/tfjs');
        if (!(await tf.setBackend('cpu'))) throw new Error('the cpu backend failed to initialise');
        backend = 'cpu';
      }
      const tf = await import('@tensorflow/tfjs');
      await tf.ready();
      const versions: Record<string, string> = { node: process.versions.node };
      for (const [k, v] of Object.entries(tf.version)) versions[k] = v;
      const extras = choice === 'wasm' ? ['@tensorflow/tfjs-backend-wasm'] : choice === 'webgpu' ? ['@tensorflow/tfjs-backend-webgpu', 'webgpu'] : choice === 'cpu' ? [] : [PACKAGES[choice]];
      for (const extra of extras) {
        const ev = packageVersion(extra);
        if (ev !== undefined) versions[extra.replace('@tensorflow/', '')] = ev;
      }
      return { choice, backend, threads: await threadsOf(choice), versions, details, skipped, ...(webgpu ? { webgpu } : {}) };
    } catch (e) {
      skipped.push({ choice, reason: describe(e) });
    }
  }
  throw new Error(`no tfjs backend could start: ${skipped.map((s) => `${s.choice}: ${s.reason}`).join('; ')}`);
}
