// `pipeline predict` prepares new images exactly as the model's training data was prepared:
// on an image of the test split it gives the very probabilities evaluate computed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { join } from 'node:path';
import { sandbox, tinyAptos, TOY_PIPELINE } from './support/toy.js';

const PIPELINE = tinyAptos('pred', { count: 40, seed: 5 }) + `  init:
    uses: init
    with: {model: resnet_demo, num_classes: 5, image_size: 24, seed: 1}
  finetune:
    uses: finetune
    inputs: {data: preprocess.records, split: split.split, weights: init.weights}
    with: {metric: kappa, epochs: 1, batch_size: 8, warmup_iters: 2, seed: 1}
  evaluate:
    uses: evaluate
    inputs: {data: preprocess.records, split: split.split, weights: finetune.weights}
    with: {metric: kappa}
`;

test('predict reproduces evaluate on the same images, as CSV and JSON, and names unreadable images', { timeout: 300_000 }, async () => {
  const box = sandbox();
  const file = box.write('p.yaml', PIPELINE);
  const run = await box.cli(['run', file]);
  assert.equal(run.code, 0, run.stdout + run.stderr);
  const { ids, probs } = (await box.show(file, 'evaluate')).outputs['predictions']!.value as { ids: string[]; probs: number[][] };
  // The synthesized data set is a directory output: `show -o` gives its read-only folder.
  const dataset = (await box.cli(['show', file, 'synthesize', '-o', 'dataset'])).stdout.trim();
  const images = ids.slice(0, 3).map((id) => `${dataset}/train_images/${id}.png`);

  const csv = await box.cli(['predict', '-w', `${file}:finetune`, ...images]);
  assert.equal(csv.code, 0, csv.stdout + csv.stderr);
  // A CPU-only call does not start Dawn, whose adapter search prints limit warnings.
  assert.doesNotMatch(csv.stderr, /Warning|maxDynamic/, csv.stderr);
  const lines = csv.stdout.trim().split('\n');
  assert.equal(lines[0], 'image,No DR,Mild,Moderate,Severe,Proliferative DR,predicted', 'columns named by the data set\'s classes');
  lines.slice(1).forEach((line, i) => {
    const cells = line.split(',');
    assert.equal(cells[0], images[i]);
    const p = cells.slice(1, 6).map(Number);
    assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-4, 'probabilities sum to 1');
    p.forEach((x, k) => assert.ok(Math.abs(x - probs[i]![k]!) < 1e-5, `image ${i} class ${k}: predict ${x} vs evaluate ${probs[i]![k]}`));
  });

  const json = await box.cli(['predict', '-w', `${file}:finetune`, '-f', 'json', images[0]!]);
  const rows = JSON.parse(json.stdout) as { image: string; predicted: string; probabilities: Record<string, number> }[];
  assert.equal(rows[0]!.image, images[0]);
  assert.deepEqual(Object.keys(rows[0]!.probabilities), ['No DR', 'Mild', 'Moderate', 'Severe', 'Proliferative DR']);

  const bad = await box.cli(['predict', '-w', `${file}:finetune`, images[0]!, 'nowhere.png']);
  assert.equal(bad.code, 2, 'an unreadable image is bad input');
  assert.match(bad.stderr, /cannot read 1 image\(s\):\n {2}nowhere\.png: missing file\n/, 'the path named once');
});

test('predict on a node that is not cached suggests the run of that very variant, in that cache', async () => {
  const box = sandbox();
  const file = box.write('p.yaml', TOY_PIPELINE);
  const cache = join(box.dir, 'my cache');
  assert.equal((await box.cli(['run', file, 'src[seed=1]', '--cache', cache])).code, 0);
  const r = await box.cli(['predict', '-w', `${file}:total`, '--set', 'vars.base=3', '--cache', cache, 'x.png']);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.ok(r.stderr.includes(`total is not cached: run \`pipeline run ${file} total --set vars.base=3 --cache '${cache}'\` first`), r.stderr);
});
