// A cache the user cannot write (a colleague's, a read-only mount) can still be inspected and
// read by runs that only hit. Tests run as root in CI, and root writes through any mode bits:
// there the CLI is run as `nobody` through setpriv, which is what a second user is.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { BIN, blobsPipeline, sandbox, TOY_PIPELINE, type CliResult, type Sandbox } from './support/toy.js';

const isRoot = process.getuid?.() === 0;
const setpriv = isRoot && spawnSync('setpriv', ['--version']).status === 0;
const skip = isRoot && !setpriv ? 'running as root without setpriv (util-linux): no way to be a user who cannot write the cache' : false;

/** The CLI as a user who may read the sandbox but write none of it. */
function asReader(box: Sandbox, args: string[]): Promise<CliResult> {
  const command = isRoot ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, BIN, ...args] : [process.execPath, BIN, ...args];
  return new Promise((resolve) => {
    const child = spawn(command[0]!, command.slice(1), { cwd: box.dir, env: { ...process.env, CI: 'true', MEDPIPE_CACHE: box.cache, TOY_RUN_LOG: box.runLog }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Every path under dir with its size and mtime: what "nothing was written" compares. */
function snapshot(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .map((e) => join(e.parentPath, e.name))
    .map((p) => {
      const st = statSync(p);
      return `${p} ${st.size} ${st.mtimeMs}`;
    })
    .sort();
}

function readOnly(dir: string): void {
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) chmodSync(join(e.parentPath, e.name), e.isDirectory() ? 0o555 : 0o444);
  chmodSync(dir, 0o555);
}

test('a read-only cache can be inspected: status, cache ls, show, cache verify --keep, and a run that only hits, with a remote', { skip }, async () => {
  const box = sandbox();
  const toy = box.write('toy.yaml', TOY_PIPELINE);
  const blobs = box.write('blobs.yaml', blobsPipeline('read me'));
  const remote = join(box.dir, 'remote');
  mkdirSync(remote);
  for (const file of [toy, blobs]) assert.equal((await box.cli(['run', file])).code, 0);
  const ran = box.runs().length;
  readOnly(box.cache);
  chmodSync(box.dir, 0o755);
  const before = snapshot(box.cache);

  const status = await asReader(box, ['status', toy, '--json']);
  assert.equal(status.code, 0, status.stderr);
  const nodes = (JSON.parse(status.stdout) as { nodes: { node: string; state: string }[] }).nodes;
  assert.deepEqual([...new Set(nodes.map((n) => n.state))], ['cached'], status.stdout);

  const ls = await asReader(box, ['cache', 'ls', '--json']);
  assert.equal(ls.code, 0, ls.stderr);
  assert.equal((JSON.parse(ls.stdout) as unknown[]).length, nodes.length + 2);

  const show = await asReader(box, ['show', blobs, 'make', '-o', 'file']);
  assert.equal(show.code, 0, show.stderr);
  assert.equal(show.stdout, 'read me');

  const verify = await asReader(box, ['cache', 'verify', '--keep']);
  assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  assert.match(verify.stdout, new RegExp(`^${nodes.length + 2} result\\(s\\) checked, 0 problem\\(s\\)`, 'm'));

  // A run whose nodes are all cached reads its record sets and files, with a remote configured.
  for (const file of [toy, blobs]) {
    const run = await asReader(box, ['run', file, '--remote', pathToFileURL(remote).href]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /cached/);
  }

  // What would write says so, and writes nothing.
  const drop = await asReader(box, ['cache', 'verify']);
  assert.equal(drop.code, 1);
  assert.match(drop.stderr, /is read-only for this user: cannot drop broken results \(`cache verify --keep` reports them without dropping\)/);
  const compute = await asReader(box, ['run', toy, '--set', 'vars.base=11']);
  assert.equal(compute.code, 1, compute.stdout);
  assert.match(compute.stdout + compute.stderr, /read-only for this user: cannot lock train\[[^\]]+\] to compute it/);

  assert.equal(box.runs().length, ran, 'nothing was computed');
  assert.deepEqual(snapshot(box.cache), before, 'nothing in the cache changed');
});

test('cache verify --keep on a read-only cache reports a rotted blob and leaves it as it is', { skip }, async () => {
  const box = sandbox();
  const blobs = box.write('blobs.yaml', blobsPipeline('intact'));
  assert.equal((await box.cli(['run', blobs])).code, 0);
  const digest = (await box.show(blobs, 'make')).outputs['file']!.digest;
  writeFileSync(join(box.cache, 'cas', digest.slice(0, 2), digest.slice(2)), 'rotted');
  readOnly(box.cache);
  chmodSync(box.dir, 0o755);
  const before = snapshot(box.cache);
  const verify = await asReader(box, ['cache', 'verify', '--keep']);
  assert.equal(verify.code, 1, verify.stdout + verify.stderr);
  assert.match(verify.stdout, /✖ make \([0-9a-f]{12}\) output file: blob content hashes to [0-9a-f]{12}…\n/);
  assert.doesNotMatch(verify.stdout, /dropped/);
  assert.deepEqual(snapshot(box.cache), before);
});

test('show -o of a directory output its owner never unpacked, on a read-only cache, gives an unpacked copy outside the cache', { skip }, async () => {
  const box = sandbox();
  const trees = box.write('trees.yaml', `
name: trees
plugins: [$TOY]
stages:
  make: {uses: tree, with: {text: hello}}
`);
  assert.equal((await box.cli(['run', trees])).code, 0);
  readOnly(box.cache);
  chmodSync(box.dir, 0o755);
  const before = snapshot(box.cache);
  const show = await asReader(box, ['show', trees, 'make', '-o', 'dir']);
  assert.equal(show.code, 0, show.stderr);
  const path = show.stdout.trim();
  assert.ok(!path.startsWith(box.cache), path);
  assert.equal(readFileSync(join(path, 'a.txt'), 'utf8'), 'hello');
  assert.equal(readFileSync(join(path, 'sub', 'b.txt'), 'utf8'), 'HELLO');
  assert.deepEqual(snapshot(box.cache), before, 'nothing in the cache changed');
});

test('a run whose --cache cannot be created (a parent this user may not write) exits 2 saying so, not with a raw EACCES', { skip }, async () => {
  const box = sandbox();
  const toy = box.write('toy.yaml', TOY_PIPELINE);
  const locked = join(box.dir, 'locked');
  mkdirSync(locked, { mode: 0o555 });
  chmodSync(box.dir, 0o755);
  const run = await asReader(box, ['run', toy, '--cache', join(locked, 'cache')]);
  assert.equal(run.code, 2, run.stdout + run.stderr);
  assert.match(run.stderr, new RegExp(`^error: cannot create the cache folder ${join(locked, 'cache')}: this user may not create folders in ${locked}; give one this user can write with --cache DIR`, 'm'));
  assert.doesNotMatch(run.stderr, /EACCES/);
  assert.equal(box.runs().length, 0);
});

test('cache repair on a read-only cache exits 1 naming the cache, not with a raw EACCES, and writes nothing', { skip }, async () => {
  const box = sandbox();
  const toy = box.write('toy.yaml', TOY_PIPELINE);
  assert.equal((await box.cli(['run', toy])).code, 0);
  readOnly(box.cache);
  chmodSync(box.dir, 0o755);
  const before = snapshot(box.cache);
  const repair = await asReader(box, ['cache', 'repair']);
  assert.equal(repair.code, 1, repair.stdout + repair.stderr);
  assert.match(repair.stderr, new RegExp(`^error: cache ${box.cache} is read-only for this user: cannot repair its index`, 'm'));
  assert.doesNotMatch(repair.stderr, /EACCES/);
  assert.deepEqual(snapshot(box.cache), before, 'nothing in the cache changed');
});
