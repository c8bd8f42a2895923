// Directory outputs: a tree of files, content-addressed as a whole, unpacked read-only for
// the nodes that read it, shared through a remote like a file, and checked like one.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { sandbox, TREE_PIPELINE } from './support/toy.js';

const hex = (s: string) => Buffer.from(s).toString('hex');
const EXPECTED = { 'a.txt': hex('hello'), 'sub/b.txt': hex('HELLO'), 'sub/deeper/c.bin': '000102ff' };

interface Shown {
  key: string;
  outputs: { dir: { type: string; digest: string; files: number }; out: { value: { files: Record<string, string>; writable: boolean } } };
}

test('a directory output reaches its consumer whole and read-only; the same tree has the same digest', async () => {
  const box = sandbox();
  const file = box.write('t.yaml', TREE_PIPELINE);
  const r = await box.cli(['run', file]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const read = (await box.show(file, 'read')) as unknown as Shown;
  assert.deepEqual(read.outputs.out.value, { files: EXPECTED, writable: false });
  const made = (await box.show(file, 'make')) as unknown as Shown;
  assert.equal(made.outputs.dir.type, 'dir');
  assert.equal(made.outputs.dir.files, 3);
  // `show -o` gives the unpacked folder.
  const shown = await box.cli(['show', file, 'make', '-o', 'dir']);
  const path = shown.stdout.trim();
  assert.deepEqual(readdirSync(path).sort(), ['a.txt', 'sub']);
  assert.equal(statSync(join(path, 'a.txt')).mode & 0o777, 0o444);

  // Another cache computing the same tree gets the same digest (names sorted, no times or owners).
  const other = sandbox();
  const again = await other.cli(['run', other.write('t.yaml', TREE_PIPELINE)]);
  assert.equal(again.code, 0);
  assert.equal(((await other.show(other.write('t.yaml', TREE_PIPELINE), 'make')) as unknown as Shown).outputs.dir.digest, made.outputs.dir.digest);
});

test('through a remote: pulled as one blob and unpacked on demand; a corrupted tree blob is caught and recomputed', async () => {
  const shared = mkdtempSync(join(tmpdir(), 'medpipe-shared-'));
  const a = sandbox();
  assert.equal((await a.cli(['run', a.write('t.yaml', TREE_PIPELINE), '--remote', shared])).code, 0);
  const b = sandbox();
  const fileB = b.write('t.yaml', TREE_PIPELINE.replace('inputs: {dir: make.dir}', 'inputs: {dir: make.dir}, with: {tag: other}'));
  const rb = await b.cli(['run', fileB, '--remote', shared]);
  assert.equal(rb.code, 0, rb.stdout + rb.stderr);
  assert.deepEqual(b.runs(), ['read'], 'make came from the remote, read ran on it');
  assert.deepEqual(((await b.show(fileB, 'read')) as unknown as Shown).outputs.out.value.files, EXPECTED);

  // Damage the blob in a: verify finds it, drops the entry and the unpacked copy; the next run recomputes it.
  const fileA = a.write('t.yaml', TREE_PIPELINE);
  const digest = ((await a.show(fileA, 'make')) as unknown as Shown).outputs.dir.digest;
  writeFileSync(join(a.cache, 'cas', digest.slice(0, 2), digest.slice(2)), 'not a tar');
  const v = await a.cli(['cache', 'verify']);
  assert.equal(v.code, 1);
  assert.match(v.stdout, /make \([0-9a-f]{12}\) output dir: blob content hashes to/);
  const rerun = await a.cli(['run', fileA]);
  assert.equal(rerun.code, 0, rerun.stdout + rerun.stderr);
  assert.deepEqual(a.runs(), ['make', 'read', 'make']);
  assert.deepEqual(((await a.show(fileA, 'read')) as unknown as Shown).outputs.out.value.files, EXPECTED);
});
