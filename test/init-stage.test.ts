import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import init, { type InitParams } from '../stages/init.js';
import { fakeContext, fakeFingerprintContext, type FakeInputs } from './support/fake-stage-context.js';
import { sandbox } from './support/toy.js';
import { SafetensorsReader, fromFloat32, writeSafetensorsFile, type Tensor } from '../src/ml/safetensors.js';
import { modelSpec } from '../src/ml/models/registry.js';
import { initState } from '../src/ml/models/state.js';
import { parseMeta } from '../src/ml/weights/checkpoint.js';

const base = mkdtempSync(join(tmpdir(), 'medpipe-init-'));
const DEFAULTS = { num_classes: 1000, channels: 3, source: 'random', seed: 0, zero_init_residual: false };

/** Runs the stage and keeps a copy of its weights output (the fake workdir is removed). */
async function runInit(params: Partial<InitParams> & { model: string }, inputs: FakeInputs = {}) {
  const run = await fakeContext<InitParams>({ ...DEFAULTS, ...params }, base, inputs);
  try {
    await init.run(run.ctx);
    const file = run.files.get('weights');
    assert.ok(file);
    const bytes = readFileSync(file);
    const kept = join(base, `out-${Math.random().toString(36).slice(2)}.safetensors`);
    await import('node:fs/promises').then((fs) => fs.writeFile(kept, bytes));
    return { ...run, bytes, file: kept, info: run.json.get('info') as Record<string, unknown> };
  } finally {
    rmSync(run.ctx.workdir, { recursive: true, force: true });
  }
}

test('random init: a seeded checkpoint with metadata, the same bytes for the same seed', async () => {
  const a = await runInit({ model: 'resnet_demo', num_classes: 3, image_size: 32, seed: 1 });
  const b = await runInit({ model: 'ResNet-demo', num_classes: 3, image_size: 32, seed: 1 });
  const c = await runInit({ model: 'resnet_demo', num_classes: 3, image_size: 32, seed: 2 });
  assert.ok(a.bytes.equals(b.bytes));
  assert.ok(!a.bytes.equals(c.bytes));
  const r = await SafetensorsReader.open(a.file);
  assert.deepEqual(parseMeta(r.metadata), { model: 'resnet_demo', num_classes: 3, channels: 3, image_size: 32, source: 'random(seed=1)', extra: { seed: '1' } });
  assert.deepEqual(r.info('fc.weight').shape, [3, 128]);
  await r.close();
  assert.equal(a.info.parameters, 16 * 3 * 49 + 2 * 16 + (16 * 16 * 9 * 2 + 4 * 16) + (32 * 16 * 9 + 32 * 32 * 9 + 32 * 16 + 6 * 32) + (64 * 32 * 9 + 64 * 64 * 9 + 64 * 32 + 6 * 64) + (128 * 64 * 9 + 128 * 128 * 9 + 128 * 64 + 6 * 128) + 128 * 3 + 3);
  assert.equal(a.info.reinitialised, 'all');
  assert.deepEqual(a.info.check, { backend: 'wasm', logits_shape: [1, 3], finite: true });
  assert.equal((a.provenance.engine as Record<string, unknown>).backend, 'wasm');
});

