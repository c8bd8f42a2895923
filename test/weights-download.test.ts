import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fetchHf, hfUrl, hubCacheDir, parseHfSource, snapshotPath } from '../src/ml/weights/download.js';

const BODY = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) % 251));
const DIGEST = createHash('sha256').update(BODY).digest('hex');

const COMMIT = 'c0ffee'.padEnd(40, '1');
const COMMIT_V2 = 'beef'.padEnd(40, '2');

interface Hub {
  endpoint: string;
  hits: string[];
  server: Server;
}

/**
 * A loopback stand-in for the hub: /<repo>/resolve/<rev>/<file> answers with the commit and
 * the LFS etag (the sha256) and redirects to a CDN path, as the real one does.
 */
async function hub(): Promise<Hub> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(req.url ?? '');
    const lfs = { 'x-repo-commit': '', 'x-linked-etag': `"${DIGEST}"`, 'x-linked-size': String(BODY.length), location: '/cdn/blob' };
    if (req.url === '/timm/tiny.fb_in1k/resolve/main/model.safetensors' || req.url === `/timm/tiny.fb_in1k/resolve/${COMMIT}/model.safetensors`) {
      res.writeHead(302, { ...lfs, 'x-repo-commit': COMMIT }).end();
    } else if (req.url === '/timm/tiny.fb_in1k/resolve/v2/sub/dir/w.safetensors') {
      res.writeHead(302, { ...lfs, 'x-repo-commit': COMMIT_V2 }).end();
    } else if (req.url === '/timm/lying/resolve/main/model.safetensors') {
      res.writeHead(302, { ...lfs, 'x-repo-commit': COMMIT, 'x-linked-etag': `"${'0'.repeat(64)}"` }).end();
    } else if (req.url === '/cdn/blob') {
      assert.equal(req.headers.authorization, undefined, 'no token to the CDN');
      res.writeHead(200, { 'content-length': BODY.length }).end(BODY);
    } else {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits, server };
}

/** The files huggingface_hub (timm, huggingface-cli download) leaves for one model file. */
function prefill(hubDir: string, repo: string, revision: string, commit: string, file: string, bytes: Buffer): string {
  const folder = join(hubDir, `models--${repo.replace('/', '--')}`);
  const digest = createHash('sha256').update(bytes).digest('hex');
  mkdirSync(join(folder, 'blobs'), { recursive: true });
  writeFileSync(join(folder, 'blobs', digest), bytes);
  const snapshot = join(folder, 'snapshots', commit, file);
  mkdirSync(dirname(snapshot), { recursive: true });
  symlinkSync(relative(dirname(snapshot), join(folder, 'blobs', digest)), snapshot);
  mkdirSync(join(folder, 'refs'), { recursive: true });
  writeFileSync(join(folder, 'refs', revision), commit);
  return snapshot;
}

test('hf: sources parse into repo, revision and file', () => {
  assert.deepEqual(parseHfSource('hf:timm/deit_small_patch16_224.fb_in1k/model.safetensors'), { repo: 'timm/deit_small_patch16_224.fb_in1k', revision: 'main', file: 'model.safetensors' });
  assert.deepEqual(parseHfSource('hf:a/b@v1.0/x/y.safetensors'), { repo: 'a/b', revision: 'v1.0', file: 'x/y.safetensors' });
  assert.equal(hfUrl(parseHfSource('hf:a/b/c+d.bin'), 'https://h.example/'), 'https://h.example/a/b/resolve/main/c%2Bd.bin');
  for (const bad of ['hf:model.safetensors', 'hf:a/b', 'hf:a/b/../x', 'hf:a/b//x', 'hf:a/b@../x']) assert.throws(() => parseHfSource(bad), /bad hf source/);
});

test('the hub cache is $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub', () => {
  assert.equal(hubCacheDir(undefined, { HF_HUB_CACHE: '/a', HF_HOME: '/b' }), '/a');
  assert.equal(hubCacheDir(undefined, { HF_HOME: '/b' }), join('/b', 'hub'));
  assert.equal(hubCacheDir(undefined, { XDG_CACHE_HOME: '/x' }), join('/x', 'huggingface', 'hub'));
  assert.equal(hubCacheDir(undefined, {}), join(homedir(), '.cache', 'huggingface', 'hub'));
  assert.equal(hubCacheDir('/explicit', { HF_HUB_CACHE: '/a' }), '/explicit');
});

test('a file timm or huggingface-cli already cached is used with no network, its commit recorded', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'medpipe-hub-'));
  const snapshot = prefill(dir, 'timm/resnet50.tv_in1k', 'main', COMMIT, 'model.safetensors', BODY);
  // No server at all: any request would fail.
  const got = await fetchHf('hf:timm/resnet50.tv_in1k/model.safetensors', { dir, endpoint: 'http://127.0.0.1:9', sha256: DIGEST });
  assert.deepEqual({ ...got }, { path: snapshot, url: 'http://127.0.0.1:9/timm/resnet50.tv_in1k/resolve/main/model.safetensors', sha256: DIGEST, commit: COMMIT, fetched: false });
  // A pinned commit needs no ref; through $HF_HOME as the default location.
  process.env.HF_HOME = join(dir, '..', `${dir.split('/').at(-1)}-home`);
  try {
    const home = join(process.env.HF_HOME, 'hub');
    prefill(home, 'timm/deit_small_patch16_224.fb_in1k', 'other-branch', COMMIT_V2, 'model.safetensors', BODY);
    const pinned = await fetchHf(`hf:timm/deit_small_patch16_224.fb_in1k@${COMMIT_V2}/model.safetensors`, { endpoint: 'http://127.0.0.1:9' });
    assert.equal(pinned.commit, COMMIT_V2);
    assert.equal(pinned.fetched, false);
    assert.ok(pinned.path.startsWith(home));
  } finally {
    delete process.env.HF_HOME;
  }
  // A cached file that contradicts a pin is an error, not a silent download.
  await assert.rejects(fetchHf('hf:timm/resnet50.tv_in1k/model.safetensors', { dir, endpoint: 'http://127.0.0.1:9', sha256: 'cd'.repeat(32) }), /in the Hugging Face cache for .* has sha256 [0-9a-f]{64}, but (cd){32} was pinned/);
});

