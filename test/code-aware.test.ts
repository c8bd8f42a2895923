import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { openPipeline } from '../src/cli/session.js';
import { describeReason } from '../src/run/reason.js';
import { planNodes } from '../src/run/plan.js';
import { Store } from '../src/store/store.js';
import { BIN, sandbox, type Sandbox } from './support/toy.js';

// A plugin whose result comes from a helper module it imports: editing the helper is editing the kind.
function writePlugin(box: Sandbox, factor: number): string {
  mkdirSync(join(box.dir, 'lib'), { recursive: true });
  writeFileSync(join(box.dir, 'lib', 'factor.js'), `export const factor = ${factor};\n`);
  const file = join(box.dir, 'double.js');
  writeFileSync(
    file,
    `import { appendFileSync } from 'node:fs';
import { factor } from './lib/factor.js';
export const double = {
  kind: 'double', version: 1,
  params: { type: 'object', properties: { x: { type: 'number' } } },
  outputs: { out: 'json' },
  async run(ctx) {
    appendFileSync(process.env.TOY_RUN_LOG, ctx.node + '\\n');
    ctx.outputs.json('out', { value: ctx.params.x * factor });
  },
};
`,
  );
  return file;
}

const pipeline = (plugin: string) => `
name: code
plugins: [${plugin}]
stages:
  d:
    uses: double
    with: {x: 21}
`;

test('editing a plugin (or a module it imports) reruns its nodes, and status says why', async () => {
  const box = sandbox();
  const plugin = writePlugin(box, 2);
  const file = box.write('p.yaml', pipeline(plugin));
  assert.equal((await box.cli(['run', file])).code, 0);
  assert.equal((await box.cli(['run', file])).code, 0);
  assert.deepEqual(box.runs(), ['d'], 'unchanged code: a hit');
  const shown = await box.show(file, 'd');
  assert.match((shown as unknown as { provenance: { code: { digest: string } } }).provenance.code.digest, /^[0-9a-f]{64}$/);

  writePlugin(box, 3);
  const status = await box.cli(['status', file]);
  assert.match(status.stdout, /d\s+to run\s+code of kind double changed/);
  await box.cli(['run', file]);
  assert.deepEqual(box.runs(), ['d', 'd']);
  assert.equal(((await box.show(file, 'd')).outputs['out'] as { value: { value: number } }).value.value, 63);
});

test('a built-in kind is keyed by version: a code change is reported, and --rerun-triggers code reruns it', async () => {
  const box = sandbox();
  const plugin = writePlugin(box, 2);
  const file = box.write('p.yaml', pipeline(plugin).replace(/plugins: .*\n/, ''));
  // The same module, registered as medpipe's own kinds are.
  const env = { builtinKinds: [pathToFileURL(plugin).href] };
  const { runNodes } = await import('../src/run/scheduler.js');
  const { LocalExecutor } = await import('../src/run/executors/local.js');
  const { SILENT } = await import('../src/run/plan.js');
  const store = new Store(box.cache);
  process.env['TOY_RUN_LOG'] = box.runLog;
  try {
    const opened = await openPipeline(file, [], env);
    assert.equal(opened.registry.get('double')!.builtin, true);
    const executor = new LocalExecutor();
    const ran = await runNodes({ ...opened, store }, new Set(['d']), {
      capacity: { jobs: 1, cpus: 1, gpu: 0, memory_gb: 1 },
      dryRun: false,
      signal: new AbortController().signal,
      executor,
      reporter: SILENT,
    });
    await executor.close?.();
    assert.equal(ran.get('d')!.state, 'ran');

    writePlugin(box, 3);
    // A fresh process would see the new code; in this one, a fresh module URL does.
    const reopened = await openPipeline(file, [], { builtinKinds: [`${pathToFileURL(plugin).href}?v=3`] });
    const plan = (await planNodes({ ...reopened, store }, new Set(['d']))).get('d')!;
    assert.equal(plan.state, 'cached');
    assert.match(describeReason(plan.reason!), /code of kind double changed since this result .*--rerun-triggers code/);
    const forced = (await planNodes({ ...reopened, store, codeTrigger: 'all' }, new Set(['d']))).get('d')!;
    assert.equal(forced.state, 'would-run');
    assert.match(describeReason(forced.reason!), /now keyed by code/);
  } finally {
    await store.close();
  }
});