test('file: torchvision-named weights into a 1-channel binary model; fingerprint is the file digest', async () => {
  const imagenet = modelSpec('resnet_demo');
  const tensors = new Map<string, Tensor>();
  for (const [k, t] of initState(imagenet, 7)) {
    if (k.endsWith('num_batches_tracked')) continue; // as torchvision's V1 file
    tensors.set(k, fromFloat32(t.data, t.shape));
  }
  await writeSafetensorsFile(join(base, 'tv.safetensors'), tensors);
  const params = { ...DEFAULTS, model: 'resnet_demo', num_classes: 1, channels: 1, image_size: 32, source: 'file:tv.safetensors' };
  const fp = fakeFingerprintContext(base);
  const key = (await init.fingerprint!(params, fp)) as { file: string; sha256: string };
  assert.equal(key.file, 'tv.safetensors', 'relative, as written');
  assert.match(key.sha256, /^[0-9a-f]{64}$/);
  const out = await runInit(params);
  assert.deepEqual(out.info.skipped, ['fc.weight', 'fc.bias']);
  assert.deepEqual(out.info.reinitialised, ['fc.weight', 'fc.bias']);
  assert.equal(out.info.source_sha256, key.sha256);
  assert.match((out.info.notes as string[]).join('\n'), /conv1.weight: took the first 1 of the file's 3 input channels/);
  assert.deepEqual(await init.check!(params, fp), []);
  assert.match((await init.check!({ ...params, source: 'file:nope.safetensors' }, fp))[0], /weights file nope.safetensors does not exist/);
  assert.equal(await init.fingerprint!({ ...params, source: 'random' }, fp), null);
  assert.deepEqual(await init.fingerprint!({ ...params, source: 'hf:a/b/c.safetensors', sha256: 'AB'.repeat(32) }, fp), { hf: 'a/b/c.safetensors', sha256: 'ab'.repeat(32) });
});

test('hf: downloads through $HF_ENDPOINT into the hub cache ($HF_HUB_CACHE), recording the commit; node: takes another stage\'s weights', async () => {
  const vit = modelSpec('vit_demo', { imageSize: 32 });
  const path = join(base, 'vit.safetensors');
  await writeSafetensorsFile(path, new Map([...initState(vit, 3)].map(([k, t]) => [k, fromFloat32(t.data, t.shape)])));
  const body = readFileSync(path);
  let hits = 0;
  const server = createServer((req, res) => {
    hits++;
    if (req.url === '/me/vit-demo/resolve/main/model.safetensors') res.writeHead(200, { 'content-length': body.length, 'x-repo-commit': 'a'.repeat(40) }).end(body);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  process.env.HF_ENDPOINT = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  process.env.HF_HUB_CACHE = join(base, 'hub');
  try {
    const params = { model: 'vit_demo', num_classes: 5, image_size: 48, source: 'hf:me/vit-demo/model.safetensors' };
    const a = await runInit(params);
    const b = await runInit(params);
    assert.equal(hits, 1, 'downloaded once');
    assert.equal(a.info.source_commit, 'a'.repeat(40));
    assert.ok(a.bytes.equals(b.bytes));
    assert.match((a.info.notes as string[]).join('\n'), /pos_embed: resampled from a 4x4 to a 6x6 patch grid/);
    assert.deepEqual(a.info.skipped, ['head.weight', 'head.bias']);
    await assert.rejects(runInit({ ...params, source: 'hf:me/other/model.safetensors' }), /could not download http:\/\/127.0.0.1:\d+\/me\/other\/resolve\/main\/model.safetensors: HTTP 404.*put the file at .*hub\/models--me--other\/snapshots\/<commit>\/model.safetensors/);

    // node: the checkpoint above as another stage's output, into a binary task.
    const n = await runInit({ model: 'vit_demo', num_classes: 1, image_size: 48, source: 'node' }, { files: { weights: a.file } });
    const r = await SafetensorsReader.open(n.file);
    assert.equal(parseMeta(r.metadata)?.source, 'node(hf:me/vit-demo/model.safetensors)');
    await r.close();
    assert.deepEqual(n.info.reinitialised, ['head.weight', 'head.bias']);
    await assert.rejects(runInit({ model: 'vit_demo', source: 'node' }), /source 'node' needs the weights input/);
    await assert.rejects(runInit({ model: 'vit_demo', image_size: 48 }, { files: { weights: a.file } }), /a weights input is connected but source is 'random'/);
  } finally {
    delete process.env.HF_ENDPOINT;
    delete process.env.HF_HUB_CACHE;
    server.close();
  }
});

test('end to end through the CLI: init -> init(node), then all cached', { timeout: 120_000 }, async () => {
  const box = sandbox();
  const file = box.write('p.yaml', `
name: init-demo
stages:
  scratch:
    uses: init
    with: {model: vit_demo, num_classes: 4, image_size: 32, seed: 3}
  task:
    uses: init
    inputs:
      weights: scratch.weights
    with: {model: vit_demo, num_classes: 1, channels: 1, image_size: 32, source: node}
`);
  const first = await box.cli(['run', file]);
  assert.equal(first.code, 0, first.stdout + first.stderr);
  assert.match(first.stdout, /2 ran/);
  const second = await box.cli(['run', file]);
  assert.equal(second.code, 0, second.stdout + second.stderr);
  assert.match(second.stdout, /2 cached/);
  const bad = box.write('bad.yaml', `
name: bad
stages:
  x:
    uses: init
    with: {model: vgg16}
`);
  const r = await box.cli(['run', bad]);
  assert.notEqual(r.code, 0);
  assert.match(r.stdout + r.stderr, /model/);
});
