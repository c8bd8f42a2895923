import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { openRemote } from '../src/remote/open.js';
import { packRecordSet, unpackRecordSet } from '../src/remote/pack.js';
import type { RemoteStore } from '../src/remote/remote-store.js';
import { Store } from '../src/store/store.js';
import { sha256 } from '../src/util/hash.js';
import { nginxUrl, startDavServer, startS3Server, type TestServer } from './support/remote-servers.js';

process.env['AWS_ACCESS_KEY_ID'] ??= 'test';
process.env['AWS_SECRET_ACCESS_KEY'] ??= 'test';

const servers: TestServer[] = [];
after(() => Promise.all(servers.map((s) => s.close())));

const backends: [string, () => Promise<string>][] = [
  ['file://', async () => pathToFileURL(mkdtempSync(join(tmpdir(), 'medpipe-remote-'))).href],
  ['http (in-process, nginx semantics)', async () => (servers.push(await startDavServer()), servers.at(-1)!.url)],
  ['s3 (in-process, conditional PUT)', async () => (servers.push(await startS3Server('bucket')), `s3://bucket/team/cache?endpoint=${servers.at(-1)!.url}`)],
];
const nginx = nginxUrl();
if (nginx) backends.push(['http (real nginx WebDAV)', async () => nginxUrl()!]);

const key = (s: string) => sha256(s);
const scratch = () => mkdtempSync(join(tmpdir(), 'medpipe-remote-scratch-'));

