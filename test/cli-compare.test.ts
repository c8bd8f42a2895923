import assert from 'node:assert/strict';
import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { sandbox, TOY_PIPELINE } from './support/toy.js';

// The toy's train stage computes src.value + offset; its table is train.out.value per model over seed.
test('compare: the parameters that differ and every cell side by side with its delta and per-seed values', async () => {
  const box = sandbox();
  const file = box.write('p.yaml', TOY_PIPELINE);
  assert.equal((await box.cli(['run', file])).code, 0);
  assert.equal((await box.cli(['run', file, '--set', 'train.with.offset=12'])).code, 0);
  const r = await box.cli(['compare', file, '--against', 'train.with.offset=12']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /train\.with\.offset\s+10 -> 12\s+\(4 nodes\)/);
  assert.match(r.stdout, /ResNet50\s+11\.500 ± 0\.707 \[11\.000 12\.000\]\s+13\.500 ± 0\.707 \[13\.000 14\.000\]\s+\+2\.000/);

  const json = JSON.parse((await box.cli(['compare', file, '--against', 'train.with.offset=12', '--json'])).stdout) as { cells: { address: string; delta: number; b: { values: { value: number }[] } }[] };
  const deit = json.cells.find((c) => c.address === 'DeiT-S')!;
  assert.equal(deit.delta, 2);
  assert.deepEqual(deit.b.values.map((v) => v.value), [13, 14]);

  const unrun = await box.cli(['compare', file, '--against', 'train.with.offset=99']);
  assert.match(unrun.stdout, /\(no results\)/);
  assert.match(unrun.stdout, /2 cell\(s\) lack results on one side/);
});

// A kind that, like finetune and dino with precision, added a parameter after results were
// cached without it: written out at its unkeyed default it keys, and compares, as unset.
const LATE_KIND = `
export const late = {
  kind: 'late', version: 1,
  params: { type: 'object', properties: { mode: { enum: ['old', 'new'] } } },
  unkeyedDefaults: { mode: 'old' },
  outputs: { out: 'json' },
  async run(ctx) { ctx.outputs.json('out', { value: ctx.params.mode === 'new' ? 2 : 1 }); },
};
`;
const LATE_PIPELINE = `
name: late
plugins: [late.mjs]
axes: {seed: [1], model: [a]}
stages:
  m: {uses: late, matrix: [model, seed]}
table: {stage: m, value: out.value, rows: [model], columns: [], over: seed}
`;

test('compare: a parameter written out at its kind\'s unkeyed default is no difference (it keys as unset)', async () => {
  const box = sandbox();
  box.write('late.mjs', LATE_KIND);
  const file = box.write('p.yaml', LATE_PIPELINE);
  assert.equal((await box.cli(['run', file])).code, 0);
  const same = await box.cli(['compare', file, '--against', 'm.with.mode=old']);
  assert.equal(same.code, 0, same.stderr);
  assert.match(same.stdout, /parameters: the same in A and B/);
  assert.doesNotMatch(same.stdout, /\(unset\)/);
  // One seed has no std: '–', as run's and report's tables write it (not 'n/a').
  assert.match(same.stdout, /\na\s+1\.000 ± – \[1\.000\]\s+1\.000 ± – \[1\.000\]\s+\+0\.000\n/, 'the one cached result serves both sides');
  const differs = await box.cli(['compare', file, '--against', 'm.with.mode=new']);
  assert.match(differs.stdout, /m\.with\.mode\s+\(unset\) -> "new"\s+\(1 node\)/);
});

