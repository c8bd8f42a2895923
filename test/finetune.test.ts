// End to end through the CLI on a tiny synthetic APTOS: the supervised path is deterministic
// for a key, resumes after kill -9 to the very same weights, and produces the table's inputs.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { BIN, sandbox, tinyAptos, type Sandbox } from './support/toy.js';

const PIPELINE = tinyAptos('ft', { count: 60, seed: 3 }) + `  init:
    uses: init
    with: {model: resnet_demo, num_classes: 5, image_size: 24, seed: 1}
  finetune:
    uses: finetune
    inputs: {data: preprocess.records, split: split.split, weights: init.weights}
    with: {metric: kappa, epochs: 6, batch_size: 8, warmup_iters: 4, lr: 0.001, seed: 7, checkpoint_every: 3}
  evaluate:
    uses: evaluate
    inputs: {data: preprocess.records, split: split.split, weights: finetune.weights}
    with: {metric: kappa}
`;


test('finetune: same key, same weights; kill -9 mid-training resumes to the identical result', { timeout: 300_000 }, async () => {
  const a = sandbox();
  const fileA = a.write('p.yaml', PIPELINE);
  const ra = await a.cli(['run', fileA]);
  assert.equal(ra.code, 0, ra.stdout + ra.stderr);
  const ftA = await a.show(fileA, 'finetune');
  const curves = ftA.outputs['curves']!.value as { epochs: { train_loss: number }[]; best_epoch: number };
  assert.equal(curves.epochs.length, 6);
  assert.ok(curves.epochs.every((e) => Number.isFinite(e.train_loss)));
  const metrics = (await a.show(fileA, 'evaluate')).outputs['metrics']!.value as { metric: string; value: number; n: number; confusion: number[][] };
  assert.equal(metrics.metric, 'kappa');
  assert.ok(Number.isFinite(metrics.value) && metrics.value >= -1 && metrics.value <= 1);
  assert.equal(metrics.confusion.flat().reduce((s, x) => s + x, 0), metrics.n, 'every test image is in the confusion matrix');

  // A second cache: same key, byte-identical weights.
  const b = sandbox();
  const fileB = b.write('p.yaml', PIPELINE);
  assert.equal((await b.cli(['run', fileB, 'finetune'])).code, 0);
  const ftB = await b.show(fileB, 'finetune');
  assert.equal(ftB.key, ftA.key);
  assert.equal(ftB.outputs['weights']!.digest, ftA.outputs['weights']!.digest);

  // A third: kill the whole run (runner and worker) once training has checkpointed, then resume.
  const c = sandbox();
  const fileC = c.write('p.yaml', PIPELINE);
  assert.equal((await c.cli(['run', fileC, 'split', 'init'])).code, 0);
  const child = spawn(process.execPath, [BIN, 'run', fileC, 'finetune'], {
    cwd: c.dir,
    env: { ...process.env, CI: 'true', MEDPIPE_CACHE: c.cache },
    detached: true,
    stdio: 'ignore',
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const stateFile = join(c.cache, 'checkpoints', ftA.key, 'train-state.safetensors');
  const deadline = Date.now() + 120_000;
  while (!existsSync(stateFile) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.ok(existsSync(stateFile), 'training wrote a resumable checkpoint');
  process.kill(-child.pid!, 'SIGKILL');
  await exited;
  assert.equal((await c.cli(['status', fileC, 'finetune'])).stdout.match(/finetune\s+to run/)?.length, 1, 'the killed node left no result');
  const resumed = await c.cli(['run', fileC, 'finetune']);
  assert.equal(resumed.code, 0, resumed.stdout + resumed.stderr);
  const logs = readdirSync(join(c.cache, 'logs')).filter((f) => f.startsWith('finetune'));
  assert.equal(logs.length, 1);
  const ftC = await c.show(fileC, 'finetune');
  const resumedFrom = (ftC.outputs['curves']!.value as { resumed_from: unknown }).resumed_from;
  assert.notEqual(resumedFrom, null, 'the second run resumed from the checkpoint');
  assert.equal(ftC.outputs['weights']!.digest, ftA.outputs['weights']!.digest, 'resumed weights are identical to an uninterrupted run');
});

test('micro-batches accumulate to the full batch\'s update (a ViT: no BatchNorm statistics involved)', { timeout: 300_000 }, async () => {
  const vit = PIPELINE.replace('model: resnet_demo, num_classes: 5, image_size: 24', 'model: vit_demo, num_classes: 5, image_size: 24').replace('epochs: 6,', 'epochs: 1,');
  const whole = sandbox();
  const fileW = whole.write('p.yaml', vit);
  assert.equal((await whole.cli(['run', fileW, 'finetune'])).code, 0);
  const split = sandbox();
  const fileS = split.write('p.yaml', vit.replace('checkpoint_every: 3}', 'checkpoint_every: 3, micro_batch: 3}'));
  const r = await split.cli(['run', fileS, 'finetune']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const { readWeightsFile } = await import('../src/ml/weights/checkpoint.js');
  const weightsOf = async (box: Sandbox, file: string) => {
    const d = (await box.show(file, 'finetune')).outputs['weights']!.digest;
    return (await readWeightsFile(join(box.cache, 'cas', d.slice(0, 2), d.slice(2)))).tensors;
  };
  const a = await weightsOf(whole, fileW);
  const b = await weightsOf(split, fileS);
  let worst = 0;
  for (const [name, t] of a) {
    const u = b.get(name)!;
    for (let i = 0; i < t.data.length; i++) worst = Math.max(worst, Math.abs(t.data[i]! - u.data[i]!));
  }
  assert.ok(worst < 1e-4, `largest weight difference ${worst}`);
});
