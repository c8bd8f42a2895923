// The WebGPU engine (Dawn + tfjs-backend-webgpu) against the reference backends: medpipe's
// WGSL kernels against cpu on randomised shapes (values and gradients), and a few training
// steps of the demo ResNet and ViT against wasm. Runs on whatever adapter Dawn finds; in CI
// that is Mesa's software Vulkan (lavapipe, .ci/run). Without an adapter every test skips
// and says why.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend, type EngineInfo } from '../src/engine/backend.js';
import { kernelsLeftOut, registerWebGPUKernels, splitK, unregisterWebGPUKernels } from '../src/engine/webgpu-kernels.js';
import { on, Random, relErr, same, z4, type Pad, type T } from './support/backend-compare.js';
import { makeTrainer, type BenchModel } from '../bench/engine.js';
import { spawnSync } from 'node:child_process';
import { gelu as fusedGelu, layerNorm as fusedLayerNorm } from '../src/engine/fused-ops.js';
import { batchNorm, gelu } from '../src/ml/models/layers.js';
import { batchNormTraining } from '../src/engine/fused-ops.js';
import { fusedAdamStep } from '../src/engine/fused-adam.js';
import { adamDispatch } from '../src/engine/webgpu-adam.js';
import { Adam, ADAM_DEFAULTS, type AdamOptions } from '../src/ml/train/adam.js';
import { fileURLToPath } from 'node:url';

const rng = new Random(4242);
const { int, pick, F } = rng;
const randomPad = (kh: number, kw: number): Pad => rng.pad(kh, kw, 0.3, 0.3);

let engine: EngineInfo | undefined;
let why = '';

before(async () => {
  try {
    engine = await initBackend({ prefer: 'webgpu' });
  } catch (e) {
    why = `no WebGPU adapter: ${(e as Error).message} (install a Vulkan driver, e.g. mesa-vulkan-drivers from bookworm-backports: see README, GPU)`;
  }
  await initBackend({ prefer: 'wasm' });
  await tf.setBackend('cpu');
});

const gpuTest = (name: string, fn: () => void | Promise<void>) =>
  test(name, async (t) => {
    if (engine === undefined) return t.skip(why);
    await fn();
  });

gpuTest('the adapter and requested limits are recorded', () => {
  const w = engine!.webgpu!;
  assert.equal(engine!.backend, 'webgpu');
  for (const k of ['vendor', 'architecture', 'device', 'driver'] as const) assert.equal(typeof w.adapter[k], 'string');
  assert.equal(typeof w.adapter.software, 'boolean');
  assert.ok(w.limits.maxStorageBufferBindingSize! >= 128 * 2 ** 20, 'binding size at least the WebGPU default');
  assert.ok(w.limits.maxBufferSize! >= w.limits.maxStorageBufferBindingSize! || w.limits.maxBufferSize! >= 256 * 2 ** 20);
  assert.match(String(engine!.details.webgpuKernels), /Conv2DBackpropFilter/);
});

test('split-K plans cover K exactly and fill the GPU for small filters', () => {
  for (const [M, N, K] of [[147, 64, 802816], [4608, 512, 3136], [27, 5, 30], [64, 64, 16]] as const) {
    const { slices, chunk } = splitK(M, N, K, 2 ** 31);
    assert.equal(chunk % 16, 0);
    assert.ok(slices * chunk >= K && (slices - 1) * chunk < K, `${M}x${N}x${K}: ${slices} x ${chunk}`);
  }
  assert.ok(splitK(147, 64, 802816, 2 ** 31).slices >= 100, 'the stem filter is split');
  assert.equal(splitK(4608, 512, 3136, 2 ** 31).slices, 2);
  // Partial sums stay within a quarter of the binding limit.
  const small = splitK(147, 64, 802816, 128 * 2 ** 20);
  assert.ok(small.slices * 147 * 64 * 4 <= 32 * 2 ** 20);
});

