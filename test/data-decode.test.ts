// Decoding: DICOM through every uncompressed transfer syntax (compressed ones: data-decode-dicom-codecs.test.ts), MONOCHROME1, rescale, windowing,
// signed pixels; PNG/JPEG through sharp; and each kind of bad file with its error.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { decodeBytes, decodeFile, DecodeError, dicomToGray } from '../src/data/decode.js';
import { writeDicom, type DicomImage } from '../src/data/dicom-write.js';
import { encodeImage } from '../src/data/synthetic/encode.js';
import { Raster } from '../src/data/synthetic/raster.js';

const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'medpipe-decode-'));
after(() => fs.rm(tmp, { recursive: true, force: true }));

const W = 7;
const H = 5;
function image(extra: Partial<DicomImage> = {}): DicomImage {
  const pixels = new Uint16Array(W * H);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 997) % 4096;
  return { rows: H, columns: W, bitsAllocated: 16, bitsStored: 12, pixels, sopInstanceUid: '1.2.3.4', studyInstanceUid: '1.2.3.5', seriesInstanceUid: '1.2.3.6', ...extra };
}

const maxDiff = (a: Uint8Array, b: Uint8Array): number => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

test('the three uncompressed transfer syntaxes decode to the same pixels', async () => {
  const syntaxes = ['1.2.840.10008.1.2', '1.2.840.10008.1.2.1', '1.2.840.10008.1.2.2'];
  const grays = await Promise.all(syntaxes.map((ts) => dicomToGray(writeDicom(image(), { transferSyntax: ts }), 'x.dcm')));
  for (const g of grays) {
    assert.equal(g.width, W);
    assert.equal(g.height, H);
    assert.deepEqual(g.data, grays[0].data);
  }
  // Min-max: the smallest stored value is black, the largest white, order kept.
  const stored = image().pixels;
  const lo = stored.indexOf(Math.min(...stored));
  const hi = stored.indexOf(Math.max(...stored));
  assert.equal(grays[0].data[lo], 0);
  assert.equal(grays[0].data[hi], 255);
  const resized = await Promise.all(syntaxes.map((ts) => decodeBytes(writeDicom(image(), { transferSyntax: ts }), 'x.dcm', { size: 4, channels: 3 })));
  assert.equal(resized[0].length, 4 * 4 * 3);
  for (const r of resized) assert.deepEqual(r, resized[0]);
});

test('MONOCHROME1 is inverted back to MONOCHROME2 appearance', async () => {
  const m2 = image();
  const inverted = new Uint16Array(m2.pixels.length);
  m2.pixels.forEach((v, i) => (inverted[i] = 4095 - v));
  const a = await dicomToGray(writeDicom(m2), 'a.dcm');
  const b = await dicomToGray(writeDicom(image({ pixels: inverted, photometric: 'MONOCHROME1' })), 'b.dcm');
  assert.ok(maxDiff(a.data, b.data) <= 1);
});

test('rescale slope/intercept then the VOI window are applied', async () => {
  const pixels = new Uint16Array(W * H);
  pixels.set([0, 1000, 500, 250, 750, 499, 501]);
  const g = await dicomToGray(writeDicom(image({ pixels, bitsStored: 16, rescaleSlope: 2, rescaleIntercept: -1000, windowCenter: 0, windowWidth: 1001 })), 'w.dcm');
  // Modality values -1000, 1000, 0, -500, 500, -2, 2; window [-500.5, 499.5].
  assert.deepEqual([...g.data.slice(0, 7)], [0, 255, 128, 0, 255, 127, 128]);
  // 'minmax' ignores the window: -1000 -> 0 ... 1000 -> 255 over the whole image.
  const mm = await dicomToGray(writeDicom(image({ pixels, bitsStored: 16, rescaleSlope: 2, rescaleIntercept: -1000, windowCenter: 0, windowWidth: 1001 })), 'w.dcm', { windowing: 'minmax' });
  assert.deepEqual([...mm.data.slice(0, 3)], [0, 255, 128]);
});

test('signed pixels are sign-extended from BitsStored; 8-bit pixels work', async () => {
  const signed = new Int16Array(W * H);
  signed.set([-5, 10, -2048, 2047]);
  const g = await dicomToGray(writeDicom(image({ pixels: signed, pixelRepresentation: 1 })), 's.dcm');
  assert.equal(g.data[2], 0); // -2048 is the minimum
  assert.equal(g.data[3], 255); // 2047 the maximum
  assert.ok(g.data[0] < g.data[1] && g.data[4] > g.data[0]); // -5 < 10, 0 > -5
  const eight = new Uint8Array(W * H).map((_, i) => i * 7);
  const e = await dicomToGray(writeDicom(image({ pixels: eight, bitsAllocated: 8, bitsStored: 8 })), 'e.dcm');
  assert.equal(e.data[0], 0);
  assert.equal(e.data[W * H - 1], 255);
});

