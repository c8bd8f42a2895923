// Data path throughput: decoding + resizing JPEGs into records, and the augmenting loader.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataRecord, JSONObject, RecordReader } from '../src/contract.js';
import { decodeFile } from '../src/data/decode.js';
import { hostBatches } from '../src/data/loader.js';
import { Rng } from '../src/data/rng.js';
import { synthesize } from '../src/data/synthetic/index.js';
import { summary, time } from './stats.js';

async function preprocessRate(files: string[], concurrency: number): Promise<number> {
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const f = files[next++]!;
      await decodeFile(f, f, { size: 256, channels: 3 });
    }
  };
  const [, s] = await time(() => Promise.all(Array.from({ length: concurrency }, worker)));
  return files.length / s;
}

function memoryReader(count: number, size: number): RecordReader {
  const rng = new Rng(1, 0, 0);
  const records: DataRecord[] = Array.from({ length: count }, (_, i) => {
    const data = new Uint8Array(size * size * 3);
    for (let j = 0; j < data.length; j++) data[j] = Math.floor(rng.float() * 256);
    return { data, meta: { id: `img${i}`, label: i % 5 } };
  });
  const meta: JSONObject = { shape: [size, size, 3], mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };
  return { count, meta, get: (i) => records[i]!, *iterate(a = 0, b = count) { for (let i = a; i < b; i++) yield records[i]!; } };
}

async function loaderRate(reader: RecordReader, mode: 'train' | 'eval'): Promise<number> {
  const indices = [...Array(reader.count).keys()];
  const [n, s] = await time(async () => {
    let seen = 0;
    for await (const b of hostBatches({ reader, indices, batchSize: 8, seed: 0, epoch: 0, mode })) seen += b.y.length;
    return seen;
  });
  return n / s;
}

export async function benchData(log: (line: string) => void): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'medpipe-bench-data-'));
  try {
    await synthesize(dir, { dataset: 'isic2019', count: 120, size: 512, seed: 0 });
    const imgDir = join(dir, 'ISIC_2019_Training_Input');
    const files = readdirSync(imgDir).filter((f) => f.endsWith('.jpg')).map((f) => join(imgDir, f));
    const cores = availableParallelism();
    const rates: number[] = [];
    for (let i = 0; i < 3; i++) rates.push(await preprocessRate(files, cores));
    log(`preprocess (decode JPEG 512x512 -> 256x256x3 uint8, ${cores} at once): median ${summary(rates).median.toFixed(0)} images/s (n=${rates.length})`);
    const reader = memoryReader(96, 256);
    for (const mode of ['train', 'eval'] as const) {
      const r: number[] = [];
      for (let i = 0; i < 3; i++) r.push(await loaderRate(reader, mode));
      log(`loader, ${mode} transforms (${mode === 'train' ? 'RandomResizedCrop 224, flips, colour jitter' : 'resize 256, centre crop 224'}), batch 8, one thread: median ${summary(r).median.toFixed(0)} images/s`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
