// WGSL kernels medpipe registers on tfjs-backend-webgpu 4.22 where its own are slow on the
// training hot path:
//
// - Conv2DBackpropFilter: tfjs runs one thread per filter weight, each looping serially over
//   batch x height x width (802,816 iterations per thread for ResNet50's stem at batch 64,
//   224 px, with only 9,408 threads). Here it is a GEMM, dW[M = KH*KW*CI, N = CO] =
//   im2col(x)^T [M, K = B*OH*OW] . dy [K, N], in 64 x 64 tiles staged through workgroup
//   memory (each thread 4 x 4 outputs), with K split across workgroups (split-K) so that a
//   small filter still fills the GPU; a second pass adds the slices in a fixed order, so the
//   result is the same on every run.
//
// - AddN: tfjs binds every input at once; above maxStorageBuffersPerShaderStage - 1 inputs
//   (7 or 15 on most devices; a global gradient norm adds one per parameter tensor) the
//   pipeline is invalid and its whole command buffer is dropped. Summed in groups here.
//
// - MedpipeGelu / MedpipeGeluGrad (src/engine/fused-ops.ts): exact GELU and its gradient as
//   one pass each, where tfjs composes ~5 and ~10 element-wise dispatches. erf is the
//   Abramowitz-Stegun 7.1.26 form tfjs's own erf kernels use (|error| < 1.5e-7).
// - MedpipeLayerNorm / MedpipeLayerNormGrad: LayerNorm over the last axis, one workgroup
//   per row (two-pass mean and variance in workgroup memory); the gradient's row terms the
//   same way, its scale/offset sums over rows in 64-row slices added in a fixed order.
//
// Each kernel falls back to tfjs's own for what it does not cover (NCHW, dilations).

import type { KernelConfig, KernelFunc, NamedAttrMap, NamedTensorInfoMap, TensorInfo, backend_util as BackendUtil } from '@tensorflow/tfjs-core';

import { webgpuAdamKernel, WEBGPU_ADAM } from './webgpu-adam.js';
import { BN_TRAIN, BN_TRAIN_GRAD, GELU, GELU_GRAD, LN, LN_GRAD } from './wasm-kernels.js';

type Tf = typeof import('@tensorflow/tfjs');
type Pad = 'valid' | 'same' | number | BackendUtil.ExplicitPadding;

/** The slice of tfjs-webgpu's backend and program interfaces these kernels use. */
interface UniformEntry {
  type: 'int32' | 'float32' | 'uint32';
  data: number[];
}
interface Program {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  variableNames: string[];
  uniforms: string;
  workgroupSize: [number, number, number];
  size?: boolean;
  getUserCode(): string;
}
interface WebGPUBackendLike {
  runWebGPUProgram(p: Program, inputs: TensorInfo[], dtype: 'float32', uniforms: UniformEntry[]): TensorInfo;
  disposeData(dataId: object): void;
  device: { limits: Record<string, number> };
}

const BACKEND = 'webgpu';
export const CONV_FILTER_TILE = 64;
const TK = 16;

/** Split-K plan for an [M x N] result over K: enough workgroups to fill a large GPU, each
 *  slice at least 16 K-tiles long, the partial sums within a quarter of the binding limit. */
export function splitK(M: number, N: number, K: number, maxBindingBytes: number): { slices: number; chunk: number } {
  const tiles = Math.ceil(M / CONV_FILTER_TILE) * Math.ceil(N / CONV_FILTER_TILE);
  const byFill = Math.ceil(1024 / tiles);
  const byLength = Math.max(1, Math.floor(K / (16 * TK)));
  const byMemory = Math.max(1, Math.floor(maxBindingBytes / 4 / (M * N * 4)));
  const want = Math.max(1, Math.min(byFill, byLength, byMemory, 4096));
  const chunk = Math.ceil(Math.ceil(K / want) / TK) * TK;
  return { slices: Math.ceil(K / chunk), chunk };
}

/** How the 256 threads of a workgroup stage one operand's 16 x 64 tile: `outer` puts the 64
 *  tile index (m or n) fastest across threads, `k` the reduction index; each operand takes
 *  the order its memory is contiguous in, so that neighbouring threads read neighbouring
 *  floats. */
type Fastest = 'outer' | 'k';

/** A staged tile's row stride in vec4s: 64 floats and one vec4 of padding, so that the 16
 *  threads of a `k`-ordered stage (16 rows, one column) hit 8 banks twice rather than one
 *  bank 16 times; still vec4-aligned for the inner loop's reads. */
const ROW4 = 17;

/**
 * A 64 x 64 x 16 tiled GEMM, result[z][M x N] = A[M x K] . B[K x N] over the K range of slice
 * z (workgroupId.z), the layout of tfjs-webgpu's matmul_packed: tiles staged in workgroup
 * memory, each of the 256 threads a 4 x 4 block of outputs in four vec4 accumulators (no
 * dynamically indexed private array, which a GPU compiler may put in local memory), tile
 * reads as vec4. A and B are never materialised: the kernel's `helpers` define
 * `fn loadA(m, k) -> f32` and `fn loadB(k, n) -> f32`, called only in range (m < M, n < N,
 * k inside the slice): an implicit im2col. `slice` (WGSL) may redefine, per workgroup, the
 * rows `M`, the K range `kBegin`..`kEnd` and `fn outIndex(m, n) -> i32` (default: split-K
 * slice z of K, row-major [z][M][N]). Index arithmetic that depends only on the thread
 * (`perThread`, once) or on the tile (`perTile`, with `k0`) is hoisted out of the loads: in
 * `k` order a thread stages the same column k = k0 + tid % 16 of both tiles, in `outer`
 * order the same row m0 + tid % 64 / column n0 + tid % 64 of every tile; the loads get the
 * staging step `i` (0..3) to find their precomputed parts.
 */
