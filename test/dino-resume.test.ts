// End to end through the CLI on a tiny synthetic APTOS: init -> dino -> init(source: node).
// The teacher backbone is a checkpoint that init (hence finetune's loader) accepts, the loss
// curve is stored and drawn, and a run killed with -9 resumes to the identical weights.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { BIN, sandbox, tinyAptos } from './support/toy.js';

const PIPELINE = tinyAptos('dn', { count: 60, seed: 3 }) + `  init:
    uses: init
    with: {model: resnet_demo, num_classes: 5, image_size: 32, seed: 1}
  dino:
    uses: dino
    inputs: {data: preprocess.records, split: split.split, weights: init.weights}
    with: {epochs: 4, batch_size: 8, local_crops: 2, out_dim: 64, hidden_dim: 64, bottleneck_dim: 32, lr: 0.01, warmup_epochs: 1, warmup_teacher_temp_epochs: 2, seed: 5, checkpoint_every: 2}
  reinit:
    uses: init
    inputs: {weights: dino.weights}
    with: {model: resnet_demo, num_classes: 5, image_size: 32, source: node, seed: 2}
`;


interface Curves {
  steps_per_epoch: number;
  resumed_from: unknown;
  epochs: { epoch: number; loss: number; teacher_temp: number; momentum: number; images_per_s: number }[];
  step_loss: number[];
}

test('dino: teacher backbone loads in init; curves stored and drawn; kill -9 mid-training resumes to identical weights', { timeout: 300_000 }, async () => {
  const a = sandbox();
  const fileA = a.write('p.yaml', PIPELINE);
  const ra = await a.cli(['run', fileA]);
  assert.equal(ra.code, 0, ra.stdout + ra.stderr);
  const dA = await a.show(fileA, 'dino');
  const curves = dA.outputs['curves']!.value as Curves;
  assert.equal(curves.epochs.length, 4);
  assert.equal(curves.step_loss.length, 4 * curves.steps_per_epoch);
  assert.ok(curves.step_loss.every(Number.isFinite));
  assert.equal(curves.epochs[0]!.teacher_temp, 0.04);
  assert.equal(curves.epochs[3]!.teacher_temp, 0.07);
  assert.ok(curves.epochs.every((e) => e.momentum >= 0.99 && e.momentum <= 1 && e.images_per_s > 0));
  assert.equal(curves.resumed_from, null);
  assert.ok(dA.outputs['curves_svg']!.digest, 'the loss curve is drawn');
  const info = (await a.show(fileA, 'reinit')).outputs['info']!.value as { notes: string[]; reinitialised: string[]; check: { finite: boolean } };
  assert.ok(info.check.finite);
  assert.deepEqual(info.reinitialised, ['fc.weight', 'fc.bias'], 'only the classifier head is fresh');
  assert.ok(info.notes.some((n) => /no classifier head/.test(n)), info.notes.join('; '));

  // Kill the whole run (runner and worker) once training has checkpointed, then resume.
  const c = sandbox();
  const fileC = c.write('p.yaml', PIPELINE);
  assert.equal((await c.cli(['run', fileC, 'split', 'init'])).code, 0);
  const child = spawn(process.execPath, [BIN, 'run', fileC, 'dino'], {
    cwd: c.dir,
    env: { ...process.env, CI: 'true', MEDPIPE_CACHE: c.cache },
    detached: true,
    stdio: 'ignore',
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const stateFile = join(c.cache, 'checkpoints', dA.key, 'dino-state.safetensors');
  const deadline = Date.now() + 120_000;
  while (!existsSync(stateFile) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.ok(existsSync(stateFile), 'training wrote a resumable checkpoint');
  process.kill(-child.pid!, 'SIGKILL');
  await exited;
  assert.equal((await c.cli(['status', fileC, 'dino'])).stdout.match(/dino\s+to run/)?.length, 1, 'the killed node left no result');
  const resumed = await c.cli(['run', fileC, 'dino']);
  assert.equal(resumed.code, 0, resumed.stdout + resumed.stderr);
  const dC = await c.show(fileC, 'dino');
  assert.equal(dC.key, dA.key);
  assert.notEqual((dC.outputs['curves']!.value as Curves).resumed_from, null, 'the second run resumed from the checkpoint');
  assert.equal(dC.outputs['weights']!.digest, dA.outputs['weights']!.digest, 'resumed weights are identical to an uninterrupted run');
});

test('dino: a warm-up longer than the training is refused, naming both fields, and the nodes before it stay cached', { timeout: 120_000 }, async () => {
  const s = sandbox();
  const file = s.write('p.yaml', PIPELINE.replace('epochs: 4, batch_size: 8', 'epochs: 1, batch_size: 8').replace('warmup_epochs: 1,', 'warmup_epochs: 2,'));
  const r = await s.cli(['run', file, 'dino']);
  assert.notEqual(r.code, 0);
  assert.match(r.stdout + r.stderr, /warmup_epochs \(2\) is more than epochs \(1\)/);
  // The teacher temperature's warm-up too (the pipeline's is 2 epochs).
  const file2 = s.write('p2.yaml', PIPELINE.replace('epochs: 4, batch_size: 8', 'epochs: 1, batch_size: 8'));
  const r2 = await s.cli(['run', file2, 'dino']);
  assert.notEqual(r2.code, 0);
  assert.match(r2.stdout + r2.stderr, /warmup_teacher_temp_epochs \(2\) is more than epochs \(1\)/);
  const again = await s.cli(['run', file, 'init', '--plain']);
  assert.equal(again.code, 0);
  assert.doesNotMatch(again.stdout, /✔ \S+ ran/, 'init and the data nodes were kept');
});
