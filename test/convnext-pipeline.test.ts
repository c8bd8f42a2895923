// ConvNeXt through a pipeline, as the paper's models go: init -> finetune (AdamW, stochastic
// depth) -> evaluate, and the saliency stage's Grad-CAM row from the finetuned checkpoint.
// The drop-path masks come from the finetune seed: a second cache reproduces the weights.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sandbox, tinyAptos } from './support/toy.js';

const PIPELINE = tinyAptos('cnx', { count: 40, seed: 5 }) + `  init:
    uses: init
    with: {model: convnext_demo, num_classes: 5, image_size: 32, seed: 1}
  finetune:
    uses: finetune
    inputs: {data: preprocess.records, split: split.split, weights: init.weights}
    with: {metric: kappa, epochs: 2, batch_size: 8, warmup_iters: 2, lr: 0.001, seed: 7}
  evaluate:
    uses: evaluate
    inputs: {data: preprocess.records, split: split.split, weights: finetune.weights}
    with: {metric: kappa}
  saliency:
    uses: saliency
    inputs: {data: preprocess.records, split: split.split, cnn: finetune.weights}
    with: {count: 2, seed: 0}
`;

test('convnext_demo: init, finetune, evaluate and Grad-CAM in a pipeline; same key, same weights', { timeout: 300_000 }, async () => {
  const a = sandbox();
  const file = a.write('p.yaml', PIPELINE);
  const r = await a.cli(['run', file]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const ft = await a.show(file, 'finetune');
  const curves = ft.outputs['curves']!.value as { epochs: { train_loss: number }[] };
  assert.equal(curves.epochs.length, 2);
  assert.ok(curves.epochs.every((e) => Number.isFinite(e.train_loss) && e.train_loss > 0));
  const metrics = (await a.show(file, 'evaluate')).outputs['metrics']!.value as { value: number; n: number; confusion: number[][] };
  assert.ok(Number.isFinite(metrics.value));
  assert.equal(metrics.confusion.flat().reduce((s, x) => s + x, 0), metrics.n);
  const summary = (await a.show(file, 'saliency')).outputs['summary']!.value as {
    cnn: { model: string; layer: string; activation_grid: number[] };
    images: { gradcam: { target: number; max: number } }[];
    layout: { rows: string[] };
  };
  // torchvision's features[-1] (the last stage): 32 px / total stride 32 = a 1x1 grid.
  assert.deepEqual([summary.cnn.model, summary.cnn.layer, summary.cnn.activation_grid], ['convnext_demo', 'features.7', [1, 1]]);
  assert.equal(summary.images.length, 2);
  assert.deepEqual(summary.layout.rows, ['original', 'convnext_demo Grad-CAM (predicted class)']);

  const b = sandbox();
  const fileB = b.write('p.yaml', PIPELINE);
  assert.equal((await b.cli(['run', fileB, 'finetune'])).code, 0);
  const ftB = await b.show(fileB, 'finetune');
  assert.equal(ftB.key, ft.key);
  assert.equal(ftB.outputs['weights']!.digest, ft.outputs['weights']!.digest, 'seeded stochastic depth: identical weights');
});