function tiledGemm(o: { key: string; outputShape: number[]; dispatch: [number, number, number]; tilesPerSlice: number; names: string[]; uniforms: string; helpers: string; a: Fastest; b: Fastest; slice?: string; perThread?: string; perTile?: string }): Program {
  const stage = (which: 'A' | 'B', order: Fastest, bound: string, load: string) => `
            {
              let kk = ${order === 'k' ? `e % ${TK}` : 'e / 64'};
              let oo = ${order === 'k' ? `e / ${TK}` : 'e % 64'};
              let k = k0 + kk;
              let o = ${which === 'A' ? 'm0' : 'n0'} + oo;
              var v = 0.0;
              if (k < kEnd && o < ${bound}) {
                v = ${load};
              }
              ${which}s[kk * ${ROW4} + oo / 4][oo % 4] = v;
            }`;
  return {
    outputShape: o.outputShape,
    // The K loop's trip count is baked in (uniform control flow around the barriers).
    shaderKey: `${o.key}_${o.a}${o.b}_${o.tilesPerSlice}`,
    dispatchLayout: { x: o.outputShape.map((_, i) => i) },
    dispatch: o.dispatch,
    variableNames: o.names,
    uniforms: `M : i32, N : i32, K : i32, chunk : i32, ${o.uniforms}`,
    workgroupSize: [256, 1, 1],
    getUserCode: () => `
      var<workgroup> As : array<vec4<f32>, ${TK * ROW4}>;
      var<workgroup> Bs : array<vec4<f32>, ${TK * ROW4}>;
      ${o.helpers}

      fn main(index : i32) {
        let tid = i32(localIndex);
        let tx = tid % 16;
        let ty = tid / 16;
        let m0 = i32(workgroupId.x) * 64;
        let n0 = i32(workgroupId.y) * 64;
        ${o.slice ?? `let M = uniforms.M;
        let kBegin = i32(workgroupId.z) * uniforms.chunk;
        let kEnd = min(kBegin + uniforms.chunk, uniforms.K);`}
        var acc0 = vec4<f32>(0.0);
        var acc1 = vec4<f32>(0.0);
        var acc2 = vec4<f32>(0.0);
        var acc3 = vec4<f32>(0.0);
        ${o.perThread ?? ''}
        for (var t = 0; t < ${o.tilesPerSlice}; t++) {
          let k0 = kBegin + t * ${TK};
          ${o.perTile ?? ''}
          for (var i = 0; i < ${(TK * 64) / 256}; i++) {
            let e = tid + i * 256;
            ${stage('A', o.a, 'M', 'loadA(i, o, k)')}
            ${stage('B', o.b, 'uniforms.N', 'loadB(i, k, o)')}
          }
          workgroupBarrier();
          for (var kk = 0; kk < ${TK}; kk++) {
            let a = As[kk * ${ROW4} + ty];
            let b = Bs[kk * ${ROW4} + tx];
            acc0 = fma(vec4<f32>(a.x), b, acc0);
            acc1 = fma(vec4<f32>(a.y), b, acc1);
            acc2 = fma(vec4<f32>(a.z), b, acc2);
            acc3 = fma(vec4<f32>(a.w), b, acc3);
          }
          workgroupBarrier();
        }
        let rows = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
        for (var i = 0; i < 4; i++) {
          let m = m0 + ty * 4 + i;
          for (var j = 0; j < 4; j++) {
            let n = n0 + tx * 4 + j;
            if (m < M && n < uniforms.N) {
              result[${o.slice ? 'outIndex(m, n)' : 'i32(workgroupId.z) * uniforms.M * uniforms.N + m * uniforms.N + n'}] = rows[i][j];
            }
          }
        }
      }
    `,
  };
}

/** A 1 x 1 convolution with stride 1 and no padding: im2col is the tensor itself. */
function pointwise(info: BackendUtil.Conv2DInfo): boolean {
  return info.filterHeight === 1 && info.filterWidth === 1 && info.strideHeight === 1 && info.strideWidth === 1 && info.padInfo.top === 0 && info.padInfo.left === 0;
}

const CONV_UNIFORMS = 'CI : i32, CO : i32, KW : i32, OH : i32, OW : i32, H : i32, W : i32, sh : i32, sw : i32, pt : i32, pl : i32,';

function convUniforms(info: BackendUtil.Conv2DInfo, M: number, N: number, K: number, chunk: number): UniformEntry[] {
  return [M, N, K, chunk, info.inChannels, info.outChannels, info.filterWidth, info.outHeight, info.outWidth, info.inHeight, info.inWidth,
    info.strideHeight, info.strideWidth, info.padInfo.top, info.padInfo.left].map((v) => ({ type: 'int32', data: [v] }));
}

