// Every importer on a small synthetic data set in its real layout, then with damage: each bad
// row or missing file must be reported, with file and line, and none may stop the others.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { importerFor } from '../src/data/importers/index.js';
import type { ImportResult } from '../src/data/importers/types.js';
import { synthesize, type SyntheticDataset } from '../src/data/synthetic/index.js';

const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'medpipe-importers-'));
after(() => fs.rm(tmp, { recursive: true, force: true }));

async function synth(dataset: SyntheticDataset, count: number, name: string = dataset): Promise<string> {
  const root = path.join(tmp, name);
  await synthesize(root, { dataset, count, size: 32, seed: 11 });
  return root;
}

async function appendLines(file: string, lines: string[]): Promise<void> {
  await fs.appendFile(file, lines.map((l) => `${l}\n`).join(''));
}

function byFile(r: ImportResult): Map<string, string> {
  return new Map(r.problems.map((p) => [`${p.file}${p.line === undefined ? '' : `:${p.line}`}`, p.reason]));
}

test('aptos2019: reads train.csv + train_images, reports every bad row and missing image', async () => {
  const root = await synth('aptos2019', 15);
  const ok = await importerFor('aptos2019').import(root, {});
  assert.equal(ok.items.length, 15);
  assert.deepEqual(ok.problems, []);
  assert.equal(ok.classes.length, 5);
  const csv = (await fs.readFile(path.join(root, 'train.csv'), 'utf8')).trim().split('\n');
  ok.items.forEach((item, i) => assert.equal(`${item.id},${item.label}`, csv[i + 1]));
  assert.deepEqual(new Set(ok.items.map((i) => i.label)), new Set([0, 1, 2, 3, 4]));

  await fs.rm(path.join(root, ok.items[3].path));
  await appendLines(path.join(root, 'train.csv'), ['feedbeef0001,7', ',2', 'abc,1,extra', 'nosuchimage01,2', `${ok.items[0].id},1`]);
  const bad = await importerFor('aptos2019').import(root, {});
  const problems = byFile(bad);
  assert.equal(bad.items.length, 14);
  assert.match(problems.get('train.csv:17') ?? '', /diagnosis must be 0-4, got "7"/);
  assert.match(problems.get('train.csv:18') ?? '', /empty id_code/);
  assert.match(problems.get('train.csv:19') ?? '', /expected 2 fields, found 3/);
  assert.match(problems.get('train_images/nosuchimage01.png') ?? '', /missing image \(named by train.csv line 20\)/);
  assert.match(problems.get('train.csv:21') ?? '', /duplicate id_code/);
  assert.match(problems.get(ok.items[3].path) ?? '', /missing image/);
  assert.equal(bad.problems.length, 6);
});

test('isic2019: one-hot ground truth, 8 classes, bad rows reported', async () => {
  const root = await synth('isic2019', 16);
  const ok = await importerFor('isic2019').import(root, {});
  assert.deepEqual(ok.classes, ['MEL', 'NV', 'BCC', 'AK', 'BKL', 'DF', 'VASC', 'SCC']);
  assert.equal(ok.items.length, 16);
  assert.deepEqual(new Set(ok.items.map((i) => i.label)).size, 8);
  const gt = path.join(root, 'ISIC_2019_Training_GroundTruth.csv');
  await appendLines(gt, [
    'ISIC_0000000,1.0,1.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0',
    'ISIC_9000001,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,1.0',
    'ISIC_9000002,x,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0',
    'ISIC_9000003,0.0,0.0,1.0,0.0,0.0,0.0,0.0,0.0,0.0',
  ]);
  const bad = await importerFor('isic2019').import(root, {});
  const p = byFile(bad);
  assert.match(p.get('ISIC_2019_Training_GroundTruth.csv:18') ?? '', /exactly one class set to 1, found 2/);
  assert.match(p.get('ISIC_2019_Training_GroundTruth.csv:19') ?? '', /UNK is not one of the 8/);
  assert.match(p.get('ISIC_2019_Training_GroundTruth.csv:20') ?? '', /MEL must be 0 or 1/);
  assert.match(p.get('ISIC_2019_Training_Input/ISIC_9000003.jpg') ?? '', /missing image/);
  assert.equal(bad.problems.length, 4);
  assert.equal(bad.items.length, 16);
});

