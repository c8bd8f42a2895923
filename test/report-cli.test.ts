// `pipeline report` on the toy pipeline (no ML, seconds): what is cached and what is not, the
// table's per-seed values, the overrides and the `pipeline show` commands in the page.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { sandbox, TOY_PIPELINE } from './support/toy.js';

test('pipeline report: a partial cache reports what is missing; a full one every value; overrides listed', async () => {
  const box = sandbox();
  const file = box.write('p.yaml', TOY_PIPELINE);
  const out = join(box.dir, 'r.html');
  const empty = await box.cli(['report', file, '-o', out]);
  assert.equal(empty.code, 0, empty.stderr);
  assert.match(empty.stdout, /table 0\/2 cells, 0 saliency figure\(s\), 0 curve run\(s\), 0 confusion matrix\/matrices; 0\/7 nodes cached/);
  let html = readFileSync(out, 'utf8');
  assert.match(html, /n\/a \(0\/2\)/);
  assert.match(html, /not cached: never run/);
  assert.match(html, /overrides<\/dt><dd>none/);

  assert.equal((await box.cli(['run', file, '--set', 'vars.base=20'])).code, 0);
  const full = await box.cli(['report', file, '--set', 'vars.base=20', '-o', out]);
  assert.equal(full.code, 0, full.stderr);
  assert.match(full.stdout, /table 2\/2 cells.*7\/7 nodes cached/);
  html = readFileSync(out, 'utf8');
  // train = seed + 20: seeds 1, 2 -> 21, 22.
  assert.match(html, /<div class="value">21\.500 ± 0\.707<\/div><div class="seeds">seed 1: 21\.0000 · seed 2: 22\.0000<\/div>/);
  assert.match(html, /<code class="cmd">--set vars\.base=20<\/code>/);
  assert.match(html, /npx pipeline show \S+p\.yaml &#39;train\[model=resnet,seed=1\]&#39;/);
  const key = (await box.show(file, 'train[model=resnet,seed=1]').catch(() => undefined))?.key;
  assert.equal(key, undefined, 'without the override the node is another one (not cached)');

  const bad = await box.cli(['report', file, '-o', join(box.dir, 'missing', 'r.html')]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /missing/);
});