/** dW[M = KH*KW*CI, N = CO] = im2col(x)^T [M x K = B*OH*OW] . dy [K x N]. */
function convFilterGemm(outputShape: number[], dispatch: [number, number, number], tilesPerSlice: number, isPointwise: boolean): Program {
  // Row m (ci, kw, kh) is the thread's own in every tile: decomposed once.
  const loadA = isPointwise ? 'return x[k * uniforms.CI + m];' : `
        let ow = k % uniforms.OW;
        let q = k / uniforms.OW;
        let oh = q % uniforms.OH;
        let b = q / uniforms.OH;
        let ih = oh * uniforms.sh - uniforms.pt + fKh;
        let iw = ow * uniforms.sw - uniforms.pl + fKw;
        if (ih >= 0 && ih < uniforms.H && iw >= 0 && iw < uniforms.W) {
          return x[((b * uniforms.H + ih) * uniforms.W + iw) * uniforms.CI + fCi];
        }
        return 0.0;`;
  return tiledGemm({
    key: `medpipeConvFilterGemm_${isPointwise}`, outputShape, dispatch, tilesPerSlice, names: ['x', 'dy'], uniforms: CONV_UNIFORMS, a: 'outer', b: 'outer',
    helpers: `
      var<private> fCi : i32;
      var<private> fKw : i32;
      var<private> fKh : i32;
      fn loadA(i : i32, m : i32, k : i32) -> f32 {${loadA}
      }
      fn loadB(i : i32, k : i32, n : i32) -> f32 {
        return dy[k * uniforms.N + n];
      }`,
    perThread: isPointwise ? '' : `
        let fm = m0 + tid % 64;
        fCi = fm % uniforms.CI;
        fKw = (fm / uniforms.CI) % uniforms.KW;
        fKh = (fm / uniforms.CI) / uniforms.KW;`,
  });
}

/**
 * dx[M = B*H*W, N = CI] = dy scattered back [M x K = KH*KW*CO] . W^T [K x N]: row m is input
 * pixel (b, ih, iw), column k the tap (kh, kw, co) whose output pixel reads it.
 *
 * With strides, most taps of a pixel land between output pixels (3 of 4 at stride 2): the
 * pixels are split by phase, (ih + pt) % sh and (iw + pl) % sw, one GEMM per phase
 * (workgroupId.z), each over only the taps of its phase (kh = ph + u * sh), so no
 * multiply-by-zero is done. A phase with no taps (a 1x1 stride-2 conv's odd pixels) writes
 * its zeros. The 1x1 stride-1 case reads dy and W directly.
 */
function convInputGemm(outputShape: number[], dispatch: [number, number, number], tilesPerSlice: number, isPointwise: boolean, sh: number, sw: number): Program {
  const pointwiseHelpers = `
      fn loadA(i : i32, m : i32, k : i32) -> f32 {
        return dy[m * uniforms.CO + k];
      }
      fn loadB(i : i32, k : i32, n : i32) -> f32 {
        return W[n * uniforms.CO + k];
      }`;
  // The strides are baked in (divisions by a constant); the thread's four rows (pixels) are
  // decomposed once, its column (tap) once per tile.
  const phaseHelpers = `
      var<private> ph : i32;
      var<private> pw : i32;
      var<private> ih0 : i32;
      var<private> iw0 : i32;
      var<private> Hp : i32;
      var<private> Wp : i32;
      var<private> KWp : i32;
      var<private> rowB : vec4<i32>;
      var<private> rowH : vec4<i32>;
      var<private> rowW : vec4<i32>;
      var<private> tapKh : i32;
      var<private> tapKw : i32;
      var<private> tapCo : i32;
      // Pixel (b, ih, iw) of row m of this phase.
      fn pixel(m : i32) -> vec3<i32> {
        let q = m / Wp;
        return vec3<i32>(q / Hp, ih0 + (q % Hp) * ${sh}, iw0 + (m % Wp) * ${sw});
      }
      fn loadA(i : i32, m : i32, k : i32) -> f32 {
        // Divisible by the stride by construction; off the output when negative or past it.
        let th = rowH[i] + uniforms.pt - tapKh;
        let tw = rowW[i] + uniforms.pl - tapKw;
        if (th < 0 || tw < 0) {
          return 0.0;
        }
        let oh = th / ${sh};
        let ow = tw / ${sw};
        if (oh >= uniforms.OH || ow >= uniforms.OW) {
          return 0.0;
        }
        return dy[((rowB[i] * uniforms.OH + oh) * uniforms.OW + ow) * uniforms.CO + tapCo];
      }
      // W is [KH, KW, CI, CO].
      fn loadB(i : i32, k : i32, n : i32) -> f32 {
        return W[((tapKh * uniforms.KW + tapKw) * uniforms.CI + n) * uniforms.CO + tapCo];
      }
      fn outIndex(m : i32, n : i32) -> i32 {
        let p = pixel(m);
        return ((p.x * uniforms.H + p.y) * uniforms.W + p.z) * uniforms.CI + n;
      }
      // How many of 0..size-1 are congruent to r modulo s (r in 0..s-1).
      fn countMod(size : i32, r : i32, s : i32) -> i32 {
        return select(0, (size - r + s - 1) / s, r < size);
      }`;
  // Per workgroup (uniform: from workgroupId.z and uniforms): this phase's rows and taps.
  const phaseSlice = `
        ph = i32(workgroupId.z) / ${sw};
        pw = i32(workgroupId.z) % ${sw};
        ih0 = ((ph - uniforms.pt) % ${sh} + ${sh}) % ${sh};
        iw0 = ((pw - uniforms.pl) % ${sw} + ${sw}) % ${sw};
        Hp = countMod(uniforms.H, ih0, ${sh});
        Wp = countMod(uniforms.W, iw0, ${sw});
        KWp = countMod(uniforms.KW, pw, ${sw});
        let M = uniforms.B * Hp * Wp;
        let kBegin = 0;
        let kEnd = countMod(uniforms.KH, ph, ${sh}) * KWp * uniforms.CO;`;
  // In k order the thread stages rows m0 + tid / 16 + 16 i and column k0 + tid % 16.
  const perThread = `
        for (var i = 0; i < 4; i++) {
          let p = pixel(min(m0 + tid / ${TK} + ${256 / TK} * i, max(M - 1, 0)));
          rowB[i] = p.x;
          rowH[i] = p.y;
          rowW[i] = p.z;
        }`;
  const perTile = `
        {
          let k = k0 + tid % ${TK};
          let r = k / uniforms.CO;
          tapCo = k % uniforms.CO;
          tapKh = ph + (r / KWp) * ${sh};
          tapKw = pw + (r % KWp) * ${sw};
        }`;
  return tiledGemm({
    key: `medpipeConvInputGemm_${isPointwise}_${sh}x${sw}`, outputShape, dispatch, tilesPerSlice, names: ['dy', 'W'], uniforms: `${CONV_UNIFORMS} B : i32, KH : i32,`, a: 'k', b: 'k',
    helpers: isPointwise ? pointwiseHelpers : phaseHelpers,
    ...(isPointwise ? {} : { slice: phaseSlice, perThread, perTile }),
  });
}