test('cbis-ddsm: one sample per patient/side/view, label = any mass, official split kept', async () => {
  const root = await synth('cbis-ddsm', 14);
  const r = await importerFor('cbis-ddsm').import(root, {});
  assert.deepEqual(r.problems, []);
  assert.deepEqual(r.classes, ['no mass', 'mass']);
  assert.equal(r.items.length, 14);
  // Expected labels straight from the CSVs.
  const massViews = new Set<string>();
  const allViews = new Set<string>();
  const files = new Set<string>();
  for (const f of ['mass_case_description_train_set.csv', 'mass_case_description_test_set.csv', 'calc_case_description_train_set.csv', 'calc_case_description_test_set.csv']) {
    const rows = (await fs.readFile(path.join(root, f), 'utf8')).trim().split('\n').slice(1).map((l) => l.split(','));
    for (const row of rows) {
      const view = `${row[0]}_${row[2]}_${row[3]}`;
      allViews.add(view);
      files.add(row[11]);
      if (f.startsWith('mass')) massViews.add(view);
    }
  }
  assert.equal(r.items.length, allViews.size);
  for (const item of r.items) {
    assert.equal(item.label, massViews.has(item.id) ? 1 : 0, item.id);
    assert.ok(item.split === 'train' || item.split === 'test');
    assert.ok(item.path.endsWith('/000000.dcm'));
  }
  assert.ok(r.items.some((i) => i.label === 0) && r.items.some((i) => i.label === 1));
  // Unit 'file' counts every DICOM copy; rule 'malignant' relabels.
  const perFile = await importerFor('cbis-ddsm').import(root, { unit: 'file' });
  assert.equal(perFile.items.length, files.size);
  const malignant = await importerFor('cbis-ddsm').import(root, { rule: 'malignant' });
  assert.deepEqual(malignant.classes, ['benign', 'malignant']);
  await assert.rejects(importerFor('cbis-ddsm').import(root, { rule: 'nonsense' }), /option rule must be one of mass, malignant/);
});

