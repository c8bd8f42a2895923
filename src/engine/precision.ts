// `precision:` of the training stages. fp32 is the default and what every result so far was
// computed with. bf16 runs convolutions and matrix products (forward and backward) with
// bf16 operands and fp32 accumulation, as PyTorch's CPU autocast does; weights, optimizer
// state, norms, activations between layers and the loss stay fp32 (fp32 master weights).
// Only medpipe's native kernels on a CPU with AMX-BF16 (TDPBF16PS tiles) or AVX512_BF16
// (vdpbf16ps) do that, the same arithmetic on either; anywhere else bf16 is refused with the
// reason, never silently replaced: the node's key says bf16.

import type { JSONObject } from '../contract.js';
import type { EngineInfo } from './backend.js';
import { activeNative, nativeStatus, type NativeInfo, type Precision } from './native.js';

/**
 * The parameter. No schema default: a node that does not say `precision:` keeps the key it had
 * before precision existed, and one that says fp32 gets the same key (PRECISION_UNKEYED_DEFAULT).
 */
export const PRECISION_PARAM = {
  enum: ['fp32', 'bf16'],
  description: 'arithmetic of convolutions and matmuls: fp32 (default) or bf16 operands with fp32 accumulation (CPUs with AMX-BF16 or AVX512_BF16, wasm engine with native kernels; changes results)',
} as const;

/** The stages' unkeyedDefaults for it: fp32 written out is the same result as leaving it unset. */
export const PRECISION_UNKEYED_DEFAULT = { precision: 'fp32' } as const;

/** Why bf16 cannot run on this engine, or undefined when it can. */
export function bf16Unavailable(engine: Pick<EngineInfo, 'backend'>): string | undefined {
  if (engine.backend !== 'wasm') return `the ${engine.backend} backend computes in fp32 only (bf16 is a CPU-engine option: wasm with medpipe's native kernels)`;
  const nat = activeNative();
  if (nat === undefined) return `medpipe's native kernels are not in use (${nativeStatus()})`;
  return bf16Missing(nat.info());
}

/**
 * Why the loaded native kernels have no bf16 GEMM, or undefined when they have one. The addon
 * knows only what it picked, not what the CPU could do, so a kernel switched off by the
 * environment is named as such: MEDPIPE_NATIVE_ISA=avx2|c leaves the AVX-512 GEMM that both
 * bf16 kernels are built on unused, and MEDPIPE_NATIVE_BF16 may name a kernel this CPU lacks;
 * blaming the CPU then would send a user looking for another machine.
 */
export function bf16Missing(
  info: Pick<NativeInfo, 'isa' | 'bf16'> & Partial<Pick<NativeInfo, 'amxBuilt' | 'avx512bf16Built'>>,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  if (info.bf16) return undefined;
  const isa = env.MEDPIPE_NATIVE_ISA;
  if (info.isa !== 'avx512' && isa !== undefined && isa !== '' && isa !== 'avx512') {
    return `MEDPIPE_NATIVE_ISA=${isa} selects the ${info.isa} GEMM, and both bf16 kernels run on the AVX-512 one`;
  }
  const kernel = env.MEDPIPE_NATIVE_BF16;
  if (info.isa === 'avx512' && kernel !== undefined && kernel !== '') {
    return `MEDPIPE_NATIVE_BF16=${kernel} asks for a bf16 kernel this CPU or OS does not offer`;
  }
  // A compiler without a kernel's target leaves that kernel out of the build (native/build.mjs):
  // the CPU may well have it, and a rebuild with a newer compiler is the way to it.
  const left = [info.amxBuilt === false ? 'AMX' : '', info.avx512bf16Built === false ? 'avx512bf16' : ''].filter(Boolean);
  if (info.isa === 'avx512' && left.length > 0) {
    return `the native kernels were built without the ${left.join(' and ')} bf16 kernel${left.length > 1 ? 's' : ''} (the compiler lacked the target; rebuild with a newer g++: node native/build.mjs), and none that was built runs on this CPU`;
  }
  return `this CPU has neither AMX-BF16 nor AVX512_BF16 (native GEMM: ${info.isa})`;
}

/**
 * Runs `train` with the engine's GEMMs in `precision`, recorded in provenance, and puts
 * them back to fp32 when it ends (also on error). Throws, before anything is computed, when
 * bf16 is asked for where it cannot run.
 */
export async function withPrecision<T>(
  precision: Precision | undefined,
  engine: Pick<EngineInfo, 'backend'>,
  provenance: (info: JSONObject) => void,
  train: () => Promise<T>,
): Promise<T> {
  const want = precision ?? 'fp32';
  if (want === 'fp32') {
    provenance({ precision: { gemm: 'fp32' } });
    return train();
  }
  const why = bf16Unavailable(engine);
  if (why !== undefined) throw new Error(`precision: bf16 cannot run here: ${why}; use precision: fp32 (the default)`);
  const nat = activeNative()!;
  if (!nat.setPrecision('bf16')) throw new Error('precision: bf16 was refused by the native kernels');
  const info = nat.info();
  const unit = info.bf16Kernel === 'amx' ? 'AMX-BF16 TDPBF16PS tiles' : 'AVX512_BF16 vdpbf16ps';
  provenance({
    precision: {
      gemm: 'bf16',
      how: `convolutions and matmuls (forward and backward): bf16 operands rounded to nearest even, fp32 accumulation (${unit}); fp32 weights, optimizer, norms, loss`,
      isa: `${info.isa}+${info.bf16Kernel}`,
    },
  });
  try {
    return await train();
  } finally {
    nat.setPrecision('fp32');
  }
}
