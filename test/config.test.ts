import assert from 'node:assert/strict';
import { test } from 'node:test';

import { join } from 'node:path';
import { expandPipeline } from '../src/config/expand.js';
import { loadPipeline } from '../src/config/load.js';
import { buildDag } from '../src/graph/dag.js';
import { selectNodes } from '../src/graph/select.js';
import { renderDag } from '../src/graph/render.js';
import { ConfigError, ConfigErrors } from '../src/util/errors.js';
import { sandbox, toyRegistry, TOY_PIPELINE } from './support/toy.js';

async function expand(yaml: string, sets: string[] = [], extra: Record<string, string> = {}) {
  const box = sandbox();
  for (const [name, text] of Object.entries(extra)) box.write(name, text);
  const file = box.write('p.yaml', yaml);
  const spec = loadPipeline(file, { sets });
  return expandPipeline(spec, await toyRegistry());
}

/** Runs a load + expand that must fail, returning every message. */
async function problems(yaml: string, sets: string[] = [], extra: Record<string, string> = {}): Promise<string[]> {
  try {
    await expand(yaml, sets, extra);
  } catch (err) {
    if (err instanceof ConfigErrors) return err.errors.map((e) => e.message);
    if (err instanceof ConfigError) return [err.message];
    throw err;
  }
  assert.fail('expected the pipeline to be rejected');
}

test('matrix expansion names every instance and wires it to the matching upstream instance', async () => {
  const p = await expand(TOY_PIPELINE);
  assert.deepEqual(p.byStage.get('train'), ['train[model=resnet,seed=1]', 'train[model=resnet,seed=2]', 'train[model=deit,seed=1]', 'train[model=deit,seed=2]']);
  const t = p.nodes.get('train[model=deit,seed=2]')!;
  assert.deepEqual(t.inputs['a']!.upstream.map((u) => u.node), ['src[seed=2]']);
  assert.equal(t.params['offset'], 10);
  assert.equal(t.params['divide'], 1, 'kind defaults are filled in (and so enter the key)');
  const total = p.nodes.get('total')!;
  assert.equal(total.inputs['items']!.upstream.length, 4, 'a many-input gathers every instance of the free axes');
});

test('interpolation keeps types for whole-value references and formats partial ones', async () => {
  const p = await expand(`
name: interp
plugins: [$TOY]
axes: {seed: [3]}
vars: {label: {a: alpha}, name: run}
stages:
  s:
    uses: emit
    matrix: [seed]
    with:
      value: \${seed}
      label: "\${vars.name}-\${seed}-\${vars.label[pick]}-$\${literal}"
`.replace('[pick]', '.a'));
  const node = p.nodes.get('s[seed=3]')!;
  assert.equal(node.params['value'], 3);
  assert.equal(node.params['label'], 'run-3-alpha-${literal}');
});

test('cases override parameters for matching instances; --set overrides the file', async () => {
  const yaml = TOY_PIPELINE.replace('      offset: ${vars.base}', '      offset: ${vars.base}\n    cases:\n      - when: {model: deit}\n        with: {divide: 2}');
  const p = await expand(yaml, ['train.with.offset=7', 'vars.base=99']);
  assert.equal(p.nodes.get('train[model=deit,seed=1]')!.params['divide'], 2);
  assert.equal(p.nodes.get('train[model=resnet,seed=1]')!.params['divide'], 1);
  assert.equal(p.nodes.get('train[model=resnet,seed=1]')!.params['offset'], 7);
});

test('extends: a child pipeline overrides its parent key by key and may drop keys with null', async () => {
  const p = await expand(
    `
extends: parent.yaml
name: child
axes:
  seed: [5]
stages:
  train:
    with:
      offset: 1
  total: null
`,
    [],
    { 'parent.yaml': TOY_PIPELINE },
  );
  assert.equal(p.spec.name, 'child');
  assert.deepEqual([...p.nodes.keys()], ['src[seed=5]', 'train[model=resnet,seed=5]', 'train[model=deit,seed=5]']);
  assert.equal(p.nodes.get('train[model=deit,seed=5]')!.params['offset'], 1);
});

