import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { blobsPipeline, sandbox, TOY_PIPELINE } from './support/toy.js';


test('a second run executes nothing; one changed parameter reruns exactly its dependants', async () => {
  const box = sandbox();
  const file = box.write('p.yaml', TOY_PIPELINE);
  const first = await box.cli(['run', file]);
  assert.equal(first.code, 0, first.stderr + first.stdout);
  assert.equal(box.runs().length, 7);
  assert.match(first.stdout, /7 ran/);

  const second = await box.cli(['run', file]);
  assert.equal(second.code, 0);
  assert.equal(box.runs().length, 7, 'nothing executes on a no-op run');
  assert.match(second.stdout, /7 cached/);
  const unkeyed = await box.cli(['run', file, '--set', 'src.with.sleep_ms=5']);
  assert.match(unkeyed.stdout, /7 cached/, 'a parameter the kind declares unkeyed does not enter the key');

  const status = await box.cli(['status', file, '--set', 'train.with.offset=11', '--only', 'model=deit']);
  assert.match(status.stdout, /train\[model=deit,seed=1\]\s+to run\s+params changed \(offset: 10 -> 11\)/);
  assert.match(status.stdout, /src\[seed=1\]\s+cached/);

  const changed = await box.cli(['run', file, '--set', 'train.with.offset=11', '--only', 'model=deit']);
  assert.equal(changed.code, 0, changed.stdout);
  assert.deepEqual(box.runs().slice(7).sort(), ['train[model=deit,seed=1]', 'train[model=deit,seed=2]']);

  // Reverting is an instant hit: both results live side by side under their keys.
  const reverted = await box.cli(['run', file]);
  assert.equal(reverted.code, 0);
  assert.equal(box.runs().length, 9);
});

test('early cut-off: an upstream rerun with identical output invalidates nothing downstream', async () => {
  const box = sandbox();
  const file = box.write('p.yaml', TOY_PIPELINE);
  await box.cli(['run', file]);
  const before = box.runs().length;
  // `label` changes src's key but not its output bytes: src reruns, nothing below it does.
  const r = await box.cli(['run', file, '--set', 'src.with.label=relabelled']);
  assert.equal(r.code, 0, r.stdout);
  assert.deepEqual(box.runs().slice(before).sort(), ['src[seed=1]', 'src[seed=2]']);
  assert.match(r.stdout, /2 ran, 5 cached/);
});

test('status explains why: never run, kind version bumped, upstream will run', async () => {
  const box = sandbox();
  const file = box.write('p.yaml', TOY_PIPELINE);
  const fresh = await box.cli(['status', file]);
  assert.match(fresh.stdout, /src\[seed=1\]\s+to run\s+never run/);
  assert.match(fresh.stdout, /total\s+to run\s+upstream train\[model=resnet,seed=1\] will run/);
  await box.cli(['run', file]);
  const bumped = await box.cli(['status', file], { env: { TOY_EMIT_VERSION: '2' } });
  assert.match(bumped.stdout, /src\[seed=2\]\s+to run\s+kind version bumped \(1 -> 2\)/);
  const dry = await box.cli(['run', '--dry-run', file], { env: { TOY_EMIT_VERSION: '2' } });
  assert.match(dry.stdout, /7 would-run/);
  assert.equal(box.runs().length, 7, 'a dry run executes nothing');
});

test('a failed node stops only its descendants, and the summary shows its log', async () => {
  const box = sandbox();
  const yaml = TOY_PIPELINE.replace('      offset: ${vars.base}', '      offset: ${vars.base}\n    cases:\n      - when: {model: deit, seed: 2}\n        with: {fail: true}');
  const file = box.write('p.yaml', yaml);
  const r = await box.cli(['run', file]);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /✖ train\[model=deit,seed=2\]: toy failure in train\[model=deit,seed=2\]/);
  assert.match(r.stdout, /log: .*logs\/train_model=deit,seed=2_\.[0-9a-f]{12}\.log/);
  assert.match(r.stdout, /↷ total skipped \(upstream train\[model=deit,seed=2\] did not finish\)/);
  assert.deepEqual(box.runs().filter((n) => n.startsWith('train')).length, 4, 'independent branches still ran');
  // Fixing the parameter reruns only the failed node and what it blocked.
  const fixed = await box.cli(['run', file, '--set', 'train.cases=[]']);
  assert.equal(fixed.code, 0, fixed.stdout);
  assert.deepEqual(box.runs().slice(6).sort(), ['total', 'train[model=deit,seed=2]']);
});

