// Forward passes against an independent loop implementation of the PyTorch modules
// (test/support/torch-reference.ts), on the wasm backend (with medpipe's kernels) and the
// reference cpu backend, at tiny sizes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend, type BackendChoice } from '../src/engine/backend.js';
import { Rng } from '../src/data/rng.js';
import { specFromConfig } from '../src/ml/models/registry.js';
import { createParams, disposeParams, readState, trainableVariables } from '../src/ml/models/params.js';
import { forward } from '../src/ml/models/forward.js';
import { initState, type StateDict } from '../src/ml/models/state.js';
import { resamplePosEmbed } from '../src/ml/models/vit/pos-embed.js';
import type { ModelSpec, ResNetConfig, ViTConfig } from '../src/ml/models/types.js';
import { batchStats, conv, fromNHWC, relErr, resnetRef, vitRef, type RefResNet } from './support/torch-reference.js';

const BACKENDS: BackendChoice[] = ['wasm', 'cpu'];

/** Every tensor random (running_var positive), so eval-mode BN and biases are exercised. */
function randomState(spec: ModelSpec, seed: number): StateDict {
  const state = initState(spec, seed);
  const rng = new Rng(seed, 99);
  for (const [name, t] of state) {
    if (name.endsWith('num_batches_tracked')) continue;
    for (let i = 0; i < t.data.length; i++) {
      t.data[i] = name.endsWith('running_var') ? 0.5 + rng.float() : name.endsWith('.weight') && t.shape.length === 1 ? 0.5 + rng.float() : rng.normal() * 0.3;
    }
  }
  return state;
}

function image(b: number, h: number, c: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: b * h * h * c }, () => rng.normal());
}

const basicCfg: ResNetConfig = { family: 'resnet', block: 'basic', layers: [1, 1], widths: [4, 6], stemWidth: 4, numClasses: 3, channels: 3, imageSize: 18, zeroInitResidual: false };
const bottleCfg: ResNetConfig = { family: 'resnet', block: 'bottleneck', layers: [2, 1], widths: [2, 3], stemWidth: 4, numClasses: 5, channels: 1, imageSize: 17, zeroInitResidual: false };
const refOf = (cfg: ResNetConfig): RefResNet => ({
  block: cfg.block,
  blocks: cfg.block === 'basic'
    ? [['layer1.0', 1, false], ['layer2.0', 2, true]]
    : [['layer1.0', 1, true], ['layer1.1', 1, false], ['layer2.0', 2, true]],
});

for (const backend of BACKENDS) {
  test(`ResNet (basic and bottleneck) logits equal the reference, eval and train [${backend}]`, async () => {
    await initBackend({ prefer: backend });
    for (const cfg of [basicCfg, bottleCfg]) {
      const spec = specFromConfig('tiny', cfg);
      const state = randomState(spec, 5);
      const params = createParams(spec, state);
      const B = 3;
      const x = image(B, cfg.imageSize, cfg.channels, 1);
      const xs = fromNHWC(x, B, cfg.imageSize, cfg.imageSize, cfg.channels);
      const input = tf.tensor4d(x, [B, cfg.imageSize, cfg.imageSize, cfg.channels]);
      for (const training of [false, true]) {
        const got = forward(spec, params, input, { training, updateStats: false });
        const want = resnetRef(state, refOf(cfg), xs, training);
        const err = relErr(await got.data(), want.flatMap((r) => [...r]));
        assert.ok(err <= 1e-4, `${cfg.block} training=${training}: rel err ${err}`);
        got.dispose();
      }
      input.dispose();
      disposeParams(params);
    }
  });

  test(`ViT logits equal the reference; position embedding resampled for another size [${backend}]`, async () => {
    await initBackend({ prefer: backend });
    const cfg: ViTConfig = { family: 'vit', patchSize: 4, dim: 12, depth: 2, heads: 3, mlpRatio: 4, qkvBias: true, eps: 1e-6, numClasses: 4, channels: 3, imageSize: 12 };
    const spec = specFromConfig('tiny-vit', cfg);
    const state = randomState(spec, 8);
    const params = createParams(spec, state);
    const ref = { patch: 4, dim: 12, depth: 2, heads: 3, eps: 1e-6 };
    for (const size of [12, 20]) {
      const B = 2;
      const x = image(B, size, 3, 2);
      const got = forward(spec, params, tf.tensor4d(x, [B, size, size, 3]), { training: true });
      // A model of another size sees the resampled embedding: the reference gets it from the JS path.
      const refState: StateDict = new Map(state);
      if (size !== 12) refState.set('pos_embed', resamplePosEmbed(state.get('pos_embed')!.data, [1, 10, 12], size / 4));
      const want = fromNHWC(x, B, size, size, 3).map((img) => vitRef(refState, ref, img));
      const err = relErr(await got.data(), want.flatMap((r) => [...r]));
      assert.ok(err <= 1e-4, `size ${size}: rel err ${err}`);
    }
    disposeParams(params);
  });
}

