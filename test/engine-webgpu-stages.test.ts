// Every training and inference stage runs on the WebGPU engine unchanged: one tiny pipeline
// (pretrain, finetune, dino, evaluate, saliency, then `pipeline predict`) run twice, with
// MEDPIPE_BACKEND=wasm and MEDPIPE_BACKEND=webgpu, gives the same numbers to float32
// tolerance. The backend is unkeyed, so both runs compute the same nodes. On lavapipe
// (software Vulkan, CI) this takes a few minutes; without an adapter it skips saying why.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { initBackend } from '../src/engine/backend.js';
import { sandbox, tinyAptos, type Sandbox } from './support/toy.js';

const PIPELINE = tinyAptos('gpu-stages', { count: 40, seed: 3 }) + `  init:
    uses: init
    with: {model: resnet_demo, num_classes: 5, image_size: 32, seed: 1}
  init_vit:
    uses: init
    with: {model: vit_demo, num_classes: 5, image_size: 32, seed: 1}
  pretrain:
    uses: pretrain
    inputs: {data: preprocess.records, split: split.split, weights: init.weights}
    with: {epochs: 1, batch_size: 8, warmup_iters: 2, seed: 1}
  finetune:
    uses: finetune
    inputs: {data: preprocess.records, split: split.split, weights: init_vit.weights}
    with: {metric: kappa, epochs: 1, batch_size: 8, warmup_iters: 2, seed: 1}
  dino:
    uses: dino
    inputs: {data: preprocess.records, split: split.split, weights: init.weights}
    with: {epochs: 1, batch_size: 8, local_crops: 2, out_dim: 64, hidden_dim: 64, bottleneck_dim: 32, lr: 0.01, warmup_epochs: 0, warmup_teacher_temp_epochs: 0, seed: 5}
  evaluate:
    uses: evaluate
    inputs: {data: preprocess.records, split: split.split, weights: pretrain.weights}
    with: {metric: kappa}
  saliency:
    uses: saliency
    inputs: {data: preprocess.records, split: split.split, cnn: pretrain.weights, vit: finetune.weights}
    with: {count: 2, seed: 0}
`;

let why: string | undefined;

before(async () => {
  try {
    await initBackend({ prefer: 'webgpu' });
  } catch (e) {
    why = `no WebGPU adapter: ${(e as Error).message} (install a Vulkan driver, e.g. mesa-vulkan-drivers from bookworm-backports: see README, GPU)`;
  }
});

interface Shown {
  outputs: Record<string, { value?: unknown }>;
  provenance?: { reported?: { engine?: { backend?: string } } };
}

interface Run {
  box: Sandbox;
  file: string;
  show(node: string): Promise<Shown>;
  predict: string;
}

async function runOn(backend: 'wasm' | 'webgpu'): Promise<Run> {
  const box = sandbox();
  const file = box.write('p.yaml', PIPELINE);
  const env = { MEDPIPE_BACKEND: backend };
  const run = await box.cli(['run', file, '--plain'], { env });
  assert.equal(run.code, 0, `${backend}: ${run.stdout.slice(-3000)}${run.stderr}`);
  const show = async (node: string) => {
    const r = await box.cli(['show', file, node, '--json'], { env });
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Shown;
  };
  const dataset = (await box.cli(['show', file, 'synthesize', '-o', 'dataset'])).stdout.trim();
  const { ids } = (await show('evaluate')).outputs['predictions']!.value as { ids: string[] };
  const images = ids.slice(0, 3).map((id) => `${dataset}/train_images/${id}.png`);
  const pred = await box.cli(['predict', '-w', `${file}:pretrain`, ...images], { env });
  assert.equal(pred.code, 0, pred.stderr);
  // Image paths differ between the two sandboxes: keep the numbers.
  return { box, file, show, predict: pred.stdout.trim().split('\n').slice(1).map((l) => l.split(',').slice(1).join(',')).join('\n') };
}

/** Every number in `a` and `b` (same structure) within `tol` of each other. */
function close(what: string, a: unknown, b: unknown, tol: number): void {
  if (typeof b === 'number') {
    assert.equal(typeof a, 'number', `${what}: ${String(a)} vs ${b}`);
    assert.ok(Math.abs((a as number) - b) <= tol * Math.max(1, Math.abs(b)), `${what}: webgpu ${String(a)} vs wasm ${b}`);
  } else if (Array.isArray(b)) {
    assert.ok(Array.isArray(a) && a.length === b.length, `${what}: length`);
    b.forEach((x, i) => close(`${what}[${i}]`, (a as unknown[])[i], x, tol));
  } else if (b !== null && typeof b === 'object') {
    for (const [k, v] of Object.entries(b)) close(`${what}.${k}`, (a as Record<string, unknown>)[k], v, tol);
  } else assert.deepEqual(a, b, what);
}

test('pretrain, finetune, dino, evaluate, saliency and predict run on webgpu unchanged and agree with wasm', { timeout: 1_500_000 }, async (t) => {
  if (why !== undefined) return t.skip(why);
  const wasm = await runOn('wasm');
  const gpu = await runOn('webgpu');
  for (const node of ['pretrain', 'finetune', 'dino', 'evaluate', 'saliency']) {
    const [g, w] = [await gpu.show(node), await wasm.show(node)];
    assert.equal(g.provenance?.reported?.engine?.backend, 'webgpu', `${node} computed on webgpu`);
    assert.equal(w.provenance?.reported?.engine?.backend, 'wasm', `${node} computed on wasm`);
    const out = (s: Shown, k: string) => s.outputs[k]!.value as Record<string, unknown>;
    if (node === 'pretrain' || node === 'finetune') {
      const losses = (s: Shown) => (out(s, 'curves')['epochs'] as { train_loss: number }[]).map((e) => e.train_loss);
      close(`${node} train loss`, losses(g), losses(w), 1e-4);
    } else if (node === 'dino') {
      close('dino step losses', out(g, 'curves')['step_loss'], out(w, 'curves')['step_loss'], 1e-4);
    } else if (node === 'evaluate') {
      close('evaluate probabilities', out(g, 'predictions')['probs'], out(w, 'predictions')['probs'], 5e-4);
    } else {
      // Class probabilities and Grad-CAM scores (rounded to 4 decimals in the summary).
      const scores = (s: Shown) => (out(s, 'summary')['images'] as { gradcam: { probs: number[]; score: number }; attention: { probs: number[] } }[])
        .map((im) => [...im.gradcam.probs, im.gradcam.score, ...im.attention.probs]);
      close('saliency probabilities and scores', scores(g), scores(w), 5e-4);
    }
  }
  const rows = (s: string) => s.split('\n').map((l) => l.split(',').map((c) => (Number.isNaN(Number(c)) ? c : Number(c))));
  close('predict probabilities', rows(gpu.predict), rows(wasm.predict), 5e-4);
});
