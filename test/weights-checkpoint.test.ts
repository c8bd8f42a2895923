import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/engine/backend.js';
import { Rng } from '../src/data/rng.js';
import { fromFloat32, readSafetensorsFile, SafetensorsReader, toFloat32, writeSafetensorsFile, type Tensor } from '../src/ml/safetensors.js';
import { modelSpec, specFromConfig } from '../src/ml/models/registry.js';
import { createParams, disposeParams, readState } from '../src/ml/models/params.js';
import { forward } from '../src/ml/models/forward.js';
import { initState, type StateDict } from '../src/ml/models/state.js';
import type { ModelSpec, ResNetConfig, ViTConfig } from '../src/ml/models/types.js';
import { metaFor, parseMeta, readWeightsFile, writeCheckpoint } from '../src/ml/weights/checkpoint.js';
import { mapWeights, WeightMappingError } from '../src/ml/weights/map.js';
import { loadSource } from '../src/ml/weights/source.js';
import { fromNHWC, relErr, resnetRef, vitRef } from './support/torch-reference.js';

const dir = mkdtempSync(join(tmpdir(), 'medpipe-weights-'));

/** A state dict as torchvision/timm would save it: plain torch names, random values. */
function torchStyleFile(spec: ModelSpec, seed: number, opts: { dropCounters?: boolean; dtype?: 'F32' | 'F16' } = {}): Map<string, Tensor> {
  const rng = new Rng(seed);
  const out = new Map<string, Tensor>();
  for (const p of spec.params) {
    if (p.dtype === 'I64') {
      if (!opts.dropCounters) out.set(p.name, { dtype: 'I64', shape: p.shape, data: BigInt64Array.of(7n) });
      continue;
    }
    const n = p.shape.reduce((a, b) => a * b, 1);
    const v = Float32Array.from({ length: n }, () => (p.name.endsWith('running_var') ? 0.5 + rng.float() : rng.normal() * 0.3));
    out.set(p.name, fromFloat32(v, p.shape, opts.dtype ?? 'F32'));
  }
  return out;
}

const tinyResNet: ResNetConfig = { family: 'resnet', block: 'bottleneck', layers: [1, 1], widths: [2, 3], stemWidth: 4, numClasses: 6, channels: 3, imageSize: 16, zeroInitResidual: false };
const tinyViT: ViTConfig = { family: 'vit', patchSize: 4, dim: 8, depth: 1, heads: 2, mlpRatio: 4, qkvBias: true, eps: 1e-6, numClasses: 3, channels: 3, imageSize: 8 };

function images(b: number, size: number, c: number): Float32Array {
  const rng = new Rng(123);
  return Float32Array.from({ length: b * size * size * c }, () => rng.normal());
}

test('forward with weights from a torch-named safetensors file equals the independent reference', async () => {
  await initBackend({ prefer: 'wasm' });
  for (const cfg of [tinyResNet, tinyViT]) {
    const spec = specFromConfig('tiny', cfg);
    const file = join(dir, `${cfg.family}.safetensors`);
    await writeSafetensorsFile(file, torchStyleFile(spec, 4));
    const loaded = await loadSource(spec, `file:${cfg.family}.safetensors`, { seed: 0, baseDir: dir });
    assert.deepEqual(loaded.reinitialised, []);
    const params = createParams(spec, loaded.state);
    const x = images(2, cfg.imageSize, 3);
    const got = await forward(spec, params, tf.tensor4d(x, [2, cfg.imageSize, cfg.imageSize, 3]), { training: false }).data();
    // The reference reads the file itself, with the safetensors reader only.
    const raw = await readSafetensorsFile(file);
    const ws = { get: (n: string) => { const t = raw.tensors.get(n); return t && { shape: t.shape, data: toFloat32(t) }; } };
    const xs = fromNHWC(x, 2, cfg.imageSize, cfg.imageSize, 3);
    const want = cfg.family === 'resnet'
      ? resnetRef(ws, { block: 'bottleneck', blocks: [['layer1.0', 1, true], ['layer2.0', 2, true]] }, xs, false)
      : xs.map((img) => vitRef(ws, { patch: 4, dim: 8, depth: 1, heads: 2, eps: 1e-6 }, img));
    const err = relErr(got, want.flatMap((r) => [...r]));
    assert.ok(err <= 1e-4, `${cfg.family}: rel err ${err}`);
    disposeParams(params);
  }
});