test('history: the cached variants of a node with the parameter that tells them apart and their outputs', async () => {
  const box = sandbox();
  const file = box.write('p.yaml', TOY_PIPELINE);
  await box.cli(['run', file]);
  await box.cli(['run', file, '--set', 'train.with.offset=12']);
  const node = 'train[model=deit,seed=2]';
  const r = await box.cli(['history', file, node, '--set', 'train.with.offset=12']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /2 cached variant\(s\)/);
  assert.match(r.stdout, /params\.offset\s+out\.value/);
  assert.match(r.stdout, /\n\*\s+[0-9a-f]{12}\s+\S+\s+\S+ s\s+12\s+14\n/, 'the current variant is starred and shows its value');
  const json = JSON.parse((await box.cli(['history', file, node, '--json'])).stdout) as { current: boolean; differs: Record<string, string>; metrics: Record<string, number> }[];
  assert.deepEqual(json.map((v) => [v.current, v.differs['params.offset'], v.metrics['out.value']]), [[true, '10', 12], [false, '12', 14]]);
});

test('status --json and cache ls --json are machine-readable', async () => {
  const box = sandbox();
  const file = box.write('p.yaml', TOY_PIPELINE);
  const before = JSON.parse((await box.cli(['status', file, '--json'])).stdout) as { nodes: { node: string; state: string; why: string }[] };
  assert.equal(before.nodes.length, 7);
  const src = before.nodes.find((n) => n.node === 'src[seed=1]')!;
  assert.deepEqual([src.state, src.why], ['to run', 'never run']);
  await box.cli(['run', file]);
  const ls = JSON.parse((await box.cli(['cache', 'ls', '--json'])).stdout) as { node: string; key: string }[];
  assert.equal(ls.length, 7);
  assert.ok(ls.every((m) => /^[0-9a-f]{64}$/.test(m.key)));
});

test('cache rm drops the targets only (current variant, or every variant) and they rerun', async () => {
  const box = sandbox();
  const file = box.write('p.yaml', TOY_PIPELINE);
  await box.cli(['run', file]);
  await box.cli(['run', file, '--set', 'train.with.offset=12']);
  const dry = await box.cli(['cache', 'rm', file, 'train[model=deit,seed=1]', '-n']);
  assert.match(dry.stdout, /would remove train\[model=deit,seed=1\]/);
  const rm = await box.cli(['cache', 'rm', file, 'train[model=deit,seed=1]']);
  assert.equal(rm.code, 0, rm.stderr);
  assert.match(rm.stdout, /1 result\(s\) removed/);
  const status = await box.cli(['status', file]);
  assert.match(status.stdout, /train\[model=deit,seed=1\]\s+to run\s+result missing from the cache/);
  assert.match(status.stdout, /src\[seed=1\]\s+cached/, 'its ancestors stay');
  const before = box.runs().length;
  await box.cli(['run', file]);
  assert.deepEqual(box.runs().slice(before), ['train[model=deit,seed=1]'], 'only the removed node reruns (its output is the same, so total stays cached)');
  // The other variant was untouched; --all-variants drops it too.
  assert.match((await box.cli(['status', file, '--set', 'train.with.offset=12'])).stdout, /train\[model=deit,seed=1\]\s+cached/);
  const all = await box.cli(['cache', 'rm', file, 'train[model=deit,seed=1]', '--all-variants']);
  assert.match(all.stdout, /2 result\(s\) removed/);
});

test('cache gc lists what would go by node, keeps recent variants, and asks before deleting', async () => {
  const box = sandbox();
  const file = box.write('p.yaml', TOY_PIPELINE);
  for (const base of ['1', '2', '3']) await box.cli(['run', file, '--set', `vars.base=${base}`]);
  await box.cli(['run', file]);
  // Four variants of each train node and of total; the current one plus two older ones are kept by default.
  const dry = await box.cli(['cache', 'gc', file, '-n']);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /toy\s+train\[model=resnet,seed=1\]\s+[0-9a-f]{12}\s+older variant/);
  assert.match(dry.stdout, /would delete 5 result\(s\)/);
  const asked = await box.cli(['cache', 'gc', file]);
  assert.equal(asked.code, 2, 'without a terminal and without --yes nothing is deleted');
  assert.match(asked.stderr, /pass --yes/);
  assert.match((await box.cli(['cache', 'ls'])).stdout, /22 result\(s\)/);
  const gc = await box.cli(['cache', 'gc', file, '--yes']);
  assert.match(gc.stdout, /deleted 5 result\(s\)/);
  const before = box.runs().length;
  await box.cli(['run', file, '--set', 'vars.base=3']);
  assert.equal(box.runs().length, before, 'reverting to a recent variant is still a hit');
  await box.cli(['run', file, '--set', 'vars.base=1']);
  assert.equal(box.runs().length - before, 5, 'the oldest variant went');
});

