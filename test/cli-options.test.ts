import assert from 'node:assert/strict';
import { test } from 'node:test';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, REPO, sandbox, TOY_PIPELINE } from './support/toy.js';

test('--version prints the package version', async () => {
  const box = sandbox();
  const r = await box.cli(['--version']);
  assert.equal(r.code, 0);
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
  assert.equal(r.stdout.trim().split(' ')[1], pkg.version);
});

test('-j 0 and -j abc exit 2 naming the option instead of hanging', async () => {
  const box = sandbox();
  const file = box.write('p.yaml', TOY_PIPELINE);
  for (const bad of ['0', 'abc', '1.5', '-3']) {
    const r = await box.cli(['run', file, '-j', bad]);
    assert.equal(r.code, 2, `-j ${bad}: ${r.stderr}`);
    assert.match(r.stderr, /-j, --jobs/);
  }
  assert.deepEqual(box.runs(), [], 'nothing ran');
});

test('a bad option value is the error and one line pointing to the verb\'s help, not the whole help', async () => {
  const box = sandbox();
  const file = box.write('p.yaml', TOY_PIPELINE);
  const cases: [string[], RegExp, string][] = [
    [['run', file, '-j', '-1'], /^error: option '-j, --jobs <n>' argument '-1' is invalid/, 'pipeline run'],
    [['dag', file, '--format', 'svg'], /^error: option '-f, --format <format>' argument 'svg' is invalid/, 'pipeline dag'],
    [['cache', 'gc', file, '--keep-variants', 'x'], /^error: option '--keep-variants <n>'/, 'pipeline cache gc'],
  ];
  for (const [args, error, verb] of cases) {
    const r = await box.cli(args);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, error);
    assert.equal(r.stderr.trimEnd().split('\n').length, 2, `two lines, not the help:\n${r.stderr}`);
    assert.equal(r.stderr.trimEnd().split('\n')[1], `see ${verb} --help`);
  }
});

test('a read-only verb on a mistyped --cache is an error and creates nothing', async () => {
  const box = sandbox();
  const file = box.write('p.yaml', TOY_PIPELINE);
  const missing = join(box.dir, 'cahce');
  const readers = [['status', file], ['run', file, '-n'], ['report', file, '-o', join(box.dir, 'r.html')], ['predict', '-w', `${file}:total`, join(box.dir, 'img.png')], ['show', file, 'total'], ['cache', 'ls'], ['cache', 'verify'], ['cache', 'gc', file]];
  for (const args of readers) {
    const r = await box.cli([...args, '--cache', missing]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, new RegExp(`no cache at ${missing.replace(/[/\\]/g, '.')}`));
    assert.equal(existsSync(missing), false, `${args[0]} created the cache`);
  }
  assert.equal(existsSync(join(box.dir, 'r.html')), false, 'report wrote a report of a cache that is not there');
  // A folder of other files is no cache either: reading verbs refuse it and leave it as it was.
  const other = join(box.dir, 'photos');
  mkdirSync(other);
  writeFileSync(join(other, 'a.txt'), 'not a cache');
  for (const args of readers) {
    const r = await box.cli([...args, '--cache', other]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /not a medpipe cache/);
    assert.deepEqual(readdirSync(other), ['a.txt'], `${args[0]} wrote into ${other}`);
  }
  // Running creates it, as it must.
  const run = await box.cli(['run', file, '--cache', missing]);
  assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.equal((await box.cli(['status', file, '--cache', missing])).code, 0);
});

test('repeating --only on one axis is a union; contradictory filters are an error naming them', async () => {
  const box = sandbox();
  const file = box.write('p.yaml', TOY_PIPELINE);
  const union = await box.cli(['run', file, '--only', 'model=resnet', '--only', 'model=deit', '--only', 'seed=1']);
  assert.equal(union.code, 0, union.stderr);
  assert.deepEqual(box.runs().filter((id) => id.startsWith('train')).sort(), ['train[model=deit,seed=1]', 'train[model=resnet,seed=1]']);

  const contradiction = await box.cli(['status', file, 'train[model=deit,seed=1]', '--only', 'seed=2']);
  assert.equal(contradiction.code, 2, contradiction.stdout);
  assert.match(contradiction.stderr, /no node matches all of targets train\[model=deit,seed=1\]; --only seed=2/);
});

