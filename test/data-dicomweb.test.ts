// The dicomweb importer: against a real Orthanc with its DICOMweb plugin (started by
// .ci/services.sh, skipped without it), loaded here with synthetic mammograms; and against a
// loopback stand-in for what Orthanc cannot show: credentials, a hostile server.
import assert from 'node:assert/strict';
import { promises as fs, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import preprocess from '../stages/preprocess.js';
import { decodeFile } from '../src/data/decode.js';
import { readDicomPixels } from '../src/data/dicom-pixels.js';
import { writeDicom, syntheticUid } from '../src/data/dicom-write.js';
import { firstPart } from '../src/data/dicomweb/multipart.js';
import { dicomweb } from '../src/data/importers/dicomweb.js';
import { Rng } from '../src/data/rng.js';
import { drawMammogram, toUint16 } from '../src/data/synthetic/mammo.js';
import { fakeFingerprintContext, runStage } from './support/fake-stage-context.js';

const FIXTURES = fileURLToPath(new URL('../../test/fixtures/dicom/', import.meta.url));
const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'medpipe-dicomweb-'));
after(() => fs.rm(tmp, { recursive: true, force: true }));

/** A fresh study each run, so a long-lived Orthanc never mixes two runs' instances. */
const RUN = Date.now() % 1_000_000_000;

function mammogram(i: number, study: string): Uint8Array {
  const side = i % 2 === 0 ? 'LEFT' : 'RIGHT';
  const image = drawMammogram(32, 40, { side, view: 'CC', mass: i % 3 === 0 ? 'benign' : 'none', calcifications: false }, new Rng(RUN, i));
  return writeDicom({
    rows: 40,
    columns: 32,
    bitsAllocated: 16,
    pixels: toUint16(image, false),
    laterality: side === 'LEFT' ? 'L' : 'R',
    patientId: `P${i % 3}`,
    sopInstanceUid: syntheticUid(RUN, 2, i),
    studyInstanceUid: study,
    seriesInstanceUid: syntheticUid(RUN, 1, i % 2),
  });
}

const orthanc = process.env['MEDPIPE_TEST_ORTHANC'];

