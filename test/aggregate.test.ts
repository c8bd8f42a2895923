import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildTable, median, std } from '../src/report/table.js';
import { toCsv, toMarkdown } from '../src/report/render.js';
import { sandbox, TOY_PIPELINE } from './support/toy.js';

test('median and both standard deviations match numpy', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
  assert.equal(median([]), null);
  // numpy.std([1,2,3,4], ddof=1) = 1.2909944487358056; ddof=0 = 1.118033988749895
  assert.ok(Math.abs(std([1, 2, 3, 4], 'sample')! - 1.2909944487358056) < 1e-12);
  assert.ok(Math.abs(std([1, 2, 3, 4], 'population')! - 1.118033988749895) < 1e-12);
  assert.equal(std([5], 'sample'), null, 'one value has no sample std');
});

test("the title's {over} and {metrics} say what the table holds: its seed count and the columns it shows", () => {
  const title = 'T: median ± std over {over} ({metrics}); note';
  const datasets = [
    { value: 'aptos', label: 'APTOS2019' },
    { value: 'isic', label: 'ISIC2019' },
  ];
  const layout = (seeds: number[], columns: typeof datasets) => ({
    title,
    value: 'metrics.value',
    rows: ['model'],
    columns: ['dataset'],
    over: 'seed',
    axes: { model: [{ value: 'resnet', label: 'ResNet50' }], dataset: columns, seed: seeds.map((s) => ({ value: s, label: String(s) })) },
  });
  const entries = [1, 2, 3].flatMap((seed) => [
    { axes: { model: 'resnet', dataset: 'aptos', seed }, value: { metric: 'kappa', value: 0.8 } },
    { axes: { model: 'resnet', dataset: 'isic', seed }, value: { metric: 'macro_recall', value: 0.5 } },
  ]);
  assert.equal(buildTable(layout([1, 2, 3], datasets), entries, 'sample').title, 'T: median ± std over 3 seeds (APTOS2019 quadratic kappa, ISIC2019 macro recall); note');
  const one = buildTable(layout([1], datasets), entries.filter((e) => e.axes.seed === 1), 'sample');
  assert.equal(one.title, 'T: median ± std over 1 seed (APTOS2019 quadratic kappa, ISIC2019 macro recall); note');
  assert.match(toMarkdown(one), /^### T: median ± std over 1 seed .*\n[^]*\| ResNet50 \| 0\.800 ± – \| 0\.500 ± – \|/);
  // An --only dataset=aptos table (run's "table of the selected cells") has one column.
  const only = buildTable(layout([1, 2, 3], datasets.slice(0, 1)), entries.filter((e) => e.axes.dataset === 'aptos'), 'sample');
  assert.equal(only.title, 'T: median ± std over 3 seeds (APTOS2019 quadratic kappa); note');
  assert.equal(buildTable({ ...layout([1, 2], datasets), title: 'plain' }, entries, 'sample').title, 'plain', 'a title without placeholders is kept');
});

test('a table cell aggregates its seeds, flags missing ones and shows the reference', () => {
  const layout = {
    value: 'metrics.value',
    rows: ['model'],
    columns: ['dataset'],
    over: 'seed',
    axes: {
      model: [{ value: 'resnet', label: 'ResNet50' }],
      dataset: [
        { value: 'aptos', label: 'APTOS2019' },
        { value: 'isic', label: 'ISIC2019' },
      ],
      seed: [1, 2, 3].map((s) => ({ value: s, label: String(s) })),
    },
    reference: { 'ResNet50/APTOS2019': 0.9 },
  };
  const entries = [
    { axes: { model: 'resnet', dataset: 'aptos', seed: 1 }, value: { value: 0.8 } },
    { axes: { model: 'resnet', dataset: 'aptos', seed: 2 }, value: { value: 0.9 } },
    { axes: { model: 'resnet', dataset: 'aptos', seed: 3 }, value: { value: 1.0 } },
    { axes: { model: 'resnet', dataset: 'isic', seed: 2 }, value: { value: 0.5 } },
  ];
  const table = buildTable(layout, entries, 'sample');
  const md = toMarkdown(table);
  assert.match(md, /\| model \| APTOS2019 \| ISIC2019 \|/);
  assert.match(md, /\| ResNet50 \| 0\.900 ± 0\.100 \[ref 0\.900, Δ \+0\.000\] \| 0\.500 ± – \(1\/3\) \|/);
  const csv = toCsv(table).trim().split('\n');
  assert.equal(csv.length, 5, 'header + one line per value');
  assert.equal(csv[4], 'ResNet50,ISIC2019,2,0.5,0.500000,–,1,3,');
});

test('the aggregate stage builds the table from every gathered instance, through ${table}', async () => {
  const box = sandbox();
  const file = box.write(
    'p.yaml',
    TOY_PIPELINE.replace(
      '  total:\n    uses: collect\n    inputs:\n      items: train.out\n',
      '  report:\n    uses: aggregate\n    inputs: {metrics: train.out}\n    with: {table: "${table}", digits: 1}\n',
    ),
  );
  const r = await box.cli(['run', file]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /report:\n\| model \| value \|\n\|---\|---\|\n\| ResNet50 \| 11\.5 ± 0\.7 \|/, 'the run prints the table');
  const again = await box.cli(['run', file]);
  assert.match(again.stdout, /7 cached[\s\S]*\| DeiT-S \| 11\.5 ± 0\.7 \|/, 'a no-op run prints it too');
  const manifest = await box.show(file, 'report');
  const digest = manifest.outputs['markdown']!.digest;
  const md = readFileSync(join(box.cache, 'cas', digest.slice(0, 2), digest.slice(2)), 'utf8');
  // train = seed + 10 for both models: seeds 1, 2 -> 11, 12 -> median 11.5, sample std 0.7.
  assert.match(md, /\| ResNet50 \| 11\.5 ± 0\.7 \|/);
  assert.match(md, /\| DeiT-S \| 11\.5 ± 0\.7 \|/);
  const html = manifest.outputs['html']!.digest;
  assert.match(readFileSync(join(box.cache, 'cas', html.slice(0, 2), html.slice(2)), 'utf8'), /<td><div class="value">11\.5 ± 0\.7<\/div><div class="seeds">seed 1: 11\.00 · seed 2: 12\.00<\/div>/, 'per-seed values are visible text, not a tooltip');
});
