// ConvNeXt against torchvision (test/fixtures/reference/make_convnext.py): names, shapes and
// the parameter count of convnext_tiny; logits, the Grad-CAM layer's activations, Grad-CAM
// itself and the gradients of a reduced-width ConvNeXt with random weights, on the wasm engine and the cpu
// backend; stochastic depth as torchvision's "row" mode; a few training steps reduce the loss.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { initBackend, type BackendChoice } from '../src/engine/backend.js';
import { Rng } from '../src/data/rng.js';
import { dropPathScales } from '../src/ml/models/convnext/net.js';
import { familyOf } from '../src/ml/models/families.js';
import { classifyActivations, convActivations, features, forward } from '../src/ml/models/forward.js';
import { createParams, disposeParams, trainableVariables } from '../src/ml/models/params.js';
import { modelInfo, modelSpec, specFromConfig } from '../src/ml/models/registry.js';
import { initState, type StateDict } from '../src/ml/models/state.js';
import type { ConvNeXtConfig, ModelSpec } from '../src/ml/models/types.js';
import { Adam } from '../src/ml/train/adam.js';
import { gradCam } from '../src/ml/saliency/gradcam.js';
import { tfToTorch } from '../src/ml/weights/layout.js';
import { relErr } from './support/torch-reference.js';

interface Packed {
  shape: number[];
  data: string;
}
interface Fixture {
  tiny: { parameters: number; state: [string, number[]][] };
  config: { depths: number[]; widths: number[]; num_classes: number; image_size: number; batch: number };
  state: Record<string, Packed>;
  input: Packed;
  labels: number[];
  logits: number[];
  activations: Packed;
  gradcam: { predicted: number[]; coarse: number[] };
  loss: number;
  grads: Record<string, Packed>;
}

const FIX = JSON.parse(readFileSync(fileURLToPath(new URL('../../test/fixtures/reference/convnext.json', import.meta.url)), 'utf8')) as Fixture;
const floats = (p: Packed) => {
  const b = Buffer.from(p.data, 'base64');
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};
/** NCHW -> NHWC. */
function nhwc(p: Packed): Float32Array {
  const [B, C, H, W] = p.shape;
  const src = floats(p);
  const out = new Float32Array(src.length);
  for (let b = 0; b < B; b++) for (let c = 0; c < C; c++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) out[((b * H + y) * W + x) * C + c] = src[((b * C + c) * H + y) * W + x];
  return out;
}

const CFG: ConvNeXtConfig = {
  family: 'convnext', depths: FIX.config.depths, widths: FIX.config.widths, layerScale: 1e-6, stochasticDepth: 0.1, eps: 1e-6,
  numClasses: FIX.config.num_classes, channels: 3, imageSize: FIX.config.image_size,
};
const SPEC = specFromConfig('convnext-ref', CFG);
const STATE: StateDict = new Map(Object.entries(FIX.state).map(([k, t]) => [k, { shape: t.shape, data: floats(t) }]));
const B = FIX.config.batch;
const S = FIX.config.image_size;
const input = () => tf.tensor4d(nhwc(FIX.input), [B, S, S, 3]);

test('convnext_tiny has torchvision\'s state_dict names, shapes and parameter count', () => {
  assert.equal(modelInfo('convnext_tiny').parameters, 28_589_128);
  assert.equal(FIX.tiny.parameters, 28_589_128);
  const spec = modelSpec('ConvNeXt-T');
  assert.deepEqual(spec.params.map((p) => [p.name, p.shape]), FIX.tiny.state);
  assert.deepEqual(spec.params.filter((p) => p.head).map((p) => p.name), ['classifier.2.weight', 'classifier.2.bias']);
  assert.equal(modelInfo('convnext_tiny').backboneParameters, 28_589_128 - 768 * 1000 - 1000);
  // Weight decay skips biases, LayerNorms and layer scales: exactly the tensors that are
  // not conv or linear weights.
  const f = familyOf(spec.config);
  for (const p of spec.params) assert.equal(f.noDecay(p.name), p.layout === 'plain', p.name);
  assert.equal(f.gradCamLayer?.(spec.config), 'features.7');
  assert.equal(f.featureSize(spec.config), 768);
  // The reduced model of the fixture follows the same code: its names are torchvision's too.
  assert.deepEqual(SPEC.params.map((p) => p.name), Object.keys(FIX.state));
});