test('save -> load round-trips bytes and forward output; counters stay int64', async () => {
  await initBackend({ prefer: 'wasm' });
  const spec = specFromConfig('tiny', tinyResNet);
  const params = createParams(spec, initState(spec, 9));
  const x = tf.tensor4d(images(2, 16, 3), [2, 16, 16, 3]);
  tf.tidy(() => forward(spec, params, x, { training: true })); // moves running stats, counters -> 1
  const before = await forward(spec, params, x, { training: false }).data();
  const path = join(dir, 'ckpt.safetensors');
  await writeCheckpoint(path, spec, await readState(spec, params), metaFor(spec, 'random:9', { note: 'test' }));

  const reader = await SafetensorsReader.open(path);
  assert.equal(reader.info('bn1.num_batches_tracked').dtype, 'I64');
  assert.deepEqual(reader.info('conv1.weight').shape, [4, 3, 7, 7], 'PyTorch OIHW on disk');
  assert.deepEqual(reader.info('fc.weight').shape, [6, 12], 'PyTorch [out, in] on disk');
  assert.deepEqual(parseMeta(reader.metadata), { model: 'tiny', num_classes: 6, channels: 3, image_size: 16, source: 'random:9', extra: { note: 'test' } });
  await reader.close();

  const file = await readWeightsFile(path);
  assert.equal(file.tensors.get('layer2.0.bn3.num_batches_tracked')!.data[0], 1);
  const mapped = mapWeights(spec, file, 0);
  assert.deepEqual(mapped.notes, []);
  const again = createParams(spec, mapped.state);
  const after = await forward(spec, again, x, { training: false }).data();
  assert.deepEqual(after, before, 'identical logits after save and load');
  // A second save of the loaded weights gives the same bytes.
  const path2 = join(dir, 'ckpt2.safetensors');
  await writeCheckpoint(path2, spec, await readState(spec, again), metaFor(spec, 'random:9', { note: 'test' }));
  const [a, b] = await Promise.all([path, path2].map((p) => import('node:fs/promises').then((fs) => fs.readFile(p))));
  assert.ok(a.equals(b));
  disposeParams(params);
  disposeParams(again);
});