function sliceSum(outputShape: number[]): Program {
  const size = outputShape.reduce((a, b) => a * b, 1);
  return {
    outputShape,
    shaderKey: 'medpipeSliceSum',
    dispatchLayout: { x: outputShape.map((_, i) => i) },
    dispatch: [Math.ceil(size / 64), 1, 1],
    variableNames: ['partial'],
    uniforms: 'slices : i32,',
    workgroupSize: [64, 1, 1],
    size: true,
    getUserCode: () => `
      fn main(index : i32) {
        if (index < uniforms.size) {
          var s = 0.0;
          for (var z = 0; z < uniforms.slices; z++) {
            s = s + partial[z * uniforms.size + index];
          }
          setOutputAtIndex(index, s);
        }
      }
    `,
  };
}

interface KernelArgs {
  inputs: NamedTensorInfoMap;
  backend: object;
  attrs?: NamedAttrMap;
}

function conv2DBackpropFilter(tf: Tf, original: KernelFunc): KernelFunc {
  return ((args: KernelArgs) => {
    const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
    const a = args.attrs as unknown as { strides: number | [number, number]; pad: Pad; dataFormat: 'NHWC' | 'NCHW'; dimRoundingMode?: 'floor' | 'round' | 'ceil'; filterShape: [number, number, number, number] };
    if (a.dataFormat === 'NCHW' || x.dtype !== 'float32') return original(args as Parameters<KernelFunc>[0]);
    const be = args.backend as WebGPUBackendLike;
    const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], a.filterShape, a.strides, 1, a.pad, a.dimRoundingMode);
    const M = info.filterHeight * info.filterWidth * info.inChannels;
    const N = info.outChannels;
    const K = info.batchSize * info.outHeight * info.outWidth;
    const { slices, chunk } = splitK(M, N, K, be.device.limits.maxStorageBufferBindingSize ?? 128 << 20);
    const dispatch: [number, number, number] = [Math.ceil(M / 64), Math.ceil(N / 64), slices];
    const prog = convFilterGemm(slices === 1 ? [...a.filterShape] : [slices, M, N], dispatch, chunk / TK, pointwise(info));
    const out = be.runWebGPUProgram(prog, [x, dy], 'float32', convUniforms(info, M, N, K, chunk));
    if (slices === 1) return out;
    const summed = be.runWebGPUProgram(sliceSum([...a.filterShape]), [out], 'float32', [{ type: 'int32', data: [slices] }]);
    be.disposeData(out.dataId);
    return summed;
  }) as unknown as KernelFunc;
}

/** Workgroups per dispatch dimension (WebGPU's default maxComputeWorkgroupsPerDimension). */
const MAX_WORKGROUPS = 65535;

function conv2DBackpropInput(tf: Tf, original: KernelFunc): KernelFunc {
  return ((args: KernelArgs) => {
    const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
    const a = args.attrs as unknown as { inputShape: [number, number, number, number]; strides: number | [number, number]; pad: Pad; dataFormat: 'NHWC' | 'NCHW'; dimRoundingMode?: 'floor' | 'round' | 'ceil' };
    if (a.dataFormat === 'NCHW' || dy.dtype !== 'float32') return original(args as Parameters<KernelFunc>[0]);
    const be = args.backend as WebGPUBackendLike;
    const info = tf.backend_util.computeConv2DInfo(a.inputShape, filter.shape as [number, number, number, number], a.strides, 1, a.pad, a.dimRoundingMode);
    const { strideHeight: sh, strideWidth: sw } = info;
    // The largest phase: ceil(H / sh) x ceil(W / sw) pixels, ceil(KH / sh) x ceil(KW / sw) taps.
    const M = info.batchSize * Math.ceil(info.inHeight / sh) * Math.ceil(info.inWidth / sw);
    const N = info.inChannels;
    const K = Math.ceil(info.filterHeight / sh) * Math.ceil(info.filterWidth / sw) * info.outChannels;
    if (Math.ceil(M / 64) > MAX_WORKGROUPS) return original(args as Parameters<KernelFunc>[0]);
    const chunk = Math.ceil(K / TK) * TK;
    const prog = convInputGemm([...a.inputShape], [Math.ceil(M / 64), Math.ceil(N / 64), sh * sw], chunk / TK, pointwise(info), sh, sw);
    const uniforms = [...convUniforms(info, M, N, K, chunk), ...[info.batchSize, info.filterHeight].map((v): UniformEntry => ({ type: 'int32', data: [v] }))];
    return be.runWebGPUProgram(prog, [dy, filter], 'float32', uniforms);
  }) as unknown as KernelFunc;
}

