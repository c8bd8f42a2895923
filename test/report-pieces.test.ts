// The report's pieces without a pipeline run: chart ticks and legend placement, curves drawn
// from whatever fields a stage records, Figure 1 panels cut from a grid and enlarged without
// smoothing, confusion matrices as text.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import { composeGrid, encodePng, type RgbImage } from '../src/ml/saliency/image.js';
import { confusionSection } from '../src/report/confusion-html.js';
import { cellPanels } from '../src/report/curves-html.js';
import { enlargement, gridPanels } from '../src/report/figure1.js';
import { lineChart } from '../src/report/svg.js';

const texts = (svg: string) => [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]!);

test('chart ticks are round numbers and whole epochs; the legend sits below the plot', () => {
  const epochs = Array.from({ length: 10 }, (_, i) => i + 1);
  const svg = lineChart('t', 'epoch', epochs, [
    { name: 'train loss', values: epochs.map((e) => 0.906 - e * 0.0154) },
    { name: 'val kappa', values: epochs.map((e) => -0.161 + e * 0.05), right: true, marker: 7 },
  ], { integerX: true });
  const labels = texts(svg);
  // The old charts printed 0.752 … 0.906 and 1.00 3.25 5.50 7.75 10.0.
  for (const tick of ['0.75', '0.80', '0.85', '0.90', '−0.2', '0.0', '0.4']) assert.ok(labels.includes(tick), `tick ${tick} in ${labels.join(' ')}`);
  const xTicks = [...svg.matchAll(/<text x="[\d.]+" y="[\d.]+" text-anchor="middle">(\d+)<\/text>/g)].map((m) => Number(m[1]));
  assert.deepEqual(xTicks, epochs, 'whole epochs from the first to the last');
  const plot = /<rect x="(\d+)" y="(\d+)" width="(\d+)" height="([\d.]+)" fill="none"/.exec(svg)!;
  const bottom = Number(plot[2]) + Number(plot[4]);
  const legendY = Number(/<text x="[\d.]+" y="([\d.]+)" dominant-baseline="middle">train loss/.exec(svg)![1]);
  assert.ok(legendY > bottom + 20, `legend at y=${legendY}, below the plot (bottom ${bottom}) and its axis labels`);
  assert.match(svg, /stroke-dasharray="3 3"/, 'the best-epoch marker');
});

test('a metric of 0 stored with a rounding residue (1.1e-16) gets short ticks that fit the margin', () => {
  const epochs = [1, 2, 3];
  for (const values of [[1.1102230246251565e-16, 1.1102230246251565e-16, 1.1102230246251565e-16], [0, 2.220446049250313e-16, -2.220446049250313e-16]]) {
    const svg = lineChart('t', 'epoch', epochs, [{ name: 'val kappa', values }], { integerX: true });
    const yTicks = [...svg.matchAll(/<text x="[\d.]+" y="[\d.]+" text-anchor="end" dominant-baseline="middle">([^<]*)<\/text>/g)].map((m) => m[1]!);
    assert.ok(yTicks.length >= 3, yTicks.join(' '));
    // About 6.2 px a character at 11 px: the 58 px left margin holds 8 characters.
    for (const tick of yTicks) assert.ok(tick.length <= 8, `tick "${tick}" fits the left margin`);
    assert.ok(yTicks.includes('0.0'), `0 is a tick: ${yTicks.join(' ')}`);
  }
});

