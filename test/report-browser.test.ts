// [slow] `pipeline report` on the reduced demo (pipelines/table1-demo.yaml, one data set, two
// seeds, short schedules; about two minutes on 2 cores), then the page as a person sees it, in
// Debian's headless Chromium driven by playwright-core: no console errors, no request leaves
// the file, every image loaded and every Figure 1 panel at least its stated size on screen,
// the per-seed values in the visible text, and the page prints to PDF. The screenshot goes to
// $MEDPIPE_REPORT_SHOTS (default: a temporary folder) and its path is printed;
// `MEDPIPE_REPORT_SHOTS=docs node --test dist/test/report-browser.test.js` makes the README's.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { REDUCED_DEMO_ARGS, REPO, runCli } from './support/toy.js';

const DEMO = join(REPO, 'pipelines', 'table1-demo.yaml');
const CHROMIUM = process.env['CHROMIUM'] ?? '/usr/bin/chromium';
/** The flags this machine's closed network needs (no background connections to fail). */
const CHROMIUM_FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

// $MEDPIPE_REPORT_WORKDIR keeps the demo's data and cache between runs (a rerun is cached).
const dir = process.env['MEDPIPE_REPORT_WORKDIR'] ?? mkdtempSync(join(tmpdir(), 'medpipe-report-'));
const SETS = [
  'axes.seed=[1, 2]',
  'axes.dataset={aptos2019: APTOS2019}',
  // The demo's dino case names isic2019 too, which this narrowed axis no longer has.
  'dino.cases=[{when: {dataset: aptos2019}, with: {color_jitter: {p: 0}, grayscale: 0, solarize: 0}}]',
  'vars.images={aptos2019: 60, isic2019: 64, cbis_ddsm: 60}',
  'synthesize_proxy.with.count=100',
  'pretrain.with.epochs=1',
  'dino.with.epochs=2',
  'finetune.with.epochs=2',
].flatMap((s) => ['--set', s]);
const env = { MEDPIPE_CACHE: join(dir, 'cache') };
const reportPath = join(dir, 'report.html');

interface Evaluated {
  node: string;
  value: number;
}

/** Runs the reduced demo once and writes its report; the tests below share it. */
const built: Promise<{ evaluated: Evaluated[]; stdout: string }> = (async () => {
  const run = await runCli(['run', DEMO, '--plain', ...SETS], { cwd: REPO, env });
  assert.equal(run.code, 0, run.stdout.slice(-3000) + run.stderr);
  const report = await runCli(['report', DEMO, ...SETS, '-o', reportPath], { cwd: REPO, env });
  assert.equal(report.code, 0, report.stdout + report.stderr);
  const evaluated: Evaluated[] = [];
  for (const model of ['resnet50', 'deit_s']) {
    for (const seed of [1, 2]) {
      const node = `evaluate[dataset=aptos2019,model=${model},init=random,seed=${seed}]`;
      const shown = await runCli(['show', DEMO, node, ...SETS, '-o', 'metrics'], { cwd: REPO, env });
      assert.equal(shown.code, 0, shown.stderr);
      evaluated.push({ node, value: (JSON.parse(shown.stdout) as { value: number }).value });
    }
  }
  return { evaluated, stdout: report.stdout };
})();