test('MEDPIPE_WEBGPU_KERNELS: unset = all, 0 = none, -A,-B = all but A and B; anything else is refused', () => {
  assert.deepEqual(kernelsLeftOut(undefined), []);
  assert.equal(kernelsLeftOut('0'), 'all');
  assert.deepEqual(kernelsLeftOut('-Conv2DBackpropInput, -AddN'), ['Conv2DBackpropInput', 'AddN']);
  assert.throws(() => kernelsLeftOut('Conv2DBackpropInput'), /expected 0 or -Name/);
});

gpuTest('Conv2DBackpropFilter (WGSL tiled GEMM) matches cpu: strides, paddings, odd sizes, split-K', () => {
  for (let i = 0; i < 12; i++) {
    const kh = int(1, 7);
    const kw = int(1, 7);
    const strides: [number, number] = [pick([1, 2, 3]), pick([1, 2])];
    const pad = randomPad(kh, kw);
    // Some cases long in K (batch x output pixels) so that the split into slices is exercised.
    const big = i % 4 === 0;
    const xShape = [int(1, big ? 6 : 3), int(kh + 1, big ? 40 : 13), int(kw + 1, big ? 40 : 13), int(1, 9)];
    const fShape = [kh, kw, xShape[3]!, int(1, 70)];
    const yShape = tf.conv2d(z4(xShape), z4(fShape), strides, pad).shape;
    const what = `x ${xShape} f ${fShape} s ${strides} pad ${JSON.stringify(pad)}`;
    const attrs = { strides, pad, dataFormat: 'NHWC', filterShape: fShape };
    same(`${what} bpFilter`, [F(xShape), F(yShape)], (x, dy) => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, attrs) as T, 1e-4, 'webgpu');
    same(`${what} grads`, [F(xShape), F(fShape), F(yShape)], (x, f, w) =>
      tf.grads((a: T, b: T) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, strides, pad), w)))([x, f]), 1e-4, 'webgpu');
  }
});

gpuTest('Conv2DBackpropInput (WGSL tiled GEMM) matches cpu: strides, paddings, odd sizes, 1x1', () => {
  for (let i = 0; i < 12; i++) {
    // Every third case a 1 x 1 stride-1 conv (the bottlenecks' pointwise path), some with
    // more than one 64-wide tile of rows and of input channels.
    const point = i % 3 === 0;
    const kh = point ? 1 : int(1, 7);
    const kw = point ? 1 : int(1, 7);
    const strides: [number, number] = point ? [1, 1] : [pick([1, 2, 3]), pick([1, 2])];
    const pad = point ? 'valid' : randomPad(kh, kw);
    const xShape = [int(1, 3), int(kh + 1, 17), int(kw + 1, 17), i % 4 === 1 ? int(60, 140) : int(1, 9)];
    const fShape = [kh, kw, xShape[3]!, int(1, i % 4 === 2 ? 90 : 40)];
    const yShape = tf.conv2d(z4(xShape), z4(fShape), strides, pad).shape;
    const what = `x ${xShape} f ${fShape} s ${strides} pad ${JSON.stringify(pad)}`;
    const attrs = { inputShape: xShape, strides, pad, dataFormat: 'NHWC' };
    same(`${what} bpInput`, [F(yShape), F(fShape)], (dy, f) => tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: f }, attrs) as T, 1e-4, 'webgpu');
  }
  // ResNet's strided convs (split by stride phase: a phase may have no taps at all) and a
  // filter smaller than its stride.
  const cases: [number[], number[], [number, number], Pad][] = [
    [[2, 9, 11, 6], [1, 1, 6, 10], [2, 2], 'valid'],
    [[1, 13, 12, 5], [3, 3, 5, 7], [2, 2], 'same'],
    [[2, 15, 15, 3], [7, 7, 3, 9], [2, 2], [[0, 0], [3, 3], [3, 3], [0, 0]]],
    [[1, 10, 11, 4], [2, 1, 4, 5], [3, 2], [[0, 0], [1, 0], [0, 1], [0, 0]]],
  ];
  for (const [xShape, fShape, strides, pad] of cases) {
    const yShape = tf.conv2d(z4(xShape), z4(fShape), strides, pad).shape;
    const attrs = { inputShape: xShape, strides, pad, dataFormat: 'NHWC' };
    same(`x ${xShape} f ${fShape} s ${strides} pad ${JSON.stringify(pad)} bpInput`, [F(yShape), F(fShape)], (dy, f) => tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: f }, attrs) as T, 1e-4, 'webgpu');
  }
});