test('syntaxes it cannot decode are refused naming the file, the UID and its name; corrupt codec data names its syntax', async () => {
  const bytes = writeDicom(image(), { transferSyntax: '1.2.840.10008.1.2.4.100' });
  const file = path.join(tmp, 'mpeg2.dcm');
  await fs.writeFile(file, bytes);
  await assert.rejects(decodeFile(file, 'cases/mpeg2.dcm', { size: 8, channels: 1 }), (e: unknown) => {
    assert.ok(e instanceof DecodeError);
    assert.equal(e.file, 'cases/mpeg2.dcm');
    assert.match(e.message, /^cases\/mpeg2\.dcm: unsupported DICOM transfer syntax 1\.2\.840\.10008\.1\.2\.4\.100 \(MPEG2 Main Profile \/ Main Level\)/);
    assert.match(e.message, /1\.2\.840\.10008\.1\.2\.4\.90 JPEG 2000 Image Compression \(Lossless Only\)/);
    return true;
  });
  await assert.rejects(dicomToGray(writeDicom(image(), { transferSyntax: '1.2.3.999' }), 'u.dcm'), /1\.2\.3\.999 \(unknown transfer syntax\)/);
  // Raw pixels in a JPEG 2000 fragment: the codec fails, and the error says where and which syntax.
  await assert.rejects(dicomToGray(writeDicom(image(), { transferSyntax: '1.2.840.10008.1.2.4.90' }), 'j.dcm'), /^DecodeError: j\.dcm: JPEG 2000 Image Compression \(Lossless Only\): OpenJPEG could not decode/);
});

test('bad DICOM files: truncated pixel data, truncated header, not DICOM at all', async () => {
  const full = writeDicom(image({ rows: 40, columns: 40, pixels: new Uint16Array(1600) }));
  await assert.rejects(dicomToGray(full.subarray(0, full.length - 100), 't.dcm'), /t\.dcm: truncated/);
  await assert.rejects(dicomToGray(full.subarray(0, 200), 'h.dcm'), /h\.dcm: (truncated|not a DICOM)/);
  await assert.rejects(dicomToGray(new Uint8Array(300).fill(7), 'g.dcm'), /g\.dcm: not a DICOM Part-10 file/);
});

test('PNG and JPEG: resized to size x size, 1 or 3 channels; bad files name themselves', async () => {
  const r = new Raster(40, 20, 3);
  r.fill([0.2, 0.5, 0.8]);
  const png = await encodeImage(r, 'png');
  const jpeg = await encodeImage(r, 'jpeg');
  const rgb = await decodeBytes(png, 'a.png', { size: 16, channels: 3 });
  assert.equal(rgb.length, 16 * 16 * 3);
  assert.deepEqual([...rgb.slice(0, 3)], [51, 128, 204]);
  const grey = await decodeBytes(jpeg, 'a.jpg', { size: 10, channels: 1 });
  assert.equal(grey.length, 100);
  // A one-channel image becomes three equal channels.
  const g1 = new Raster(8, 8, 1);
  g1.fill([0.5]);
  const g3 = await decodeBytes(await encodeImage(g1, 'png'), 'g.png', { size: 8, channels: 3 });
  assert.ok(g3.every((v) => v === g3[0]));

  const files: Record<string, Uint8Array> = {
    'trunc.png': png.subarray(0, Math.floor(png.length * 0.6)),
    'trunc.jpg': jpeg.subarray(0, Math.floor(jpeg.length * 0.6)),
    'garbage.png': new Uint8Array(500).fill(3),
    'empty.jpg': new Uint8Array(0),
  };
  const failures: string[] = [];
  for (const [name, bytes] of Object.entries(files)) {
    await fs.writeFile(path.join(tmp, name), bytes);
    await decodeFile(path.join(tmp, name), name, { size: 8, channels: 3 }).then(
      () => failures.push(`${name}: decoded`),
      (e: unknown) => failures.push(e instanceof DecodeError ? `${e.file}: ${e.reason.split(':')[0]}` : `${name}: ${String(e)}`),
    );
  }
  await decodeFile(path.join(tmp, 'nope.png'), 'nope.png', { size: 8, channels: 3 }).catch((e: unknown) => failures.push(e instanceof DecodeError ? `${e.file}: ${e.reason}` : String(e)));
  assert.deepEqual(failures, ['trunc.png: undecodable image', 'trunc.jpg: undecodable image', 'garbage.png: undecodable image', 'empty.jpg: empty file (0 bytes)', 'nope.png: missing file']);
});
