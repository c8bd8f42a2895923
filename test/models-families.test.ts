// The contract every model family keeps (src/ml/models/family.ts and net.ts), checked for
// each registered family on its smallest registered model, so that a new family's module is
// held to it without a test of its own for these: names, head and stem, feature size, the
// no-decay rule, Grad-CAM and attention capabilities matching the net, DINO crop sizes, and a
// 3-channel ImageNet-style file loading into a 1-channel task (stem sliced, head fresh).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/engine/backend.js';
import { Rng } from '../src/data/rng.js';
import { cropSizes } from '../src/ml/dino/augment.js';
import { allFamilies, familyOf } from '../src/ml/models/families.js';
import { classifyActivations, clsAttention, convActivations, features, forward } from '../src/ml/models/forward.js';
import { createParams, disposeParams } from '../src/ml/models/params.js';
import { listModels, modelInfo, modelSpec } from '../src/ml/models/registry.js';
import { initState } from '../src/ml/models/state.js';
import { mapWeights } from '../src/ml/weights/map.js';
import { relErr } from './support/torch-reference.js';

const smallest = (family: string) => listModels().filter((m) => m.family === family).sort((a, b) => a.parameters - b.parameters)[0]!;

test('every family registers models, and each model lists its parameters once, head and stem included', () => {
  assert.deepEqual(allFamilies().map((f) => f.family).sort(), ['convnext', 'resnet', 'vit']);
  for (const f of allFamilies()) {
    assert.ok(Object.keys(f.models).length > 0, f.family);
    for (const name of Object.keys(f.models)) {
      const spec = modelSpec(name, { numClasses: 7, channels: 1 });
      const names = spec.params.map((p) => p.name);
      assert.equal(new Set(names).size, names.length, `${name}: duplicate names`);
      assert.ok(spec.params.some((p) => p.name === `${f.classifier}.weight` && p.head && p.shape[0] === 7), `${name}: classifier ${f.classifier} sized for the task`);
      assert.ok(spec.params.every((p) => p.head === p.name.startsWith(`${f.classifier}.`)));
      const stem = spec.params.find((p) => p.name === f.stem);
      assert.ok(stem && stem.layout === 'conv' && stem.shape[1] === 1, `${name}: stem ${f.stem} takes the task's channel`);
      for (const p of spec.params) {
        // Conv and linear weights decay; biases and one-dimensional tensors never do.
        if (p.layout !== 'plain') assert.equal(f.noDecay(p.name), false, `${name}: ${p.name} decays`);
        if (p.name.endsWith('.bias') || p.shape.length === 1) assert.equal(f.noDecay(p.name), true, `${name}: ${p.name} is not decayed`);
      }
      const c = spec.config;
      const crops = cropSizes(c);
      assert.equal(crops.localSize % f.sizeMultiple(c), 0, `${name}: DINO's local crop fits the family's size multiple`);
      assert.ok(crops.localSize >= 8);
    }
  }
});

test('each family\'s net: features of featureSize, logits = classifier(features), Grad-CAM and attention where declared', async () => {
  await initBackend({ prefer: 'wasm' });
  for (const f of allFamilies()) {
    const info = smallest(f.family);
    const size = Math.max(32, f.sizeMultiple(modelSpec(info.name).config));
    const spec = modelSpec(info.name, { numClasses: 3, imageSize: size });
    const params = createParams(spec, initState(spec, 2));
    const r = new Rng(8);
    const x = tf.tensor4d(Float32Array.from({ length: 2 * size * size * 3 }, () => r.normal()), [2, size, size, 3]);
    const feats = features(spec, params, x, { training: false });
    assert.deepEqual(feats.shape, [2, f.featureSize(spec.config)], info.name);
    const logits = forward(spec, params, x, { training: false });
    assert.deepEqual(logits.shape, [2, 3]);
    if (f.gradCamLayer) {
      const acts = convActivations(spec, params, x, { training: false });
      const via = classifyActivations(spec, params, acts);
      assert.ok(relErr(await via.data(), await logits.data()) <= 1e-5, `${info.name}: logits through the Grad-CAM layer`);
      tf.dispose([acts, via]);
    } else {
      assert.throws(() => convActivations(spec, params, x, { training: false }), /Grad-CAM needs a convolutional model/);
    }
    const layout = f.attention?.(spec.config);
    if (layout) {
      const a = clsAttention(spec, params, x);
      assert.deepEqual(a.shape, [2, layout.heads, (size / layout.patch) ** 2 + 1], info.name);
      a.dispose();
    } else {
      assert.throws(() => clsAttention(spec, params, x), /attention maps need a transformer/);
    }
    tf.dispose([x, feats, logits]);
    disposeParams(params);
  }
});

test('each family imports a 3-channel 1000-class file into a 1-channel 2-class task: stem sliced, head fresh', () => {
  for (const f of allFamilies()) {
    const info = smallest(f.family);
    const src = modelSpec(info.name);
    const file = { path: `${info.name}.safetensors`, metadata: {}, tensors: initState(src, 4) };
    const task = modelSpec(info.name, { numClasses: 2, channels: 1 });
    const m = mapWeights(task, file, 9);
    const stem = m.state.get(f.stem)!;
    const [O, , kh, kw] = stem.shape;
    const full = file.tensors.get(f.stem)!.data;
    for (let o = 0; o < O; o++) assert.deepEqual(stem.data.subarray(o * kh * kw, (o + 1) * kh * kw), full.subarray(o * 3 * kh * kw, o * 3 * kh * kw + kh * kw), `${info.name}: ${f.stem}[:, :1]`);
    assert.deepEqual(m.reinitialised, [`${f.classifier}.weight`, `${f.classifier}.bias`]);
    assert.equal(modelInfo(info.name, { numClasses: 2, channels: 1 }).parameters, task.params.filter((p) => p.trainable).reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0));
    assert.equal(familyOf(task.config), f);
  }
});