test('a helper reached through a subpath import (`#lib/…`, package.json "imports") is code of the kind: editing it reruns the node', async () => {
  const box = sandbox();
  mkdirSync(join(box.dir, 'lib'), { recursive: true });
  writeFileSync(join(box.dir, 'package.json'), JSON.stringify({ name: 'lab', type: 'module', imports: { '#lib/*': './lib/*' } }));
  writeFileSync(join(box.dir, 'lib', 'factor.js'), 'export const factor = 2;\n');
  const plugin = join(box.dir, 'double.js');
  writeFileSync(
    plugin,
    `import { appendFileSync } from 'node:fs';
import { factor } from '#lib/factor.js';
export const double = {
  kind: 'double', version: 1,
  params: { type: 'object', properties: { x: { type: 'number' } } },
  outputs: { out: 'json' },
  async run(ctx) {
    appendFileSync(process.env.TOY_RUN_LOG, ctx.node + '\\n');
    ctx.outputs.json('out', { value: ctx.params.x * factor });
  },
};
`,
  );
  const file = box.write('p.yaml', pipeline(plugin));
  assert.equal((await box.cli(['run', file])).code, 0);
  writeFileSync(join(box.dir, 'lib', 'factor.js'), 'export const factor = 3;\n');
  // Base: "cached", and the run kept serving 42 computed with the old factor.
  const status = await box.cli(['status', file]);
  assert.match(status.stdout, /d\s+to run\s+code of kind double changed/);
  assert.equal((await box.cli(['run', file])).code, 0);
  assert.deepEqual(box.runs(), ['d', 'd']);
  assert.equal(((await box.show(file, 'd')).outputs['out'] as { value: { value: number } }).value.value, 63);
});

test('history tells apart variants that differ only in their code (a `code` column), not as identical rows', async () => {
  const box = sandbox();
  const plugin = writePlugin(box, 2);
  const file = box.write('p.yaml', pipeline(plugin));
  assert.equal((await box.cli(['run', file])).code, 0);
  writePlugin(box, 3);
  assert.equal((await box.cli(['run', file])).code, 0);
  const r = await box.cli(['history', file, 'd', '--json']);
  assert.equal(r.code, 0, r.stderr);
  // Base: `differs` was empty for both, and the table showed two identical rows.
  const variants = JSON.parse(r.stdout) as { current: boolean; differs: Record<string, string> }[];
  assert.equal(variants.length, 2);
  const codes = variants.map((v) => v.differs['code']);
  assert.match(codes[0]!, /^[0-9a-f]{12}$/);
  assert.notEqual(codes[0], codes[1]);
  assert.match((await box.cli(['history', file, 'd'])).stdout, /took\s+code\s/);
});

test('a plugin edited mid-run: a fresh worker that loads the new code fails the node instead of storing its result under the old code key', async () => {
  const box = sandbox();
  const plugin = join(box.dir, 'iso.js');
  const write = (factor: number) =>
    writeFileSync(
      plugin,
      `import { appendFileSync } from 'node:fs';
export const iso = {
  kind: 'iso', version: 1, isolate: true,
  params: { type: 'object', properties: { x: { type: 'number' }, sleep_ms: { type: 'integer', default: 0 } } },
  outputs: { out: 'json' },
  async run(ctx) {
    appendFileSync(process.env.TOY_RUN_LOG, ctx.node + '\\n');
    await new Promise((r) => setTimeout(r, ctx.params.sleep_ms));
    ctx.outputs.json('out', { value: ctx.params.x * ${factor} });
  },
};
`,
    );
  write(2);
  const file = box.write('p.yaml', `
name: iso
plugins: [${plugin}]
stages:
  a: {uses: iso, with: {x: 1, sleep_ms: 2500}}
  b: {uses: iso, with: {x: 21}}
`);
  const child = spawn(process.execPath, [BIN, 'run', file, '--plain', '-j', '1'], { cwd: box.dir, env: { ...process.env, CI: 'true', MEDPIPE_CACHE: box.cache, TOY_RUN_LOG: box.runLog }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const deadline = Date.now() + 20_000;
  while (box.runs().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  write(3); // while the first node runs: the second one's fresh worker loads this
  const code = await exited;
  // Base: exit 0, and the second node's result, stored under the key of factor 2, was computed with factor 3.
  assert.equal(code, 1, out);
  assert.match(out, /the code of kind iso changed after this run planned the node \(keyed by code [0-9a-f]{12}, this worker loaded [0-9a-f]{12}\); nothing was stored/);
  const value = async (node: string) => ((await box.show(file, node)).outputs['out'] as { value: { value: number } }).value.value;
  assert.equal((await box.cli(['run', file])).code, 0);
  assert.deepEqual([await value('a'), await value('b')], [3, 63]);
  write(2);
  const back = await box.cli(['run', file]);
  assert.equal(back.code, 0, back.stdout + back.stderr);
  assert.deepEqual([await value('a'), await value('b')], [2, 42], 'reverting the edit finds results of the code their keys name');
});
