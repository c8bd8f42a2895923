// Adam / AdamW on webgpu as one dispatch per parameter, updating the parameter and both
// moments in place: tfjs composes ~10 element-wise ops per parameter tensor (each a dispatch,
// a new buffer and a pass over the data), and its programs write only one new output, so
// this one is a compute pipeline of its own recorded into tfjs-webgpu's command stream.
// Same float32 operations in the same order as the composed form (src/ml/train/adam.ts).
//
// Called through a kernel (src/engine/fused-adam.ts runs it), so that tf.profile times it
// with the others and the tensors' lifetimes follow tfjs's command-queue bookkeeping.

import type { KernelFunc, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';

export const WEBGPU_ADAM = 'MedpipeAdamWebGPU';

/** Constants of one Adam step, on every backend (fusedAdamStep's argument). */
export interface AdamConstants {
  beta1: number;
  beta2: number;
  eps: number;
  lr: number;
  weightDecay: number;
  /** 1 - beta1^t and 1 - beta2^t. */
  bc1: number;
  bc2: number;
}

/** The kernel's attrs, as fused-adam passes them: the constants and each update's mode. */
export interface AdamAttrs extends AdamConstants {
  /** Per update: 0 plain, 1 L2 penalty in the gradient, 2 decoupled decay (AdamW). */
  modes: number[];
}

interface GBuffer {
  size: number;
}
interface GPass {
  setPipeline(p: unknown): void;
  setBindGroup(i: number, g: unknown): void;
  dispatchWorkgroups(x: number, y: number, z: number): void;
  end(): void;
}
interface GDevice {
  limits: Record<string, number>;
  createShaderModule(d: { code: string }): unknown;
  createComputePipeline(d: { layout: 'auto'; compute: { module: unknown; entryPoint: string } }): { getBindGroupLayout(i: number): unknown };
  createBindGroup(d: { layout: unknown; entries: { binding: number; resource: { buffer: GBuffer; offset?: number; size?: number } }[] }): unknown;
}
interface TensorData {
  values?: unknown;
  dtype: string;
  resource?: GBuffer | null;
}
/** The parts of tfjs-webgpu's backend (4.22) this kernel records through. */
interface Backend {
  device: GDevice;
  queue: { writeBuffer(b: GBuffer, offset: number, data: ArrayBuffer): void };
  tensorMap: { get(id: object): TensorData | undefined };
  bufferManager: { acquireBuffer(size: number, usage: number): GBuffer };
  uniformPendingDisposal: GBuffer[];
  commandQueueOwnedIds: WeakSet<object>;
  commandEncoder: { beginComputePass(d: object): GPass };
  uploadToGPU(id: object): void;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  dispatchCountInPass: number;
  activeTimers?: { name: string; query: Promise<number> }[] | null;
  supportTimestampQuery: boolean;
  querySet?: unknown;
  querySetCount: number;
  getQueryTime(): Promise<number>;
}

const WG = 64;
/** Uniform block per parameter, at the device's minimum dynamic-offset alignment or more. */
const U_STRIDE = 256;

const SHADER = `
struct U {
  n : u32, mode : u32, cols : u32, pad : u32,
  beta1 : f32, omb1 : f32, beta2 : f32, omb2 : f32,
  bc2 : f32, eps : f32, lrbc1 : f32, wd : f32,
  keep : f32,
};
@group(0) @binding(0) var<storage, read_write> p : array<f32>;
@group(0) @binding(1) var<storage, read_write> m : array<f32>;
@group(0) @binding(2) var<storage, read_write> v : array<f32>;
@group(0) @binding(3) var<storage, read> g : array<f32>;
@group(0) @binding(4) var<uniform> u : U;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) id : vec3<u32>) {
  let i = id.y * u.cols + id.x;
  if (i >= u.n) { return; }
  var pi = p[i];
  var gi = g[i];
  if (u.mode == 2u) { pi = pi * u.keep; }
  if (u.mode == 1u) { gi = gi + pi * u.wd; }
  let mi = m[i] * u.beta1 + gi * u.omb1;
  let vi = v[i] * u.beta2 + (gi * gi) * u.omb2;
  m[i] = mi;
  v[i] = vi;
  p[i] = pi - (mi / (sqrt(vi / u.bc2) + u.eps)) * u.lrbc1;
}`;

const pipelines = new WeakMap<GDevice, { getBindGroupLayout(i: number): unknown }>();

function pipelineFor(device: GDevice): { getBindGroupLayout(i: number): unknown } {
  let p = pipelines.get(device);
  if (p === undefined) {
    p = device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code: SHADER }), entryPoint: 'main' } });
    pipelines.set(device, p);
  }
  return p;
}