/** AddN in groups that fit the device's storage-buffer bindings (one is the output). */
function addN(original: KernelFunc): KernelFunc {
  return ((args: KernelArgs) => {
    const be = args.backend as WebGPUBackendLike;
    const group = Math.max(2, (be.device.limits.maxStorageBuffersPerShaderStage ?? 8) - 1);
    let xs = Object.values(args.inputs) as TensorInfo[];
    const made: TensorInfo[] = [];
    while (xs.length > group) {
      const next: TensorInfo[] = [];
      for (let i = 0; i < xs.length; i += group) {
        const part = xs.slice(i, i + group);
        if (part.length === 1) next.push(part[0]!);
        else {
          const sum = original({ ...args, inputs: part as unknown as NamedTensorInfoMap } as Parameters<KernelFunc>[0]) as TensorInfo;
          made.push(sum);
          next.push(sum);
        }
      }
      xs = next;
    }
    const out = original({ ...args, inputs: xs as unknown as NamedTensorInfoMap } as Parameters<KernelFunc>[0]) as TensorInfo;
    for (const t of made) be.disposeData(t.dataId);
    return out;
  }) as unknown as KernelFunc;
}

const ERF_WGSL = `
      fn erfAS(v : f32) -> f32 {
        let a = abs(v);
        let t = 1.0 / (1.0 + 0.3275911 * a);
        let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
        let r = 1.0 - poly * exp(-a * a);
        return select(r, -r, v < 0.0);
      }`;

/** One thread per element of `shape`; `helpers` are WGSL functions the body calls. */
function elementwise(key: string, names: string[], shape: number[], body: string, o: { uniforms?: string; helpers?: string } = {}): Program {
  const size = shape.reduce((a, b) => a * b, 1);
  return {
    outputShape: shape,
    shaderKey: key,
    dispatchLayout: { x: shape.map((_, i) => i) },
    dispatch: [Math.ceil(size / 64), 1, 1],
    variableNames: names,
    uniforms: o.uniforms ?? '',
    workgroupSize: [64, 1, 1],
    size: true,
    getUserCode: () => `
      ${o.helpers ?? ''}
      fn main(index : i32) {
        if (index < uniforms.size) {
          ${body}
        }
      }
    `,
  };
}

function gelu(): KernelFunc {
  return ((args: KernelArgs) => {
    const { x } = args.inputs as { x: TensorInfo };
    const be = args.backend as WebGPUBackendLike;
    return be.runWebGPUProgram(elementwise('medpipeGelu', ['x'], x.shape, `
          let v = x[index];
          setOutputAtIndex(index, 0.5 * v * (1.0 + erfAS(v * 0.7071067811865476)));`, { helpers: ERF_WGSL }), [x], 'float32', []);
  }) as unknown as KernelFunc;
}

function geluGrad(): KernelFunc {
  return ((args: KernelArgs) => {
    const { dy, x } = args.inputs as { dy: TensorInfo; x: TensorInfo };
    const be = args.backend as WebGPUBackendLike;
    return be.runWebGPUProgram(elementwise('medpipeGeluGrad', ['dy', 'x'], x.shape, `
          let v = x[index];
          let cdf = 0.5 * (1.0 + erfAS(v * 0.7071067811865476));
          let pdf = 0.3989422804014327 * exp(-0.5 * v * v);
          setOutputAtIndex(index, dy[index] * (cdf + v * pdf));`, { helpers: ERF_WGSL }), [dy, x], 'float32', []);
  }) as unknown as KernelFunc;
}

/** Rows per dispatch column: workgroup ids stay under the per-dimension limit (65535). */
const ROWS_X = 32768;

/** One 64-thread workgroup per row of [rows x D]; `body` runs after `sum(v)` helpers exist.
 *  Out-of-range workgroups (the 2-D dispatch's tail) compute row rows-1 and write nothing,
 *  so every barrier stays in uniform control flow. */
function perRow(key: string, names: string[], outputShape: number[], rows: number, body: string): Program {
  return {
    outputShape,
    shaderKey: key,
    dispatchLayout: { x: outputShape.map((_, i) => i) },
    dispatch: [Math.min(rows, ROWS_X), Math.ceil(rows / ROWS_X), 1],
    variableNames: names,
    uniforms: 'rows : i32, D : i32, eps : f32,',
    workgroupSize: [64, 1, 1],
    getUserCode: () => `
      var<workgroup> red : array<f32, 64>;
      fn sum64(v : f32) -> f32 {
        let t = i32(localIndex);
        red[t] = v;
        workgroupBarrier();
        for (var s = 32; s > 0; s = s >> 1) {
          if (t < s) {
            red[t] = red[t] + red[t + s];
          }
          workgroupBarrier();
        }
        let r = red[0];
        workgroupBarrier();
        return r;
      }
      fn main(index : i32) {
        let t = i32(localIndex);
        let wanted = i32(workgroupId.y) * ${ROWS_X} + i32(workgroupId.x);
        let live = wanted < uniforms.rows;
        let row = min(wanted, uniforms.rows - 1);
        let D = uniforms.D;
        let base = row * D;
        ${body}
      }
    `,
  };
}

