import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { codeDigest, definingModule } from '../src/code/digest.js';

function plugin(): string {
  const dir = mkdtempSync(join(tmpdir(), 'medpipe-code-'));
  mkdirSync(join(dir, 'lib'));
  writeFileSync(join(dir, 'stages.js'), "import { helper } from './lib/helper.js';\nimport { readFile } from 'node:fs/promises';\nexport const k = { kind: 'k', version: 1, run: () => helper() };\n");
  writeFileSync(join(dir, 'lib', 'helper.js'), "import { stage } from '../stages.js';\nexport const helper = () => import('./lazy.js');\n");
  writeFileSync(join(dir, 'lib', 'lazy.js'), 'export const two = 2;\n');
  writeFileSync(join(dir, 'unrelated.js'), 'export const x = 1;\n');
  return dir;
}

test('the code digest covers the module and its local imports (static, cyclic, dynamic), and nothing else', async () => {
  const dir = plugin();
  const url = pathToFileURL(join(dir, 'stages.js')).href;
  const first = await codeDigest(url);
  assert.deepEqual(first.files, ['lib/helper.js', 'lib/lazy.js', 'stages.js']);

  writeFileSync(join(dir, 'unrelated.js'), 'export const x = 2;\n');
  assert.equal((await codeDigest(url)).digest, first.digest, 'a file nothing imports does not count');

  writeFileSync(join(dir, 'lib', 'lazy.js'), 'export const two = 3;\n');
  assert.notEqual((await codeDigest(url)).digest, first.digest, 'an edit two imports deep changes the digest');
});

test('the code digest does not depend on where the project lives', async () => {
  const dir = plugin();
  const copy = mkdtempSync(join(tmpdir(), 'medpipe-code-copy-'));
  cpSync(dir, copy, { recursive: true });
  const a = await codeDigest(pathToFileURL(join(dir, 'stages.js')).href);
  const b = await codeDigest(pathToFileURL(join(copy, 'stages.js')).href);
  assert.equal(a.digest, b.digest);
});

test("a built-in kind's code is its own stage file, not the whole index", async () => {
  const index = new URL('../stages/index.js', import.meta.url).href;
  const { default: finetune } = (await import(new URL('../stages/finetune.js', import.meta.url).href)) as { default: unknown };
  const defining = await definingModule(index, finetune);
  assert.equal(defining, new URL('../stages/finetune.js', import.meta.url).href);
  const code = await codeDigest(defining);
  assert.ok(code.files.includes('finetune.js'));
  assert.ok(code.files.some((f) => f.startsWith('../src/ml/train/')), 'it reaches into the framework code it uses');
  assert.ok(!code.files.includes('dino.js'), 'other stage files are not part of it');
});

test('subpath imports (#…) are judged from the importing package: a plugin installed in node_modules keeps its #lib helper, a mapping to another package stays out; a cycle back to the entry ends', async () => {
  const root = mkdtempSync(join(tmpdir(), 'medpipe-code-sub-'));
  const pkg = join(root, 'node_modules', 'lab-stages');
  mkdirSync(join(pkg, 'lib'), { recursive: true });
  mkdirSync(join(root, 'node_modules', 'other', 'lib'), { recursive: true });
  writeFileSync(join(root, 'node_modules', 'other', 'package.json'), JSON.stringify({ name: 'other', type: 'module', exports: './lib/x.js' }));
  writeFileSync(join(root, 'node_modules', 'other', 'lib', 'x.js'), 'export const x = 1;\n');
  writeFileSync(
    join(pkg, 'package.json'),
    JSON.stringify({ name: 'lab-stages', type: 'module', imports: { '#lib/*': { node: './lib/*', default: './nowhere/*' }, '#other': 'other'} }),
  );
  writeFileSync(join(pkg, 'stages.js'), "import { f } from '#lib/factor.js';\nimport { x } from '#other';\nexport const k = { kind: 'k', version: 1, run: () => f * x };\n");
  writeFileSync(join(pkg, 'lib', 'factor.js'), "import { k } from '#lib/../stages.js';\nimport { k as again } from '../stages.js';\nexport const f = 2;\n");
  const url = pathToFileURL(join(pkg, 'stages.js')).href;
  const first = await codeDigest(url);
  // Base: ['stages.js'] (the helper was left out because its path runs through node_modules).
  assert.deepEqual(first.files, ['lib/factor.js', 'stages.js']);
  writeFileSync(join(pkg, 'lib', 'factor.js'), 'export const f = 3;\n');
  assert.notEqual((await codeDigest(url)).digest, first.digest, 'editing the #lib helper changes the digest');
});