gpuTest("medpipe's kernel replaces tfjs-webgpu's and agrees with it", () => {
  const x = F([2, 15, 17, 5]);
  const fShape = [3, 3, 5, 33];
  const yShape = tf.conv2d(z4(x.shape), z4(fShape), 2, 'same').shape;
  const dy = F(yShape);
  const run = () => on('webgpu', [x, dy], (a, b) => tf.engine().runKernel('Conv2DBackpropFilter', { x: a, dy: b }, { strides: [2, 2], pad: 'same', dataFormat: 'NHWC', filterShape: fShape }) as T)[0]!;
  const ours = run();
  unregisterWebGPUKernels(tf);
  try {
    const theirs = run();
    assert.ok(relErr(ours, theirs) < 1e-5, `rel. error ${relErr(ours, theirs)}`);
  } finally {
    registerWebGPUKernels(tf);
  }
});

gpuTest('AddN over more inputs than the device binds at once (a global gradient norm) matches cpu', () => {
  for (const n of [2, 7, 15, 16, 40, 57]) {
    const shape = [int(1, 5), int(1, 9)];
    const inputs = Array.from({ length: n }, () => F(shape));
    same(`addN of ${n}`, inputs, (...xs) => tf.addN(xs), 1e-5, 'webgpu');
    same(`grad of the norm of ${n}`, inputs, (...xs) => tf.grads((...ys: T[]) => tf.sqrt(tf.addN(ys.map((y) => tf.sum(tf.square(y))))))(xs), 1e-5, 'webgpu');
  }
});

gpuTest('fused GELU (WGSL, one pass each way) matches the composed form on cpu, values and gradients', () => {
  for (let i = 0; i < 6; i++) {
    const shape = [int(1, 70), int(1, 33)];
    const x = F(shape, () => (rng.rand() * 2 - 1) * 6);
    same(`gelu ${shape}`, [x], (a) => gelu(a as tf.Tensor2D), 1e-5, 'webgpu');
    same(`gelu grad ${shape}`, [x, F(shape)], (a, w) => tf.grad((b: T) => tf.sum(tf.mul(gelu(b as tf.Tensor2D), w)))(a), 1e-5, 'webgpu');
  }
  // The fused kernel is what ran: on cpu the fused form is absent, on webgpu present.
  tf.setBackend('webgpu');
  const probe = tf.tidy(() => fusedGelu(tf, tf.ones([2, 2])) !== undefined);
  tf.setBackend('cpu');
  assert.equal(probe, true);
});

/** nn.LayerNorm: the fused kernel where there is one (webgpu), the composed form elsewhere (cpu). */
function layerNormEither(x: T, g: T, b: T, eps: number): T {
  const fused = fusedLayerNorm(tf, x, g, b, eps);
  if (fused) return fused;
  const { mean, variance } = tf.moments(x, x.rank - 1, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), g), b);
}

gpuTest('fused LayerNorm (WGSL, a workgroup per row) matches the composed form on cpu, values and gradients', () => {
  for (let i = 0; i < 6; i++) {
    const D = pick([1, 7, 64, 65, 192, 384]);
    const shape = [int(1, 90), D];
    const eps = pick([1e-5, 1e-6]);
    // An offset mean per row, as activations have: the two-pass variance must not cancel.
    const x = F(shape, () => rng.rand() * 4 + 3);
    same(`layerNorm ${shape}`, [x, F([D]), F([D])], (a, g, b) => layerNormEither(a, g, b, eps), 1e-4, 'webgpu');
    same(`layerNorm grads ${shape}`, [x, F([D]), F([D]), F(shape)], (a, g, b, w) =>
      tf.grads((p: T, q: T, r: T) => tf.sum(tf.mul(layerNormEither(p, q, r, eps), w)))([a, g, b]), 1e-4, 'webgpu');
  }
  // More rows than one dispatch dimension takes (the 2-D grid's tail).
  const tall = [32_800, 3];
  same('layerNorm grads, 32,800 rows', [F(tall), F([3]), F([3]), F(tall)], (a, g, b, w) =>
    tf.grads((p: T, q: T, r: T) => tf.sum(tf.mul(layerNormEither(p, q, r, 1e-6), w)))([a, g, b]), 1e-4, 'webgpu');
});

