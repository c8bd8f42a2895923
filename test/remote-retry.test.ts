// Remotes behind a flaky network: a loopback proxy resets, 5xx/429s or cuts off a seeded
// fraction of requests; pushes and pulls still come out whole, nothing partial lands on the
// store or in a local file, the retries are bounded and said in one warning line each.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { HttpBackend } from '../src/remote/http-backend.js';
import { ObjectRemote } from '../src/remote/remote-store.js';
import { parseS3Url, S3Backend } from '../src/remote/s3-backend.js';
import { defaultRetryPolicy, retryAfterMs, retryDelayMs, TransientError, withRetries, type RetryPolicy } from '../src/remote/retry.js';
import { sha256 } from '../src/util/hash.js';
import { startFlakyProxy, type FlakyProxy } from './support/flaky-proxy.js';
import { startDavServer, startS3Server, type TestServer } from './support/remote-servers.js';
import { sandbox, TOY_PIPELINE } from './support/toy.js';

const FAST: RetryPolicy = { retries: 8, minTimeout: 1, maxTimeout: 5 };
const closers: Array<{ close(): Promise<void> }> = [];
after(() => Promise.all(closers.map((c) => c.close())));

async function flakyStore(options: Parameters<typeof startFlakyProxy>[1]): Promise<{ dav: TestServer; proxy: FlakyProxy }> {
  const dav = await startDavServer();
  const proxy = await startFlakyProxy(dav.url, options);
  closers.push(proxy, dav);
  return { dav, proxy };
}

function blobs(count: number, seed: number): Array<{ digest: string; bytes: Buffer; file: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'medpipe-retry-'));
  return Array.from({ length: count }, (_, i) => {
    const bytes = Buffer.alloc(2000 + ((i * 7919 + seed) % 50000), `blob ${seed}/${i} `);
    const file = join(dir, `b${i}`);
    writeFileSync(file, bytes);
    return { digest: sha256(bytes), bytes, file };
  });
}

