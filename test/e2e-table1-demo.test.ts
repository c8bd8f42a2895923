// [slow] The embedded default, reduced by command-line overrides: pipelines/table1-demo.yaml
// end to end through the CLI, as a new user runs it (about a minute on 2 cores).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { REDUCED_DEMO_ARGS, REPO, runCli } from './support/toy.js';

const DEMO = join(REPO, 'pipelines', 'table1-demo.yaml');
const SHORT = REDUCED_DEMO_ARGS;

/** Node ids that executed in a run, read from its plain output. */
const ran = (stdout: string) => [...stdout.matchAll(/✔ (\S+) ran/g)].map((m) => m[1]!).sort();

test('[slow] table1-demo: every cell filled, a no-op rerun, one changed cell reruns exactly its nodes', { timeout: 900_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'medpipe-e2e-'));
  const cache = join(dir, 'cache');
  const cli = (...args: string[]) => runCli(['run', DEMO, '--plain', ...SHORT, ...args], { cwd: REPO, env: { MEDPIPE_CACHE: cache } });

  const cold = await cli();
  assert.equal(cold.code, 0, cold.stdout.slice(-3000) + cold.stderr);
  // 3 data sets x 2 models x 3 inits x 1 seed.
  assert.equal(ran(cold.stdout).filter((id) => id.startsWith('evaluate[')).length, 18);
  const table = cold.stdout.slice(cold.stdout.indexOf('report:'));
  for (const row of ['Random', 'ProxyNet', 'ProxyNet+DINO']) {
    for (const model of ['ResNet-demo', 'ViT-demo']) {
      const line = table.split('\n').find((l) => l.startsWith(`| ${row} | ${model} |`));
      assert.ok(line, `row ${row}/${model} in:\n${table}`);
      assert.equal((line.match(/-?\d\.\d{3} ± /g) ?? []).length, 3, `every data set has a value: ${line}`);
    }
  }
  const reportDigest = () => {
    const show = runCli(['show', DEMO, 'report', '--json', ...SHORT], { cwd: REPO, env: { MEDPIPE_CACHE: cache } });
    return show.then((r) => (JSON.parse(r.stdout) as { outputs: { markdown: { digest: string } } }).outputs.markdown.digest);
  };
  const before = await reportDigest();
  const tableBytes = readFileSync(join(cache, 'cas', before.slice(0, 2), before.slice(2)));

  const noop = await cli();
  assert.equal(noop.code, 0);
  assert.deepEqual(ran(noop.stdout), [], 'a second run executes nothing');
  assert.equal(await reportDigest(), before);
  assert.deepEqual(readFileSync(join(cache, 'cas', before.slice(0, 2), before.slice(2))), tableBytes, 'the table file is byte-identical');

  const cell = 'finetune.cases=[{when: {dataset: aptos2019, model: deit_s, init: random}, with: {lr: 0.01}}]';
  const changed = await cli('--set', cell);
  assert.equal(changed.code, 0, changed.stdout.slice(-3000));
  // The cell's own nodes rerun; the table reruns only if the cell's metric changed bytes.
  const rerun = ran(changed.stdout);
  assert.deepEqual(rerun.filter((id) => id !== 'report'), [
    'evaluate[dataset=aptos2019,model=deit_s,init=random,seed=1]',
    'finetune[dataset=aptos2019,model=deit_s,init=random,seed=1]',
  ]);
});