gpuTest("a device error (tfjs's own AddN over 40 inputs) makes reads throw instead of returning stale data", () => {
  const backendJs = fileURLToPath(new URL('../src/engine/backend.js', import.meta.url));
  const kernelsJs = fileURLToPath(new URL('../src/engine/webgpu-kernels.js', import.meta.url));
  const script = `
    const tf = await import('@tensorflow/tfjs');
    const { initBackend } = await import(${JSON.stringify(backendJs)});
    const { unregisterWebGPUKernels } = await import(${JSON.stringify(kernelsJs)});
    await initBackend({ prefer: 'webgpu' });
    unregisterWebGPUKernels(tf);
    const xs = Array.from({ length: 40 }, (_, i) => tf.fill([3], i));
    try { console.log('VALUES', Array.from(tf.addN(xs).dataSync()).join(',')); } catch (e) { console.log('THREW', e.message); }`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', cwd: fileURLToPath(new URL('../..', import.meta.url)) });
  assert.match(r.stdout, /THREW WebGPU device error, results since are invalid: .*storage buffers/, r.stdout + r.stderr);
});

const demo = (model: string): BenchModel => ({ label: model, model, imageSize: 32, batch: 4, micro: 4, steps: 3 });

async function losses(backend: string, m: BenchModel, steps: number): Promise<number[]> {
  await tf.setBackend(backend);
  const t = makeTrainer(m, 7);
  try {
    return Array.from({ length: steps }, () => t.step());
  } finally {
    t.dispose();
  }
}

for (const model of ['resnet_demo', 'vit_demo']) {
  gpuTest(`${model}: training losses on webgpu follow wasm step by step, and repeat exactly per seed`, async () => {
    const m = demo(model);
    const want = await losses('wasm', m, 3);
    const got = await losses('webgpu', m, 3);
    const again = await losses('webgpu', m, 3);
    await tf.setBackend('cpu');
    for (let i = 0; i < want.length; i++) {
      assert.ok(Math.abs(got[i]! - want[i]!) <= 2e-4 * Math.max(1, Math.abs(want[i]!)), `step ${i}: webgpu ${got[i]} vs wasm ${want[i]}`);
    }
    assert.ok(want[want.length - 1]! < want[0]!, `the loss falls (${want.join(', ')})`);
    assert.deepEqual(again, got);
  });
}

/** BatchNorm in training mode as the models call it: fused where medpipe has a kernel
 *  (webgpu), tfjs's composed ops elsewhere (cpu); [y, mean, variance]. */
function batchNormEither(x: T, g: T, b: T, eps: number): T[] {
  const fused = batchNormTraining(tf, x, g, b, eps);
  if (fused) return [fused.y, fused.mean, fused.variance];
  const { mean, variance } = tf.moments(x, [0, 1, 2]);
  return [tf.batchNorm(x as tf.Tensor4D, mean as tf.Tensor1D, variance as tf.Tensor1D, b as tf.Tensor1D, g as tf.Tensor1D, eps), mean, variance];
}

