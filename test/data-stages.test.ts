// The preprocess, split and synthesize stages through an in-memory StageContext.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import type { JSONObject } from '../src/contract.js';
import preprocess, { type PreprocessParams } from '../stages/preprocess.js';
import split, { type SplitParams } from '../stages/split.js';
import synthesize, { type SynthesizeParams } from '../stages/synthesize.js';
import { fakeFingerprintContext, runStage, type MemoryRecords } from './support/fake-stage-context.js';

const base = await fs.mkdtemp(path.join(os.tmpdir(), 'medpipe-stages-'));
after(() => fs.rm(base, { recursive: true, force: true }));

const pre = (p: Partial<PreprocessParams> & { format: string }): PreprocessParams => ({
  size: 24,
  channels: 3,
  kernel: 'lanczos3',
  windowing: 'auto',
  on_error: 'fail',
  concurrency: 3,
  ...p,
});

/** Runs synthesize; its directory output is also copied to base/dest for the tests that read a `root`. */
async function synth({ dest, ...p }: Partial<SynthesizeParams> & { dataset: SynthesizeParams['dataset']; dest: string }): Promise<string> {
  const run = await runStage(synthesize, { count: 12, size: 32, seed: 5, monochrome1_fraction: 0, ...p }, base);
  const out = run.dirs.get('dataset');
  assert.ok(out);
  await fs.rm(path.join(base, dest), { recursive: true, force: true });
  await fs.cp(out, path.join(base, dest), { recursive: true });
  return out;
}

async function listTree(root: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(root, { withFileTypes: true })) {
    if (e.isDirectory()) out.push(...(await listTree(path.join(root, e.name), `${prefix}${e.name}/`)));
    else out.push(`${prefix}${e.name}`);
  }
  return out.sort();
}

function records(run: { records: Map<string, MemoryRecords> }): MemoryRecords {
  const r = run.records.get('records');
  assert.ok(r);
  return r;
}

test('synthesize -> preprocess: records in importer order, stats and class counts in the set meta', async () => {
  const source = await synth({ dataset: 'aptos2019', dest: 'data/aptos' });
  assert.equal((await listTree(source)).length, 13);

  const run = await runStage(preprocess, pre({ format: 'aptos2019' }), base, { dirs: { source } });
  const recs = records(run);
  assert.equal(recs.count, 12);
  const csv = (await fs.readFile(path.join(base, 'data/aptos/train.csv'), 'utf8')).trim().split('\n').slice(1);
  assert.deepEqual(
    [...recs.iterate()].map((r) => `${String(r.meta['id'])},${String(r.meta['label'])}`),
    csv,
  );
  for (const r of recs.iterate()) assert.equal(r.data.length, 24 * 24 * 3);
  const meta = recs.meta;
  assert.deepEqual(meta['shape'], [24, 24, 3]);
  assert.equal((meta['classes'] as string[]).length, 5);
  // Mean/std equal a direct computation over the stored bytes.
  const all = [...recs.iterate()];
  for (let c = 0; c < 3; c++) {
    let s = 0;
    let sq = 0;
    let n = 0;
    for (const r of all) for (let i = c; i < r.data.length; i += 3) (s += r.data[i]), (sq += r.data[i] ** 2), n++;
    const mean = s / n;
    assert.ok(Math.abs((meta['mean'] as number[])[c] - mean / 255) < 1e-12);
    assert.ok(Math.abs((meta['std'] as number[])[c] - Math.sqrt(sq / n - mean * mean) / 255) < 1e-9);
  }
  const counts = meta['class_counts'] as Record<string, number>;
  assert.equal(Object.values(counts).reduce((a, b) => a + b, 0), 12);
  assert.deepEqual(run.json.get('problems'), { skipped: [] });
  assert.ok(run.progress.at(-1)?.startsWith('decoded 12/12'));

  // Same bytes whatever the concurrency (completion order differs, output order may not).
  const serial = await runStage(preprocess, pre({ format: 'aptos2019', concurrency: 1 }), base, { dirs: { source } });
  assert.deepEqual([...records(serial).iterate()], all);
});

