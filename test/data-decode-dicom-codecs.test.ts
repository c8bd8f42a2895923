// Compressed DICOM, made from synthetic mammograms by Debian's own tools (dcmtk, gdcm): the
// lossless syntaxes decode bit-identical to the uncompressed original, the lossy ones to what
// Debian's decoder makes of the same file. Twice: on the checked-in fixtures (always), and on
// files the installed tools make now (skipped, saying so, where the tools are absent).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, describe, test } from 'node:test';
import type { Samples } from '../src/data/codecs/frame.js';
import { decodeBytes, DecodeError } from '../src/data/decode.js';
import { readDicomPixels } from '../src/data/dicom-pixels.js';
import { convert, CONVERSIONS, missingTools, MULTI_FRAME_CONVERSIONS, MULTI_FRAMES, originalName, writeOriginals, type Conversion } from './support/dicom-conversions.js';

const FIXTURES = fileURLToPath(new URL('../../test/fixtures/dicom/', import.meta.url));

async function samplesOf(file: string, multiframe: 'refuse' | 'first' = 'refuse'): Promise<{ syntax: string; samples: Samples }> {
  const px = await readDicomPixels(await fs.readFile(file), path.basename(file), multiframe);
  return { syntax: px.syntax, samples: px.samples };
}

function maxAbsDiff(a: Samples, b: Samples): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

function firstMismatch(a: Samples, b: Samples): string {
  const i = a.findIndex((v: number, k: number) => v !== b[k]);
  return i < 0 ? 'none' : `pixel ${i}: ${a[i]} vs ${b[i]}`;
}

async function checkConversion(dir: string, c: Conversion): Promise<void> {
  const decoded = await samplesOf(path.join(dir, `${c.name}.dcm`), c.multiframe ? 'first' : 'refuse');
  assert.equal(decoded.syntax, c.syntax, `${c.name}: the tool wrote another transfer syntax`);
  const original = await samplesOf(path.join(dir, originalName(c.depth, c.multiframe)), 'first');
  if (c.reference === undefined) {
    assert.equal(decoded.samples.length, original.samples.length);
    assert.ok(maxAbsDiff(decoded.samples, original.samples) === 0, `${c.name}: not bit-identical, first mismatch at ${firstMismatch(decoded.samples, original.samples)}`);
    return;
  }
  const reference = await samplesOf(path.join(dir, `${c.name}.ref.dcm`));
  assert.ok(maxAbsDiff(decoded.samples, reference.samples) <= (c.maxErrorVsReference ?? 1), `${c.name}: differs from ${c.reference[0]}'s decode by ${maxAbsDiff(decoded.samples, reference.samples)}`);
  const error = maxAbsDiff(decoded.samples, original.samples);
  assert.ok(error <= (c.maxErrorVsOriginal ?? 0), `${c.name}: ${error} from the original, allowed ${c.maxErrorVsOriginal}`);
}

async function checkRefusals(dir: string): Promise<void> {
  for (const c of MULTI_FRAME_CONVERSIONS) {
    await assert.rejects(samplesOf(path.join(dir, `${c.name}.dcm`)), (e: unknown) => {
      assert.ok(e instanceof DecodeError);
      assert.equal(e.file, `${c.name}.dcm`);
      assert.match(e.reason, new RegExp(`multi-frame DICOM \\(${MULTI_FRAMES} frames\\) is refused; set the preprocess parameter multiframe: first`));
      return true;
    });
  }
}

