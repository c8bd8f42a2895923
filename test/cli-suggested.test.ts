// The commands medpipe's messages suggest paste into a shell as they are printed: a cache path
// with a space, a quote or a `$` in it stays one word.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli, sandbox } from './support/toy.js';

test("the repair command suggested for a damaged index pastes into sh with the cache as one word (a path with a space, ' and $)", async () => {
  const box = sandbox();
  const cache = join(box.dir, "lab's $HOME cache");
  mkdirSync(cache);
  writeFileSync(join(cache, 'index.lmdb'), Buffer.alloc(8192, 7));
  const r = await runCli(['cache', 'ls', '--cache', cache], { cwd: box.dir, env: {} });
  assert.equal(r.code, 1, r.stderr);
  const suggested = /Run `(pipeline cache repair [^`]+)`/.exec(r.stderr)?.[1];
  assert.ok(suggested, r.stderr);
  // The shell's own reading of the words after `pipeline`: printf prints each on its line.
  const words = spawnSync('sh', ['-c', suggested.replace(/^pipeline /, "printf '%s\\n' ")], { encoding: 'utf8' });
  assert.deepEqual(words.stdout.split('\n').slice(0, -1), ['cache', 'repair', '--cache', cache]);
});