test('preprocess fails listing every bad file; on_error: skip leaves them out and lists them', async () => {
  await synth({ dataset: 'isic2019', dest: 'data/isic', count: 10 });
  const root = path.join(base, 'data/isic');
  const images = path.join(root, 'ISIC_2019_Training_Input');
  const jpg = await fs.readFile(path.join(images, 'ISIC_0000002.jpg'));
  await fs.writeFile(path.join(images, 'ISIC_0000002.jpg'), jpg.subarray(0, jpg.length >> 1));
  await fs.writeFile(path.join(images, 'ISIC_0000005.jpg'), 'not a jpeg at all');
  await fs.rm(path.join(images, 'ISIC_0000007.jpg'));
  await fs.appendFile(path.join(root, 'ISIC_2019_Training_GroundTruth.csv'), 'ISIC_0000099,1.0,1.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0\n');

  await assert.rejects(runStage(preprocess, pre({ format: 'isic2019', root: 'data/isic' }), base), (e: unknown) => {
    const msg = (e as Error).message;
    assert.match(msg, /preprocess isic2019: 4 problems \(set on_error: skip to leave them out\)/);
    assert.match(msg, /ISIC_2019_Training_GroundTruth\.csv line 12: expected exactly one class/);
    assert.match(msg, /ISIC_2019_Training_Input\/ISIC_0000007\.jpg: missing image/);
    assert.match(msg, /ISIC_2019_Training_Input\/ISIC_0000002\.jpg: undecodable image/);
    assert.match(msg, /ISIC_2019_Training_Input\/ISIC_0000005\.jpg: undecodable image/);
    return true;
  });

  const run = await runStage(preprocess, pre({ format: 'isic2019', root: 'data/isic', on_error: 'skip' }), base);
  const recs = records(run);
  assert.deepEqual(
    [...recs.iterate()].map((r) => r.meta['id']),
    ['ISIC_0000000', 'ISIC_0000001', 'ISIC_0000003', 'ISIC_0000004', 'ISIC_0000006', 'ISIC_0000008', 'ISIC_0000009'],
  );
  const skipped = (run.json.get('problems') as { skipped: JSONObject[] }).skipped;
  assert.deepEqual(skipped.map((p) => p['file']).sort(), [
    'ISIC_2019_Training_GroundTruth.csv',
    'ISIC_2019_Training_Input/ISIC_0000002.jpg',
    'ISIC_2019_Training_Input/ISIC_0000005.jpg',
    'ISIC_2019_Training_Input/ISIC_0000007.jpg',
  ]);
  assert.equal(recs.meta['skipped'], 4);
});

test('preprocess reads CBIS-DDSM DICOM (incl. MONOCHROME1) to one channel, keeping the official split', async () => {
  await synth({ dataset: 'cbis-ddsm', dest: 'data/cbis', count: 8, monochrome1_fraction: 0.5 });
  const run = await runStage(preprocess, pre({ format: 'cbis-ddsm', root: 'data/cbis', channels: 1, size: 16 }), base);
  const recs = records(run);
  assert.equal(recs.count, 8);
  assert.deepEqual(recs.meta['shape'], [16, 16, 1]);
  for (const r of recs.iterate()) {
    assert.ok(r.meta['split'] === 'train' || r.meta['split'] === 'test');
    // Background (dark) at the far corner away from the chest wall, tissue brighter: not inverted.
    assert.ok(r.data.reduce((a, b) => a + b, 0) / r.data.length < 128);
  }
  // Split stage, lists mode from the records' own split.
  const s = await runStage(split, { mode: 'lists', ratios: { train: 0.8, val: 0.1, test: 0.1 }, seed: 1, held_out: 0.2 }, base, { records: { records: recs } });
  const out = s.json.get('split') as { train: number[]; test: number[]; val: number[]; unassigned: number };
  assert.equal(out.train.length + out.test.length, 8);
  assert.equal(out.val.length, 0);
  assert.equal(out.unassigned, 0);
});

