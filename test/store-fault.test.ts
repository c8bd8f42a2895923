// A damaged data page of index.lmdb, as opposed to a cut-short file or a bad header: LMDB maps
// the file, so following a damaged page can fault (SIGBUS) instead of failing. Every command a
// user starts (bin/pipeline) must then say the index is damaged, name it and the repair, and
// the repair must bring back every result whose blobs and values verify.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Store } from '../src/store/store.js';
import { blobsPipeline, REPO, sandbox, TOY_PIPELINE, TREE_PIPELINE, type CliResult, type Sandbox } from './support/toy.js';

const LAUNCHER = join(REPO, 'bin', 'pipeline');

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
  const trees = box.write('trees.yaml', TREE_PIPELINE);
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

test('one digit changed inside a cached result in index.lmdb is refused naming the index, never shown as the number', async () => {
  const box = sandbox();
  const toy = box.write('toy.yaml', TOY_PIPELINE);
  assert.equal((await box.cli(['run', toy])).code, 0);
  const index = join(box.cache, 'index.lmdb');
  const bytes = readFileSync(index);
  const at = bytes.indexOf('"sum":46');
  assert.ok(at > 0 && bytes.indexOf('"sum":46', at + 1) < 0, 'the total is stored once');
  bytes[at + 7] = '7'.charCodeAt(0);
  writeFileSync(index, bytes);
  for (const args of [['show', toy, 'total', '--json'], ['status', toy], ['run', toy]]) {
    const r = await box.cli(args);
    assert.equal(r.code, 1, `${args.join(' ')}\n${r.stdout}${r.stderr}`);
    // (without the progress lines' times, such as [15:00:47])
    assert.doesNotMatch(r.stdout.replace(/\[\d\d:\d\d:\d\d\]/g, ''), /47/);
    assert.match(r.stderr, /^error: cache index \S+index\.lmdb is damaged: an entry of its manifests table does not match its checksum\. Run `pipeline cache repair/m);
  }
  const repair = await box.cli(['cache', 'repair']);
  assert.equal(repair.code, 0, repair.stdout + repair.stderr);
  assert.deepEqual(((await box.show(toy, 'total')).outputs['out']!.value as { sum: number }).sum, 46);
});

test('a raw file replaced in place by other bytes of the same size, its mtime put back (cp -p, rsync -t), is hashed again, not answered from the remembered digest', async () => {
  const box = sandbox();
  const store = new Store(box.cache);
  const raw = join(box.dir, 'scan.dcm');
  writeFileSync(raw, 'first scan bytes');
  // A whole second, so that putting it back is exact (as cp -p and rsync -t do).
  utimesSync(raw, 1_700_000_000, 1_700_000_000);
  const first = await store.hashFile(raw);
  assert.equal(await store.hashFile(raw), first);
  // The change time must move between the two writes: some file systems keep it to a few ms.
  await new Promise((r) => setTimeout(r, 25));
  writeFileSync(raw, 'other scan bytes');
  utimesSync(raw, 1_700_000_000, 1_700_000_000);
  assert.equal(statSync(raw).mtimeMs, 1_700_000_000_000, 'same size, same mtime');
  assert.notEqual(await store.hashFile(raw), first, 'the new bytes are hashed');
  await store.close();
});

test('when salvaging record sets from the damaged index faults too, repair rebuilds without them: only their producer reruns, its consumer stays cached', async () => {
  const box = sandbox();
  const file = box.write('blobs.yaml', blobsPipeline('hello'));
  assert.equal((await launch(box, ['run', file])).code, 0);
  assert.deepEqual(box.runs(), ['make', 'read']);
  damageLeafPages(join(box.cache, 'index.lmdb'));
  const repair = await launch(box, ['cache', 'repair']);
  assert.equal(repair.code, 0, repair.stdout + repair.stderr);
  assert.match(repair.stdout, /salvaging record sets from the damaged file crashed \(SIG(?:BUS|SEGV)\); the index was rebuilt without them/);
  assert.match(repair.stdout, /re-indexed 1 result\(s\) \(0 record set\(s\) salvaged from the damaged index\); 1 could not be verified/);
  const run = await launch(box, ['run', file]);
  assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.deepEqual(box.runs(), ['make', 'read', 'make'], 'make rewrites its record set; read, whose inputs come out the same bytes, stays cached');
  assert.equal(((await box.show(file, 'read')).outputs['out']!.value as { joined: string }).joined, 'hello');
});

test('the launcher hands node its own stdin (exec - reads the task from it) and passes exit statuses through, a usage error included', async () => {
  const box = sandbox();
  const piped = await new Promise<CliResult>((resolve) => {
    const child = spawn(LAUNCHER, ['exec', '-'], { cwd: box.dir, env: { ...process.env, CI: 'true', MEDPIPE_CACHE: box.cache }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end('{"format": "not-a-task"}');
  });
  assert.equal(piped.code, 1, piped.stderr);
  assert.match(piped.stderr, /not a medpipe SLURM task \(expected format medpipe-slurm-task\/1, got "not-a-task"\)/, 'the task JSON piped in reached node');
  const usage = await launch(box, ['run', join(box.dir, 'missing.yaml')]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /missing\.yaml: cannot read pipeline file/);
  assert.doesNotMatch(usage.stderr, /killed by|stopped \(/, 'exit status 2 is not read as a signal');
});
