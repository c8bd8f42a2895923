// A plugin written as the README's "Writing a stage kind" shows: it imports defineStage from
// 'medpipe/src/contract.js', which resolves once medpipe is installed in the plugin's project
// (`npm install /path/to/medpipe` links node_modules/medpipe to the checkout).
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO, sandbox } from './support/toy.js';

const PLUGIN = `import { defineStage } from 'medpipe/src/contract.js';

export const numbers = defineStage({
  kind: 'numbers',
  version: 1,
  params: { type: 'object', properties: { n: { type: 'integer', default: 3 } } },
  outputs: { values: 'json' },
  async run(ctx) {
    ctx.outputs.json('values', Array.from({ length: ctx.params.n }, (_, i) => i + 1));
  },
});

export default defineStage({
  kind: 'scale',
  version: 1,
  params: { type: 'object', properties: { factor: { type: 'number', default: 2 } } },
  inputs: { values: { type: 'json' } },
  outputs: { scaled: 'json' },
  resources: { cpus: 1 },
  async run(ctx) {
    const values = ctx.inputs.json('values');
    ctx.progress(\`scaling \${values.length} values\`);
    ctx.outputs.json('scaled', values.map((v) => v * ctx.params.factor));
  },
});
`;

test("a plugin importing 'medpipe/src/contract.js', as the README writes it, loads from a project that installed medpipe", async () => {
  const box = sandbox();
  mkdirSync(join(box.dir, 'node_modules'));
  symlinkSync(REPO, join(box.dir, 'node_modules', 'medpipe'), 'dir');
  writeFileSync(join(box.dir, 'scale.js'), PLUGIN);
  const file = box.write(
    'p.yaml',
    `
name: mine
plugins: [./scale.js]
stages:
  numbers: {uses: numbers, with: {n: 4}}
  scale:
    uses: scale
    inputs: {values: numbers.values}
    with: {factor: 3}
`,
  );
  // Base: "cannot load stage kinds from …/scale.js: Cannot find module …/src/contract.js" (the TypeScript source's path, not dist/).
  const r = await box.cli(['run', file]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.deepEqual((await box.show(file, 'scale')).outputs['scaled']!.value, [3, 6, 9, 12]);
});
