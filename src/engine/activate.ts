import type * as tfTypes from '@tensorflow/tfjs';
import type { JSONObject } from '../contract.js';
import { initBackend, parseBackendChoice, type EngineInfo } from './backend.js';

export type Tf = typeof tfTypes;

/** The `backend:` parameter every training/inference stage takes. */
export const BACKEND_PARAM = { enum: ['auto', 'node-gpu', 'node', 'wasm', 'cpu'], default: 'auto' } as const;

/**
 * Chooses and activates the backend a stage computes on ('auto': GPU, then tfjs-node, wasm,
 * cpu), records it in the node's provenance, and returns the tf instance to use.
 */
export async function activateEngine(backend: string, provenance: (info: JSONObject) => void): Promise<{ tf: Tf; engine: EngineInfo }> {
  const engine = await initBackend(backend === 'auto' ? {} : { prefer: parseBackendChoice(backend) });
  // details hold the native kernels' ISA (avx512/avx2/none) and thread count: results differ
  // in the last bits between them.
  provenance({ engine: { choice: engine.choice, backend: engine.backend, threads: engine.threads, versions: engine.versions, details: engine.details } });
  const tf: Tf = await import('@tensorflow/tfjs');
  await tf.setBackend(engine.backend);
  if (tf.getBackend() !== engine.backend) throw new Error(`backend ${engine.backend} did not activate`);
  return { tf, engine };
}