gpuTest('fused BatchNorm (WGSL, two-pass per-channel sums) matches the composed form on cpu, values and gradients', () => {
  const cases: number[][] = Array.from({ length: 6 }, () => [int(1, 4), int(1, 9), int(1, 9), pick([1, 3, 7, 64, 65, 130])]);
  // Many row slices (the per-channel tree over more than 64 of them) and 1 x 1 images.
  cases.push([8, 40, 41, 5], [3, 1, 1, 9]);
  for (const shape of cases) {
    // Two values per channel normalise to +-1 whatever x is: dx is rounding noise.
    if (shape[0]! * shape[1]! * shape[2]! < 3) shape[0] = 3;
    const C = shape[3]!;
    const eps = pick([1e-5, 1e-3]);
    // A channel mean far from zero, as after a conv: the variance must not cancel.
    const x = F(shape, () => rng.rand() * 4 + 2);
    same(`batchNorm ${shape}`, [x, F([C]), F([C])], (a, g, b) => batchNormEither(a, g, b, eps), 1e-4, 'webgpu');
    same(`batchNorm grads ${shape}`, [x, F([C]), F([C]), F(shape)], (a, g, b, w) =>
      tf.grads((p: T, q: T, r: T) => tf.sum(tf.mul(batchNormEither(p, q, r, eps)[0]!, w)))([a, g, b]), 1e-4, 'webgpu');
  }
  tf.setBackend('webgpu');
  const probe = tf.tidy(() => batchNormTraining(tf, tf.ones([2, 1, 1, 2]), tf.ones([2]), tf.zeros([2]), 1e-5) !== undefined);
  tf.setBackend('cpu');
  assert.equal(probe, true, 'the fused kernel ran on webgpu');
});

gpuTest('BatchNorm running estimates move on the device as on cpu (unbiased variance, momentum, count)', () => {
  const shape = [3, 5, 7, 11];
  const inputs = [F(shape, () => rng.rand() * 3 + 1), F([11]), F([11]), F([11]), F([11], () => rng.rand() + 0.5)];
  const run = (x: T, g: T, b: T, rm: T, rv: T): T[] => {
    const params = new Map<string, tf.Variable>([
      ['bn.weight', tf.variable(g)], ['bn.bias', tf.variable(b)], ['bn.running_mean', tf.variable(rm, false)],
      ['bn.running_var', tf.variable(rv, false)], ['bn.num_batches_tracked', tf.variable(tf.scalar(4, 'int32'), false)],
    ]);
    const y = batchNorm(params, 'bn', x as tf.Tensor4D, { training: true, bnMomentum: 0.3 });
    batchNorm(params, 'bn', x as tf.Tensor4D, { training: true, bnMomentum: 0.3 });
    const out = [y, ...['bn.running_mean', 'bn.running_var', 'bn.num_batches_tracked'].map((k) => tf.cast(params.get(k)!, 'float32'))];
    // Kept past `on`'s tidy as plain values; the variables themselves are freed here.
    const values = out.map((t) => tf.tensor(t.dataSync(), t.shape));
    for (const v of params.values()) v.dispose();
    return values;
  };
  const want = on('cpu', inputs, run);
  const got = on('webgpu', inputs, run);
  want.forEach((w, i) => assert.ok(relErr(got[i]!, w) <= 1e-5, `output ${i}: rel. error ${relErr(got[i]!, w)}`));
  assert.equal(got[3]![0], 6, 'two steps counted');
});

