// The saliency stage end to end in a fake context: demo-sized checkpoints, a small record set
// and split; the grid, the per-image PNGs (in a tar) and the summary; every PNG decodes with
// the stated size and channels; the same inputs give the same bytes; the report embeds the
// grids side by side with their row names.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import type { DataRecord, JSONObject } from '../src/contract.js';
import { Rng } from '../src/data/rng.js';
import { modelSpec } from '../src/ml/models/registry.js';
import { initState } from '../src/ml/models/state.js';
import { metaFor, writeCheckpoint } from '../src/ml/weights/checkpoint.js';
import { tarArchive } from '../src/ml/saliency/tar.js';
import { pngDescription, toHtml } from '../src/report/render.js';
import type { Table } from '../src/report/table.js';
import saliency from '../stages/saliency.js';
import { fakeContext, MemoryRecords } from './support/fake-stage-context.js';

const dir = mkdtempSync(join(tmpdir(), 'medpipe-saliency-'));
const SIZE = 40;

function records(): MemoryRecords {
  const rng = new Rng(11);
  const list: DataRecord[] = Array.from({ length: 8 }, (_, k) => ({
    data: Uint8Array.from({ length: SIZE * SIZE * 3 }, () => rng.int(256)),
    meta: { id: `img/${k}`, label: k % 2 },
  }));
  return new MemoryRecords(list, { shape: [SIZE, SIZE, 3], mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], classes: ['a', 'b'] });
}

async function checkpoint(name: string, model: string, seed: number): Promise<string> {
  const spec = modelSpec(model, { numClasses: 2, channels: 3, imageSize: 32 });
  const path = join(dir, `${name}.safetensors`);
  await writeCheckpoint(path, spec, initState(spec, seed), metaFor(spec, `random:${seed}`));
  return path;
}

const PARAMS = { count: 3, seed: 2, subset: 'test', threshold: 0.5, class: 'predicted', colormap: 'jet', alpha: 0.5, gap: 4, backend: 'wasm' } as const;
type Params = Parameters<typeof saliency.run>[0]['params'];

interface Result {
  figure: Buffer;
  tarPath: string;
  summary: JSONObject;
}

async function run(params: Partial<Params>, files: Record<string, string>): Promise<Result> {
  const reader = records();
  const run = await fakeContext<Params>({ ...PARAMS, ...params } as Params, dir, {
    records: { data: reader },
    json: { split: { train: [0, 1, 2], val: [3], test: [4, 5, 6, 7] } },
    files,
  });
  await saliency.run(run.ctx);
  const tarPath = join(dir, `overlays-${Math.random().toString(36).slice(2)}.tar`);
  execFileSync('cp', [join(run.ctx.workdir, run.files.get('overlays')!), tarPath]);
  const figure = readFileSync(join(run.ctx.workdir, run.files.get('figure')!));
  rmSync(run.ctx.workdir, { recursive: true, force: true });
  return { figure, tarPath, summary: run.json.get('summary') as JSONObject };
}

test('saliency stage: grid, per-image PNGs and summary; PNGs decode; deterministic', { timeout: 90_000 }, async () => {
  const cnn = await checkpoint('cnn', 'resnet_demo', 1);
  const vit = await checkpoint('vit', 'vit_demo', 2);
  const a = await run({}, { cnn, vit });
  const meta = await sharp(a.figure).metadata();
  // Three rows (original, Grad-CAM, attention) x three images, 32 px cells, 4 px gaps.
  assert.deepEqual([meta.format, meta.width, meta.height, meta.channels], ['png', 3 * 32 + 4 * 4, 3 * 32 + 4 * 4, 3]);
  const description = pngDescription(a.figure) ?? '';
  assert.match(description, /^rows: original \/ resnet_demo Grad-CAM \(predicted class\) \/ vit_demo attention \(top 50% per head, mean of 3 heads\); columns: img\/\d \(label \d\)/);

  const s = a.summary as { layout: { rows: string[]; columns: string[] }; images: { id: string; in_subset: boolean; gradcam: { target: number; predicted: number }; attention: { kept_mass: number[]; kept_patches: number[] } }[]; cnn: JSONObject; vit: JSONObject };
  assert.equal(s.images.length, 3);
  assert.equal(new Set(s.images.map((i) => i.id)).size, 3, 'three different images');
  assert.ok(s.images.every((i) => i.in_subset && ['img/4', 'img/5', 'img/6', 'img/7'].includes(i.id)), 'drawn from the test split');
  assert.deepEqual(s.layout.columns, s.images.map((i) => i.id));
  for (const im of s.images) {
    assert.equal(im.gradcam.target, im.gradcam.predicted, 'class: predicted');
    assert.equal(im.attention.kept_mass.length, 3);
    assert.ok(im.attention.kept_mass.every((m) => m >= 0.5));
    assert.ok(im.attention.kept_patches.every((n) => n >= 1 && n <= 16));
  }
  assert.equal(s.cnn['layer'], 'layer4.0');
  assert.deepEqual(s.vit['grid'], 4);

  // Every per-image PNG decodes at the model's input size; panels.png is the row of three.
  const out = mkdtempSync(join(dir, 'x-'));
  execFileSync('tar', ['-xf', a.tarPath, '-C', out]);
  const folders = readdirSync(out).filter((f) => f !== 'figure.png').sort();
  assert.deepEqual(folders, s.images.map((im, k) => `0${k + 1}_${im.id.replace('/', '_')}`));
  for (const f of folders) {
    assert.deepEqual(readdirSync(join(out, f)).sort(), ['attention.png', 'attention_heads.png', 'gradcam.png', 'original.png', 'panels.png']);
    for (const [png, w, h] of [['original.png', 32, 32], ['gradcam.png', 32, 32], ['attention.png', 32, 32], ['attention_heads.png', 4 * 32 + 5 * 2, 32 + 4], ['panels.png', 3 * 32 + 4 * 4, 32 + 8]] as const) {
      const m = await sharp(join(out, f, png)).metadata();
      assert.deepEqual([m.format, m.width, m.height, m.channels], ['png', w, h, 3], `${f}/${png}`);
    }
  }

  const b = await run({}, { cnn, vit });
  assert.ok(a.figure.equals(b.figure), 'same inputs, same figure bytes');
  assert.ok(readFileSync(a.tarPath).equals(readFileSync(b.tarPath)), 'same overlays archive');
});