test('with a third of the requests failing, every blob and manifest goes up and comes down whole', async () => {
  const { dav, proxy } = await flakyStore({ seed: 7, fraction: 0.33 });
  const warnings: string[] = [];
  const remote = new ObjectRemote(new HttpBackend(new URL(proxy.url), { retry: FAST, warn: (m) => warnings.push(m) }));
  const items = blobs(24, 1);
  for (const b of items) assert.equal(await remote.putBlob(b.digest, b.file, b.bytes.length), true);
  for (const [i, b] of items.entries()) await remote.putManifest(b.digest, Buffer.from(`manifest ${i}`));

  // On the store itself: exactly the bytes sent, never half an upload.
  for (const b of items) assert.ok(readFileSync(join(dav.root, 'cas', b.digest)).equals(b.bytes), `cas/${b.digest} on the store`);
  const out = mkdtempSync(join(tmpdir(), 'medpipe-retry-out-'));
  for (const [i, b] of items.entries()) {
    const dest = join(out, b.digest);
    assert.equal(await remote.getBlob(b.digest, dest), true);
    assert.ok(readFileSync(dest).equals(b.bytes), `downloaded ${b.digest}`);
    assert.equal(Buffer.from((await remote.getManifest(b.digest))!).toString(), `manifest ${i}`);
  }
  const injected = Object.values(proxy.injected).reduce((a, n) => a + n, 0);
  assert.ok(injected >= 20, `only ${injected} faults injected: ${JSON.stringify(proxy.injected)}`);
  for (const kind of ['reset', '503', 'cut-response', 'cut-upload'] as const) assert.ok((proxy.injected[kind] ?? 0) > 0, `no ${kind} injected`);
  // One line per operation that needed retries, saying how many.
  assert.ok(warnings.length > 0 && warnings.length <= injected, `${warnings.length} warnings for ${injected} faults`);
  for (const w of warnings) assert.match(w, /^(GET|HEAD|PUT) (cas|ac)\/[0-9a-f]{64}: succeeded after \d+ retr(y|ies) \(/);
  const retried = warnings.reduce((sum, w) => sum + Number(/after (\d+) retr/.exec(w)![1]), 0);
  assert.equal(retried, injected, 'every injected fault was retried once');
});

test('retries are bounded: a store that always answers 503 fails after retries + 1 attempts, saying so', async () => {
  const { proxy } = await flakyStore({ seed: 1, fraction: 1, faults: ['503'] });
  const warnings: string[] = [];
  const backend = new HttpBackend(new URL(proxy.url), { retry: { retries: 3, minTimeout: 1, maxTimeout: 5 }, warn: (m) => warnings.push(m) });
  await assert.rejects(backend.read('ac/x'), /^RemoteError: remote http:\/\/127\.0\.0\.1:\d+\/cache\/: GET ac\/x: HTTP 503 Service Unavailable \(after 3 retries: 3x HTTP 503 Service Unavailable\)$/);
  assert.equal(proxy.requests, 4);
  assert.deepEqual(warnings, []);
});

test('a download cut off on every attempt leaves no partial file behind', async () => {
  const { proxy } = await flakyStore({ seed: 2, fraction: 1, faults: ['cut-response'], only: /^GET /u });
  const remote = new ObjectRemote(new HttpBackend(new URL(proxy.url), { retry: { retries: 2, minTimeout: 1, maxTimeout: 5 }, warn: () => {} }));
  const [b] = blobs(1, 2);
  assert.equal(await remote.putBlob(b!.digest, b!.file, b!.bytes.length), true);
  const dest = join(mkdtempSync(join(tmpdir(), 'medpipe-retry-cut-')), 'blob');
  await assert.rejects(remote.getBlob(b!.digest, dest), /body cut short.*\(after 2 retries/);
  assert.equal(existsSync(dest), false);
  assert.deepEqual(readdirSync(join(dest, '..')), []);
});

test('a conditional replace is retried on 503 (nothing done) but not on 502 (maybe done)', async () => {
  for (const [fault, requests] of [['503', 3], ['502', 1]] as const) {
    const { proxy } = await flakyStore({ seed: 3, fraction: 1, faults: [fault], only: /^PUT /u });
    const backend = new HttpBackend(new URL(proxy.url), { retry: { retries: 2, minTimeout: 1, maxTimeout: 5 }, warn: () => {} });
    await assert.rejects(backend.replace('leases/k', Buffer.from('x'), { bytes: Buffer.from('') }), new RegExp(`HTTP ${fault}`));
    assert.equal(proxy.requests, requests, `${fault}: ${proxy.requests} requests`);
  }
});

test('a remote that is not there at all is not retried (the run falls back to local at once)', async () => {
  const { dav } = await flakyStore({ seed: 4, fraction: 0 });
  const port = new URL(dav.url).port;
  await dav.close();
  const backend = new HttpBackend(new URL(`http://127.0.0.1:${port}/cache/`), { retry: { retries: 5, minTimeout: 2000, maxTimeout: 2000 }, warn: () => {} });
  const started = Date.now();
  await assert.rejects(backend.read('ac/x'), /ECONNREFUSED/);
  assert.ok(Date.now() - started < 1500, `took ${Date.now() - started} ms`);
});

test('policy: MEDPIPE_REMOTE_RETRIES sets the bound; Retry-After reads seconds and dates', () => {
  assert.equal(defaultRetryPolicy({}).retries, 5);
  assert.equal(defaultRetryPolicy({ MEDPIPE_REMOTE_RETRIES: '0' }).retries, 0);
  assert.throws(() => defaultRetryPolicy({ MEDPIPE_REMOTE_RETRIES: 'lots' }), /MEDPIPE_REMOTE_RETRIES=lots: expected an integer from 0 to 20/);
  assert.equal(retryAfterMs('3'), 3000);
  assert.equal(retryAfterMs(new Date(10_000).toUTCString(), 4_000), 6000);
  assert.equal(retryAfterMs(null), undefined);
  assert.equal(retryAfterMs('soon'), undefined);
});

test('Retry-After is waited for (up to the ceiling), backoff doubles with jitter, and a non-transient error is not retried', async () => {
  const policy: RetryPolicy = { retries: 3, minTimeout: 100, maxTimeout: 2000 };
  assert.equal(retryDelayMs(policy, 1, undefined, 0), 100);
  assert.equal(retryDelayMs(policy, 3, undefined, 0.5), 600);
  assert.equal(retryDelayMs(policy, 9, undefined, 0.99), 2000, 'never past maxTimeout');
  assert.equal(retryDelayMs(policy, 1, 1500, 0), 1500, 'Retry-After beats a shorter backoff');
  assert.equal(retryDelayMs(policy, 1, 60_000, 0), 2000, 'but not the ceiling');

  let calls = 0;
  const started = Date.now();
  const value = await withRetries('get x', { ...policy, minTimeout: 1 }, () => {}, async () => {
    if (++calls === 1) throw new TransientError('503 Service Unavailable', 700);
    return 'ok';
  });
  assert.equal(value, 'ok');
  assert.equal(calls, 2);
  assert.ok(Date.now() - started >= 690, `waited ${Date.now() - started} ms for a Retry-After of 700 ms`);

  calls = 0;
  await assert.rejects(withRetries('get y', policy, () => {}, async () => {
    calls++;
    throw new Error('404 Not Found');
  }), /404/);
  assert.equal(calls, 1);
});

test('through the CLI: B pulls everything A pushed over a flaky proxy, running nothing', async () => {
  // 10%: the default 5 retries make a lost operation a one-in-a-million event.
  const { proxy } = await flakyStore({ seed: 11, fraction: 0.1 });
  const [a, b] = [sandbox(), sandbox()];
  const env = { MEDPIPE_REMOTE: proxy.url };
  const first = await a.cli(['run', a.write('p.yaml', TOY_PIPELINE)], { env });
  assert.equal(first.code, 0, first.stdout + first.stderr);
  const second = await b.cli(['run', b.write('p.yaml', TOY_PIPELINE)], { env });
  assert.equal(second.code, 0, second.stdout + second.stderr);
  assert.deepEqual(b.runs(), [], second.stderr);
  assert.match(first.stderr + second.stderr, /warning: remote http:\/\/127\.0\.0\.1:\d+\/cache\/: \w+ \S+: succeeded after \d+ retr/);
  assert.doesNotMatch(first.stderr + second.stderr, /remote cache unavailable/);
});

test('s3: the SDK retries, and bodies cut short and file uploads are retried here; all come out whole', async () => {
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' });
  const s3 = await startS3Server('lab');
  const proxy = await startFlakyProxy(`${s3.url}/`, { seed: 5, fraction: 0.3 });
  closers.push(proxy, s3);
  const warnings: string[] = [];
  const url = new URL('s3://lab/flaky');
  const at = parseS3Url(url, { MEDPIPE_S3_ENDPOINT: proxy.url });
  const remote = new ObjectRemote(new S3Backend(url, at, { retry: FAST, warn: (m) => warnings.push(m) }));
  const items = blobs(12, 3);
  for (const b of items) await remote.putBlob(b.digest, b.file, b.bytes.length);
  for (const [i, b] of items.entries()) await remote.putManifest(b.digest, Buffer.from(`manifest ${i}`));
  for (const b of items) assert.ok(readFileSync(join(s3.root, 'flaky', 'cas', b.digest)).equals(b.bytes), `cas/${b.digest} in the bucket`);
  const out = mkdtempSync(join(tmpdir(), 'medpipe-retry-s3-'));
  for (const [i, b] of items.entries()) {
    assert.equal(await remote.getBlob(b.digest, join(out, b.digest)), true);
    assert.ok(readFileSync(join(out, b.digest)).equals(b.bytes));
    assert.equal(Buffer.from((await remote.getManifest(b.digest))!).toString(), `manifest ${i}`);
  }
  await remote.close();
  const injected = Object.values(proxy.injected).reduce((a, n) => a + n, 0);
  assert.ok(injected >= 10, JSON.stringify(proxy.injected));
  assert.ok(warnings.length > 0);
  for (const w of warnings) assert.match(w, /^(GET|HEAD|PUT) (cas|ac)\/[0-9a-f]{64}( \(body\))?: succeeded after \d+ retr(y|ies)/);
});
