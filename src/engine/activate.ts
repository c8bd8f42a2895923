import type * as tfTypes from '@tensorflow/tfjs';
import type { JSONObject } from '../contract.js';
import { initBackend, parseBackendChoice, type BackendOptions, type EngineInfo } from './backend.js';
import { assignedGpus } from './gpus.js';

export type Tf = typeof tfTypes;

/** The `backend:` parameter every training/inference stage takes. */
export const BACKEND_PARAM = { enum: ['auto', 'node-gpu', 'webgpu', 'node', 'wasm', 'cpu'], default: 'auto' } as const;

/** The stage's `backend:`, unless it is 'auto' and MEDPIPE_BACKEND names one for every stage. */
export function requestedBackend(param: string, env: NodeJS.ProcessEnv = process.env): string {
  const forced = env.MEDPIPE_BACKEND;
  return param === 'auto' && forced !== undefined && forced !== '' && forced !== 'auto' ? parseBackendChoice(forced) : param;
}

/** What a node's provenance says about the engine it computed on. */
export function engineProvenance(engine: EngineInfo, gpus: number[] | undefined): JSONObject {
  // details hold the native kernels' ISA (avx512/avx2/none) and thread count: results differ
  // in the last bits between them.
  const out: JSONObject = { choice: engine.choice, backend: engine.backend, threads: engine.threads, versions: engine.versions, details: engine.details };
  if (gpus !== undefined) out.gpus = gpus;
  if (engine.webgpu) {
    const { adapter, limits, features, syncReads } = engine.webgpu;
    out.adapter = { ...adapter };
    out.limits = { ...limits };
    out.features = features;
    out.syncReads = syncReads;
  }
  if (engine.details.webgpuKernels !== undefined) out.kernels = engine.details.webgpuKernels;
  return out;
}

/**
 * Chooses and activates the backend a stage computes on ('auto': CUDA, a hardware WebGPU
 * adapter, tfjs-node, wasm, cpu), records it in the node's provenance, and returns the tf
 * instance to use. A GPU slot from the scheduler (MEDPIPE_GPUS) picks the WebGPU adapter;
 * tfjs-node-gpu sees only its GPU through CUDA_VISIBLE_DEVICES, set by the executor.
 */
export async function activateEngine(backend: string, provenance: (info: JSONObject) => void): Promise<{ tf: Tf; engine: EngineInfo }> {
  const wanted = requestedBackend(backend);
  const gpus = assignedGpus(process.env);
  const opts: BackendOptions = wanted === 'auto' ? {} : { prefer: parseBackendChoice(wanted) };
  if (gpus !== undefined && gpus.length > 0) opts.gpuIndex = gpus[0]!;
  const engine = await initBackend(opts);
  provenance({ engine: engineProvenance(engine, gpus) });
  const tf: Tf = await import('@tensorflow/tfjs');
  await tf.setBackend(engine.backend);
  if (tf.getBackend() !== engine.backend) throw new Error(`backend ${engine.backend} did not activate`);
  return { tf, engine };
}