const BACKENDS: BackendChoice[] = ['wasm', 'cpu'];
for (const backend of BACKENDS) {
  test(`ConvNeXt logits, Grad-CAM activations and gradients equal torchvision's [${backend}]`, async () => {
    await initBackend({ prefer: backend });
    const params = createParams(SPEC, STATE);
    const x = input();
    for (const training of [false, true]) {
      // Training without `random` draws no drop-path masks: torchvision's eval.
      const got = forward(SPEC, params, x, { training });
      const err = relErr(await got.data(), FIX.logits);
      assert.ok(err <= 1e-4, `training=${training}: logits rel err ${err}`);
      got.dispose();
    }
    const acts = convActivations(SPEC, params, x, { training: false });
    assert.deepEqual(acts.shape, [B, FIX.activations.shape[2], FIX.activations.shape[3], FIX.activations.shape[1]]);
    const actErr = relErr(await acts.data(), nhwc(FIX.activations));
    assert.ok(actErr <= 1e-4, `features.${2 * CFG.depths.length - 1} rel err ${actErr}`);
    const viaActs = classifyActivations(SPEC, params, acts);
    assert.ok(relErr(await viaActs.data(), FIX.logits) <= 1e-4, "forward = classifyActivations(convActivations)");
    tf.dispose([acts, viaActs]);
    const cams = await gradCam(SPEC, params, x);
    assert.deepEqual(cams.map((c) => c.predicted), FIX.gradcam.predicted);
    const camErr = relErr(cams.flatMap((c) => [...c.coarse]), FIX.gradcam.coarse);
    assert.ok(camErr <= 1e-4, `Grad-CAM on features[-1] rel err ${camErr}`);

    const vars = trainableVariables(params);
    const names = [...params].filter(([, v]) => v.trainable).map(([k]) => k);
    const y = tf.oneHot(tf.tensor1d(FIX.labels, 'int32'), CFG.numClasses);
    const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, forward(SPEC, params, x, { training: true })) as tf.Scalar, vars);
    assert.ok(Math.abs((await value.data())[0] - FIX.loss) <= 1e-5 * Math.max(1, FIX.loss));
    for (const [name, want] of Object.entries(FIX.grads)) {
      const p = SPEC.params.find((q) => q.name === name)!;
      const g = grads[vars[names.indexOf(name)].name];
      const torchLayout = tfToTorch(p.layout, p.shape, (await g.data()) as Float32Array);
      const gErr = relErr(torchLayout, floats(want));
      assert.ok(gErr <= 1e-3, `${name}: gradient rel err ${gErr}`);
    }
    tf.dispose([x, y, value, ...Object.values(grads)]);
    disposeParams(params);
  });
}

test('stochastic depth drops whole residual branches per image and rescales the kept ones (torchvision "row")', async () => {
  await initBackend({ prefer: 'wasm' });
  const cfg = { ...CFG, stochasticDepth: 0.6 };
  const spec = specFromConfig('convnext-sd', cfg);
  const params = createParams(spec, STATE);
  const n = 4;
  const rng = () => new Rng(11, 3);
  const batch = tf.tidy(() => tf.concat([input(), tf.reverse(input(), 2)]) as tf.Tensor4D);
  const got = forward(spec, params, batch, { training: true, random: rng() });
  assert.deepEqual(await got.data(), await forward(spec, params, batch, { training: true, random: rng() }).data(), 'a seed decides the masks');
  // The branch is linear in layer_scale: dropping it (scale 0) or rescaling it is the eval
  // model with that block's layer_scale times the image's scale.
  const scales = dropPathScales(cfg, n, rng());
  assert.equal(scales[0], undefined, 'the first block has rate 0');
  const all = scales.flatMap((s) => (s ? [...s] : []));
  assert.ok(all.includes(0) && all.some((v) => v > 1), `both drops and kept branches occur: ${all}`);
  const blocks = spec.params.filter((p) => p.name.endsWith('.layer_scale')).map((p) => p.name);
  const rows = (await got.array()) as number[][];
  for (let b = 0; b < n; b++) {
    const state: StateDict = new Map(STATE);
    blocks.forEach((name, i) => {
      const s = scales[i]?.[b];
      if (s !== undefined) state.set(name, { shape: STATE.get(name)!.shape, data: STATE.get(name)!.data.map((v) => v * s) });
    });
    const evalParams = createParams(spec, state);
    const want = tf.tidy(() => forward(spec, evalParams, tf.slice(batch, [b, 0, 0, 0], [1, S, S, 3]), { training: false }).dataSync());
    assert.ok(relErr(rows[b], want) <= 1e-4, `image ${b}: ${rows[b]} vs ${[...want]}`);
    disposeParams(evalParams);
  }
  tf.dispose([batch, got]);
  disposeParams(params);
});

test('convnext_demo trains on the CPU engine: AdamW steps with stochastic depth reduce the loss', async () => {
  await initBackend({ prefer: 'wasm' });
  const spec: ModelSpec = modelSpec('convnext_demo', { numClasses: 2, imageSize: 32 });
  const params = createParams(spec, initState(spec, 3));
  const family = familyOf(spec.config);
  const adam = new Adam(tf, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.05, noDecay: (n) => family.noDecay(n) });
  const r = new Rng(4);
  const n = 8;
  const x = tf.tensor4d(Float32Array.from({ length: n * 32 * 32 * 3 }, () => r.normal()), [n, 32, 32, 3]);
  const y = tf.oneHot(tf.tensor1d([0, 1, 0, 1, 1, 0, 1, 0], 'int32'), 2);
  const named = [...params].filter(([, v]) => v.trainable);
  const byVar = new Map(named.map(([k, v]) => [v.name, k]));
  const losses: number[] = [];
  for (let step = 0; step < 8; step++) {
    const { value, grads } = tf.variableGrads(
      () => tf.losses.softmaxCrossEntropy(y, forward(spec, params, x, { training: true, random: new Rng(9, step) })) as tf.Scalar,
      named.map(([, v]) => v),
    );
    losses.push((await value.data())[0]);
    adam.apply(params, new Map(Object.entries(grads).map(([k, g]) => [byVar.get(k)!, g])), 2e-3);
    tf.dispose([value, ...Object.values(grads)]);
  }
  const evalLoss = tf.tidy(() => tf.losses.softmaxCrossEntropy(y, forward(spec, params, x, { training: false })).dataSync()[0]);
  assert.ok(evalLoss < 0.5 * losses[0], `loss ${losses[0].toFixed(4)} -> ${evalLoss.toFixed(4)} (steps: ${losses.map((l) => l.toFixed(3)).join(' ')})`);
  const f = features(spec, params, x, { training: false });
  assert.deepEqual(f.shape, [n, family.featureSize(spec.config)]);
  tf.dispose([x, y, f]);
  disposeParams(params);
});