/** Workgroups for n elements: a 2-D grid once one dimension's limit is passed. */
export function adamDispatch(n: number, maxPerDim: number): { x: number; y: number; cols: number } {
  const groups = Math.max(1, Math.ceil(n / WG));
  const x = Math.min(groups, maxPerDim);
  return { x, y: Math.ceil(groups / x), cols: x * WG };
}

export function webgpuAdamKernel(): KernelFunc {
  return ((args: { inputs: NamedTensorInfoMap; backend: object; attrs?: NamedAttrMap }) => {
    const be = args.backend as Backend;
    const a = args.attrs as unknown as AdamAttrs;
    const count = a.modes.length;
    const at = (k: string, i: number): TensorInfo => {
      const t = args.inputs[`${k}${i}`];
      if (t === undefined) throw new Error(`${WEBGPU_ADAM}: input ${k}${i} missing`);
      return t;
    };
    const G = globalThis as unknown as { GPUBufferUsage: Record<string, number> };
    const uniforms = new ArrayBuffer(count * U_STRIDE);
    const pipeline = pipelineFor(be.device);
    const maxPerDim = be.device.limits.maxComputeWorkgroupsPerDimension ?? 65535;
    const groups: { bind: unknown; x: number; y: number }[] = [];
    const uBuf = be.bufferManager.acquireBuffer(uniforms.byteLength, G.GPUBufferUsage.COPY_DST! | G.GPUBufferUsage.UNIFORM!);
    for (let i = 0; i < count; i++) {
      const ts = ['p', 'm', 'v', 'g'].map((k) => at(k, i));
      const n = ts[0]!.shape.reduce((x, y) => x * y, 1);
      const d = adamDispatch(n, maxPerDim);
      const u32 = new Uint32Array(uniforms, i * U_STRIDE, 4);
      u32.set([n, a.modes[i]!, d.cols, 0]);
      new Float32Array(uniforms, i * U_STRIDE + 16, 9).set([
        a.beta1, 1 - a.beta1, a.beta2, 1 - a.beta2, a.bc2, a.eps, a.lr / a.bc1, a.weightDecay, 1 - a.lr * a.weightDecay,
      ]);
      const entries = ts.map((t, b) => {
        be.uploadToGPU(t.dataId);
        const data = be.tensorMap.get(t.dataId)!;
        // A value read back earlier is cached on the host: p, m and v change here.
        if (b < 3) data.values = null;
        be.commandQueueOwnedIds.add(t.dataId);
        return { binding: b, resource: { buffer: data.resource!, offset: 0, size: n * 4 } };
      });
      entries.push({ binding: 4, resource: { buffer: uBuf, offset: i * U_STRIDE, size: 64 } });
      groups.push({ bind: be.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries }), ...d });
    }
    be.queue.writeBuffer(uBuf, 0, uniforms);
    be.uniformPendingDisposal.push(uBuf);
    be.ensureCommandEncoderReady();
    be.endComputePassEncoder();
    // Under tf.profile, the pass is timed as one (tfjs times each of its programs the same way).
    const timed = be.activeTimers != null && be.supportTimestampQuery;
    if (timed && be.querySet == null) {
      be.querySet = (be.device as unknown as { createQuerySet(d: object): unknown }).createQuerySet({ type: 'timestamp', count: be.querySetCount });
    }
    const pass = be.commandEncoder.beginComputePass(timed ? { timestampWrites: { querySet: be.querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } } : {});
    pass.setPipeline(pipeline);
    for (const gr of groups) {
      pass.setBindGroup(0, gr.bind);
      pass.dispatchWorkgroups(gr.x, gr.y, 1);
    }
    pass.end();
    if (timed) be.activeTimers!.push({ name: WEBGPU_ADAM, query: be.getQueryTime() });
    else {
      be.dispatchCountInPass += count;
      be.submitQueue();
    }
    return [];
  }) as unknown as KernelFunc;
}