test('a download lands in the hub layout (blob, snapshot link, ref), once; then timm would find it', async () => {
  const h = await hub();
  const dir = mkdtempSync(join(tmpdir(), 'medpipe-hub-'));
  process.env.HF_ENDPOINT = h.endpoint;
  process.env.HF_TOKEN = 'secret';
  try {
    const src = 'hf:timm/tiny.fb_in1k/model.safetensors';
    const progress: number[] = [];
    const first = await fetchHf(src, { dir, sha256: DIGEST.toUpperCase(), onProgress: (d) => progress.push(d) });
    const folder = join(dir, 'models--timm--tiny.fb_in1k');
    assert.deepEqual({ ...first }, { path: join(folder, 'snapshots', COMMIT, 'model.safetensors'), url: `${h.endpoint}/timm/tiny.fb_in1k/resolve/main/model.safetensors`, sha256: DIGEST, commit: COMMIT, fetched: true });
    assert.ok(readFileSync(first.path).equals(BODY));
    assert.equal(readlinkSync(first.path), join('..', '..', 'blobs', DIGEST));
    assert.equal(readFileSync(join(folder, 'refs', 'main'), 'utf8'), COMMIT);
    assert.deepEqual(readdirSync(join(folder, 'blobs')), [DIGEST], 'no temp files left');
    assert.equal(progress.at(-1), BODY.length);
    const second = await fetchHf(src, { dir, sha256: DIGEST });
    assert.equal(second.fetched, false);
    assert.equal(h.hits.length, 2, 'one request and its redirect, then nothing');

    // Nested file names and other revisions; a wrong pin, or bytes that contradict the hub's etag, leave nothing.
    const bad = fetchHf('hf:timm/tiny.fb_in1k@v2/sub/dir/w.safetensors', { dir, sha256: 'ab'.repeat(32) });
    await assert.rejects(bad, /could not download .*\/resolve\/v2\/sub\/dir\/w.safetensors: sha256 is [0-9a-f]{64}, but (ab){32} was pinned/);
    assert.deepEqual(readdirSync(join(folder, 'blobs')), [DIGEST]);
    assert.equal(existsSync(join(folder, 'refs', 'v2')), false);
    await assert.rejects(fetchHf('hf:timm/lying/model.safetensors', { dir }), /sha256 is [0-9a-f]{64}, but the hub's etag says 0{64}/);
    assert.deepEqual(readdirSync(join(dir, 'models--timm--lying', 'blobs')), []);
  } finally {
    delete process.env.HF_ENDPOINT;
    delete process.env.HF_TOKEN;
    h.server.close();
  }
});

test('HTTP errors and no network name the URL, the file and where to put it by hand', async () => {
  const h = await hub();
  const dir = mkdtempSync(join(tmpdir(), 'medpipe-hub-'));
  await assert.rejects(fetchHf('hf:timm/absent/model.safetensors', { dir, endpoint: h.endpoint }), (e: Error) => {
    assert.match(e.message, new RegExp(`could not download ${h.endpoint}/timm/absent/resolve/main/model.safetensors: HTTP 404`));
    assert.ok(e.message.includes('huggingface-cli download timm/absent model.safetensors'), e.message);
    assert.ok(e.message.includes(`put the file at ${join(dir, 'models--timm--absent', 'snapshots', '<commit>', 'model.safetensors')} and that commit into ${join(dir, 'models--timm--absent', 'refs', 'main')}`), e.message);
    return true;
  });
  await new Promise((r) => h.server.close(r));
  // The port is closed now: connection refused, as offline.
  await assert.rejects(fetchHf('hf:timm/tiny.fb_in1k/model.safetensors', { dir, endpoint: h.endpoint }), /could not download http:\/\/127\.0\.0\.1:\d+\/timm\/tiny.fb_in1k\/resolve\/main\/model.safetensors: .*ECONNREFUSED.*put the file at/);
  // Placed by hand as the message says, it is used without the network.
  const placed = snapshotPath(parseHfSource('hf:timm/tiny.fb_in1k/model.safetensors'), COMMIT, dir);
  mkdirSync(dirname(placed), { recursive: true });
  writeFileSync(placed, BODY);
  mkdirSync(join(dir, 'models--timm--tiny.fb_in1k', 'refs'));
  writeFileSync(join(dir, 'models--timm--tiny.fb_in1k', 'refs', 'main'), `${COMMIT}\n`);
  const got = await fetchHf('hf:timm/tiny.fb_in1k/model.safetensors', { dir, endpoint: h.endpoint, sha256: DIGEST });
  assert.equal(got.fetched, false);
  assert.equal(got.commit, COMMIT);
});
