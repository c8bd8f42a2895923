import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clock, RunProgress, stageLine } from '../src/cli/reporters/progress.js';
import { sandbox, TOY_PIPELINE } from './support/toy.js';

const nodes = [
  { id: 'a1', stage: 'a' },
  { id: 'a2', stage: 'a' },
  { id: 'b1', stage: 'b' },
  { id: 'b2', stage: 'b' },
];

test('progress: N/M, running vs queued, elapsed and an ETA from the stages\' durations', () => {
  let now = 0;
  const p = new RunProgress(nodes, new Map([['a', 10], ['b', 60]]), 2, () => now);
  // 2 x 10 s + 2 x 60 s of work on 2 slots.
  assert.equal(p.summary(), '0/4 done · 0:00 elapsed · ETA 1:10');
  p.update('a1', 'cached');
  p.update('a2', 'running');
  now = 4000;
  assert.equal(p.summary(), '1/4 done · 1 running · 1 cached · 0:04 elapsed · ETA 1:03');
  assert.deepEqual(p.stages().map(stageLine), ['a (2): 1 cached, 1 running', 'b (2): 2 queued']);
  p.update('a2', 'ran');
  p.update('b1', 'running');
  p.update('b2', 'running');
  now = 34_000;
  // b's nodes have run 30 s of their 60: 30 s each left, in parallel.
  assert.equal(p.summary(), '2/4 done · 2 running · 1 cached · 0:34 elapsed · ETA 0:30');
  p.update('b1', 'failed');
  p.update('b2', 'ran');
  assert.equal(p.summary(), '4/4 done · 1 cached · 1 failed · 0:34 elapsed');
  assert.deepEqual(p.stages().map(stageLine), ['a (2): 1 ran, 1 cached', 'b (2): 1 ran, 1 failed']);
});

test('progress: a stage never timed gives no ETA rather than a wrong one; clock formats hours', () => {
  const p = new RunProgress(nodes, new Map([['a', 10]]), 1, () => 0);
  assert.match(p.summary(), /ETA n\/a/);
  assert.equal(clock(3725), '1:02:05');
  assert.equal(clock(65), '1:05');
});

test('plain lines: every node that ends carries N/M and elapsed; the end lists each stage, in pipeline order', async () => {
  const box = sandbox();
  const file = box.write('p.yaml', TOY_PIPELINE);
  const r = await box.cli(['run', file, '--plain']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /✔ src\[seed=1\] ran \(first run\) {2}\[\d\/7 done/);
  assert.match(r.stdout, /✔ total ran \(first run\) {2}\[7\/7 done · [\d:]+ elapsed\]/);
  assert.match(r.stdout, / {2}src \(2\): 2 ran\n.* {2}train \(4\): 4 ran\n.* {2}total \(1\): 1 ran\n/);
  // The second time, the cache knows how long each stage takes.
  const again = await box.cli(['run', file, '--plain', '--set', 'vars.base=3']);
  assert.match(again.stdout, /✔ train\[model=\w+,seed=\d\] ran \(params changed \(offset: 10 -> 3\)\) {2}\[\d\/7 done · [^\]]*ETA \d+:\d\d\]/);
});