function layerNormKernel(): KernelFunc {
  return ((args: KernelArgs) => {
    const { x, scale, offset } = args.inputs as { x: TensorInfo; scale: TensorInfo; offset: TensorInfo };
    const be = args.backend as WebGPUBackendLike;
    const eps = (args.attrs as { epsilon: number }).epsilon;
    const D = x.shape[x.shape.length - 1]!;
    const rows = x.shape.reduce((a, b) => a * b, 1) / D;
    const uniforms: UniformEntry[] = [{ type: 'int32', data: [rows] }, { type: 'int32', data: [D] }, { type: 'float32', data: [eps] }];
    // Mean per row, then 1/sqrt(var + eps) around it (two-pass variance), then y from them.
    const mean = be.runWebGPUProgram(perRow('medpipeLnMean', ['x'], [rows], rows, `
        var s = 0.0;
        for (var i = t; i < D; i += 64) { s += x[base + i]; }
        let m = sum64(s) / f32(D);
        if (live && t == 0) { result[row] = m; }`), [x], 'float32', uniforms);
    const rstd = be.runWebGPUProgram(perRow('medpipeLnRstd', ['x', 'mean'], [rows], rows, `
        let m = mean[row];
        var q = 0.0;
        for (var i = t; i < D; i += 64) { let d = x[base + i] - m; q += d * d; }
        let r = inverseSqrt(sum64(q) / f32(D) + uniforms.eps);
        if (live && t == 0) { result[row] = r; }`), [x, mean], 'float32', uniforms);
    const y = be.runWebGPUProgram(perRow('medpipeLnApply', ['x', 'mean', 'rstd', 'scale', 'offset'], x.shape, rows, `
        let m = mean[row];
        let r = rstd[row];
        if (live) {
          for (var i = t; i < D; i += 64) { result[base + i] = (x[base + i] - m) * r * scale[i] + offset[i]; }
        }`), [x, mean, rstd, scale, offset], 'float32', uniforms);
    return [y, mean, rstd];
  }) as unknown as KernelFunc;
}

function layerNormGrad(): KernelFunc {
  return ((args: KernelArgs) => {
    const { dy, x, mean, rstd, scale } = args.inputs as Record<'dy' | 'x' | 'mean' | 'rstd' | 'scale', TensorInfo>;
    const be = args.backend as WebGPUBackendLike;
    const D = x.shape[x.shape.length - 1]!;
    const rows = x.shape.reduce((a, b) => a * b, 1) / D;
    const uniforms: UniformEntry[] = [{ type: 'int32', data: [rows] }, { type: 'int32', data: [D] }, { type: 'float32', data: [0] }];
    // dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * scale.
    const dx = be.runWebGPUProgram(perRow('medpipeLnGradX', ['dy', 'x', 'mean', 'rstd', 'scale'], x.shape, rows, `
        let m = mean[row];
        let r = rstd[row];
        var sg = 0.0;
        var sgx = 0.0;
        for (var i = t; i < D; i += 64) {
          let g = dy[base + i] * scale[i];
          sg += g;
          sgx += g * (x[base + i] - m) * r;
        }
        let mg = sum64(sg) / f32(D);
        let mgx = sum64(sgx) / f32(D);
        if (live) {
          for (var i = t; i < D; i += 64) {
            let xhat = (x[base + i] - m) * r;
            result[base + i] = r * (dy[base + i] * scale[i] - mg - xhat * mgx);
          }
        }`), [dy, x, mean, rstd, scale], 'float32', uniforms);
    // dscale = sum over rows of dy * xhat, doffset = sum of dy: 64-row slices, then their sum.
    const slices = Math.ceil(rows / 64);
    const columns = (withXhat: boolean): TensorInfo => {
      const partial = be.runWebGPUProgram({
        outputShape: [slices, D],
        shaderKey: `medpipeLnGradCols_${withXhat}`,
        dispatchLayout: { x: [0, 1] },
        dispatch: [Math.ceil((slices * D) / 64), 1, 1],
        // Every binding must be used (layout 'auto' drops unused ones): doffset reads dy only.
        variableNames: withXhat ? ['dy', 'x', 'mean', 'rstd'] : ['dy'],
        uniforms: 'rows : i32, D : i32,',
        workgroupSize: [64, 1, 1],
        size: true,
        getUserCode: () => `
          fn main(index : i32) {
            if (index < uniforms.size) {
              let c = index % uniforms.D;
              let s = index / uniforms.D;
              let end = min(s * 64 + 64, uniforms.rows);
              var acc = 0.0;
              for (var r = s * 64; r < end; r++) {
                let v = dy[r * uniforms.D + c];
                ${withXhat ? 'acc += v * (x[r * uniforms.D + c] - mean[r]) * rstd[r];' : 'acc += v;'}
              }
              setOutputAtIndex(index, acc);
            }
          }
        `,
      }, withXhat ? [dy, x, mean, rstd] : [dy], 'float32', [{ type: 'int32', data: [rows] }, { type: 'int32', data: [D] }]);
      const out = be.runWebGPUProgram(sliceSum([D]), [partial], 'float32', [{ type: 'int32', data: [slices] }]);
      be.disposeData(partial.dataId);
      return out;
    };
    return [dx, columns(true), columns(false)];
  }) as unknown as KernelFunc;
}

/** Rows of [R x C] one thread of a column-sum's first pass adds: ~sqrt(R), so that neither
 *  pass is long; a function of R alone, so the sum's order is the same on every device. */
export function columnSliceRows(R: number): number {
  return Math.min(4096, Math.max(16, Math.ceil(Math.sqrt(R))));
}

/** Per-channel sums over the rows of a [R x C] tensor (NHWC flattened) of the term `term`
 *  (WGSL over `i` = element index and `c` = its column), times `scale`: slices of rows first
 *  (adjacent threads read adjacent channels), then one workgroup per channel adds the slices
 *  as a tree, in a fixed order. */
