// Augmentations and the loader: torchvision semantics, determinism per (seed, epoch, index).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DataRecord } from '../src/contract.js';
import { colorJitter, evalTransform, pyRound, randomResizedCropBox, trainTransform, PAPER_TRAIN, type TrainAugment } from '../src/data/augment.js';
import { adjustHue } from '../src/data/image-ops.js';
import { batchCount, epochOrder, hostBatches, sampleRng, tensorBatches } from '../src/data/loader.js';
import { Rng } from '../src/data/rng.js';
import { MemoryRecords } from './support/fake-stage-context.js';

const NORM = { mean: [0, 0, 0], std: [1, 1, 1] };

function randomImage(size: number, channels: number, seed: number): Uint8Array {
  const rng = new Rng(seed);
  return Uint8Array.from({ length: size * size * channels }, () => rng.int(256));
}

function recordSet(n: number, size: number, channels: number): MemoryRecords {
  const records: DataRecord[] = Array.from({ length: n }, (_, i) => ({ data: randomImage(size, channels, i), meta: { id: `r${i}`, label: i % 3 } }));
  return new MemoryRecords(records, { shape: [size, size, channels], mean: [0.5, 0.5, 0.5].slice(0, channels), std: [0.25, 0.25, 0.25].slice(0, channels), classes: ['a', 'b', 'c'] });
}

test('RandomResizedCrop boxes obey scale/ratio bounds or fall back to a centred crop', () => {
  const rng = new Rng(1);
  let fallbacks = 0;
  for (let i = 0; i < 2000; i++) {
    const b = randomResizedCropBox(256, 256, [0.8, 1.2], [3 / 4, 4 / 3], rng);
    assert.ok(b.top >= 0 && b.left >= 0 && b.top + b.height <= 256 && b.left + b.width <= 256);
    if (b.height === 256 && b.width === 256 && b.top === 0) {
      fallbacks++;
      continue;
    }
    const area = (b.height * b.width) / 65536;
    const aspect = b.width / b.height;
    assert.ok(area >= 0.8 - 0.01 && area <= 1.0, `area ${area}`);
    assert.ok(aspect >= 3 / 4 - 0.02 && aspect <= 4 / 3 + 0.02, `aspect ${aspect}`);
  }
  // Scale up to 1.2 with ratio != 1 often cannot fit: torchvision then falls back, as here.
  assert.ok(fallbacks > 0 && fallbacks < 2000);
  assert.equal(pyRound(16.5), 16);
  assert.equal(pyRound(17.5), 18);
  assert.equal(pyRound(-2.5), -2);
});

test('eval transform: centre crop of a 256 image is an exact, normalised slice', () => {
  const img = randomImage(256, 3, 7);
  const out = new Float32Array(224 * 224 * 3);
  evalTransform(img, [256, 256, 3], { resize: 256, crop: 224 }, { mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3] }, out, 0);
  for (const [y, x, c] of [[0, 0, 0], [10, 200, 1], [223, 223, 2]]) {
    const src = img[((y + 16) * 256 + (x + 16)) * 3 + c] / 255;
    const expected = (src - [0.5, 0.4, 0.3][c]) / [0.2, 0.25, 0.3][c];
    assert.ok(Math.abs(out[(y * 224 + x) * 3 + c] - expected) < 1e-5);
  }
  // A 300 image is first resized to 256, then centre-cropped.
  const big = new Uint8Array(300 * 300).fill(100);
  const o2 = new Float32Array(224 * 224);
  evalTransform(big, [300, 300, 1], { resize: 256, crop: 224 }, { mean: [0], std: [1] }, o2, 0);
  assert.ok(o2.every((v) => Math.abs(v - 100 / 255) < 1e-6));
});

test('train transform: flips with p=1 on a full-image crop mirror exactly; jitter off leaves pixels', () => {
  const size = 12;
  const img = randomImage(size, 3, 3);
  const aug: TrainAugment = { ...PAPER_TRAIN, resize: size, crop: size, scale: [1, 1], ratio: [1, 1], hflip: 1, vflip: 1, jitter: { ...PAPER_TRAIN.jitter, p: 0 } };
  const out = new Float32Array(size * size * 3);
  trainTransform(img, [size, size, 3], aug, NORM, new Rng(0), out, 0);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      for (let c = 0; c < 3; c++) {
        const expected = img[((size - 1 - y) * size + (size - 1 - x)) * 3 + c] / 255;
        assert.ok(Math.abs(out[(y * size + x) * 3 + c] - expected) < 1e-6);
      }
    }
  }
});