test('run --force recomputes the targets only; --force-downstream also what depends on them', async () => {
  const box = sandbox();
  const file = box.write('p.yaml', TOY_PIPELINE);
  await box.cli(['run', file]);
  const before = box.runs().length;
  const status = await box.cli(['status', file, 'src[seed=1]', '--force']);
  assert.match(status.stdout, /src\[seed=1\]\s+to run\s+forced \(--force\)/);
  const forced = await box.cli(['run', file, 'src[seed=1]', '--force']);
  assert.equal(forced.code, 0, forced.stderr);
  assert.deepEqual(box.runs().slice(before), ['src[seed=1]']);
  assert.match(forced.stdout, /1 ran/);
  const down = await box.cli(['run', file, 'src[seed=1]', '--force-downstream']);
  assert.equal(down.code, 0, down.stderr);
  assert.deepEqual(box.runs().slice(before + 1).sort(), ['src[seed=1]', 'total', 'train[model=deit,seed=1]', 'train[model=resnet,seed=1]']);
  assert.match((await box.cli(['run', file])).stdout, /7 cached/, 'the replaced results are hits again');

  // With a remote that holds the result, --force still recomputes (the lease would hand it back).
  const remote = mkdtempSync(join(tmpdir(), 'medpipe-force-remote-'));
  assert.equal((await box.cli(['run', file, '--remote', remote])).code, 0);
  const n = box.runs().length;
  const remoteForced = await box.cli(['run', file, 'src[seed=2]', '--force', '--remote', remote]);
  assert.equal(remoteForced.code, 0, remoteForced.stdout + remoteForced.stderr);
  assert.deepEqual(box.runs().slice(n), ['src[seed=2]']);
});