function columnSums(be: WebGPUBackendLike, key: string, names: string[], inputs: TensorInfo[], R: number, C: number, eps: number, term: string, scale: number): TensorInfo {
  const L = columnSliceRows(R);
  const S = Math.ceil(R / L);
  const partial = be.runWebGPUProgram({
    outputShape: [S, C],
    shaderKey: `medpipeColPartial_${key}`,
    dispatchLayout: { x: [0, 1] },
    dispatch: [Math.ceil((S * C) / 64), 1, 1],
    variableNames: names,
    uniforms: 'R : i32, C : i32, L : i32, eps : f32,',
    workgroupSize: [64, 1, 1],
    size: true,
    getUserCode: () => `
      fn main(index : i32) {
        if (index < uniforms.size) {
          let c = index % uniforms.C;
          let s = index / uniforms.C;
          let end = min(s * uniforms.L + uniforms.L, uniforms.R);
          var acc = 0.0;
          for (var r = s * uniforms.L; r < end; r++) {
            let i = r * uniforms.C + c;
            acc += ${term};
          }
          setOutputAtIndex(index, acc);
        }
      }
    `,
  }, inputs, 'float32', [{ type: 'int32', data: [R] }, { type: 'int32', data: [C] }, { type: 'int32', data: [L] }, { type: 'float32', data: [eps] }]);
  const out = be.runWebGPUProgram({
    outputShape: [C],
    shaderKey: 'medpipeColReduce',
    dispatchLayout: { x: [0] },
    dispatch: [C, 1, 1],
    variableNames: ['partial'],
    uniforms: 'S : i32, C : i32, scale : f32,',
    workgroupSize: [64, 1, 1],
    getUserCode: () => `
      var<workgroup> red : array<f32, 64>;
      fn main(index : i32) {
        let t = i32(localIndex);
        let c = i32(workgroupId.x);
        var acc = 0.0;
        for (var s = t; s < uniforms.S; s += 64) { acc += partial[s * uniforms.C + c]; }
        red[t] = acc;
        workgroupBarrier();
        for (var k = 32; k > 0; k = k >> 1) {
          if (t < k) { red[t] = red[t] + red[t + k]; }
          workgroupBarrier();
        }
        if (t == 0) { result[c] = red[0] * uniforms.scale; }
      }
    `,
  }, [partial], 'float32', [{ type: 'int32', data: [S] }, { type: 'int32', data: [C] }, { type: 'float32', data: [scale] }]);
  be.disposeData(partial.dataId);
  return out;
}

/** An element-wise pass over [R x C] with per-channel inputs (c = index % C). */
function perChannel(key: string, names: string[], shape: number[], body: string): Program {
  return elementwise(key, names, shape, `let c = index % uniforms.C;
          ${body}`, { uniforms: 'C : i32, eps : f32, invR : f32,' });
}

interface BnShape {
  R: number;
  C: number;
  eps: number;
  uniforms: UniformEntry[];
}

function bnShape(x: TensorInfo, attrs: NamedAttrMap | undefined): BnShape {
  const C = x.shape[x.shape.length - 1]!;
  const R = x.shape.reduce((a, b) => a * b, 1) / C;
  const eps = (attrs as { varianceEpsilon: number }).varianceEpsilon;
  return { R, C, eps, uniforms: [{ type: 'int32', data: [C] }, { type: 'float32', data: [eps] }, { type: 'float32', data: [1 / R] }] };
}

/** [y, mean, variance (biased)] of BatchNorm in training mode, over every axis but the last:
 *  two-pass mean and variance (no cancellation for activations with a large mean). */
function batchNormTrainKernel(): KernelFunc {
  return ((args: KernelArgs) => {
    const { x, scale, offset } = args.inputs as { x: TensorInfo; scale: TensorInfo; offset: TensorInfo };
    const be = args.backend as WebGPUBackendLike;
    const { R, C, eps, uniforms } = bnShape(x, args.attrs);
    const mean = columnSums(be, 'x', ['x'], [x], R, C, eps, 'x[i]', 1 / R);
    const variance = columnSums(be, 'sq', ['x', 'mean'], [x, mean], R, C, eps, '(x[i] - mean[c]) * (x[i] - mean[c])', 1 / R);
    const y = be.runWebGPUProgram(perChannel('medpipeBnApply', ['x', 'mean', 'variance', 'scale', 'offset'], x.shape, `
          setOutputAtIndex(index, (x[index] - mean[c]) * inverseSqrt(variance[c] + uniforms.eps) * scale[c] + offset[c]);`),
    [x, mean, variance, scale, offset], 'float32', uniforms);
    return [y, mean, variance];
  }) as unknown as KernelFunc;
}

/** [dx, dscale, doffset] of batchNormTrainKernel, through the batch statistics:
 *  dx = scale * rstd * (dy - mean(dy) - xhat * mean(dy * xhat)). */
function batchNormTrainGradKernel(): KernelFunc {
  return ((args: KernelArgs) => {
    const { dy, x, mean, variance, scale } = args.inputs as Record<'dy' | 'x' | 'mean' | 'variance' | 'scale', TensorInfo>;
    const be = args.backend as WebGPUBackendLike;
    const { R, C, eps, uniforms } = bnShape(x, args.attrs);
    const doffset = columnSums(be, 'dy', ['dy'], [dy], R, C, eps, 'dy[i]', 1);
    const dscale = columnSums(be, 'dyxhat', ['dy', 'x', 'mean', 'variance'], [dy, x, mean, variance], R, C, eps,
      'dy[i] * (x[i] - mean[c]) * inverseSqrt(variance[c] + uniforms.eps)', 1);
    const dx = be.runWebGPUProgram(perChannel('medpipeBnGradX', ['dy', 'x', 'mean', 'variance', 'scale', 'dscale', 'doffset'], x.shape, `
          let r = inverseSqrt(variance[c] + uniforms.eps);
          let xhat = (x[index] - mean[c]) * r;
          setOutputAtIndex(index, scale[c] * r * (dy[index] - doffset[c] * uniforms.invR - xhat * dscale[c] * uniforms.invR));`),
    [dy, x, mean, variance, scale, dscale, doffset], 'float32', uniforms);
    return [dx, dscale, doffset];
  }) as unknown as KernelFunc;
}

