import { test } from 'node:test';
import assert from 'node:assert/strict';
import { listModels, modelInfo, modelSpec, resolveModelName } from '../src/ml/models/registry.js';
import { fans, initialValues } from '../src/ml/models/init.js';
import { initState } from '../src/ml/models/state.js';
import { resampleMatrix, resamplePosEmbed } from '../src/ml/models/vit/pos-embed.js';

test('parameter counts equal torchvision / timm', () => {
  // torchvision.models.resnet50(): sum(p.numel() for p in m.parameters())
  assert.equal(modelInfo('resnet50').parameters, 25_557_032);
  assert.equal(modelInfo('resnet18').parameters, 11_689_512);
  // timm.create_model('deit_small_patch16_224')
  assert.equal(modelInfo('deit_small_patch16_224').parameters, 22_050_664);
  assert.equal(modelInfo('DeiT-S').name, 'deit_small_patch16_224');
  assert.equal(modelInfo('ResNet50').name, 'resnet50');
  // Per-task heads: 5 classes, 1 channel (first input-channel slice of the stem).
  const r = modelInfo('resnet50', { numClasses: 5, channels: 1 });
  assert.equal(r.parameters, 25_557_032 - 2048 * 995 - 995 - 64 * 2 * 49);
  assert.equal(r.backboneParameters, 25_557_032 - 2048 * 1000 - 1000 - 64 * 2 * 49);
  const d = modelInfo('deit_small_patch16_224', { numClasses: 1 });
  assert.equal(d.parameters, 22_050_664 - 384 * 999 - 999);
  // Another input size changes only the position embedding: (256/16)^2 + 1 tokens.
  assert.equal(modelInfo('deit_small_patch16_224', { imageSize: 256 }).parameters, 22_050_664 + (257 - 197) * 384);
  const names = listModels().map((m) => m.name);
  assert.deepEqual(names.sort(), ['convnext_demo', 'convnext_tiny', 'deit_small_patch16_224', 'resnet18', 'resnet50', 'resnet_demo', 'vit_demo']);
  for (const m of listModels()) assert.ok(m.parameters > 0 && m.description.length > 0);
  assert.throws(() => resolveModelName('vgg16'), /unknown model 'vgg16': known models are resnet50/);
});

test('state_dict names and shapes follow torchvision and timm', () => {
  const r = modelSpec('resnet50');
  const names = r.params.map((p) => p.name);
  assert.deepEqual(names.slice(0, 7), ['conv1.weight', 'bn1.weight', 'bn1.bias', 'bn1.running_mean', 'bn1.running_var', 'bn1.num_batches_tracked', 'layer1.0.conv1.weight']);
  assert.equal(names.length, 320); // torchvision resnet50 state_dict: 53 convs, 53 BNs x 5, fc x 2
  const byName = new Map(r.params.map((p) => [p.name, p]));
  assert.deepEqual(byName.get('layer2.0.conv2.weight')?.shape, [128, 128, 3, 3]);
  assert.deepEqual(byName.get('layer2.0.downsample.0.weight')?.shape, [512, 256, 1, 1]);
  assert.deepEqual(byName.get('layer4.2.conv3.weight')?.shape, [2048, 512, 1, 1]);
  assert.deepEqual(byName.get('fc.weight')?.shape, [1000, 2048]);
  assert.ok(!byName.has('layer1.1.downsample.0.weight'));
  assert.ok(byName.has('layer1.0.downsample.0.weight'), 'stage 1 changes width 64 -> 256');

  const v = modelSpec('deit_small_patch16_224');
  const vn = new Map(v.params.map((p) => [p.name, p]));
  assert.equal(v.params.length, 4 + 12 * 12 + 2 + 2); // timm state_dict: 152 entries
  assert.deepEqual(vn.get('pos_embed')?.shape, [1, 197, 384]);
  assert.deepEqual(vn.get('patch_embed.proj.weight')?.shape, [384, 3, 16, 16]);
  assert.deepEqual(vn.get('blocks.11.attn.qkv.weight')?.shape, [1152, 384]);
  assert.deepEqual(vn.get('blocks.0.mlp.fc1.weight')?.shape, [1536, 384]);
  assert.deepEqual(vn.get('head.weight')?.shape, [1000, 384]);
  assert.deepEqual(v.params.filter((p) => p.head).map((p) => p.name), ['head.weight', 'head.bias']);
});

function stats(a: Float32Array): { mean: number; std: number; min: number; max: number } {
  let s = 0;
  for (const v of a) s += v;
  const mean = s / a.length;
  let q = 0;
  for (const v of a) q += (v - mean) ** 2;
  return { mean, std: Math.sqrt(q / a.length), min: a.reduce((m, v) => Math.min(m, v), Infinity), max: a.reduce((m, v) => Math.max(m, v), -Infinity) };
}

