// What the engine settings do to a result's key, checked where no bf16 CPU is needed (the
// training test of bf16 skips on CPUs without AVX512_BF16). precision changes the arithmetic,
// so it is keyed: a bf16 result never answers for an fp32 node, nor the reverse. The backend
// is not keyed: fp32 on cpu, wasm and webgpu agree to tolerance (losses within ~1e-6 in the
// engine tests), so collaborators on different machines share one result, as a DVC stage does
// not hash the device; and bf16 has one arithmetic (bf16 operands, fp32 sums) in its two native
// implementations (AMX tiles, AVX512_BF16's vdpbf16ps), which agree to fp32 summation order, so
// a bf16 key names that arithmetic whichever backend a node says.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openPipeline } from '../src/cli/session.js';
import { keyMaterial, nodeKey } from '../src/keys.js';
import { REPO, sandbox, tinyAptos } from './support/toy.js';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const variants: Record<string, string> = {
  plain: '',
  bf16: ', precision: bf16',
  fp32_explicit: ', precision: fp32',
  on_cpu: ', backend: cpu',
  on_webgpu: ', backend: webgpu',
  bf16_on_cpu: ', precision: bf16, backend: cpu',
  bf16_on_wasm: ', precision: bf16, backend: wasm',
};

test('precision is in a finetune node\'s key and the backend is not: bf16 and fp32 results never answer for each other', async () => {
  const box = sandbox();
  let yaml = tinyAptos('keys', { count: 40, seed: 5 }) + '  init:\n    uses: init\n    with: {model: resnet_demo, num_classes: 5, image_size: 24, seed: 1}\n';
  for (const [name, extra] of Object.entries(variants)) {
    yaml += `  ${name}:\n    uses: finetune\n    inputs: {data: preprocess.records, split: split.split, weights: init.weights}\n    with: {metric: kappa, epochs: 2, batch_size: 8, lr: 0.001, seed: 7${extra}}\n`;
  }
  const file = box.write('keys.yaml', yaml);
  const { pipeline, registry } = await openPipeline(file, [], { builtinKinds: [pathToFileURL(join(REPO, 'dist', 'stages', 'index.js')).href] });
  const key = (stage: string): string => {
    const node = pipeline.nodes.get(stage)!;
    const kind = registry.get(node.kind)!.kind;
    // The same upstream bytes for every variant: only the node's own settings differ.
    return nodeKey(keyMaterial(node, kind, (up, output) => `${up}/${output}`.padEnd(64, '0'), undefined));
  };
  assert.notEqual(key('bf16'), key('plain'), 'bf16 never answers an fp32 node');
  assert.equal(key('on_cpu'), key('plain'), 'fp32 results are shared across backends');
  assert.equal(key('on_webgpu'), key('plain'));
  assert.equal(key('bf16_on_cpu'), key('bf16'));
  assert.equal(key('bf16_on_wasm'), key('bf16'));
  // Saying the default out loud is the same result as leaving it unset, and keeps the key that
  // results made before precision existed have.
  assert.equal(key('fp32_explicit'), key('plain'), 'precision: fp32 written out keys as leaving it unset');
  const fp32 = pipeline.nodes.get('fp32_explicit')!;
  assert.equal(fp32.params['precision'], 'fp32');
  assert.ok(!('precision' in keyMaterial(fp32, registry.get(fp32.kind)!.kind, () => '0'.repeat(64), undefined).params), 'keyed as the nodes made before precision existed');
});

test('a dino node that writes teacher_bn_stats: crops out keys as one that leaves it unset; train is another result', async () => {
  const box = sandbox();
  let yaml = tinyAptos('keysdino', { count: 40, seed: 5 }) + '  init:\n    uses: init\n    with: {model: resnet_demo, num_classes: 5, image_size: 24, seed: 1}\n';
  for (const [name, extra] of Object.entries({ plain: '', crops: ', teacher_bn_stats: crops', train: ', teacher_bn_stats: train' })) {
    yaml += `  ${name}:\n    uses: dino\n    inputs: {data: preprocess.records, split: split.split, weights: init.weights}\n    with: {epochs: 2, batch_size: 8, lr: 0.001, seed: 7${extra}}\n`;
  }
  const file = box.write('keys.yaml', yaml);
  const { pipeline, registry } = await openPipeline(file, [], { builtinKinds: [pathToFileURL(join(REPO, 'dist', 'stages', 'index.js')).href] });
  const key = (stage: string): string => {
    const node = pipeline.nodes.get(stage)!;
    return nodeKey(keyMaterial(node, registry.get(node.kind)!.kind, (up, output) => `${up}/${output}`.padEnd(64, '0'), undefined));
  };
  assert.equal(key('crops'), key('plain'), 'the default written out is the same result');
  assert.notEqual(key('train'), key('plain'));
});