/** A BatchNorm running estimate moved toward the batch's, on the device (no host read):
 *  new = old * (1 - momentum) + (batch * scale) * momentum; scale n/(n-1) makes the variance
 *  unbiased, as torch. */
export const RUNNING_STAT = 'MedpipeRunningStat';

function runningStatKernel(): KernelFunc {
  return ((args: KernelArgs) => {
    const { old, batch } = args.inputs as { old: TensorInfo; batch: TensorInfo };
    const be = args.backend as WebGPUBackendLike;
    const { momentum, scale } = args.attrs as { momentum: number; scale: number };
    const size = old.shape.reduce((a, b) => a * b, 1);
    return be.runWebGPUProgram({
      outputShape: old.shape,
      shaderKey: 'medpipeRunningStat',
      dispatchLayout: { x: old.shape.map((_, i) => i) },
      dispatch: [Math.ceil(size / 64), 1, 1],
      variableNames: ['old', 'batch'],
      uniforms: 'keep : f32, momentum : f32, scale : f32,',
      workgroupSize: [64, 1, 1],
      size: true,
      getUserCode: () => `
        fn main(index : i32) {
          if (index < uniforms.size) {
            setOutputAtIndex(index, old[index] * uniforms.keep + (batch[index] * uniforms.scale) * uniforms.momentum);
          }
        }
      `,
    }, [old, batch], 'float32', [{ type: 'float32', data: [1 - momentum] }, { type: 'float32', data: [momentum] }, { type: 'float32', data: [scale] }]);
  }) as unknown as KernelFunc;
}

const REGISTERED = Symbol.for('medpipe.webgpu-kernel');
const originals = new Map<string, KernelConfig>();

/** MEDPIPE_WEBGPU_KERNELS: unset = all of medpipe's kernels, '0' = none (tfjs's own),
 *  '-A,-B' = all but A and B. */
export function kernelsLeftOut(env: string | undefined): 'all' | string[] {
  if (env === undefined || env === '') return [];
  if (env === '0') return 'all';
  const names = env.split(',').map((n) => n.trim());
  const bad = names.find((n) => !/^-\w+$/.test(n));
  if (bad !== undefined) throw new Error(`MEDPIPE_WEBGPU_KERNELS=${env}: expected 0 or -Name[,-Name...] (medpipe's kernels to leave out), got '${bad}'`);
  return names.map((n) => n.slice(1));
}

/** Registers medpipe's kernels over tfjs-webgpu's (once), but those in `leaveOut`; returns
 *  the names registered. */
export function registerWebGPUKernels(tf: Tf, leaveOut: string[] = []): string[] {
  const mine: [string, (original: KernelFunc) => KernelFunc][] = [
    ['Conv2DBackpropFilter', (o) => conv2DBackpropFilter(tf, o)],
    ['Conv2DBackpropInput', (o) => conv2DBackpropInput(tf, o)],
    ['AddN', addN],
    [GELU, gelu],
    [GELU_GRAD, geluGrad],
    [LN, layerNormKernel],
    [LN_GRAD, layerNormGrad],
    [BN_TRAIN, batchNormTrainKernel],
    [BN_TRAIN_GRAD, batchNormTrainGradKernel],
    [RUNNING_STAT, runningStatKernel],
    [WEBGPU_ADAM, webgpuAdamKernel],
  ];
  // Only kernels standing in for tfjs's, one by one (a fused kernel left out alone could
  // strand its partner: BatchNorm's running-stat update).
  const tfjsNames = ['Conv2DBackpropFilter', 'Conv2DBackpropInput', 'AddN'];
  const bad = leaveOut.find((n) => !tfjsNames.includes(n));
  if (bad !== undefined) throw new Error(`MEDPIPE_WEBGPU_KERNELS: '${bad}' cannot be left out (only ${tfjsNames.join(', ')})`);
  const kept = mine.filter(([n]) => !leaveOut.includes(n));
  for (const [name, make] of kept) {
    const current = tf.getKernel(name, BACKEND) as (KernelConfig & { [REGISTERED]?: true }) | undefined;
    if (current?.[REGISTERED]) continue;
    // Kernels of medpipe's own (fused ops) have no tfjs original to wrap or restore.
    if (current !== undefined) {
      originals.set(name, current);
      tf.unregisterKernel(name, BACKEND);
    }
    const fallback: KernelFunc = current?.kernelFunc ?? (() => {
      throw new Error(`${name}: no webgpu kernel to fall back to`);
    });
    const config: KernelConfig & { [REGISTERED]: true } = { kernelName: name, backendName: BACKEND, kernelFunc: make(fallback), [REGISTERED]: true };
    tf.registerKernel(config);
  }
  return kept.map(([n]) => n);
}

/** Puts tfjs-webgpu's own kernels back (tests compare both). */
export function unregisterWebGPUKernels(tf: Tf): void {
  for (const k of tf.getKernelsForBackend(BACKEND)) {
    const c = k as KernelConfig & { [REGISTERED]?: true };
    if (!c[REGISTERED]) continue;
    tf.unregisterKernel(k.kernelName, BACKEND);
    const original = originals.get(k.kernelName);
    if (original !== undefined) tf.registerKernel(original);
  }
}