test('initialisation follows torchvision (Kaiming fan_out) and timm (trunc normal 0.02), seeded', () => {
  const r = modelSpec('resnet50');
  const p = (name: string) => r.params.find((x) => x.name === name)!;
  const conv = initialValues(p('layer3.0.conv2.weight'), 7); // [256, 256, 3, 3]: fan_out 2304
  const cs = stats(conv);
  assert.ok(Math.abs(cs.mean) < 0.001);
  assert.ok(Math.abs(cs.std / Math.sqrt(2 / 2304) - 1) < 0.01, `std ${cs.std}`);
  assert.deepEqual([...initialValues(p('bn1.weight'), 7)].slice(0, 3), [1, 1, 1]);
  assert.deepEqual([...initialValues(p('bn1.running_var'), 7)].slice(0, 3), [1, 1, 1]);
  const fcw = stats(initialValues(p('fc.weight'), 7));
  const bound = 1 / Math.sqrt(2048);
  assert.ok(fcw.min >= -bound && fcw.max <= bound && fcw.max > 0.99 * bound, 'nn.Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))');
  assert.deepEqual(fans([64, 3, 7, 7]), { fanIn: 147, fanOut: 3136 });

  const zi = modelSpec('resnet50', { zeroInitResidual: true }).params;
  assert.equal(zi.find((x) => x.name === 'layer1.0.bn3.weight')?.init.kind, 'constant');
  assert.deepEqual([...initialValues(zi.find((x) => x.name === 'layer1.0.bn3.weight')!, 1)].slice(0, 2), [0, 0]);
  assert.deepEqual([...initialValues(zi.find((x) => x.name === 'layer1.0.bn2.weight')!, 1)].slice(0, 2), [1, 1]);

  const v = modelSpec('vit_demo');
  const q = stats(initialValues(v.params.find((x) => x.name === 'blocks.0.attn.qkv.weight')!, 3));
  assert.ok(Math.abs(q.std - 0.02) < 0.001 && Math.abs(q.mean) < 0.001);
  assert.ok(stats(initialValues(v.params.find((x) => x.name === 'cls_token')!, 3)).std < 1e-5, 'timm: normal_(cls_token, std=1e-6)');

  // Same seed, same bytes; another seed, other bytes; tensors are independent streams.
  const a = initState(v, 11);
  const b = initState(v, 11);
  const c = initState(v, 12);
  for (const [k, t] of a) assert.deepEqual(t.data, b.get(k)!.data);
  assert.notDeepEqual(a.get('blocks.0.mlp.fc1.weight')!.data, c.get('blocks.0.mlp.fc1.weight')!.data);
  const onlyHead = initState(v, 11, (x) => x.head);
  assert.deepEqual([...onlyHead.keys()], ['head.weight', 'head.bias']);
});

test('position embedding resampling is timm\'s bicubic with antialias (PIL weights)', () => {
  // Same size: identity.
  const id = resampleMatrix(5, 5);
  for (let i = 0; i < 5; i++) for (let j = 0; j < 5; j++) assert.ok(Math.abs(id[i * 5 + j] - (i === j ? 1 : 0)) < 1e-7);
  // [0, 1] -> 4 samples, by hand with Keys a = -0.5, taps normalised inside the grid:
  // out 0: centre 0.25, taps at distance 0.25 and 1.25: w = 0.8671875, -0.0703125 -> -0.0703125 / 0.796875
  // out 1: centre 0.75, input 0 at distance 0.25, input 1 at 0.75: 0.8671875, 0.2265625 -> 0.2265625 / 1.09375
  const up = resampleMatrix(2, 4);
  const ramp = [0, 1, 2, 3].map((i) => up[i * 2 + 1]);
  const want = [-0.0703125 / 0.796875, 0.2265625 / 1.09375, 1 - 0.2265625 / 1.09375, 1 + 0.0703125 / 0.796875];
  ramp.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-6, `${i}: ${v} vs ${want[i]}`));
  // Rows sum to 1 (constants stay constant), also when shrinking (antialiased, wider kernel).
  for (const [a, b] of [[14, 4], [4, 14], [14, 8]]) {
    const m = resampleMatrix(a, b);
    for (let i = 0; i < b; i++) {
      let s = 0;
      for (let j = 0; j < a; j++) s += m[i * a + j];
      assert.ok(Math.abs(s - 1) < 1e-6);
    }
  }
  // The CLS token passes through; the grid is resampled separably.
  const D = 2;
  const g0 = 3;
  const data = new Float32Array((1 + g0 * g0) * D).map((_, i) => i);
  const r = resamplePosEmbed(data, [1, 1 + g0 * g0, D], 5);
  assert.deepEqual(r.shape, [1, 26, D]);
  assert.deepEqual([...r.data.slice(0, D)], [0, 1]);
  assert.throws(() => resamplePosEmbed(data, [1, 9, D], 5), /not \[1, 1 \+ g\*g, dim\]/);
});