test('pinned references and conditional inputs pick the right upstream instance', async () => {
  const p = await expand(`
name: pins
plugins: [$TOY]
axes:
  init: [random, imagenet, dino]
  seed: [1, 2]
stages:
  weights:
    uses: emit
    matrix: {init: [random, imagenet]}
    with: {value: 1}
  dino:
    uses: add
    inputs: {a: "weights[init=imagenet].out"}
  finetune:
    uses: add
    matrix: [init, seed]
    inputs:
      a:
        - from: dino.out
          when: {init: dino}
        - from: weights.out
`);
  assert.deepEqual(p.nodes.get('dino')!.inputs['a']!.upstream.map((u) => u.node), ['weights[init=imagenet]']);
  assert.deepEqual(p.nodes.get('finetune[init=dino,seed=2]')!.inputs['a']!.upstream.map((u) => u.node), ['dino']);
  assert.deepEqual(p.nodes.get('finetune[init=random,seed=1]')!.inputs['a']!.upstream.map((u) => u.node), ['weights[init=random]']);
});

test('errors name file:line:column and the field', async (t) => {
  const cases: [string, string, RegExp][] = [
    ['unknown stage kind', TOY_PIPELINE.replace('uses: add', 'uses: addd'), /p\.yaml:16:5: stages\.train\.uses: unknown stage kind "addd"/],
    ['parameter not in the kind schema', TOY_PIPELINE.replace('offset: ${vars.base}', 'ofset: 1'), /p\.yaml:22:7: stages\.train\.with\.ofset: unknown field \(Did you mean offset\?\) \(kind add\)/],
    ['wrong parameter type', TOY_PIPELINE.replace('offset: ${vars.base}', 'offset: lots'), /p\.yaml:22:7: stages\.train\.with\.offset: must be number, got "lots" \(kind add\)/],
    ['wrong type through a variable set by --set (the value is said)', TOY_PIPELINE, /p\.yaml:22:7: stages\.train\.with\.offset: must be number, got "abc" \(kind add\)/],
    ['unknown axis value', TOY_PIPELINE.replace('matrix: [model, seed]', 'matrix: {model: [resnet, vit], seed: "*"}'), /p\.yaml:\d+:\d+: stages\.train\.matrix\.model: unknown value "vit" of axis model \(values: resnet, deit\)/],
    ['unknown axis', TOY_PIPELINE.replace('matrix: [model, seed]', 'matrix: [modle, seed]'), /p\.yaml:17:14: stages\.train\.matrix\.0: unknown axis "modle"/],
    ['missing stage', TOY_PIPELINE.replace('a: src.out', 'a: source.out'), /p\.yaml:19:7: stages\.train\.inputs\.a: reference to a missing stage "source"/],
    ['missing output', TOY_PIPELINE.replace('a: src.out', 'a: src.output'), /p\.yaml:19:7: stages\.train\.inputs\.a: reference to a missing output "output" of stage src/],
    ['duplicate name', TOY_PIPELINE.replace('  total:', '  src:'), /p\.yaml:\d+:3: duplicate name/],
    ['unknown top-level field', TOY_PIPELINE + 'stagse: {}\n', /p\.yaml:\d+:1: stagse: unknown field/],
    ['YAML syntax', TOY_PIPELINE.replace('value: ${seed}', 'value: [1'), /p\.yaml:\d+:\d+: /],
    ['undefined variable', TOY_PIPELINE.replace('${vars.base}', '${vars.bsae}'), /p\.yaml:22:7: stages\.train\.with\.offset: \$\{vars\.bsae\}: "vars\.bsae" is not defined \(known: base\)/],
    ['bad --set', TOY_PIPELINE, /--set nosuch\.with\.x=1: no stage "nosuch"/],
  ];
  for (const [name, yaml, pattern] of cases) {
    await t.test(name, async () => {
      const sets = name === 'bad --set' ? ['nosuch.with.x=1'] : name.includes('--set') ? ['vars.base=abc'] : [];
      const msgs = await problems(yaml, sets);
      assert.ok(msgs.some((m) => pattern.test(m)), `got:\n${msgs.join('\n')}`);
    });
  }
});