test('colour jitter: hue rotation, grey images untouched by saturation/hue, values stay in [0, 1]', () => {
  const red = Float32Array.from([1, 0, 0]);
  adjustHue(red, 0, 3, 3, 1 / 3);
  assert.deepEqual([...red].map((v) => Math.round(v * 1000) / 1000), [0, 1, 0]);
  const grey = Float32Array.from({ length: 30 }, (_, i) => i / 30);
  const before = Float32Array.from(grey);
  colorJitter(grey, 0, 30, 1, { brightness: 0, contrast: 0, saturation: 0.5, hue: 0.5, p: 1 }, new Rng(2));
  assert.deepEqual(grey, before);
  const px = Float32Array.from(randomImage(8, 3, 4), (v) => v / 255);
  colorJitter(px, 0, px.length, 3, PAPER_TRAIN.jitter, new Rng(5));
  assert.ok(px.every((v) => v >= 0 && v <= 1));
  assert.notDeepEqual(px, Float32Array.from(randomImage(8, 3, 4), (v) => v / 255));
});

test('a sample\'s augmentation depends only on (seed, epoch, index)', () => {
  const img = randomImage(64, 3, 9);
  const aug: TrainAugment = { ...PAPER_TRAIN, resize: 64, crop: 56 };
  const run = (seed: number, epoch: number, index: number): Float32Array => {
    const out = new Float32Array(56 * 56 * 3);
    trainTransform(img, [64, 64, 3], aug, NORM, sampleRng(seed, epoch, index), out, 0);
    return out;
  };
  assert.deepEqual(run(1, 0, 5), run(1, 0, 5));
  assert.notDeepEqual(run(1, 0, 5), run(1, 1, 5));
  assert.notDeepEqual(run(1, 0, 5), run(2, 0, 5));
  assert.notDeepEqual(run(1, 0, 5), run(1, 0, 6));
});

test('loader: seeded epoch order, same samples whatever the batch size or prefetch, eval unshuffled', async () => {
  const reader = recordSet(10, 20, 3);
  const indices = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const order = epochOrder(indices, 3, 0, true);
  assert.deepEqual([...order].sort((a, b) => a - b), indices);
  assert.deepEqual(epochOrder(indices, 3, 0, true), order);
  assert.notDeepEqual(epochOrder(indices, 3, 1, true), order);

  const base = { reader, indices, seed: 3, epoch: 0, mode: 'train' as const, train: { resize: 20, crop: 16 } };
  const collect = async (batchSize: number, prefetch: number): Promise<Map<number, number[]>> => {
    const out = new Map<number, number[]>();
    const seen: number[] = [];
    for await (const b of hostBatches({ ...base, batchSize, prefetch })) {
      assert.equal(b.shape[1], 16);
      b.indices.forEach((idx, k) => {
        seen.push(idx);
        out.set(idx, Array.from(b.x.subarray(k * 768, (k + 1) * 768)));
        assert.equal(b.y[k], idx % 3);
      });
    }
    assert.deepEqual(seen, order);
    return out;
  };
  const a = await collect(4, 1);
  const b = await collect(3, 0);
  const c = await collect(10, 2);
  assert.deepEqual(a, b);
  assert.deepEqual(a, c);
  // Normalised with the set's mean/std (0.5, 0.25): values span about [-2, 2].
  const all = [...a.values()].flat();
  assert.ok(Math.min(...all) >= -2.0001 && Math.max(...all) <= 2.0001);

  assert.equal(batchCount({ indices, batchSize: 4, dropLast: true }), 2);
  const evalBatches = [];
  for await (const e of hostBatches({ reader, indices, batchSize: 4, seed: 0, epoch: 0, mode: 'eval', eval: { resize: 20, crop: 16 } })) evalBatches.push(e.indices);
  assert.deepEqual(evalBatches, [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
});

test('loader: tensor batches in NHWC float32 with int32 labels', async () => {
  const reader = recordSet(5, 12, 1);
  const shapes: number[][] = [];
  for await (const b of tensorBatches({ reader, indices: [0, 1, 2, 3, 4], batchSize: 2, seed: 1, epoch: 0, mode: 'train', train: { resize: 12, crop: 8 } })) {
    shapes.push(b.x.shape);
    assert.equal(b.x.dtype, 'float32');
    assert.equal(b.y.dtype, 'int32');
    b.x.dispose();
    b.y.dispose();
  }
  assert.deepEqual(shapes, [[2, 8, 8, 1], [2, 8, 8, 1], [1, 8, 8, 1]]);
});