describe('against Orthanc + DICOMweb plugin', { skip: orthanc ? false : 'MEDPIPE_TEST_ORTHANC is not set (.ci/services.sh starts Orthanc with orthanc-dicomweb)' }, () => {
  const url = `${orthanc}/dicom-web`;
  const study = syntheticUid(RUN, 0);

  test('QIDO lists the study, WADO fetches each instance once, labels from ImageLaterality; resumable', async () => {
    const uploaded: Uint8Array[] = [];
    for (let i = 0; i < 6; i++) {
      const bytes = mammogram(i, study);
      uploaded.push(bytes);
      const res = await fetch(`${orthanc}/instances`, { method: 'POST', body: Buffer.from(bytes) });
      assert.equal(res.status, 200, await res.text());
    }
    const root = path.join(tmp, 'pacs');
    const options = { url, study, label: { attribute: '00200062' }, concurrency: 3 };
    const first = await dicomweb.import(root, options);
    assert.deepEqual(first.problems, []);
    assert.deepEqual(first.classes, ['L', 'R']);
    assert.equal(first.items.length, 6);
    for (const item of first.items) {
      const i = Number(item.id.split('.').at(-1));
      assert.equal(item.path, `${study}/${syntheticUid(RUN, 1, i % 2)}/${item.id}.dcm`);
      assert.equal(item.label, i % 2);
      // Stored uncompressed, fetched as stored: the very bytes uploaded.
      assert.ok(Buffer.from(await fs.readFile(path.join(root, item.path))).equals(Buffer.from(uploaded[i]!)), item.path);
    }
    assert.equal((await decodeFile(path.join(root, first.items[0]!.path), first.items[0]!.path, { size: 16, channels: 1 })).length, 256);

    // Interrupted import: one file lost; the next import fetches only that one.
    const gone = first.items[2]!.path;
    const kept = first.items[3]!.path;
    const before = statSync(path.join(root, kept)).mtimeMs;
    await fs.rm(path.join(root, gone));
    const second = await dicomweb.import(root, options);
    assert.deepEqual(second.items, first.items);
    assert.ok(statSync(path.join(root, gone)).isFile());
    assert.equal(statSync(path.join(root, kept)).mtimeMs, before, 'what was there is not fetched again');

    // As a pipeline has it: preprocess with format dicomweb, root relative to the pipeline file.
    const run = await runStage(preprocess, { format: 'dicomweb', root: 'pacs', options, size: 16, channels: 1, kernel: 'lanczos3', windowing: 'auto', on_error: 'fail', concurrency: 2 }, tmp);
    const recs = run.records.get('records')!;
    assert.equal(recs.count, 6);
    assert.deepEqual(recs.meta['classes'], ['L', 'R']);
    assert.deepEqual(recs.meta['class_counts'], { L: 3, R: 3 });
    assert.deepEqual([...recs.iterate()].map((r) => r.meta['id']), first.items.map((i) => i.id));
  });

  test('a JPEG-LS instance comes as stored, decodes bit-identical; labels from a CSV keyed by SOPInstanceUID', async () => {
    const bytes = await fs.readFile(path.join(FIXTURES, 'jpeg-ls-16.dcm'));
    const px = await readDicomPixels(bytes, 'fixture');
    const sop = px.dataSet.string('x00080018')!.replace(/\0/g, '');
    // The fixture's UIDs are fixed: drop a copy an earlier run left (Orthanc keeps the first one stored).
    const found = (await (await fetch(`${orthanc}/tools/lookup`, { method: 'POST', body: sop })).json()) as Array<{ ID: string }>;
    for (const { ID } of found) await fetch(`${orthanc}/instances/${ID}`, { method: 'DELETE' });
    assert.equal((await fetch(`${orthanc}/instances`, { method: 'POST', body: bytes })).status, 200);
    const fixtureStudy = px.dataSet.string('x0020000d')!.replace(/\0/g, '');
    const root = path.join(tmp, 'pacs-ls');
    await fs.mkdir(root, { recursive: true });
    await fs.writeFile(path.join(root, 'labels.csv'), `SOPInstanceUID,label\n${sop},mass\n`);
    const got = await dicomweb.import(root, { url, study: fixtureStudy, label: { csv: 'labels.csv', key: 'SOPInstanceUID', column: 'label' } });
    assert.deepEqual(got.problems, []);
    assert.deepEqual(got.sources, ['labels.csv']);
    assert.equal(got.items.length, 1);
    const fetched = await readDicomPixels(await fs.readFile(path.join(root, got.items[0]!.path)), 'fetched');
    assert.equal(fetched.syntax, '1.2.840.10008.1.2.4.80');
    const original = await readDicomPixels(await fs.readFile(path.join(FIXTURES, 'original-16.dcm')), 'original');
    assert.deepEqual(fetched.samples, original.samples);
  });
});

