// What `pipeline --help` (and a usage error) loads: commander and the CLI's wiring, not the
// cache's LMDB, the YAML/schema stack or the scheduler, each loaded by the verb that uses it. On
// this machine that is about 120 ms of CPU against 370 ms when every verb's modules loaded first.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { BIN, sandbox } from './support/toy.js';

test('pipeline --help and --version load commander and the CLI wiring only: no LMDB, ajv, yaml, graphology or scheduler', () => {
  const box = sandbox();
  const seen = join(box.dir, 'loaded.txt');
  const hooks = box.write('hooks.mjs', `import { appendFileSync } from 'node:fs';\nexport async function load(url, context, next) { appendFileSync(${JSON.stringify(seen)}, url + '\\n'); return next(url, context); }\n`);
  const register = box.write('register.mjs', `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
  for (const args of [['--help'], ['--version'], ['run', '--help']]) {
    const r = spawnSync(process.execPath, ['--import', pathToFileURL(register).href, BIN, ...args], { encoding: 'utf8', cwd: box.dir });
    assert.equal(r.status, 0, r.stderr);
    const loaded = readFileSync(seen, 'utf8').split('\n');
    assert.ok(loaded.some((u) => /node_modules\/commander\//.test(u)), 'the hook sees the CLI load');
    const heavy = loaded.filter((u) => /node_modules\/(lmdb|msgpackr|ajv|yaml|graphology)\/|dist\/src\/(store\/store|run\/scheduler|config\/load)\.js$/.test(u));
    assert.deepEqual(heavy, [], `pipeline ${args.join(' ')}`);
  }
});