test('cbis-ddsm: finds DICOMs in NBIA descriptive folders, reports missing ones', async () => {
  const root = await synth('cbis-ddsm', 6, 'cbis-nbia');
  const r = await importerFor('cbis-ddsm').import(root, {});
  // Move the first image to the NBIA "descriptive names" layout under CBIS-DDSM/.
  const first = r.items[0].path;
  const folder = first.split('/')[0];
  const nbia = path.join(root, 'CBIS-DDSM', folder, '07-20-2016-DDSM-74994', '1.000000-full mammogram images-24515');
  await fs.mkdir(nbia, { recursive: true });
  await fs.rename(path.join(root, first), path.join(nbia, '1-1.dcm'));
  await fs.rm(path.join(root, folder), { recursive: true });
  // And delete the second one outright.
  await fs.rm(path.join(root, r.items[1].path));
  const again = await importerFor('cbis-ddsm').import(root, {});
  assert.equal(again.items[0].path, `CBIS-DDSM/${folder}/07-20-2016-DDSM-74994/1.000000-full mammogram images-24515/1-1.dcm`);
  assert.equal(again.problems.length, 1);
  assert.equal(again.problems[0].file, r.items[1].path);
  assert.match(again.problems[0].reason, /missing DICOM \(named by mass_case_description_(train|test)_set.csv line \d+/);
});

test('cbis-ddsm-jpeg: the Kaggle mirror gives the same samples and labels as the DICOM layout', async () => {
  const dicom = await importerFor('cbis-ddsm').import(await synth('cbis-ddsm', 10, 'cbis-same'), {});
  const root = await synth('cbis-ddsm-jpeg', 10);
  const jpeg = await importerFor('cbis-ddsm-jpeg').import(root, {});
  assert.deepEqual(jpeg.problems, []);
  assert.deepEqual(
    jpeg.items.map((i) => [i.id, i.label, i.split]),
    dicom.items.map((i) => [i.id, i.label, i.split]),
  );
  assert.ok(jpeg.items.every((i) => /^jpeg\/[\d.]+\/1-\d+\.jpg$/.test(i.path)));
  await fs.rm(path.join(root, jpeg.items[2].path));
  const bad = await importerFor('cbis-ddsm-jpeg').import(root, {});
  assert.equal(bad.problems.length, 1);
  assert.match(bad.problems[0].reason, /missing image \(case csv\/\w+_case_description_\w+_set.csv line \d+, via csv\/dicom_info.csv\)/);
});

test('ddsm-raw: lists are the split, prefixes the labels, bad names reported with line', async () => {
  const root = await synth('ddsm-raw', 20);
  const r = await importerFor('ddsm-raw').import(root, {});
  assert.deepEqual(r.problems, []);
  assert.equal(r.items.length, 20);
  assert.deepEqual(
    [r.items.filter((i) => i.split === 'train').length, r.items.filter((i) => i.split === 'val').length, r.items.filter((i) => i.split === 'test').length],
    [16, 2, 2],
  );
  for (const i of r.items) assert.equal(i.label, i.id.startsWith('normal') ? 0 : 1);
  await appendLines(path.join(root, 'ddsm_raw_image_lists', 'val.txt'), ['weird_0001', 'cancer_9999_LEFT_CC']);
  const bad = await importerFor('ddsm-raw').import(root, {});
  const p = byFile(bad);
  assert.match(p.get('ddsm_raw_image_lists/val.txt:3') ?? '', /starts with none of normal, benign, cancer/);
  assert.match(p.get('ddsm_raw/cancer_9999_LEFT_CC.jpg') ?? '', /named by ddsm_raw_image_lists\/val.txt line 4/);
});

test('imagefolder and csv: sorted class folders; path,label[,split] CSV with checks', async () => {
  const root = await synth('natural', 20);
  const r = await importerFor('imagefolder').import(root, {});
  assert.equal(r.classes.length, 10);
  assert.deepEqual(r.classes, [...r.classes].sort());
  assert.equal(r.items.length, 20);
  for (const i of r.items) assert.equal(r.classes[i.label], i.path.split('/')[0]);

  const rows = r.items.map((i, k) => `${i.path},${r.classes[i.label]},${k % 5 === 0 ? 'test' : 'train'}`);
  rows.push('missing/x.png,circle,train', 'circle/00000.png,nonsense,train', `${r.items[0].path},circle,holdout`, '../escape.png,circle,train');
  await fs.writeFile(path.join(root, 'labels.csv'), `path,label,split\n${rows.join('\n')}\n`);
  // Without a fixed class list every distinct label is a class; with one, others are errors.
  assert.equal((await importerFor('csv').import(root, {})).classes.length, 11);
  const c = await importerFor('csv').import(root, { classes: r.classes });
  assert.equal(c.items.length, 20);
  assert.deepEqual(c.classes, r.classes);
  assert.equal(c.items.filter((i) => i.split === 'test').length, 4);
  const p = byFile(c);
  assert.match(p.get('missing/x.png') ?? '', /missing image \(named by labels.csv line 22\)/);
  assert.match(p.get('labels.csv:23') ?? '', /label "nonsense" is not one of the classes/);
  assert.match(p.get('labels.csv:24') ?? '', /split must be train, val or test/);
  assert.match(p.get('labels.csv:25') ?? '', /inside the root/);
});

test('a missing index file is a problem naming it, not a crash', async () => {
  const empty = path.join(tmp, 'empty');
  await fs.mkdir(empty, { recursive: true });
  const r = await importerFor('aptos2019').import(empty, {});
  assert.equal(r.items.length, 0);
  assert.equal(r.problems[0].file, 'train.csv');
  assert.match(r.problems[0].reason, /cannot read/);
  const c = await importerFor('cbis-ddsm').import(empty, {});
  assert.equal(c.problems.length, 4);
});
