import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clock, RunProgress, stageLine } from '../src/cli/reporters/progress.js';
import { Rng } from '../src/data/rng.js';
import { median } from '../src/report/table.js';
import { FINAL_STATES, type NodeState } from '../src/run/reporter.js';
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

test('progress: counts kept as states change agree with a recount over every node, through a long seeded run', () => {
  const rng = new Rng(19);
  const many = Array.from({ length: 300 }, (_, i) => ({ id: `n${i}`, stage: ['a', 'b', 'c'][i % 3]! }));
  let now = 0;
  const p = new RunProgress(many, new Map([['a', 2], ['b', 5], ['c', 1]]), 3, () => now);
  const states = new Map(many.map((n) => [n.id, 'pending' as NodeState]));
  const startedAt = new Map<string, number>();
  const took = new Map<string, number[]>();
  const order: NodeState[] = ['pending', 'waiting', 'running', 'cached', 'ran', 'failed', 'skipped', 'interrupted'];
  // What the summary must say, computed the slow way: a pass over every node.
  const recount = () => {
    let work = 0;
    let left = 0;
    for (const n of many) {
      const s = states.get(n.id)!;
      if (FINAL_STATES.has(s)) continue;
      const here = took.get(n.stage);
      const expected = here ? median(here)! : { a: 2, b: 5, c: 1 }[n.stage]!;
      left++;
      work += s === 'running' ? Math.max(0, expected - (now - startedAt.get(n.id)!) / 1000) : expected;
    }
    return left === 0 ? 0 : work / Math.min(3, left);
  };
  for (let step = 0; step < 3000; step++) {
    const n = many[rng.int(many.length)]!;
    const to = order[rng.int(order.length)]!;
    now += rng.int(400);
    p.update(n.id, to);
    if (to === 'running') startedAt.set(n.id, now);
    if (to === 'ran' && startedAt.has(n.id)) took.set(n.stage, [...(took.get(n.stage) ?? []), (now - startedAt.get(n.id)!) / 1000]);
    states.set(n.id, to);
    if (step % 97 !== 0) continue;
    assert.ok(Math.abs(p.eta()! - recount()) < 1e-9, `ETA at step ${step}`);
    for (const c of p.stages()) {
      const mine = many.filter((m) => m.stage === c.stage);
      for (const s of order) assert.equal(c.counts[s] ?? 0, mine.filter((m) => states.get(m.id) === s).length, `${c.stage} ${s} at step ${step}`);
      assert.deepEqual(c.running, mine.filter((m) => ['running', 'waiting'].includes(states.get(m.id)!)).map((m) => m.id));
    }
    // Interrupted nodes have ended but are not done.
    const done = many.filter((m) => FINAL_STATES.has(states.get(m.id)!) && states.get(m.id) !== 'interrupted').length;
    assert.match(p.summary(), new RegExp(`^${done}/300 done`));
  }
});
