// An index whose entries do not parse, met in the middle of a run: an error naming the index
// and the repair, with exit 1, never a crash with a stack trace.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { open } from 'lmdb';
import { sandbox, TOY_PIPELINE } from './support/toy.js';

test('a run that meets unparsable name-index entries exits 1 saying to run cache repair, without a stack trace', async () => {
  const box = sandbox();
  const file = box.write('toy.yaml', TOY_PIPELINE);
  assert.equal((await box.cli(['run', file])).code, 0);
  const env = open({ path: join(box.cache, 'index.lmdb'), maxDbs: 16, mapSize: 2 ** 40 });
  const names = env.openDB<Buffer, string>({ name: 'names', encoding: 'binary' });
  const keys = [...names.getKeys()];
  assert.ok(keys.length >= 7);
  for (const key of keys) await names.put(key, Buffer.from('{not json'));
  await env.close();

  // Every train node misses, and asks the name index why.
  const r = await box.cli(['run', file, '--set', 'vars.base=11']);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /^error: cache index \S+index\.lmdb is damaged: an entry of its names table is not valid JSON\. Run `pipeline cache repair/m);
  assert.doesNotMatch(r.stderr, /^\s+at \S/m, r.stderr);
  assert.doesNotMatch(r.stderr, /Node\.js v/);
});
