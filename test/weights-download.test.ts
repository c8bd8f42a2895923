import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readdirSync, readFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fetchHf, hfCachePath, hfUrl, parseHfSource } from '../src/ml/weights/download.js';

const BODY = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) % 251));
const DIGEST = createHash('sha256').update(BODY).digest('hex');

interface Hub {
  endpoint: string;
  hits: string[];
  server: Server;
}

/** A loopback stand-in for the hub: /<repo>/resolve/<rev>/<file> redirects to a CDN path, as the real one does. */
async function hub(): Promise<Hub> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(req.url ?? '');
    if (req.url === '/timm/tiny.fb_in1k/resolve/main/model.safetensors' || req.url === '/timm/tiny.fb_in1k/resolve/v2/sub/dir/w.safetensors') {
      res.writeHead(302, { location: '/cdn/blob' }).end();
    } else if (req.url === '/cdn/blob') {
      res.writeHead(200, { 'content-length': BODY.length }).end(BODY);
    } else {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits, server };
}

test('hf: sources parse into repo, revision and file', () => {
  assert.deepEqual(parseHfSource('hf:timm/deit_small_patch16_224.fb_in1k/model.safetensors'), { repo: 'timm/deit_small_patch16_224.fb_in1k', revision: 'main', file: 'model.safetensors' });
  assert.deepEqual(parseHfSource('hf:a/b@v1.0/x/y.safetensors'), { repo: 'a/b', revision: 'v1.0', file: 'x/y.safetensors' });
  assert.equal(hfUrl(parseHfSource('hf:a/b/c+d.bin'), 'https://h.example/'), 'https://h.example/a/b/resolve/main/c%2Bd.bin');
  for (const bad of ['hf:model.safetensors', 'hf:a/b', 'hf:a/b/../x', 'hf:a/b//x']) assert.throws(() => parseHfSource(bad), /bad hf source/);
});

test('downloads once into the cache, follows the redirect, checks the pin', async () => {
  const h = await hub();
  const dir = mkdtempSync(join(tmpdir(), 'medpipe-dl-'));
  process.env.HF_ENDPOINT = h.endpoint;
  try {
    const src = 'hf:timm/tiny.fb_in1k/model.safetensors';
    const progress: number[] = [];
    const first = await fetchHf(src, { dir, sha256: DIGEST.toUpperCase(), onProgress: (d) => progress.push(d) });
    assert.equal(first.fetched, true);
    assert.equal(first.sha256, DIGEST);
    assert.equal(first.url, `${h.endpoint}/timm/tiny.fb_in1k/resolve/main/model.safetensors`);
    assert.equal(first.path, join(dir, 'hf', 'timm', 'tiny.fb_in1k', 'main', 'model.safetensors'));
    assert.ok(readFileSync(first.path).equals(BODY));
    assert.equal(progress.at(-1), BODY.length);
    const second = await fetchHf(src, { dir, sha256: DIGEST });
    assert.equal(second.fetched, false);
    assert.equal(h.hits.length, 2, 'one request and its redirect, then nothing');
    assert.deepEqual(readdirSync(dirname(first.path)), ['model.safetensors'], 'no temp files left');

    // Nested file names and revisions; a wrong pin leaves nothing behind.
    const bad = fetchHf('hf:timm/tiny.fb_in1k@v2/sub/dir/w.safetensors', { dir, sha256: 'ab'.repeat(32) });
    await assert.rejects(bad, /could not download .*\/resolve\/v2\/sub\/dir\/w.safetensors: sha256 is [0-9a-f]{64}, but (ab){32} was pinned/);
    assert.deepEqual(readdirSync(join(dir, 'hf', 'timm', 'tiny.fb_in1k', 'v2', 'sub', 'dir')), []);
    // A cached file that contradicts a pin is not silently replaced.
    await assert.rejects(fetchHf(src, { dir, sha256: 'cd'.repeat(32) }), /has sha256 [0-9a-f]{64}, but (cd){32} was pinned: delete it/);
  } finally {
    delete process.env.HF_ENDPOINT;
    h.server.close();
  }
});

test('HTTP errors and no network name the URL and where to put the file by hand', async () => {
  const h = await hub();
  const dir = mkdtempSync(join(tmpdir(), 'medpipe-dl-'));
  const where = hfCachePath(parseHfSource('hf:timm/absent/model.safetensors'), dir);
  await assert.rejects(
    fetchHf('hf:timm/absent/model.safetensors', { dir, endpoint: h.endpoint }),
    (e: Error) => e.message.includes(`could not download ${h.endpoint}/timm/absent/resolve/main/model.safetensors: HTTP 404`) && e.message.includes(`put it at ${where}`),
  );
  await new Promise((r) => h.server.close(r));
  // The port is closed now: connection refused, as offline.
  await assert.rejects(fetchHf('hf:timm/tiny.fb_in1k/model.safetensors', { dir, endpoint: h.endpoint }), /could not download http:\/\/127\.0\.0\.1:\d+\/timm\/tiny.fb_in1k\/resolve\/main\/model.safetensors: .*ECONNREFUSED.*put it at/);
  // The file placed by hand is then used without the network.
  const placed = hfCachePath(parseHfSource('hf:timm/tiny.fb_in1k/model.safetensors'), dir);
  mkdirSync(dirname(placed), { recursive: true });
  writeFileSync(placed, BODY);
  const got = await fetchHf('hf:timm/tiny.fb_in1k/model.safetensors', { dir, endpoint: h.endpoint, sha256: DIGEST });
  assert.equal(got.fetched, false);
  assert.ok(existsSync(got.path));
});