test('compare --html: one offline page with the comparison and both variants\' curves overlaid', async () => {
  const { comparisonHtml } = await import('../src/cli/compare.js');
  const curves = (loss: number[]) => ({ epochs: loss.map((l, i) => ({ epoch: i + 1, train_loss: l, val_metric: 1 - l })), best_epoch: loss.length, metric: 'kappa' });
  const html = comparisonHtml({
    a: { file: 'p.yaml', sets: [], results: 2, dirty: 0 },
    b: { file: 'p.yaml', sets: ['finetune.with.lr=3e-4'], results: 2, dirty: 0 },
    value: 'evaluate.metrics.value',
    over: 'seed',
    params: [{ path: 'finetune.with.lr', a: '0.0001', b: '0.0003', nodes: 2 }],
    cells: [],
    curves: [{ stage: 'finetune', title: 'finetune[model=deit_s]', runs: [
      { label: 'A seed 1', node: 'finetune[model=deit_s,seed=1]', curves: curves([0.9, 0.5, 0.3]) },
      { label: 'B seed 1', node: 'finetune[model=deit_s,seed=1]', curves: curves([0.8, 0.6, 0.55]) },
    ] }],
  });
  assert.match(html, /finetune\.with\.lr\s+0\.0001 -&gt; 0\.0003/);
  assert.match(html, /<h3>finetune\[model=deit_s\]<\/h3>/);
  assert.ok((html.match(/<svg/g) ?? []).length >= 2, 'a chart per curve field');
  assert.match(html, /A seed 1/);
  assert.match(html, /B seed 1/);
  assert.doesNotMatch(html, /<script|(src|href)="https?:/, 'static and offline');
});

test('compare --commit A --against-commit B: the results recorded as made at two commits of the pipeline\'s repository', { skip: spawnSync('git', ['--version']).status === 0 ? false : 'git is not installed' }, async () => {
  const box = sandbox();
  const file = box.write('p.yaml', TOY_PIPELINE);
  const git = (...args: string[]) => {
    const r = spawnSync('git', ['-C', box.dir, '-c', 'user.name=t', '-c', 'user.email=t@example.org', ...args], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  };
  git('init', '-q');
  git('add', 'p.yaml');
  git('commit', '-qm', 'offset 10');
  assert.equal((await box.cli(['run', file])).code, 0);
  writeFileSync(file, readFileSync(file, 'utf8').replace('base: 10', 'base: 20'));
  git('commit', '-qam', 'offset 20');
  assert.equal((await box.cli(['run', file])).code, 0);
  // A commit that changes nothing the pipeline reads: its run makes no result, it reuses the previous commit's.
  writeFileSync(join(box.dir, 'notes.txt'), 'notes');
  git('add', 'notes.txt');
  git('commit', '-qm', 'notes');
  assert.equal((await box.cli(['run', file])).code, 0);

  // The file now says base 20: by commit, the base-10 results are found without naming their parameters.
  const r = await box.cli(['compare', file, '--commit', 'HEAD~2', '--against-commit', 'HEAD']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^A: \S+p\.yaml as of commit [0-9a-f]{12}\nB: \S+p\.yaml as of commit [0-9a-f]{12}\n/);
  assert.match(r.stdout, /train\.with\.offset\s+10 -> 20\s+\(4 nodes\)/);
  assert.match(r.stdout, /ResNet50\s+11\.500 ± 0\.707 \[11\.000 12\.000\]\s+21\.500 ± 0\.707 \[21\.000 22\.000\]\s+\+10\.000/);

  // Results made on a tree with uncommitted changes say so.
  writeFileSync(file, readFileSync(file, 'utf8').replace('base: 20', 'base: 30'));
  assert.equal((await box.cli(['run', file])).code, 0);
  const dirty = JSON.parse((await box.cli(['compare', file, '--commit', 'HEAD~1', '--against-commit', 'HEAD', '--json'])).stdout) as { b: { dirty: number; results: number }; cells: { address: string; delta: number }[] };
  assert.deepEqual([dirty.b.dirty, dirty.b.results], [4, 6]);
  assert.equal(dirty.cells.find((c) => c.address === 'DeiT-S')!.delta, 10);

  const bad = await box.cli(['compare', file, '--commit', 'no-such-rev']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /"no-such-rev" is no commit of the git repository holding/);
  const both = await box.cli(['compare', file, '--commit', 'HEAD', '--set', 'vars.base=3']);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /--commit picks results by the commit that made them, --set by their parameters now/);
});

test('compare --commit on a pipeline in no git repository says so, not that HEAD is no commit', { skip: spawnSync('git', ['--version']).status === 0 ? false : 'git is not installed' }, async () => {
  const box = sandbox();
  const file = box.write('p.yaml', TOY_PIPELINE);
  // git looks no further up than the sandbox, wherever the temporary folder is.
  const r = await box.cli(['compare', file, '--commit', 'HEAD'], { env: { GIT_CEILING_DIRECTORIES: dirname(box.dir) } });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /p\.yaml is in no git repository: --commit picks results by the commit that made them/);
  assert.doesNotMatch(r.stderr, /is no commit/);
});

test('run --only seed=1 of a two-seed table titles it "over 1 seed"', async () => {
  const box = sandbox();
  box.write('late.mjs', LATE_KIND);
  const file = box.write('p.yaml', LATE_PIPELINE.replace('axes: {seed: [1], model: [a]}', 'axes: {seed: [1, 2], model: [a, b]}')
    .replace('over: seed}', 'over: seed, title: "T over {over}"}'));
  const r = await box.cli(['run', file, '--only', 'seed=1', '--plain']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /over 1 seed\b/, r.stdout);
});