gpuTest('fused Adam / AdamW (one WGSL dispatch per parameter, in place) matches the composed step on cpu', () => {
  const shapes = [[1], [7], [3, 5], [65, 33], [2, 3, 3, 9], [3, 3, 17, 31]];
  const inputs = [...shapes.map((s) => F(s)), ...shapes.flatMap((s) => [F(s), F(s), F(s)])];
  const run = (opts: AdamOptions) => (...xs: T[]): T[] => {
    const ps = xs.slice(0, shapes.length);
    // Variables made from the inputs share their data: the step must not write the inputs.
    const params = new Map(ps.map((p, i) => [`w${i}`, tf.variable(p)]));
    params.get('w2')!.dataSync(); // a host copy cached before the step must not go stale
    const adam = new Adam(tf, opts);
    for (let s = 0; s < 3; s++) {
      const grads = new Map(ps.map((_, i) => [`w${i}`, xs[shapes.length + 3 * i + s]!] as const)
        // w1 skips the first step: parameters at different step counts (two groups).
        .filter(([k]) => !(s === 0 && k === 'w1')));
      adam.apply(params, grads, 0.01 * (s + 1));
    }
    const out = [...params.values(), ...adam.m.values(), ...adam.v.values(), ps[0]!].map((t) => tf.tensor(t.dataSync(), t.shape));
    adam.dispose();
    for (const v of params.values()) v.dispose();
    return out;
  };
  for (const opts of [ADAM_DEFAULTS, { ...ADAM_DEFAULTS, weightDecay: 0.05, noDecay: (n: string) => n === 'w3' }, { ...ADAM_DEFAULTS, weightDecay: 0.1, decoupled: true }]) {
    const want = on('cpu', inputs, run(opts));
    const got = on('webgpu', inputs, run(opts));
    want.forEach((w, i) => {
      const e = relErr(got[i]!, w);
      assert.ok(e <= 2e-6, `wd ${opts.weightDecay} decoupled ${opts.decoupled ?? false} output ${i}: rel. error ${e}`);
    });
    assert.deepEqual(got[got.length - 1], inputs[0]!.data, 'the tensor a variable was made from is unchanged');
  }
  // The fused kernel is what ran on webgpu.
  tf.setBackend('webgpu');
  const ran = tf.tidy(() => {
    const p = tf.variable(tf.ones([3]));
    const m = tf.variable(tf.zeros([3]));
    const v = tf.variable(tf.zeros([3]));
    const ok = fusedAdamStep(tf, [{ p, m, v, g: tf.ones([3]), mode: 'plain' }], { beta1: 0.9, beta2: 0.999, eps: 1e-8, lr: 0.1, weightDecay: 0, bc1: 0.1, bc2: 0.001 });
    const after = p.dataSync()[0];
    tf.dispose([p, m, v]);
    return { ok, after };
  });
  tf.setBackend('cpu');
  assert.equal(ran.ok, true);
  assert.ok(Math.abs(ran.after! - 0.9) < 1e-6, `one step of lr 0.1 from 1 with g = 1 gives 0.9, got ${ran.after}`);
});

gpuTest('fused Adam over more values than one dispatch dimension covers (a 2-D grid) updates every one', () => {
  const n = 64 * 65535 + 77;
  const pv = rng.values(n);
  const gv = rng.values(n);
  tf.setBackend('webgpu');
  const out = tf.tidy(() => {
    const [p, m, v] = [tf.variable(tf.tensor(pv)), tf.variable(tf.zeros([n])), tf.variable(tf.zeros([n]))];
    const ran = fusedAdamStep(tf, [{ p, m, v, g: tf.tensor(gv), mode: 'plain' }], { beta1: 0.9, beta2: 0.999, eps: 1e-8, lr: 0.01, weightDecay: 0, bc1: 0.1, bc2: 0.001 });
    const values = p.dataSync();
    tf.dispose([p, m, v]);
    return ran ? values : undefined;
  });
  tf.setBackend('cpu');
  assert.ok(out, 'the fused kernel ran');
  // The first step from zero moments, in float32: m = 0.1 g, v = 0.001 g^2, p -= m / (sqrt(v / bc2) + eps) * lr / bc1.
  const f = Math.fround;
  let worst = 0;
  for (let i = 0; i < n; i++) {
    const m = f(gv[i]! * f(0.1));
    const v = f(f(gv[i]! * gv[i]!) * f(0.001));
    const want = f(pv[i]! - f(f(m / f(f(Math.sqrt(f(v / f(0.001)))) + f(1e-8))) * f(0.1)));
    worst = Math.max(worst, Math.abs(out[i]! - want));
  }
  assert.ok(worst < 1e-6, `largest difference ${worst}`);
});

test('fused Adam dispatch: one dimension up to the limit, then a 2-D grid covering every value', () => {
  assert.deepEqual(adamDispatch(1, 65535), { x: 1, y: 1, cols: 64 });
  assert.deepEqual(adamDispatch(64 * 65535, 65535), { x: 65535, y: 1, cols: 64 * 65535 });
  const d = adamDispatch(64 * 65535 + 1, 65535);
  assert.equal(d.y, 2);
  assert.ok(d.x * d.y * 64 >= 64 * 65535 + 1);
});