test('a cycle is reported with the stages around it', async () => {
  const msgs = await problems(`
name: cyc
plugins: [$TOY]
stages:
  a:
    uses: add
    inputs: {a: c.out}
  b:
    uses: add
    inputs: {a: a.out}
  c:
    uses: add
    inputs: {a: b.out}
`);
  assert.ok(msgs.some((m) => /p\.yaml:5:3: stages\.a: cycle: a -> b -> c -> a/.test(m)), msgs.join('\n'));
});

test('several problems are reported together', async () => {
  const yaml = TOY_PIPELINE.replace('matrix: [seed]', 'matrix: [sed]').replace('a: src.out', 'a: nowhere.out');
  const msgs = await problems(yaml);
  assert.ok(msgs.length >= 2, msgs.join('\n'));
});

test('selection: node, glob, stage, --only and --cell select exactly those nodes and their ancestors', async () => {
  const p = await expand(TOY_PIPELINE);
  const dag = buildDag(p);
  const sel = (s: Parameters<typeof selectNodes>[2]) => [...selectNodes(p, dag, s)].sort();
  assert.deepEqual(sel({ targets: ['train[model=deit,seed=1]'] }), ['src[seed=1]', 'train[model=deit,seed=1]']);
  assert.deepEqual(sel({ targets: ['train[model=deit,*'] }), ['src[seed=1]', 'src[seed=2]', 'train[model=deit,seed=1]', 'train[model=deit,seed=2]']);
  assert.deepEqual(sel({ only: ['seed=2'] }), ['src[seed=2]', 'train[model=deit,seed=2]', 'train[model=resnet,seed=2]']);
  assert.deepEqual(sel({ cell: 'DeiT-S' }), ['src[seed=1]', 'src[seed=2]', 'train[model=deit,seed=1]', 'train[model=deit,seed=2]']);
  assert.equal(sel({}).length, 7);
  assert.throws(() => sel({ cell: 'ViT' }), /"ViT" is no label of model \(ResNet50, DeiT-S\)/);
  assert.deepEqual(sel({ cell: 'deit' }), sel({ cell: 'DeiT-S' }), 'raw axis values address a cell too');
  assert.throws(() => sel({ only: ['seed=9'] }), /unknown value "9" of axis seed/);
});

test('dag renders as text, DOT and Mermaid', async () => {
  const p = await expand(TOY_PIPELINE);
  const dag = buildDag(p);
  const all = new Set(dag.order);
  assert.match(renderDag(p, dag, all, 'dot'), /"src\[seed=1\]" -> "train\[model=resnet,seed=1\]";/);
  assert.match(renderDag(p, dag, all, 'mermaid'), /^flowchart LR/);
  assert.match(renderDag(p, dag, all, 'text', true), /total ×1\n {2}└─ train/);
});

test('the published schema file matches the one the loader uses', async () => {
  const { readFileSync } = await import('node:fs');
  const { pipelineSchema } = await import('../src/config/schema.js');
  const { REPO } = await import('./support/toy.js');
  const published = JSON.parse(readFileSync(join(REPO, 'pipelines', 'schema.json'), 'utf8'));
  assert.deepEqual(published, JSON.parse(JSON.stringify(pipelineSchema)), 'run `npm run schema` to refresh pipelines/schema.json');
});

test('a table cell is addressed by its labels in any order', async () => {
  const p = await expand(`
name: cells
plugins: [$TOY]
axes:
  model: {resnet: ResNet50, deit: DeiT-S}
  dataset: {aptos: APTOS2019, isic: ISIC2019}
  seed: [1, 2]
stages:
  ev:
    uses: emit
    matrix: [dataset, model, seed]
    with: {value: 1}
table: {stage: ev, value: out.value, rows: [model], columns: [dataset], over: seed}
`);
  const dag = buildDag(p);
  const a = [...selectNodes(p, dag, { cell: 'DeiT-S/ISIC2019' })].sort();
  assert.deepEqual(a, ['ev[dataset=isic,model=deit,seed=1]', 'ev[dataset=isic,model=deit,seed=2]']);
  assert.deepEqual([...selectNodes(p, dag, { cell: 'ISIC2019/DeiT-S' })].sort(), a);
  assert.throws(() => selectNodes(p, dag, { cell: 'DeiT-S/ResNet50' }), /two labels of model/);
});