test('BatchNorm training updates running statistics as torch (momentum 0.1, unbiased var)', async () => {
  await initBackend({ prefer: 'wasm' });
  const spec = specFromConfig('tiny', basicCfg);
  const state = randomState(spec, 3);
  const params = createParams(spec, state);
  const B = 2;
  const x = image(B, 18, 3, 4);
  tf.tidy(() => forward(spec, params, tf.tensor4d(x, [B, 18, 18, 3]), { training: true }));
  const after = await readState(spec, params);
  // bn1 sees conv1's output over the batch: n = 2 * 9 * 9 values per channel.
  const convOut = fromNHWC(x, B, 18, 18, 3).map((img) => conv(state, 'conv1.weight', img, 2, 3));
  const { mean, variance, n } = batchStats(convOut);
  const rm0 = state.get('bn1.running_mean')!.data;
  const rv0 = state.get('bn1.running_var')!.data;
  const rm = after.get('bn1.running_mean')!.data;
  const rv = after.get('bn1.running_var')!.data;
  for (let c = 0; c < 4; c++) {
    assert.ok(Math.abs(rm[c] - (0.9 * rm0[c] + 0.1 * mean[c])) < 1e-4);
    assert.ok(Math.abs(rv[c] - (0.9 * rv0[c] + 0.1 * variance[c] * (n / (n - 1)))) < 1e-4);
  }
  assert.equal(after.get('bn1.num_batches_tracked')!.data[0], 1);
  assert.equal(after.get('layer2.0.downsample.1.num_batches_tracked')!.data[0], 1);
  // Eval leaves them alone; BN weights are trainable, running stats are not.
  tf.tidy(() => forward(spec, params, tf.tensor4d(x, [B, 18, 18, 3]), { training: false }));
  assert.deepEqual((await readState(spec, params)).get('bn1.running_mean')!.data, rm);
  assert.equal(trainableVariables(params).length, spec.params.filter((p) => p.trainable).length);
  disposeParams(params);
  assert.throws(() => forward(spec, params, tf.zeros([1, 18, 18, 1]) as tf.Tensor4D, { training: false }), /input has 1 channels, the model takes 3/);
});

test('gradients on wasm equal the cpu backend for both families', async () => {
  const vitCfg: ViTConfig = { family: 'vit', patchSize: 4, dim: 12, depth: 1, heads: 2, mlpRatio: 2, qkvBias: true, eps: 1e-6, numClasses: 3, channels: 3, imageSize: 8 };
  for (const cfg of [bottleCfg, vitCfg]) {
    const spec = specFromConfig('g', cfg);
    const state = randomState(spec, 21);
    const x = image(2, cfg.imageSize, cfg.channels, 6);
    const grads: Record<string, Float32Array>[] = [];
    for (const backend of BACKENDS) {
      await initBackend({ prefer: backend });
      const params = createParams(spec, state);
      const input = tf.tensor4d(x, [2, cfg.imageSize, cfg.imageSize, cfg.channels]);
      const vars = trainableVariables(params);
      const names = [...params].filter(([, v]) => v.trainable).map(([k]) => k);
      const { grads: g } = tf.variableGrads(() => tf.sum(tf.square(forward(spec, params, input, { training: true, updateStats: false }))) as tf.Scalar, vars);
      const out: Record<string, Float32Array> = {};
      for (const [i, v] of vars.entries()) out[names[i]] = (await g[v.name].data()) as Float32Array;
      grads.push(out);
      tf.dispose(Object.values(g));
      disposeParams(params);
    }
    // Relative to the largest gradient of the model: some (e.g. a bias feeding only
    // batch-normalised paths) are ~0 by cancellation, where per-tensor ratios mean nothing.
    const scale = Math.max(...Object.values(grads[1]).map((g) => g.reduce((m, v) => Math.max(m, Math.abs(v)), 0)));
    for (const name of Object.keys(grads[1])) {
      let diff = 0;
      grads[1][name].forEach((v, i) => (diff = Math.max(diff, Math.abs(v - grads[0][name][i]))));
      assert.ok(diff / scale <= 1e-4, `${cfg.family} ${name}: wasm vs cpu gradient differs by ${diff} (scale ${scale})`);
    }
  }
});