test('split stage: stratified and paper modes with per-split class counts; lists from files', async () => {
  const source = await synth({ dataset: 'natural', dest: 'data/natural', count: 40 });
  const run = await runStage(preprocess, pre({ format: 'imagefolder', size: 8 }), base, { dirs: { source } });
  const recs = records(run);
  const params: SplitParams = { mode: 'stratified', ratios: { train: 0.8, val: 0.1, test: 0.1 }, seed: 42, held_out: 0.2 };
  const strat = (await runStage(split, params, base, { records: { records: recs } })).json.get('split') as {
    train: number[];
    val: number[];
    test: number[];
    counts: Record<string, Record<string, number>>;
  };
  assert.deepEqual([strat.train.length, strat.val.length, strat.test.length], [32, 4, 4]);
  assert.equal(Object.values(strat.counts['train']).reduce((a, b) => a + b, 0), 32);
  const paper = (await runStage(split, { ...params, mode: 'paper' }, base, { records: { records: recs } })).json.get('split') as { train: number[]; val: number[]; test: number[] };
  assert.deepEqual([paper.train.length, paper.val.length, paper.test.length], [32, 4, 4]);

  const ids = [...recs.iterate()].map((r) => String(r.meta['id']));
  await fs.writeFile(path.join(base, 'val.txt'), `${ids[3]}.png\n${ids[5]}\n`);
  const lists = (await runStage(split, { ...params, mode: 'lists', lists: { train: [ids[0], ids[1]], val: 'val.txt' } }, base, { records: { records: recs } })).json.get('split') as {
    train: number[];
    val: number[];
    unassigned: number;
  };
  assert.deepEqual(lists.train, [0, 1]);
  assert.deepEqual(lists.val, [3, 5]);
  assert.equal(lists.unassigned, 36);
  await assert.rejects(runStage(split, { ...params, mode: 'lists', lists: { train: ['nope'] } }, base, { records: { records: recs } }), /ids not in the records: nope/);
});

test('fingerprint: relative, stable, changes with the data; check() says what is missing and where to get it', async () => {
  await synth({ dataset: 'ddsm-raw', dest: 'data/ddsm', count: 8 });
  const fctx = fakeFingerprintContext(base);
  const params = pre({ format: 'ddsm-raw', root: 'data/ddsm' });
  const fp = await preprocess.fingerprint?.(params, fctx);
  assert.ok(fp);
  assert.ok(!JSON.stringify(fp).includes(base));
  assert.equal((fp as JSONObject)['files'], 11); // 8 images + 3 lists
  assert.deepEqual(await preprocess.fingerprint?.(params, fctx), fp);
  const img = (await fs.readdir(path.join(base, 'data/ddsm/ddsm_raw')))[0];
  await fs.appendFile(path.join(base, 'data/ddsm/ddsm_raw', img), Buffer.from([0]));
  assert.notDeepEqual(await preprocess.fingerprint?.(params, fctx), fp);
  // A source input carries its own digests: nothing to fingerprint.
  assert.equal(await preprocess.fingerprint?.(pre({ format: 'ddsm-raw' }), fctx), null);

  assert.deepEqual(await preprocess.check?.(params, fctx), []);
  const missing = await preprocess.check?.(pre({ format: 'aptos2019', root: 'data/none' }), fctx);
  assert.equal(missing?.length, 1);
  assert.match(missing?.[0] ?? '', /aptos2019: missing \S*data\/none\/train.csv, \S*data\/none\/train_images\. Download .*kaggle/);
});

test('synthesize writes only into its own output, the same tree for the same seed', async () => {
  const before = await fs.readdir(base);
  const a = await synth({ dataset: 'natural', dest: 'data/nat2', count: 4 });
  const b = await synth({ dataset: 'natural', dest: 'data/nat3', count: 4 });
  assert.deepEqual(await listTree(a), await listTree(b));
  for (const f of await listTree(a)) assert.deepEqual(await fs.readFile(path.join(a, f)), await fs.readFile(path.join(b, f)), f);
  // Nothing appeared next to the pipeline but what this test copied there itself.
  assert.deepEqual((await fs.readdir(base)).filter((n) => !before.includes(n)), []);
});