test('saliency stage: listed ids, one model, a chosen class, and clear errors', { timeout: 60_000 }, async () => {
  const cnn = await checkpoint('cnn2', 'resnet_demo', 3);
  const vit = await checkpoint('vit2', 'vit_demo', 4);
  const listed = await run({ ids: ['img/1', 'img/7'], class: 1, colormap: 'viridis', cell: 48 }, { cnn });
  const m = await sharp(listed.figure).metadata();
  assert.deepEqual([m.width, m.height], [2 * 48 + 3 * 4, 2 * 48 + 3 * 4], 'two rows (no ViT), two columns');
  const s = listed.summary as { images: { id: string; in_subset: boolean; gradcam: { target: number } }[]; vit: unknown; layout: { rows: string[] } };
  assert.deepEqual(s.images.map((i) => [i.id, i.in_subset, i.gradcam.target]), [['img/1', false, 1], ['img/7', true, 1]]);
  assert.equal(s.vit, null);
  assert.deepEqual(s.layout.rows, ['original', 'resnet_demo Grad-CAM (class 1)']);

  await assert.rejects(run({ ids: ['nope'] }, { cnn }), /no record has id "nope"/);
  await assert.rejects(run({}, { cnn: vit }), /input cnn is a vit_demo \(vit\); it takes a convolutional checkpoint \(Grad-CAM: resnet, convnext\)/);
  await assert.rejects(run({}, {}), /wire a `cnn` checkpoint, a `vit` checkpoint, or both/);
  await assert.rejects(run({ class: 5 }, { cnn }), /class 5 is outside the model's 2 classes/);
});

test('report: grids of one stage sit side by side, captioned by axis and row names', async () => {
  const png = async (shade: number) => sharp({ create: { width: 4, height: 4, channels: 3, background: { r: shade, g: 0, b: 0 } } }).png().toBuffer();
  const { withText } = await import('../src/ml/saliency/png-text.js');
  const grid = withText(await png(10), 'Description', 'rows: original / Grad-CAM / attention; columns: a (label 1)');
  assert.equal(pngDescription(grid), 'rows: original / Grad-CAM / attention; columns: a (label 1)');
  assert.equal((await sharp(grid).metadata()).width, 4, 'the text chunk keeps the PNG valid');
  assert.equal(pngDescription(await png(20)), undefined);
  const table: Table = { title: 'T', rowAxes: ['model'], columnAxes: [], columns: [[]], rows: [['m']], over: 'seed', std: 'sample', cells: [{ address: 'm', row: ['m'], column: [], values: [{ over: 1, value: 0.5 }], expected: 1, median: 0.5, std: null }] };
  const html = toHtml(table, [
    { title: 'saliency[dataset=aptos2019]', png: grid },
    { title: 'saliency[dataset=isic2019]', png: await png(30) },
    { title: 'loss-curve', png: await png(40) },
  ]);
  const rows = html.split('<div class="figure-row">').slice(1);
  assert.equal(rows.length, 2, 'one row per stage');
  assert.equal(rows[0].split('<figure ').length - 1, 2, 'both data sets in the saliency row');
  assert.match(rows[0], /<figcaption>dataset=aptos2019<br><span class="note">rows: original \/ Grad-CAM \/ attention; columns: a \(label 1\)<\/span><\/figcaption>/);
  assert.match(html, /<h3>saliency<\/h3>/);
  assert.equal(html.match(/src="data:image\/png;base64,/g)?.length, 3, 'self-contained: every figure inline');
});

test('tar: entries padded to 512-byte blocks with valid checksums', () => {
  const t = tarArchive([['a/b.txt', new TextEncoder().encode('hello')]]);
  assert.equal(t.length, 512 * 4);
  const out = mkdtempSync(join(dir, 't-'));
  const path = join(out, 'x.tar');
  execFileSync('sh', ['-c', `cat > '${path}'`], { input: t });
  assert.equal(execFileSync('tar', ['-tf', path]).toString(), 'a/b.txt\n');
  assert.equal(execFileSync('tar', ['-xOf', path, 'a/b.txt']).toString(), 'hello');
});
