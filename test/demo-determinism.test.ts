// [slow] Two cold runs of a reduced demo on one machine give byte-identical tables: every
// shuffle, augmentation and initialisation is seeded, and nothing depends on timing.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { demoSection, replaceSection, START, END } from '../bench/demo-section.js';
import { REPO, runCli } from './support/toy.js';

const DEMO = join(REPO, 'pipelines', 'table1-demo.yaml');
// One data set, one seed, tiny sets and single epochs: the whole graph of that column (proxy,
// pre-training, DINO with its k-NN monitor, fine-tuning, evaluation, Figure 1, the table).
const REDUCED = [
  '--set', 'axes.dataset={isic2019: ISIC2019}',
  '--set', 'dino.cases=[{when: {dataset: isic2019}, with: {color_jitter: {p: 0}, grayscale: 0, solarize: 0}}]',
  '--set', 'axes.seed=[1]',
  '--set', 'vars.images={aptos2019: 40, isic2019: 48, cbis_ddsm: 40}',
  '--set', 'synthesize_proxy.with.count=60',
  '--set', 'pretrain.with.epochs=1',
  '--set', 'dino.with.epochs=1',
  '--set', 'dino.with.warmup_epochs=0',
  '--set', 'finetune.with.epochs=1',
];

async function coldTable(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'medpipe-det-'));
  // Synthesized data sets are directory outputs inside the cache: nothing outside it to set.
  const data: string[] = [];
  const env = { MEDPIPE_CACHE: join(dir, 'cache') };
  const run = await runCli(['run', DEMO, '--plain', ...REDUCED, ...data], { cwd: REPO, env });
  assert.equal(run.code, 0, run.stdout.slice(-3000) + run.stderr);
  const shown = await runCli(['show', DEMO, 'report', '-o', 'markdown', ...REDUCED, ...data], { cwd: REPO, env });
  assert.equal(shown.code, 0, shown.stderr);
  return shown.stdout;
}

test('[slow] two cold runs of the reduced demo print byte-identical tables', { timeout: 1_800_000 }, async () => {
  const first = await coldTable();
  assert.match(first, /\| ProxyNet\+DINO \| ViT-demo \| -?\d\.\d{3}/, first);
  const second = await coldTable();
  assert.equal(second, first);
});

test('demo:table writes the table, the machine and the timings between its README markers', () => {
  const section = demoSection({
    table: '| a | b |\n|---|---|\n| 1 | 2 |\n',
    machine: { cpu: 'Test CPU', cores: 2, memoryGiB: 8, native: 'loaded (avx2)', node: 'v22.0.0', load: 0.5 },
    wallSeconds: 425.4,
    cpuSeconds: 801,
    commit: '0123456789abcdef',
    dirty: true,
    date: '2026-12-01 08:00 UTC',
    command: 'npx pipeline run pipelines/table1-demo.yaml',
  });
  assert.match(section, /\*\*7 min 5 s\*\* wall clock, 13 min 21 s of CPU time/);
  assert.match(section, /2 × Test CPU, 8 GiB, native kernels loaded \(avx2\).*commit 0123456789ab with uncommitted changes/s);
  const readme = `# x\nbefore\n${START}\nold\n${END}\nafter\n`;
  const updated = replaceSection(readme, section);
  assert.equal(updated, `# x\nbefore\n${section}\nafter\n`);
  assert.equal(replaceSection(updated, section), updated, 'a rerun replaces the section in place');
  assert.throws(() => replaceSection('# no markers', section), /expected one/);
});
