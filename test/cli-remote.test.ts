// What a user sees of `cache pull` when the remote is there, and when it cannot be reached.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { sandbox, TOY_PIPELINE } from './support/toy.js';

/** A loopback port nothing listens on: bound once, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test('cache pull from a remote it cannot reach exits 1 and does not call the results "not on" the remote', async () => {
  const box = sandbox();
  const file = box.write('toy.yaml', TOY_PIPELINE);
  const url = `http://127.0.0.1:${await closedPort()}/cache`;
  const r = await box.cli(['cache', 'pull', file, '--remote', url]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.equal(r.stdout, '0 pulled, 0 already local, 7 not pulled (the remote could not be reached)\n');
  assert.match(r.stderr, /remote cache unavailable, nothing pulled from it: .*ECONNREFUSED/);
  assert.doesNotMatch(r.stderr, /computing locally/);

  // The same pull from a file:// remote that has them.
  const remote = join(box.dir, 'remote');
  mkdirSync(remote);
  assert.equal((await box.cli(['run', file, '--cache', join(box.dir, 'other')])).code, 0);
  assert.equal((await box.cli(['cache', 'push', file, '--cache', join(box.dir, 'other'), '--remote', pathToFileURL(remote).href])).code, 0);
  const pulled = await box.cli(['cache', 'pull', file, '--remote', pathToFileURL(remote).href]);
  assert.equal(pulled.code, 0, pulled.stderr);
  assert.equal(pulled.stdout, `7 pulled, 0 already local, 0 not on ${pathToFileURL(remote).href}\n`);
});

test('a remote of an unknown scheme, from --remote or $MEDPIPE_REMOTE, is bad input: exit 2 saying which schemes work', async () => {
  const box = sandbox();
  const file = box.write('toy.yaml', TOY_PIPELINE);
  const flag = await box.cli(['cache', 'pull', file, '--remote', 'ftp://lab/cache']);
  assert.equal(flag.code, 2, flag.stdout + flag.stderr);
  assert.equal(flag.stderr, 'error: unsupported remote "ftp://lab/cache": use file:///path, http(s)://host/prefix or s3://bucket/prefix\n');
  const fromEnv = await box.cli(['run', file], { env: { MEDPIPE_REMOTE: 'gopher://lab' } });
  assert.equal(fromEnv.code, 2, fromEnv.stdout + fromEnv.stderr);
  assert.match(fromEnv.stderr, /^error: unsupported remote "gopher:\/\/lab"/);
  assert.equal(box.runs().length, 0);
});

test('cache push to a file:// remote that cannot be written says so once, in words, and exits 1', async () => {
  const box = sandbox();
  const file = box.write('toy.yaml', TOY_PIPELINE);
  assert.equal((await box.cli(['run', file])).code, 0);
  const notes = box.write('notes.txt', 'a file, not a folder');
  const url = pathToFileURL(join(notes, 'remote')).href;
  const r = await box.cli(['cache', 'push', file, '--remote', url]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.equal(r.stdout, `0 pushed, 0 already on ${url}, 7 failed\n`);
  const warnings = r.stderr.split('\n').filter((l) => l.startsWith('warning: could not push'));
  assert.equal(warnings.length, 1, r.stderr);
  assert.match(warnings[0]!, new RegExp(`^warning: could not push to ${url}: cannot write ${join(notes, 'remote')}\\S* \\(a part of its path is a file, not a folder\\)$`));
  assert.doesNotMatch(r.stderr, /ENOTDIR/);
});
