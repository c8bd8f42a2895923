import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { sandbox, TOY_MODULE, TOY_PIPELINE } from './support/toy.js';

/** The toy kinds behind a plugin that leaves a file when it is imported: code that ran. */
function markerPlugin(box: ReturnType<typeof sandbox>): { pipeline: string; marker: string } {
  const marker = join(box.dir, 'imported');
  box.write('plugin.mjs', `import { writeFileSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(marker)}, 'imported');\nexport * from ${JSON.stringify(TOY_MODULE)};\n`);
  return { pipeline: TOY_PIPELINE.replace('plugins: [$TOY]', 'plugins: [plugin.mjs]'), marker };
}

test('pipeline dag plans from the YAML alone: no plugin code runs, the graph is the same as after importing', async () => {
  const box = sandbox();
  const { pipeline, marker } = markerPlugin(box);
  const file = box.write('p.yaml', pipeline);
  const dag = await box.cli(['dag', file, '--only', 'model=deit', '-f', 'dot']);
  assert.equal(dag.code, 0, dag.stderr);
  assert.equal(existsSync(marker), false, 'dag imported the plugin');
  // The same graph the imported kinds give (`status` imports them).
  const reference = await box.cli(['dag', box.write('q.yaml', TOY_PIPELINE), '--only', 'model=deit', '-f', 'dot']);
  assert.equal(dag.stdout, reference.stdout);
  assert.match(dag.stdout, /"src\[seed=1\]" -> "train\[model=deit,seed=1\]"/);
  await box.cli(['status', file]);
  assert.equal(existsSync(marker), true, 'status imports plugins (it needs their code to key nodes)');
});

test('pipeline dag still checks what the YAML says: a missing plugin file, a reference to no stage', async () => {
  const box = sandbox();
  const { pipeline, marker } = markerPlugin(box);
  const missing = await box.cli(['dag', box.write('m.yaml', pipeline.replace('plugin.mjs', 'plugni.mjs'))]);
  assert.equal(missing.code, 2, missing.stdout);
  assert.match(missing.stderr, /m\.yaml:3:\d+: plugin \S*plugni\.mjs cannot be read \(no such file\)/);
  const badRef = await box.cli(['dag', box.write('r.yaml', pipeline.replace('a: src.out', 'a: scr.out'))]);
  assert.equal(badRef.code, 2, badRef.stdout);
  assert.match(badRef.stderr, /scr/);
  // Built-in kinds are known without importing anything: their parameters are checked.
  const builtinParam = await box.cli(['dag', box.write('o.yaml', pipeline.replace('items: train.out', 'items: train.out\n  agg:\n    uses: aggregate\n    inputs: {metrics: train.out}\n    with: {table: {}, digits: 99}'))]);
  assert.equal(builtinParam.code, 2, builtinParam.stdout);
  assert.match(builtinParam.stderr, /agg\.with\.digits|digits/);
  assert.equal(existsSync(marker), false);
});
