// Checkpoints mirrored to the remote cache: a run killed on one machine resumes on another.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { CheckpointMirror } from '../src/remote/checkpoint-mirror.js';
import { FileBackend } from '../src/remote/file-backend.js';
import { openRemote } from '../src/remote/open.js';
import { ObjectRemote } from '../src/remote/remote-store.js';
import { Store } from '../src/store/store.js';
import { sandbox } from './support/toy.js';

const RESUMABLE = `
name: ckpt
plugins: [$TOY]
stages:
  fit:
    uses: resumable
    with: {steps: 8, crash_at: 4}
`;

const KEY = 'a'.repeat(64);

test("machine B resumes from the checkpoint machine A's killed run left on the remote", async () => {
  const root = mkdtempSync(join(tmpdir(), 'medpipe-shared-'));
  const remote = pathToFileURL(root).href;
  const [a, b] = [sandbox(), sandbox()];

  const crashed = await a.cli(['run', a.write('p.yaml', RESUMABLE), '--remote', remote]);
  assert.notEqual(crashed.code, 0, 'the worker exits mid-way on a first attempt');
  const keys = readdirSync(join(root, 'ckpt'));
  assert.equal(keys.length, 1, 'the checkpoint is on the remote under the node key');
  assert.ok(existsSync(join(root, 'ckpt', keys[0]!, 'state')));

  const resumed = await b.cli(['run', b.write('p.yaml', RESUMABLE), '--remote', remote]);
  assert.equal(resumed.code, 0, resumed.stdout + resumed.stderr);
  const shown = await b.cli(['show', b.write('p.yaml', RESUMABLE), 'fit', '--json']);
  const manifest = JSON.parse(shown.stdout) as { key: string; outputs: { out: { value: { steps: number; resumedFrom: number } } } };
  assert.equal(manifest.key, keys[0]);
  assert.equal(manifest.outputs.out.value.steps, 8);
  assert.ok(manifest.outputs.out.value.resumedFrom > 0, `resumed from ${manifest.outputs.out.value.resumedFrom}`);
  // Once the result is committed, the run's state is no longer kept on the remote.
  assert.ok(!existsSync(join(root, 'ckpt', keys[0]!, 'state')));
  assert.match(readFileSync(join(b.cache, 'logs', `fit.${manifest.key.slice(0, 12)}.log`), 'utf8'), /resuming from checkpoint state on file:/);
});

test('an unreachable remote makes a checkpoint save a warning, never a failure', async () => {
  const lines: string[] = [];
  const mirror = new CheckpointMirror(openRemote('http://127.0.0.1:1/cache'), KEY, (text) => lines.push(text));
  for (let step = 0; step < 5; step++) await mirror.save('state', new Uint8Array([step]));
  await mirror.settle();
  assert.equal(await mirror.restore('state'), undefined);
  await mirror.drop();
  await mirror.close();
  assert.equal(lines.filter((l) => /could not upload checkpoint state/.test(l)).length, 1, lines.join('\n'));
  assert.ok(lines.every((l) => l.startsWith('warning: ')), lines.join('\n'));
});

test('with a team key a checkpoint signed with another key, or for another node, is ignored', async () => {
  const remote = new ObjectRemote(new FileBackend(mkdtempSync(join(tmpdir(), 'medpipe-shared-'))));
  const lines: string[] = [];
  const log = (text: string) => lines.push(text);
  const writer = new CheckpointMirror(remote, KEY, log, 'team-key');
  await writer.save('state', new TextEncoder().encode('7'));
  await writer.settle();
  assert.deepEqual(Buffer.from((await new CheckpointMirror(remote, KEY, log, 'team-key').restore('state'))!).toString(), '7');
  assert.equal(await new CheckpointMirror(remote, KEY, log, 'other-key').restore('state'), undefined);
  await remote.putCheckpoint('b'.repeat(64), 'state', (await remote.getCheckpoint(KEY, 'state'))!);
  assert.equal(await new CheckpointMirror(remote, 'b'.repeat(64), log, 'team-key').restore('state'), undefined);
  assert.equal(lines.filter((l) => /ignoring checkpoint state/.test(l)).length, 2, lines.join('\n'));
});

test('a node whose remote is down runs to the end, its log saying the checkpoints stayed local', async () => {
  const box = sandbox();
  const file = box.write('p.yaml', RESUMABLE.replace(', crash_at: 4', ''));
  const r = await box.cli(['run', file, '--remote', 'http://127.0.0.1:1/cache']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const key = (JSON.parse((await box.cli(['show', file, 'fit', '--json'])).stdout) as { key: string }).key;
  assert.match(readFileSync(join(box.cache, 'logs', `fit.${key.slice(0, 12)}.log`), 'utf8'), /warning: could not upload checkpoint state/);
});

test('without a team key a checkpoint cut short or with a flipped byte is not resumed from, here or on the remote', async () => {
  const remote = new ObjectRemote(new FileBackend(mkdtempSync(join(tmpdir(), 'medpipe-shared-'))));
  const lines: string[] = [];
  const writer = new CheckpointMirror(remote, KEY, (t) => lines.push(t), undefined);
  await writer.save('state', new TextEncoder().encode('step 7 weights'));
  await writer.settle();
  const reader = () => new CheckpointMirror(remote, KEY, (t) => lines.push(t), undefined);
  assert.equal(Buffer.from((await reader().restore('state'))!).toString(), 'step 7 weights');
  const sealed = Buffer.from((await remote.getCheckpoint(KEY, 'state'))!);
  await remote.putCheckpoint(KEY, 'state', sealed.subarray(0, sealed.length - 3));
  assert.equal(await reader().restore('state'), undefined, 'a torn upload');
  sealed[sealed.length - 1] ^= 0x01;
  await remote.putCheckpoint(KEY, 'state', sealed);
  assert.equal(await reader().restore('state'), undefined, 'a flipped byte');
  assert.equal(lines.filter((l) => /ignoring checkpoint state on .*: damaged, cut short or not a medpipe checkpoint/.test(l)).length, 2, lines.join('\n'));

  const store = new Store(mkdtempSync(join(tmpdir(), 'medpipe-cache-')));
  await store.saveCheckpoint(KEY, 'state', Buffer.from('step 3'));
  assert.equal(Buffer.from((await store.restoreCheckpoint(KEY, 'state'))!).toString(), 'step 3');
  const file = join(store.checkpointDir(KEY), 'state');
  const bytes = readFileSync(file);
  bytes[bytes.length - 1] ^= 0x01;
  writeFileSync(file, bytes);
  assert.equal(await store.restoreCheckpoint(KEY, 'state'), undefined, 'a local checkpoint that rotted');
  await store.close();
});