test('a torchvision-style file into a 1-channel, 2-class model: stem sliced, head fresh, F16 decoded', async () => {
  const src = specFromConfig('tiny', tinyResNet);
  const file = join(dir, 'tv.safetensors');
  // torchvision IMAGENET1K_V1 predates num_batches_tracked; half precision exercises decoding.
  const tensors = torchStyleFile(src, 5, { dropCounters: true, dtype: 'F16' });
  await writeSafetensorsFile(file, tensors);
  const task = specFromConfig('tiny', { ...tinyResNet, channels: 1, numClasses: 2 });
  const m = mapWeights(task, await readWeightsFile(file), 42);
  const stem = toFloat32(tensors.get('conv1.weight')!);
  const got = m.state.get('conv1.weight')!;
  assert.deepEqual(got.shape, [4, 1, 7, 7]);
  for (let o = 0; o < 4; o++) assert.deepEqual(got.data.subarray(o * 49, (o + 1) * 49), stem.subarray(o * 147, o * 147 + 49), 'conv1.weight[:, :1]');
  assert.deepEqual(m.skipped, ['fc.weight', 'fc.bias']);
  assert.deepEqual(m.reinitialised, ['fc.weight', 'fc.bias']);
  assert.deepEqual(m.state.get('fc.weight')!.data, initState(task, 42).get('fc.weight')!.data, 'fresh head from the seed');
  assert.deepEqual(m.state.get('layer1.0.conv2.weight')!.data, toFloat32(tensors.get('layer1.0.conv2.weight')!));
  assert.equal(m.state.get('bn1.num_batches_tracked')!.data[0], 0);
  assert.equal(m.notes.length, 3);
  assert.match(m.notes.join('\n'), /conv1.weight: took the first 1 of the file's 3 input channels/);
  assert.match(m.notes.join('\n'), /head skipped: the file's fc.weight is \[6, 12\], this task's is \[2, 12\]/);
  assert.match(m.notes.join('\n'), /num_batches_tracked counters absent/);
});

test('every unmatched, missing or misshapen tensor is listed in one error naming the file', async () => {
  const spec = specFromConfig('tiny', tinyResNet);
  const tensors = torchStyleFile(spec, 1);
  tensors.delete('layer1.0.conv2.weight');
  tensors.delete('bn1.bias');
  tensors.set('layer9.0.conv1.weight', fromFloat32(new Float32Array(4), [4]));
  tensors.set('layer2.0.conv1.weight', fromFloat32(new Float32Array(3 * 13), [3, 13, 1, 1]));
  const file = join(dir, 'bad.safetensors');
  await writeSafetensorsFile(file, tensors, { format: 'medpipe-checkpoint/1', model: 'resnet_demo', num_classes: '6', channels: '3', image_size: '16', source: 'x' });
  await assert.rejects(loadSource(spec, 'file:bad.safetensors', { seed: 0, baseDir: dir }), (e: unknown) => {
    assert.ok(e instanceof WeightMappingError);
    assert.deepEqual(e.missing, ['bn1.bias', 'layer1.0.conv2.weight']);
    assert.deepEqual(e.unexpected, ['layer9.0.conv1.weight']);
    assert.deepEqual(e.mismatched, ['layer2.0.conv1.weight: file [3, 13, 1, 1], model [3, 8, 1, 1]']);
    assert.match(e.message, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: weights do not fit model tiny \\(the file says it holds resnet_demo\\)`));
    return true;
  });
  await assert.rejects(loadSource(spec, 'file:absent.safetensors', { seed: 0, baseDir: dir }), /cannot read weights .*absent.safetensors/);
  await assert.rejects(loadSource(spec, 'file:bad.safetensors', { seed: 0, baseDir: dir, sha256: '00'.repeat(32) }), /has sha256 [0-9a-f]{64}, but 0{64} was pinned/);
  assert.throws(() => mapWeights(spec, { path: 'x', metadata: {}, tensors: new Map() }, 0), /missing from the file \(\d+\)/);
});

test('full DeiT-S (timm names, 1000 classes, 224 px) into a 1-channel binary model at 112 px', async () => {
  const imagenet = modelSpec('deit_small_patch16_224');
  const file = join(dir, 'deit.safetensors');
  const state: StateDict = initState(imagenet, 3);
  // Prefixed as a DataParallel-wrapped model would save it.
  await writeSafetensorsFile(file, new Map([...state].map(([k, t]) => [`module.${k}`, fromFloat32(t.data, t.shape)])));
  const task = modelSpec('DeiT-S', { numClasses: 1, channels: 1, imageSize: 112 });
  const m = await loadSource(task, `file:${file}`, { seed: 1, baseDir: '/nonexistent' });
  assert.deepEqual(m.state.get('pos_embed')!.shape, [1, 50, 384]);
  assert.deepEqual(m.state.get('patch_embed.proj.weight')!.shape, [384, 1, 16, 16]);
  assert.deepEqual(m.state.get('head.weight')!.shape, [1, 384]);
  assert.deepEqual(m.state.get('pos_embed')!.data.subarray(0, 384), state.get('pos_embed')!.data.subarray(0, 384), 'CLS position untouched');
  assert.deepEqual(m.state.get('blocks.11.mlp.fc2.weight')!.data, state.get('blocks.11.mlp.fc2.weight')!.data);
  assert.match(m.notes.join('\n'), /stripped the 'module.' prefix/);
  assert.match(m.notes.join('\n'), /pos_embed: resampled from a 14x14 to a 7x7 patch grid/);
  assert.equal(m.file?.path, file);
  assert.equal(m.file?.sha256.length, 64);
});

test('a backbone-only file (no head, e.g. DINO) gets a fresh head', async () => {
  const spec = specFromConfig('tiny', tinyViT);
  const tensors = torchStyleFile(spec, 2);
  tensors.delete('head.weight');
  tensors.delete('head.bias');
  const file = join(dir, 'backbone.safetensors');
  await writeSafetensorsFile(file, tensors);
  const m = mapWeights(spec, await readWeightsFile(file), 5);
  assert.deepEqual(m.reinitialised, ['head.weight', 'head.bias']);
  assert.deepEqual(m.skipped, []);
  assert.match(m.notes.join('\n'), /no classifier head: head initialised fresh/);
});