for (const [name, make] of backends) {
  describe(`remote store over ${name}`, () => {
    let remote: RemoteStore;
    test('open', async () => {
      remote = openRemote(await make());
    });

    test('manifests are write-once: the first entry stays', async () => {
      assert.equal(await remote.getManifest(key('m')), undefined);
      assert.equal(await remote.putManifest(key('m'), Buffer.from('first')), true);
      assert.equal(await remote.putManifest(key('m'), Buffer.from('second')), false);
      assert.equal(Buffer.from((await remote.getManifest(key('m')))!).toString(), 'first');
    });

    test('blobs go up and come down whole; a missing one is a plain miss', async () => {
      const dir = scratch();
      const src = join(dir, 'src');
      const bytes = Buffer.alloc(300_000, 7);
      writeFileSync(src, bytes);
      const digest = sha256(bytes);
      assert.equal(await remote.hasBlob(digest), false);
      assert.equal(await remote.putBlob(digest, src, bytes.length), true);
      assert.equal(await remote.hasBlob(digest), true);
      assert.equal(await remote.getBlob(digest, join(dir, 'dst')), true);
      assert.ok(readFileSync(join(dir, 'dst')).equals(bytes));
      assert.equal(await remote.getBlob(key('absent'), join(dir, 'none')), false);
      await remote.dropBlob(digest);
      assert.equal(await remote.hasBlob(digest), false);
      rmSync(dir, { recursive: true });
    });

    test('checkpoints are overwritten in place, unlike manifests and blobs', async () => {
      const k = key('ckpt');
      assert.equal(await remote.getCheckpoint(k, 'state'), undefined);
      await remote.putCheckpoint(k, 'state', Buffer.from('step 1'));
      await remote.putCheckpoint(k, 'state', Buffer.from('step 2'));
      assert.equal(Buffer.from((await remote.getCheckpoint(k, 'state'))!).toString(), 'step 2');
      await assert.rejects(remote.putCheckpoint(k, '../ac/x', Buffer.from('')), /not a plain file name/);
      await remote.dropCheckpoint(k, 'state');
    });

    test('names that are not digests are refused (no path escapes the remote)', async () => {
      await assert.rejects(remote.getManifest('../../etc/passwd'), /not a sha256 digest/);
    });

    const TTL = { ttlMs: 10_000 };

    test('a lease has one holder; renew, release, then another takes it', async () => {
      const k = key('lease');
      assert.equal(await remote.tryAcquire(k, 'A', TTL), true);
      assert.equal(await remote.tryAcquire(k, 'B', TTL), false);
      assert.equal((await remote.holder(k, TTL))?.owner, 'A');
      assert.equal(await remote.renew(k, 'A', TTL), true);
      assert.equal(await remote.renew(k, 'B', TTL), false);
      await remote.release(k, 'B', TTL);
      assert.equal((await remote.holder(k, TTL))?.owner, 'A', 'only the owner releases');
      await remote.release(k, 'A', TTL);
      assert.equal(await remote.tryAcquire(k, 'B', TTL), true);
    });

    test('with a team key an unsigned, wrongly signed or far-future lease does not hold anyone up', async () => {
      const k = key('signed');
      const team = { ttlMs: 10_000, teamKey: 'team secret' };
      assert.equal(await remote.tryAcquire(k, 'keyless', TTL), true);
      assert.match((await remote.holder(k, team))?.problem ?? '', /unsigned/);
      const ignored: string[] = [];
      assert.equal(await remote.tryAcquire(k, 'A', team, { onIgnored: (l) => ignored.push(l.owner) }), true, 'an unsigned lease is taken over at once');
      assert.deepEqual(ignored, ['keyless']);
      assert.equal((await remote.holder(k, team))?.problem, undefined);
      assert.equal(await remote.tryAcquire(k, 'B', team), false, 'a signed live lease holds');
      assert.equal(await remote.tryAcquire(k, 'C', { ...team, teamKey: 'another key' }), true, 'under another key it is a forgery');
      await remote.release(k, 'C', { ...team, teamKey: 'another key' });

      // Without a key: a lease whose expiry is years ahead is what no renewal writes.
      const far = key('far');
      assert.equal(await remote.tryAcquire(far, 'ghost', { ttlMs: 10 * 365 * 86_400_000 }), true);
      assert.match((await remote.holder(far, TTL))?.problem ?? '', /further ahead than a renewal/);
      assert.equal(await remote.tryAcquire(far, 'A', TTL), true);
    });

    test('an expired lease is taken over', async () => {
      const k = key('expiring');
      assert.equal(await remote.tryAcquire(k, 'crashed', { ttlMs: 1 }), true);
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(await remote.tryAcquire(k, 'next', TTL), true);
      assert.equal((await remote.holder(k, TTL))?.owner, 'next');
      assert.equal(await remote.renew(k, 'crashed', TTL), false, 'the old owner has lost it');
    });

    test('of several runners racing for one lease exactly one wins', async () => {
      const k = key('race');
      const won = await Promise.all(['r1', 'r2', 'r3', 'r4', 'r5'].map((o) => remote.tryAcquire(k, o, TTL)));
      assert.equal(won.filter(Boolean).length, 1, `winners: ${won}`);
    });

    test('close', () => remote.close());
  });
}

test('a record set packs into one blob whose sha256 is the set digest, and imports back', async () => {
  const dir = scratch();
  const a = new Store(join(dir, 'a'));
  const b = new Store(join(dir, 'b'));
  try {
    const written = await a.records.write(
      () => ({ classes: 3 }),
      async (w) => {
        for (let i = 0; i < 1000; i++) await w.append({ data: new Uint8Array(i % 97).fill(i & 255), meta: { i, label: i % 3 } });
      },
    );
    const packed = await packRecordSet(a.records, written.set, written.meta, join(dir, 'pack'));
    assert.equal(packed.digest, written.digest);
    const { set } = await b.records.importRaw(unpackRecordSet(join(dir, 'pack'), written.count, written.meta), written.meta, written.digest);
    assert.equal(b.records.verify(set).ok, true);
    assert.deepEqual(b.records.reader(set, 'x').get(500).meta, { i: 500, label: 2 });
    await assert.rejects(b.records.importRaw(unpackRecordSet(join(dir, 'pack'), written.count, written.meta), written.meta, sha256('other')), /corrupt cache entry/);
    await assert.rejects(async () => {
      for await (const _ of unpackRecordSet(join(dir, 'pack'), written.count + 1, written.meta));
    }, /ends after 1000 of 1001/);
  } finally {
    await a.close();
    await b.close();
    rmSync(dir, { recursive: true });
  }
});