test('gradients agree with finite differences (training-mode BatchNorm, attention, GELU)', async () => {
  // Both backends share tfjs's gradient formulas; this checks the formulas themselves.
  await initBackend({ prefer: 'cpu' });
  const vitCfg: ViTConfig = { family: 'vit', patchSize: 4, dim: 8, depth: 1, heads: 2, mlpRatio: 2, qkvBias: true, eps: 1e-6, numClasses: 3, channels: 3, imageSize: 8 };
  for (const cfg of [basicCfg, vitCfg]) {
    const spec = specFromConfig('fd', cfg);
    const state = randomState(spec, 31);
    const params = createParams(spec, state);
    const input = tf.tensor4d(image(2, cfg.imageSize, cfg.channels, 9), [2, cfg.imageSize, cfg.imageSize, cfg.channels]);
    const target = tf.tensor2d(image(2, 1, cfg.numClasses, 10), [2, cfg.numClasses]);
    const loss = () => tf.sum(tf.square(tf.sub(forward(spec, params, input, { training: true, updateStats: false }), target))) as tf.Scalar;
    const vars = trainableVariables(params);
    const { grads } = tf.variableGrads(loss, vars);
    // Directional derivative along a random direction v over all parameters.
    const rng = new Rng(77);
    const dirs = vars.map((v) => tf.tensor(Float32Array.from({ length: v.size }, () => rng.normal()), v.shape));
    const analytic = dirs.reduce((s, d, i) => s + tf.sum(tf.mul(grads[vars[i].name], d)).dataSync()[0], 0);
    const originals = vars.map((v) => tf.clone(v));
    const evalAt = (eps: number) => {
      vars.forEach((v, i) => v.assign(tf.add(originals[i], tf.mul(dirs[i], eps))));
      const l = tf.tidy(() => loss().dataSync()[0]);
      return l;
    };
    // Small enough not to cross ReLU / max-pool kinks (1e-2 does, and is off by 20%),
    // large enough for float32 loss differences: measured agreement here ~5e-4.
    const eps = 2e-4;
    const numeric = (evalAt(eps) - evalAt(-eps)) / (2 * eps);
    assert.ok(Math.abs(numeric - analytic) <= 3e-3 * Math.abs(analytic), `${cfg.family}: finite difference ${numeric} vs gradient ${analytic}`);
    tf.dispose([input, target, ...dirs, ...originals, ...Object.values(grads)]);
    disposeParams(params);
  }
});

test('training steps leak no tensors (BatchNorm updates, attention)', async () => {
  await initBackend({ prefer: 'wasm' });
  const vitCfg: ViTConfig = { family: 'vit', patchSize: 4, dim: 8, depth: 1, heads: 2, mlpRatio: 2, qkvBias: true, eps: 1e-6, numClasses: 3, channels: 3, imageSize: 8 };
  for (const cfg of [bottleCfg, vitCfg]) {
    const spec = specFromConfig('leak', cfg);
    const start = tf.memory();
    const params = createParams(spec, initState(spec, 1));
    const opt = tf.train.adam(1e-3);
    const x = tf.tensor4d(image(2, cfg.imageSize, cfg.channels, 3), [2, cfg.imageSize, cfg.imageSize, cfg.channels]);
    const step = () => opt.minimize(() => tf.mean(tf.square(forward(spec, params, x, { training: true }))) as tf.Scalar, false, trainableVariables(params));
    step();
    const after1 = tf.memory().numTensors;
    step();
    step();
    assert.equal(tf.memory().numTensors, after1, cfg.family);
    const counters = (await readState(spec, params)).get('layer1.0.bn1.num_batches_tracked');
    if (cfg.family === 'resnet') assert.equal(counters?.data[0], 3);
    opt.dispose();
    x.dispose();
    disposeParams(params);
    assert.equal(tf.memory().numTensors, start.numTensors, 'parameters freed with their variables');
    assert.equal(tf.memory().numBytes, start.numBytes);
  }
});