test('show prints a summary by default, the whole manifest with --full or --json', async () => {
  const box = sandbox();
  const file = box.write('p.yaml', TOY_PIPELINE);
  await box.cli(['run', file]);
  const summary = await box.cli(['show', file, 'total']);
  assert.equal(summary.code, 0, summary.stderr);
  assert.match(summary.stdout, /^total {2}\(stage total, kind collect v1, pipeline toy\)\nkey {7}[0-9a-f]{64}\n/);
  assert.match(summary.stdout, /out\s+json\s+[0-9a-f]{12}\s+\{"sum":46,"n":4,/);
  assert.doesNotMatch(summary.stdout, /"material"/);
  assert.ok(summary.stdout.split('\n').length < 15);
  for (const flag of ['--full', '--json']) {
    const full = JSON.parse((await box.cli(['show', file, 'total', flag])).stdout) as { material: { kind: string } };
    assert.equal(full.material.kind, 'collect');
  }
});

test('an --only run prints the table of the cells it selected (the report node, which needs every cell, is left out)', async () => {
  const box = sandbox();
  const file = box.write('p.yaml', TOY_PIPELINE);
  const r = await box.cli(['run', file, '--only', 'model=deit']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(!box.runs().includes('total'), 'the gathering node did not run on part of its inputs');
  // train = seed + base 10: DeiT-S over seeds 1 and 2 is 11 and 12.
  assert.match(r.stdout, /table of the selected cells \(--only model=deit; the report needs every cell: run without --only for it\):\n\| model \| value \|\n\|---\|---\|\n\| DeiT-S \| 11\.500 ± 0\.707 \|\n/);
  assert.doesNotMatch(r.stdout, /ResNet50/);
  // One seed of every model: each cell says it holds 1 of its 2 values.
  const seed = await box.cli(['run', file, '--only', 'seed=2']);
  assert.match(seed.stdout, /\| ResNet50 \| 12\.000 ± – \(1\/2\) \|\n\| DeiT-S \| 12\.000 ± – \(1\/2\) \|/);
  // The whole pipeline: the report node's own table, no partial one.
  const all = await box.cli(['run', file]);
  assert.doesNotMatch(all.stdout, /table of the selected cells/);
});

test('a --cache under a file (or that is a file) exits 2 naming the file, not a raw ENOTDIR/EEXIST', async () => {
  const box = sandbox();
  const file = box.write('toy.yaml', TOY_PIPELINE);
  const plain = box.write('notes.txt', 'not a folder');
  const under = await box.cli(['run', file, '--cache', join(plain, 'cache')]);
  assert.equal(under.code, 2, under.stdout + under.stderr);
  assert.match(under.stderr, new RegExp(`^error: cannot create the cache folder ${join(plain, 'cache')}: ${plain} is a file, not a folder`, 'm'));
  const itself = await box.cli(['status', file, '--cache', plain]);
  assert.equal(itself.code, 2, itself.stdout + itself.stderr);
  assert.match(itself.stderr, new RegExp(`${plain} is a file, not a folder`));
  assert.equal(box.runs().length, 0);
});

test('a missing pipeline file, a folder given as one, and a missing plugin exit 2 in words naming the file (and the plugins: line)', async () => {
  const box = sandbox();
  const missing = await box.cli(['run', 'nothere.yaml']);
  assert.equal(missing.code, 2);
  assert.equal(missing.stderr, 'error: nothere.yaml: cannot read pipeline file: no such file\n');
  const folder = await box.cli(['status', box.dir]);
  assert.equal(folder.code, 2);
  assert.equal(folder.stderr, `error: ${box.dir}: cannot read pipeline file: it is a folder, not a file\n`);
  const file = box.write('toy.yaml', TOY_PIPELINE.replace(/plugins: \[.*\]/, 'plugins: [./stages-typo.js]'));
  for (const verb of ['run', 'status', 'dag']) {
    const r = await box.cli([verb, file]);
    assert.equal(r.code, 2, `${verb}: ${r.stdout}${r.stderr}`);
    assert.equal(r.stderr, `error: ${file}:3:11: plugin ${join(box.dir, 'stages-typo.js')} cannot be read (no such file)\n`, verb);
  }
  assert.equal(box.runs().length, 0);
});

test('report -o and compare --html into a folder that is not there exit 2 naming the option and the folder', async () => {
  const box = sandbox();
  const file = box.write('toy.yaml', TOY_PIPELINE);
  assert.equal((await box.cli(['run', file])).code, 0);
  const report = await box.cli(['report', file, '-o', 'out/report.html']);
  assert.equal(report.code, 2, report.stdout + report.stderr);
  assert.equal(report.stderr, `error: -o out/report.html: cannot write the file: there is no folder ${join(box.dir, 'out')}\n`);
  const notes = box.write('notes.txt', 'a file');
  const compare = await box.cli(['compare', file, '--against', 'vars.base=11', '--html', join(notes, 'c.html')]);
  assert.equal(compare.code, 2, compare.stdout + compare.stderr);
  assert.equal(compare.stderr, `error: --html ${join(notes, 'c.html')}: cannot write the file: a part of its path is a file, not a folder\n`);
  const written = await box.cli(['report', file, '-o', 'report.html']);
  assert.equal(written.code, 0, written.stderr);
  assert.ok(existsSync(join(box.dir, 'report.html')));
});

test('show and history of a node the pipeline does not have exit 2 naming the pipeline file, the node and the nearest names', async () => {
  const box = sandbox();
  const file = box.write('toy.yaml', TOY_PIPELINE);
  for (const verb of ['show', 'history']) {
    const r = await box.cli([verb, file, 'tarin']);
    assert.equal(r.code, 2, `${verb}: ${r.stdout}${r.stderr}`);
    assert.equal(r.stderr, `error: ${file}: node tarin: matches no node (Did you mean train?) (stages: src, train, total)\n`, verb);
    // A stage is no node: say how to name one of its instances, with its axes' values.
    const stage = await box.cli([verb, file, 'train']);
    assert.equal(stage.code, 2, stage.stderr);
    assert.equal(
      stage.stderr,
      `error: ${file}: node train: "train" is a stage of 4 nodes, not one node: name one as 'train[model=...,seed=...]' (model: resnet, deit; seed: 1, 2), e.g. 'train[model=resnet,seed=1]'\n`,
      verb,
    );
  }
});

test("a node id with an unknown axis value says what --only says, in show and in run's targets", async () => {
  const box = sandbox();
  const file = box.write('toy.yaml', TOY_PIPELINE);
  const only = await box.cli(['run', file, '-n', '--only', 'model=vit']);
  assert.equal(only.stderr, 'error: --only model=vit: unknown value "vit" of axis model (values: resnet, deit)\n');
  const run = await box.cli(['run', file, '-n', 'train[model=vit,seed=1]']);
  assert.equal(run.code, 2, run.stderr);
  assert.equal(run.stderr, 'error: target train[model=vit,seed=1]: unknown value "vit" of axis model (values: resnet, deit)\n');
  const show = await box.cli(['show', file, 'train[modle=resnet,seed=1]']);
  assert.equal(show.stderr, `error: ${file}: node train[modle=resnet,seed=1]: unknown axis "modle" (Did you mean model?) (axes: seed, model)\n`);
  const partial = await box.cli(['run', file, '-n', 'train[model=deit]']);
  assert.match(partial.stderr, /^error: target train\[model=deit\]: names 1 of train's 2 axes \(missing: seed\): name one as 'train\[model=\.\.\.,seed=\.\.\.\]'/);
  // A glob that matches nothing is not read as an id: '*' is no unknown value.
  const glob = await box.cli(['run', file, '-n', 'trian[model=*]']);
  assert.equal(glob.code, 2, glob.stderr);
  assert.equal(glob.stderr, 'error: target trian[model=*]: matches no node (stages: src, train, total)\n');
});

test('a reader that closes the pipe early (`pipeline status … | head -1`) is no crash: the command ends with its own exit code and no EPIPE stack trace', async () => {
  const box = sandbox();
  const file = box.write('toy.yaml', TOY_PIPELINE);
  assert.equal((await box.cli(['run', file])).code, 0);
  for (const args of [['status', file], ['run', file], ['cache', 'ls']]) {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: box.dir, env: { ...process.env, CI: 'true', MEDPIPE_CACHE: box.cache }, stdio: ['ignore', 'pipe', 'pipe'] });
    // Closed before the child writes anything: its first write meets a pipe with no reader.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    // Base: exit 1, "Error: write EPIPE ... Unhandled 'error' event" and a stack trace.
    assert.equal(code, 0, `${args.join(' ')}: ${stderr}`);
    assert.doesNotMatch(stderr, /EPIPE|\n\s+at /, args.join(' '));
  }
});

test('predict -w naming a file that is not there, or a node without weights, exits 2 naming -w (not a raw ENOENT, exit 1)', async () => {
  const box = sandbox();
  const file = box.write('toy.yaml', TOY_PIPELINE);
  assert.equal((await box.cli(['run', file])).code, 0);
  const missing = await box.cli(['predict', '-w', 'nothing.safetensors', 'x.png']);
  // Base: "error: ENOENT: no such file or directory, open '…/nothing.safetensors'", exit 1.
  assert.equal(missing.code, 2, missing.stderr);
  assert.match(missing.stderr, /^error: -w nothing\.safetensors: no such file \(give a \.safetensors checkpoint, or pipeline\.yaml:node/);
  const noWeights = await box.cli(['predict', '-w', `${file}:src[seed=1]`, 'x.png']);
  assert.equal(noWeights.code, 2, noWeights.stderr);
  assert.match(noWeights.stderr, /src\[seed=1\] \(kind emit\) has no weights file output; name a finetune or pretrain node/);
});