describe('against a loopback stand-in', () => {
  async function standIn(answer: (url: string, auth: string | undefined) => { status: number; type?: string; body: Buffer | string }) {
    const seen: Array<{ url: string; auth: string | undefined; accept: string | undefined }> = [];
    const server = createServer((req, res) => {
      seen.push({ url: req.url ?? '', auth: req.headers.authorization, accept: req.headers.accept });
      const a = answer(req.url ?? '', req.headers.authorization);
      res.writeHead(a.status, a.type ? { 'content-type': a.type } : {}).end(a.body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    after(() => new Promise<void>((r) => server.close(() => r())));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/wado`, seen };
  }

  const study = '1.2.3';
  const instance = (sop: string, extra: Record<string, unknown> = {}) => ({
    '0020000D': { vr: 'UI', Value: [study] },
    '0020000E': { vr: 'UI', Value: ['1.2.3.4'] },
    '00080018': { vr: 'UI', Value: [sop] },
    '00200062': { vr: 'CS', Value: ['L'] },
    ...extra,
  });

  test('credentials come from the environment, go in the Authorization header and never in the key', async () => {
    const part = Buffer.from(writeDicom({ rows: 2, columns: 2, bitsAllocated: 8, pixels: new Uint8Array(4), sopInstanceUid: '1.2.3.4.5', studyInstanceUid: study, seriesInstanceUid: '1.2.3.4' }));
    const boundary = 'b0undary';
    const multipart = Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), part, Buffer.from(`\r\n--${boundary}--\r\n`)]);
    const s = await standIn((url, auth) => {
      if (auth !== `Bearer ${process.env['MEDPIPE_DICOMWEB_TOKEN']}`) return { status: 401, body: '' };
      if (url.includes('/instances?')) return { status: 200, type: 'application/dicom+json', body: JSON.stringify([instance('1.2.3.4.5')]) };
      return { status: 200, type: `multipart/related; type="application/dicom"; boundary=${boundary}`, body: multipart };
    });
    const root = path.join(tmp, 'auth');
    const params = { format: 'dicomweb', root: 'auth', options: { url: s.url, study, label: { attribute: '00200062' } } };
    const keys: unknown[] = [];
    for (const token of ['first-secret', 'second-secret']) {
      process.env['MEDPIPE_DICOMWEB_TOKEN'] = token;
      try {
        keys.push(await preprocess.fingerprint!(params as never, fakeFingerprintContext(tmp)));
      } finally {
        delete process.env['MEDPIPE_DICOMWEB_TOKEN'];
      }
    }
    assert.deepEqual(keys[0], keys[1]);
    assert.doesNotMatch(JSON.stringify(keys[0]), /secret/);
    assert.ok(s.seen.every((r) => r.auth?.startsWith('Bearer ')));
    assert.match(s.seen.find((r) => r.url.includes('/instances/1.2.3.4.5'))!.accept!, /^multipart\/related; type="application\/dicom"; transfer-syntax=\*$/);
    assert.ok(Buffer.from(await fs.readFile(path.join(root, study, '1.2.3.4', '1.2.3.4.5.dcm'))).equals(part));
    // Without the token: the error says which variables to set.
    await assert.rejects(dicomweb.import(path.join(tmp, 'auth2'), params.options), /HTTP 401 .*set MEDPIPE_DICOMWEB_TOKEN or MEDPIPE_DICOMWEB_USER\/MEDPIPE_DICOMWEB_PASSWORD/);
    await assert.rejects(dicomweb.import(root, { ...params.options, url: 'http://user:pw@127.0.0.1:1/wado' }), /must not hold credentials/);
  });

  test('a hostile or broken server: UIDs that would escape the root, a wrong instance, a cut answer', async () => {
    const s = await standIn((url) => {
      if (url.includes('/instances?')) {
        return { status: 200, type: 'application/dicom+json', body: JSON.stringify([instance('../../etc'), instance('1.2.3.4.6'), instance('1.2.3.4.7')]) };
      }
      if (url.endsWith('/1.2.3.4.6')) return { status: 200, type: 'multipart/related; boundary=x', body: '--x\r\n\r\nnot dicom at all, and no closing' };
      return { status: 200, type: 'application/dicom', body: Buffer.from(writeDicom({ rows: 1, columns: 1, bitsAllocated: 8, pixels: new Uint8Array(1), sopInstanceUid: '9.9.9', studyInstanceUid: study, seriesInstanceUid: '1.2.3.4' })) };
    });
    const root = path.join(tmp, 'hostile');
    const got = await dicomweb.import(root, { url: s.url, label: { attribute: '00200062' } });
    assert.deepEqual(got.items, []);
    assert.deepEqual(
      got.problems.map((p) => `${p.file}: ${p.reason}`),
      [
        `${s.url}/: QIDO-RS answered an instance with SOPInstanceUID "../../etc"`,
        `${study}/1.2.3.4/1.2.3.4.6.dcm: not fetched: WADO-RS ${s.url}/studies/${study}/series/1.2.3.4/instances/1.2.3.4.6: multipart part is not closed (truncated answer?)`,
        `${study}/1.2.3.4/1.2.3.4.7.dcm: not fetched: WADO-RS answered instance "9.9.9" for 1.2.3.4.7`,
      ],
    );
    assert.deepEqual(await fs.readdir(root).catch(() => []), [], 'nothing written');
  });

  test('multipart/related: the first part, quoted boundaries, a plain application/dicom answer', () => {
    const body = Buffer.from('--"q"\r\nContent-Type: application/dicom\r\n\r\nDICM\r\n--"q"--');
    assert.throws(() => firstPart(body, 'multipart/related; boundary="q"'), /no part/);
    const ok = Buffer.from('--q\r\nContent-Type: application/dicom\r\n\r\nDI\r\nCM\r\n--q--');
    assert.equal(Buffer.from(firstPart(ok, 'multipart/related; type="application/dicom"; boundary="q"')).toString(), 'DI\r\nCM');
    assert.equal(Buffer.from(firstPart(Buffer.from('raw'), 'application/dicom')).toString(), 'raw');
    assert.throws(() => firstPart(ok, 'text/html'), /expected multipart\/related or application\/dicom, got "text\/html"/);
  });
});