test('--cell runs exactly the cell and its ancestors and prints its values', async () => {
  const box = sandbox();
  const file = box.write('p.yaml', TOY_PIPELINE);
  const r = await box.cli(['run', file, '--cell', 'DeiT-S']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.deepEqual(box.runs().sort(), ['src[seed=1]', 'src[seed=2]', 'train[model=deit,seed=1]', 'train[model=deit,seed=2]']);
  assert.match(r.stdout, /median 11\.5000 over 2 seed value\(s\)/);
});

test('file and record-set artifacts round-trip, and a corrupted blob is caught and recomputed', async () => {
  const box = sandbox();
  const file = box.write(
    'p.yaml',
    blobsPipeline('hello'),
  );
  const r = await box.cli(['run', file]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const show = await box.cli(['show', file, 'read', '--json']);
  const manifest = JSON.parse(show.stdout) as { outputs: { out: { value: unknown } }; provenance: { versions: Record<string, string> } };
  assert.deepEqual(manifest.outputs.out.value, { text: 'hello', joined: 'hello', count: 5, meta: { count: 5 } });
  assert.ok(manifest.provenance.versions['medpipe']);

  const casDir = join(box.cache, 'cas');
  const [prefix] = readdirSync(casDir);
  const [rest] = readdirSync(join(casDir, prefix!));
  writeFileSync(join(casDir, prefix!, rest!), 'tampered');
  const verify = await box.cli(['cache', 'verify']);
  assert.equal(verify.code, 1);
  assert.match(verify.stdout, /✖ make \([0-9a-f]{12}\) output file: blob content hashes to .* dropped/);
  const rerun = await box.cli(['run', file]);
  assert.equal(rerun.code, 0, rerun.stdout);
  assert.deepEqual(box.runs(), ['make', 'read', 'make'], 'only the broken node reruns; its identical output keeps read cached');
  assert.equal((await box.cli(['cache', 'verify'])).code, 0);
});

test('a node killed mid-way resumes from its checkpoint', async () => {
  const box = sandbox();
  const file = box.write('p.yaml', `
name: resume
plugins: [$TOY]
stages:
  long:
    uses: resumable
    with: {steps: 10, crash_at: 6}
`);
  const crashed = await box.cli(['run', file]);
  assert.equal(crashed.code, 1);
  assert.match(crashed.stdout, /worker exited with code 9/);
  const resumed = await box.cli(['run', file]);
  assert.equal(resumed.code, 0, resumed.stdout);
  const show = JSON.parse((await box.cli(['show', file, 'long', '--json'])).stdout) as { outputs: { out: { value: { steps: number; resumedFrom: number } } } };
  assert.deepEqual(show.outputs.out.value, { steps: 10, resumedFrom: 6 });
});

test('cache gc keeps what the pipeline reaches and deletes the rest', async () => {
  const box = sandbox();
  const file = box.write('p.yaml', TOY_PIPELINE);
  await box.cli(['run', file, '--set', 'vars.base=1']);
  await box.cli(['run', file]);
  const ls = await box.cli(['cache', 'ls']);
  assert.match(ls.stdout, /12 result\(s\)/, ls.stdout);
  const gc = await box.cli(['cache', 'gc', file, '--keep-variants', '0', '--yes']);
  assert.match(gc.stdout, /deleted 5 result\(s\)/, gc.stdout + gc.stderr);
  const again = await box.cli(['run', file]);
  assert.match(again.stdout, /7 cached/);
  assert.equal(box.runs().length, 12);
});

test('bad input exits 2 with the located message and runs nothing', async () => {
  const box = sandbox();
  const file = box.write('p.yaml', TOY_PIPELINE.replace('uses: add', 'uses: addd'));
  const r = await box.cli(['run', file]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /p\.yaml:16:5: stages\.train\.uses: unknown stage kind "addd"/);
  assert.equal(box.runs().length, 0);
  const log = readFileSync(file, 'utf8');
  assert.ok(log.length > 0);
});

test('two instances with the same key in one run compute once', async () => {
  const box = sandbox();
  const file = box.write('p.yaml', TOY_PIPELINE.replace('      tag: ${model}\n', '').replace('      offset: ${vars.base}', '      offset: ${vars.base}\n      sleep_ms: 300'));
  const r = await box.cli(['run', file]);
  assert.equal(r.code, 0, r.stdout);
  assert.equal(box.runs().filter((n) => n.startsWith('train')).length, 2, 'resnet and deit instances share a key (the model axis changes nothing)');
  assert.match(r.stdout, /computed by another run/);
});

test('show -o prints one output: a json value or a file\'s bytes', async () => {
  const box = sandbox();
  const file = box.write('p.yaml', `
name: blobs
plugins: [$TOY]
stages:
  make:
    uses: blob
    with: {text: hello}
`);
  assert.equal((await box.cli(['run', file])).code, 0);
  assert.equal((await box.cli(['show', file, 'make', '-o', 'file'])).stdout, 'hello');
  const bad = await box.cli(['show', file, 'make', '-o', 'nope']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /make has no output "nope" \(outputs: file, records\)/);
});