describe('checked-in fixtures (made by dcmtk 3.6.7 / gdcm 3.0.21)', () => {
  for (const c of [...CONVERSIONS, ...MULTI_FRAME_CONVERSIONS]) {
    test(`${c.name}: ${c.reference === undefined ? 'bit-identical to the original' : `as ${c.reference[0]} decodes it`}`, () => checkConversion(FIXTURES, c));
  }

  test('multi-frame files are refused by default', () => checkRefusals(FIXTURES));

  test('a compressed mammogram goes through windowing and resizing exactly as its uncompressed original', async () => {
    const options = { size: 24, channels: 3 as const };
    const original = await decodeBytes(await fs.readFile(path.join(FIXTURES, originalName(16))), 'o.dcm', options);
    for (const name of ['jpeg-ls-16', 'j2k-lossless-16', 'jpeg-lossless-sv1-16', 'rle-16', 'deflated-16']) {
      assert.deepEqual(await decodeBytes(await fs.readFile(path.join(FIXTURES, `${name}.dcm`)), `${name}.dcm`, options), original, name);
    }
  });

  test('a codec is loaded only when a file needs it, and only that one', async () => {
    const hooks = new URL('./support/log-codec-loads.js', import.meta.url).href;
    const decode = new URL('../src/data/decode.js', import.meta.url).href;
    const loads = async (files: string[]): Promise<string[]> => {
      const script = `const { decodeBytes } = await import(${JSON.stringify(decode)}); const fs = await import('node:fs');
        for (const f of ${JSON.stringify(files.map((f) => path.join(FIXTURES, f)))}) await decodeBytes(fs.readFileSync(f), f, { size: 8, channels: 1 });`;
      const register = `data:text/javascript,import { register } from 'node:module'; register(${JSON.stringify(hooks)});`;
      const { stderr } = await promisify(execFile)(process.execPath, ['--import', register, '--input-type=module', '-e', script]);
      return [...new Set(stderr.split('\n').filter((l) => l.startsWith('loaded ')).map((l) => /@cornerstonejs\/([^/]+)\/|\/(dcmjs-codecs)\//.exec(l)?.slice(1).find(Boolean) ?? l))].sort();
    };
    assert.deepEqual(await loads(['original-16.dcm', 'deflated-16.dcm', 'rle-16.dcm']), []);
    assert.deepEqual(await loads(['jpeg-ls-16.dcm']), ['codec-charls']);
    assert.deepEqual(await loads(['j2k-lossless-16.dcm', 'jpeg-lossless-sv1-16.dcm']), ['codec-openjpeg', 'jpeg-lossless-decoder-js']);
    assert.deepEqual(await loads(['jpeg-extended-8.dcm']), ['codec-libjpeg-turbo-8bit']);
    assert.deepEqual(await loads(['jpeg-extended-12.dcm']), ['dcmjs-codecs']);
  });

  test('a corrupted or truncated 12-bit JPEG is a DecodeError naming the file, and the codec still decodes after it', async () => {
    const bytes = await fs.readFile(path.join(FIXTURES, 'jpeg-extended-12.dcm'));
    // The encapsulated frame ends 8 bytes before the file does (the sequence delimiter follows).
    const end = bytes.length - 8;
    const broken = new Uint8Array(bytes);
    broken.fill(0xff, end - 1200, end - 1000);
    await assert.rejects(readDicomPixels(broken, 'broken.dcm'), (e: unknown) => {
      assert.ok(e instanceof DecodeError);
      assert.equal(e.file, 'broken.dcm');
      assert.match(e.reason, /^JPEG Extended \(Process 2 & 4\): IJG 12-bit JPEG \(dcmjs-codecs\) could not decode the frame: .+/);
      return true;
    });
    const cut = new Uint8Array(bytes);
    cut.fill(0, end - 600, end);
    await assert.rejects(readDicomPixels(cut, 'cut.dcm'), (e: unknown) => e instanceof DecodeError && e.file === 'cut.dcm' && /no end-of-image marker \(truncated\?\)/.test(e.reason));
    // Past the 30 failures after which a reused instance faulted on every frame (each failure
    // now costs a fresh instance, ~0.1-0.5 s: the count is kept just above that).
    for (let i = 0; i < 32; i++) await assert.rejects(readDicomPixels(broken, 'broken.dcm'), /IJG 12-bit JPEG \(dcmjs-codecs\) could not decode the frame: JpegDecoder12::ErrorExit::/);
    const good = await samplesOf(path.join(FIXTURES, 'jpeg-extended-12.dcm'));
    const reference = await samplesOf(path.join(FIXTURES, 'jpeg-extended-12.ref.dcm'));
    assert.equal(maxAbsDiff(good.samples, reference.samples), 0);
  });

  test('multiframe: first reaches the decoder through the preprocess options', async () => {
    const file = path.join(FIXTURES, 'multiframe-rle-16.dcm');
    const options = { size: 8, channels: 1 as const };
    await assert.rejects(decodeBytes(await fs.readFile(file), 'm.dcm', options), /m\.dcm: multi-frame DICOM \(3 frames\) is refused/);
    const first = await decodeBytes(await fs.readFile(file), 'm.dcm', { ...options, multiframe: 'first' });
    const again = await decodeBytes(await fs.readFile(path.join(FIXTURES, 'multiframe-jpeg-ls-16.dcm')), 'l.dcm', { ...options, multiframe: 'first' });
    assert.deepEqual(first, again);
  });

  test('a truncated or corrupted compressed frame is a DecodeError naming the file and the syntax', async () => {
    const bytes = await fs.readFile(path.join(FIXTURES, 'jpeg-ls-16.dcm'));
    const broken = new Uint8Array(bytes);
    // Overwrite the middle of the JPEG-LS stream (well past the header) with a run of 0xff.
    broken.fill(0xff, bytes.length - 2000, bytes.length - 1000);
    await assert.rejects(readDicomPixels(broken, 'broken.dcm'), (e: unknown) => e instanceof DecodeError && /^JPEG-LS Lossless Image Compression: CharLS/.test(e.reason));
    await assert.rejects(readDicomPixels(bytes.subarray(0, bytes.length - 1500), 'short.dcm'), (e: unknown) => e instanceof DecodeError && e.file === 'short.dcm');
    const rle = await fs.readFile(path.join(FIXTURES, 'rle-16.dcm'));
    const cut = new Uint8Array(rle);
    cut.fill(0, rle.length - 1200, rle.length - 8);
    await assert.rejects(readDicomPixels(cut, 'rle.dcm'), (e: unknown) => e instanceof DecodeError && /^RLE Lossless: RLE segment/.test(e.reason));
  });
});

describe('files made now by the installed dcmtk / gdcm-tools', async () => {
  const missing = await missingTools();
  const skip = missing.length > 0 ? `Debian's DICOM tools are not installed (missing ${missing.join(', ')}; apt-get install dcmtk libgdcm-tools)` : false;
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'medpipe-dicom-codecs-'));
  after(() => fs.rm(dir, { recursive: true, force: true }));
  if (!skip) await writeOriginals(dir);
  for (const c of [...CONVERSIONS, ...MULTI_FRAME_CONVERSIONS]) {
    test(`${c.name} (${c.encode.join(' ')})`, { skip }, async () => {
      await convert(dir, c);
      await checkConversion(dir, c);
    });
  }
  test('refusals', { skip }, () => checkRefusals(dir));
});