test('curve panels: every numeric per-epoch field, nested per-epoch arrays (k-NN), per-step arrays; best epoch marked', () => {
  const run = (best: number, k: number) => ({
    metric: 'kappa',
    best_epoch: best,
    steps_per_epoch: 2,
    epochs: [1, 2, 3].map((epoch) => ({ epoch, train_loss: 1 / epoch + k, val_metric: epoch / 10, lr: 0.001, seconds: 3, images_per_s: 10 })),
    knn: [1, 3].map((epoch) => ({ epoch, top1: 0.2 * epoch })),
    step_loss: [3, 2.5, 2, 1.8, 1.7, 1.6],
  });
  const panels = cellPanels([
    { label: 'seed 1', node: 'a', curves: run(2, 0) },
    { label: 'seed 2', node: 'b', curves: run(3, 0.1) },
  ]);
  assert.deepEqual(panels.map((p) => p.title), ['train loss', 'val kappa', 'lr', 'knn: top1', 'step loss']);
  for (const p of panels) assert.deepEqual(p.series.map((s) => s.name), ['seed 1', 'seed 2'], `${p.title}: both seeds overlaid`);
  assert.deepEqual(panels[1]!.series.map((s) => s.marker), [2, 3], 'each seed its own best epoch');
  assert.deepEqual(panels[3]!.series[0]!.x, [1, 3]);
  assert.deepEqual(panels[4]!.series[0]!.x, [0.5, 1, 1.5, 2, 2.5, 3], 'steps as fractional epochs');
  assert.equal(panels[4]!.series[0]!.marker, undefined, 'no best-epoch line on a per-step panel');
});

function solid(rgb: [number, number, number], size: number): RgbImage {
  const data = new Uint8Array(size * size * 3);
  for (let i = 0; i < size * size; i++) data.set(rgb, i * 3);
  return { data, width: size, height: size };
}

test('Figure 1 panels: cut from the grid and enlarged by a whole factor with no blending', async () => {
  assert.equal(enlargement(48, 224), 5);
  assert.equal(enlargement(224, 224), 1);
  const cell = 48;
  const colours: [number, number, number][][] = [
    [[255, 0, 0], [0, 255, 0]],
    [[0, 0, 255], [20, 40, 60]],
  ];
  // One 2x2 checker inside the first panel, to see that edges stay hard.
  const first = solid(colours[0]![0]!, cell);
  first.data.set([0, 0, 0], 0);
  const grid = composeGrid(colours.map((row, r) => row.map((c, k) => (r === 0 && k === 0 ? first : solid(c, cell)))), cell, 4);
  const png = await encodePng(grid);
  const panels = await gridPanels(png, { rows: ['a', 'b'], columns: ['x', 'y'], cell, gap: 4, width: grid.width, height: grid.height }, 224);
  assert.equal(panels.length, 2);
  for (const [r, row] of panels.entries()) {
    for (const [k, p] of row.entries()) {
      const { data, info } = await sharp(p.png).raw().toBuffer({ resolveWithObject: true });
      assert.deepEqual([info.width, info.height, p.width], [240, 240, 240]);
      const distinct = new Set<string>();
      for (let i = 0; i < data.length; i += info.channels) distinct.add(`${data[i]},${data[i + 1]},${data[i + 2]}`);
      const expected = r === 0 && k === 0 ? 2 : 1;
      assert.equal(distinct.size, expected, `panel ${r},${k}: ${[...distinct].join(' ')} (no gap pixels, no blended edge)`);
      assert.ok(distinct.has(colours[r]![k]!.join(',')));
    }
  }
  // The enlarged black pixel is a 5x5 block at the corner.
  const { data } = await sharp(panels[0]![0]!.png).raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([...data.subarray(4 * 3, 4 * 3 + 3)], [0, 0, 0]);
  assert.deepEqual([...data.subarray(5 * 3, 5 * 3 + 3)], [255, 0, 0]);
  await assert.rejects(gridPanels(png, { rows: ['a'], columns: ['x'], cell, gap: 4, width: 10, height: 10 }, 224), /layout says 10x10/);
});

test('confusion matrices: counts as text, class names, runs summed', () => {
  const html = confusionSection([{ group: 'APTOS2019', title: 'ResNet-demo / Random', classes: ['No DR', 'Mild'], matrix: [[7, 1], [2, 5]], runs: 2 }]);
  assert.match(html, /<h3>APTOS2019<\/h3>/);
  assert.match(html, /<th>No DR<\/th><td [^>]*>7<\/td><td [^>]*>1<\/td><td class="total">8<\/td>/);
  assert.match(html, /summed over 2 runs/);
});