test('[slow] pipeline report: one self-contained file with every section, from the cache', { timeout: 900_000 }, async () => {
  const { evaluated, stdout } = await built;
  assert.match(stdout, /wrote .*report\.html .*table 6\/6 cells, 1 saliency figure\(s\), 16 curve run\(s\), 6 confusion/);
  const html = readFileSync(reportPath, 'utf8');
  assert.doesNotMatch(html, /<script|<link |src="http|href="http|@import|url\(http/, 'nothing is fetched or run');
  for (const id of ['results', 'figure-1', 'curves', 'dino', 'confusion', 'provenance']) assert.match(html, new RegExp(`<section id="${id}">`));
  // Each seed's value of a cell, as the table prints it (digits + 1).
  for (const e of evaluated) assert.ok(html.includes(`seed ${e.node.endsWith('seed=1]') ? 1 : 2}: ${e.value.toFixed(4)}`), `${e.node}: ${e.value.toFixed(4)} in the table`);
  assert.match(html, /No DR/, 'class names, not indices');
  assert.match(html, /<code class="cmd">--set &#39;axes\.seed=\[1, 2\]&#39;/, 'the overrides are listed');
  assert.match(html, /npx pipeline show \S+table1-demo\.yaml &#39;finetune\[dataset=aptos2019,model=resnet50,init=random,seed=1\]&#39;/);
  assert.match(html, /wasm, \d+ threads?/, 'the engine each node ran on');
});

function chromiumMissing(): string | false {
  if (!existsSync(CHROMIUM)) return `no Chromium at ${CHROMIUM} (apt-get install chromium, or set $CHROMIUM)`;
  return false;
}

test('[slow] the report in headless Chromium: no errors, figures at size, per-seed values visible, prints', { timeout: 900_000, skip: chromiumMissing() }, async (t) => {
  const { evaluated } = await built;
  const { chromium } = await import('playwright-core');
  const profile = mkdtempSync(join(tmpdir(), 'medpipe-chromium-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS, viewport: { width: 1280, height: 1400 } });
  try {
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    const requests: string[] = [];
    page.on('request', (r) => {
      if (!/^(file|data):/.test(r.url())) requests.push(r.url());
    });
    await page.goto(`file://${reportPath}`, { waitUntil: 'load' });

    const images = await page.$$eval('img', (list) =>
      list.map((img) => ({
        alt: img.alt,
        complete: img.complete,
        natural: [img.naturalWidth, img.naturalHeight],
        shown: [img.getBoundingClientRect().width, img.getBoundingClientRect().height],
        min: Number(img.dataset['minSize'] ?? 0),
        rendering: getComputedStyle(img).imageRendering,
      })),
    );
    const panels = images.filter((i) => i.min > 0);
    assert.equal(panels.length, 3, 'Figure 1: image, Grad-CAM and attention of one image');
    for (const i of images) {
      assert.ok(i.complete && i.natural[0]! > 0, `${i.alt} loaded`);
      assert.ok(Math.min(...i.natural) >= i.min, `${i.alt}: natural ${i.natural.join('x')} >= ${i.min}`);
      assert.ok(Math.min(...i.shown) >= i.min, `${i.alt}: shown ${i.shown.join('x')} >= ${i.min}`);
    }
    assert.ok(panels.every((i) => i.rendering === 'pixelated' || i.rendering === 'crisp-edges'), 'panels are not smoothed');

    const text = await page.innerText('body');
    for (const e of evaluated) assert.ok(text.includes(e.value.toFixed(4)), `${e.node}'s value ${e.value.toFixed(4)} is visible text`);
    for (const heading of ['Results', 'Figure 1', 'Learning curves', 'DINO', 'Confusion matrices', 'Provenance']) assert.ok(text.includes(heading), heading);
    // 6 finetune cells and 2 pretrain runs with train loss, val metric and lr; 2 DINO runs.
    const charts = await page.$$eval('svg:not(.colorbar):not(.dots)', (list) => list.filter((s) => s.getBoundingClientRect().width >= 300).length);
    assert.ok(charts >= 6 * 3 + 2 * 3 + 2, `${charts} curve panels drawn`);

    const shots = resolve(process.env['MEDPIPE_REPORT_SHOTS'] ?? mkdtempSync(join(tmpdir(), 'medpipe-report-shots-')));
    mkdirSync(shots, { recursive: true });
    const shot = join(shots, 'report-demo.png');
    await page.screenshot({ path: shot, clip: { x: 0, y: 0, width: 1280, height: 1400 } });
    const full = join(shots, 'report-demo-full.png');
    if (!process.env['MEDPIPE_REPORT_SHOTS']) await page.screenshot({ path: full, fullPage: true });
    const pdf = await page.pdf({ format: 'A4', printBackground: true });
    const pdfPath = join(shots, 'report-demo.pdf');
    if (!process.env['MEDPIPE_REPORT_SHOTS']) writeFileSync(pdfPath, pdf);
    assert.equal(pdf.subarray(0, 5).toString(), '%PDF-');
    const pages = (pdf.toString('latin1').match(/\/Type\s*\/Page[^s]/g) ?? []).length;
    assert.ok(pages >= 3, `the report prints (${pages} A4 pages)`);
    assert.ok(statSync(shot).size > 10_000);
    t.diagnostic(`screenshot: ${shot}`);
    process.stdout.write(`report screenshot: ${shot}${process.env['MEDPIPE_REPORT_SHOTS'] ? '' : `\nfull page: ${full}\nPDF: ${pdfPath}`}\n`);

    assert.deepEqual(requests, [], 'the page fetches nothing');
    assert.deepEqual(problems, [], 'no console errors or warnings');
  } finally {
    await context.close();
  }
});

// The full demo's three data sets make the Results table wider than its share of the first row;
// it must scroll or push Figure 1 below, never run under it (at a laptop's and a desktop's width).
const dir3 = process.env['MEDPIPE_REPORT_WORKDIR3'] ?? mkdtempSync(join(tmpdir(), 'medpipe-report3-'));
const SETS3 = REDUCED_DEMO_ARGS;
const report3 = join(dir3, 'report.html');

test('[slow] three data sets: no Results cell under Figure 1 at 1200 and 1920 px', { timeout: 900_000, skip: chromiumMissing() }, async () => {
  const env3 = { MEDPIPE_CACHE: join(dir3, 'cache') };
  const run = await runCli(['run', DEMO, '--plain', ...SETS3], { cwd: REPO, env: env3 });
  assert.equal(run.code, 0, run.stdout.slice(-3000) + run.stderr);
  const report = await runCli(['report', DEMO, ...SETS3, '-o', report3], { cwd: REPO, env: env3 });
  assert.equal(report.code, 0, report.stdout + report.stderr);
  const { chromium } = await import('playwright-core');
  const profile = mkdtempSync(join(tmpdir(), 'medpipe-chromium-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS, viewport: { width: 1200, height: 1000 } });
  try {
    const page = await context.newPage();
    await page.goto(`file://${report3}`, { waitUntil: 'load' });
    for (const width of [1200, 1920]) {
      await page.setViewportSize({ width, height: 1000 });
      const found = await page.evaluate(() => {
        const figure = document.querySelector('section#figure-1')!.getBoundingClientRect();
        const cells = [...document.querySelectorAll('table.results th, table.results td')];
        const overlaps = (r: DOMRect) => r.left < figure.right && figure.left < r.right && r.top < figure.bottom && figure.top < r.bottom;
        return { columns: document.querySelectorAll('table.results thead th').length, under: cells.filter((c) => overlaps(c.getBoundingClientRect())).map((c) => (c as HTMLElement).innerText.split('\n')[0]) };
      });
      assert.ok(found.columns >= 5, `${found.columns} header cells: three data sets`);
      assert.deepEqual(found.under, [], `${width} px: these Results cells lie under Figure 1`);
    }
  } finally {
    await context.close();
  }
});
