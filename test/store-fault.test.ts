// A damaged data page of index.lmdb, as opposed to a cut-short file or a bad header: LMDB maps
// the file, so following a damaged page can fault (SIGBUS) instead of failing. Every command a
// user starts (bin/pipeline) must then say the index is damaged, name it and the repair, and
// the repair must bring back every result whose blobs and values verify.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO, sandbox, TOY_PIPELINE, type CliResult, type Sandbox } from './support/toy.js';

const LAUNCHER = join(REPO, 'bin', 'pipeline');

const TREE = `
name: trees
plugins: [$TOY]
stages:
  make: {uses: tree, with: {text: hello}}
  read: {uses: readtree, inputs: {dir: make.dir}}
`;

/** The CLI as a user starts it: the installed `pipeline` command, not `node bin/pipeline.js`. */
function launch(box: Sandbox, args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(LAUNCHER, args, { cwd: box.dir, env: { ...process.env, CI: 'true', MEDPIPE_CACHE: box.cache, TOY_RUN_LOG: box.runLog }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const PAGE = 4096;
const HEADER = 24;

/**
 * Every leaf page's inline values claim to be 16 MiB long (each node's high size half set to
 * 0x100): a bit pattern a bad sector or a torn copy can leave, and a read that runs past the
 * end of the mapped file, which is SIGBUS in any process that reads it.
 */
function damageLeafPages(file: string): number {
  const b = readFileSync(file);
  let touched = 0;
  for (let page = 2; page < b.length / PAGE; page++) {
    const at = page * PAGE;
    if (b.readUInt16LE(at + HEADER - 6) !== 0x02) continue; // leaf pages only (not branch, overflow, meta)
    const nodes = b.readUInt16LE(at + HEADER - 4) >> 1;
    for (let i = 0; i < nodes; i++) {
      const node = at + HEADER + b.readUInt16LE(at + HEADER + 2 * i);
      if (node + 8 > at + PAGE || (b.readUInt16LE(node + 4) & 0x03) !== 0) continue; // inline data only
      b.writeUInt16LE(0x0100, node + 2);
      touched++;
    }
  }
  writeFileSync(file, b);
  return touched;
}

const damaged = /^error: medpipe stopped \(SIG(?:BUS|SEGV)\) reading the cache: cache index (\S+) is damaged: reading it crashed the process \(SIG(?:BUS|SEGV)\): LMDB followed a damaged page\. Run `pipeline cache repair --cache (\S+)` to rebuild it/m;

test('byte-damaged LMDB data pages: status, run, ls and verify say the index is damaged (never a bare SIGBUS); repair re-adopts every json and blob result, nothing is recomputed', async () => {
  const box = sandbox();
  const toy = box.write('toy.yaml', TOY_PIPELINE);
  const trees = box.write('trees.yaml', TREE);
  assert.equal((await launch(box, ['run', toy])).code, 0);
  assert.equal((await launch(box, ['run', trees])).code, 0);
  const before = box.runs().length;
  const total = (await box.show(toy, 'total')).outputs['out']!.value;
  assert.deepEqual(total, { sum: 46, n: 4, from: (total as { from: string[] }).from });
  const index = join(box.cache, 'index.lmdb');
  assert.ok(damageLeafPages(index) > 10);

  for (const args of [['status', toy], ['run', trees], ['cache', 'ls']]) {
    const r = await launch(box, args);
    assert.equal(r.code, 1, `${args.join(' ')}: exit 1, not a signal\n${r.stdout}${r.stderr}`);
    const m = r.stderr.match(damaged);
    assert.ok(m, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(m[1], index);
    assert.equal(m[2], box.cache);
    assert.doesNotMatch(r.stderr, /Segmentation fault|Bus error|Node\.js v|\n\s+at /);
  }
  const verify = await launch(box, ['cache', 'verify']);
  assert.equal(verify.code, 1, verify.stdout + verify.stderr);
  assert.match(verify.stderr, /^error: cache index \S+index\.lmdb is damaged: reading it crashed the process \(SIG(?:BUS|SEGV)\): LMDB followed a damaged page\. Run `pipeline cache repair/m);
  assert.doesNotMatch(verify.stdout, /problem/, 'never "0 problems"');
  assert.doesNotMatch(verify.stderr, /Node\.js v|\n\s+at /);

  const repair = await launch(box, ['cache', 'repair']);
  assert.equal(repair.code, 0, repair.stdout + repair.stderr);
  assert.match(repair.stdout, /was damaged \(reading it crashed the process \(SIG(?:BUS|SEGV)\)/);
  assert.match(repair.stdout, /re-indexed 9 result\(s\) .*; 0 could not be verified/);
  for (const file of [toy, trees]) {
    const run = await launch(box, ['run', file]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
  }
  assert.equal(box.runs().length, before, 'nothing recomputed');
  assert.deepEqual((await box.show(toy, 'total')).outputs['out']!.value, total);
  assert.match((await launch(box, ['cache', 'verify'])).stdout, /9 result\(s\) checked, 0 problem/);
});

const NOISY = `
name: noisy
plugins: [$TOY]
stages:
  draw: {uses: noisy}
`;

test('a result replaced by `run --force` stays replaced through `cache repair` (its manifest file is the new one, not the stale one)', async () => {
  const box = sandbox();
  const file = box.write('noisy.yaml', NOISY);
  assert.equal((await box.cli(['run', file], { env: { TOY_NOISE: '1' } })).code, 0);
  const forced = await box.cli(['run', file, '--force'], { env: { TOY_NOISE: '2' } });
  assert.equal(forced.code, 0, forced.stdout + forced.stderr);
  assert.deepEqual((await box.show(file, 'draw')).outputs['out']!.value, { value: 2 });
  const index = join(box.cache, 'index.lmdb');
  writeFileSync(index, readFileSync(index).subarray(0, PAGE * 3));
  const repair = await box.cli(['cache', 'repair']);
  assert.equal(repair.code, 0, repair.stdout + repair.stderr);
  assert.match(repair.stdout, /re-indexed 1 result\(s\)/);
  assert.deepEqual((await box.show(file, 'draw')).outputs['out']!.value, { value: 2 }, 'the forced result, not the one it replaced');
});
