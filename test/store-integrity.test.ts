import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { openRemote } from '../src/remote/open.js';
import { splitRecords } from '../src/remote/pack.js';
import { sealManifest } from '../src/remote/sign.js';
import type { Manifest } from '../src/store/artifacts.js';
import { buildTask } from '../src/run/batch/task.js';
import { openPipeline } from '../src/cli/session.js';
import { holdingCache } from '../src/store/cache-lock.js';
import { Store } from '../src/store/store.js';
import { canonicalJSON } from '../src/util/hash.js';
import { startDavServer } from './support/remote-servers.js';
import { BIN, sandbox, TOY_PIPELINE, blobsPipeline } from './support/toy.js';

const BLOBS = blobsPipeline('hello');

test('a digest that walks out of the cache (../../victim.txt) is never opened or deleted, from a remote or a local manifest', async () => {
  const box = sandbox();
  const file = box.write('p.yaml', BLOBS);
  const first = await box.cli(['run', file]);
  assert.equal(first.code, 0, first.stdout + first.stderr);
  const honest = (await box.show(file, 'make')) as unknown as Manifest;

  // cas/../../victim.txt from the cache directory: a file next to it.
  const victim = join(box.dir, 'victim.txt');
  writeFileSync(victim, 'precious');
  const hostile: Manifest = { ...honest, outputs: { ...honest.outputs, file: { ...honest.outputs['file']!, digest: '../../victim.txt' } as Manifest['outputs'][string] } };

  const remoteDir = join(box.dir, 'remote');
  const remote = openRemote(pathToFileURL(remoteDir).href);
  assert.equal(await remote.putManifest(honest.key, sealManifest(hostile, undefined)), true);
  await remote.close();

  const other = join(box.dir, 'other-cache');
  const pulled = await box.cli(['run', file, '--remote', pathToFileURL(remoteDir).href], { env: { MEDPIPE_CACHE: other } });
  assert.equal(pulled.code, 0, pulled.stdout + pulled.stderr);
  assert.match(pulled.stdout + pulled.stderr, /output file names "\.\.\/\.\.\/victim\.txt", not a sha256 digest/);
  assert.deepEqual(box.runs(), ['make', 'read', 'make', 'read'], 'the hostile entry is a miss: both nodes computed here');
  const verifyOther = await box.cli(['cache', 'verify'], { env: { MEDPIPE_CACHE: other } });
  assert.equal(verifyOther.code, 0, verifyOther.stdout);
  assert.equal(readFileSync(victim, 'utf8'), 'precious');

  // The same manifest planted in the local index (an older medpipe pulled it): verify reports
  // and drops it without hashing or removing the victim.
  const store = new Store(box.cache);
  await assert.rejects(store.commit({ ...hostile, key: 'f'.repeat(64) }), /not a sha256 digest/, 'commit refuses it');
  await store.manifests.put(honest.key, hostile);
  await store.close();
  const verify = await box.cli(['cache', 'verify']);
  assert.equal(verify.code, 1);
  assert.match(verify.stdout, /✖ make \([0-9a-f]{12}\) output file: names "\.\.\/\.\.\/victim\.txt", not a sha256 digest.* dropped/);
  assert.ok(existsSync(victim));
  assert.equal(readFileSync(victim, 'utf8'), 'precious');
  const rerun = await box.cli(['run', file]);
  assert.equal(rerun.code, 0, rerun.stdout + rerun.stderr);
  assert.equal(readFileSync(victim, 'utf8'), 'precious');
});

test('BlobStore.put replaces a same-size blob that rotted, so a recomputed result is not born corrupt', async () => {
  const box = sandbox();
  const store = new Store(box.cache);
  try {
    const source = join(box.dir, 'a.bin');
    writeFileSync(source, 'the right bytes');
    const { digest } = await store.blobs.put(source, { move: false });
    writeFileSync(store.blobs.pathOf(digest), 'the wrong bytes');
    await assert.rejects(store.blobs.verified(digest, 'blob'), /corrupt cache entry/);
    const again = await store.blobs.put(source, { move: true });
    assert.equal(again.digest, digest);
    assert.equal(readFileSync(await store.blobs.verified(digest, 'blob'), 'utf8'), 'the right bytes');
    assert.equal(existsSync(source), false, 'a move consumes the source');
  } finally {
    await store.close();
  }
});

function packed(records: Buffer[], meta: object): Buffer {
  const parts: Buffer[] = [];
  for (const r of records) {
    const len = Buffer.alloc(4);
    len.writeUInt32LE(r.length);
    parts.push(len, r);
  }
  parts.push(Buffer.from(canonicalJSON(meta as never)));
  return Buffer.concat(parts);
}

async function* inChunks(bytes: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

// A 32 MiB record in 1 KiB chunks: 32768 chunks. Re-concatenating the pending bytes per chunk
// (the old unpacking) copies ~512 GiB here and cannot finish inside the timeout; one copy per
// record takes milliseconds. The margin is orders of magnitude, so this is not a timing test.
test('record-set unpacking is linear: a 32 MiB record in 1 KiB chunks round-trips', { timeout: 60_000 }, async () => {
  const big = Buffer.alloc(32 * 2 ** 20);
  for (let i = 0; i < big.length; i += 4096) big[i] = (i / 4096) % 251;
  const records = [Buffer.from('a'), Buffer.alloc(0), big, Buffer.from('tail record')];
  const meta = { count: 4 };
  const bytes = packed(records, meta);
  const out: Buffer[] = [];
  for await (const r of splitRecords(inChunks(bytes, 1024), records.length, meta, bytes.length)) out.push(r);
  assert.equal(out.length, records.length);
  for (let i = 0; i < records.length; i++) assert.ok(out[i]!.equals(records[i]!), `record ${i}`);

  await assert.rejects(async () => {
    for await (const _ of splitRecords(inChunks(bytes, 1024), records.length, { count: 5 }, bytes.length));
  }, /meta does not match/);
  const lying = packed([Buffer.from('x')], meta);
  lying.writeUInt32LE(0xfffffff0, 0);
  await assert.rejects(async () => {
    for await (const _ of splitRecords(inChunks(lying, 7), 1, meta, lying.length));
  }, /ends after 0 of 1 records \(record 0 claims 4294967280 bytes, past the end/);
});

test('a disk or LMDB write failure names the cache and the cause, not "worker exited with code 1"', async () => {
  const box = sandbox();
  const store = new Store(box.cache);
  try {
    // What lmdb-js rejects with when the disk fills during a batch: strerror and the errno.
    const records = (store.records as unknown as { records: { put: (...args: unknown[]) => Promise<boolean> } }).records;
    const put = records.put.bind(records);
    let calls = 0;
    records.put = (...args: unknown[]) => (++calls === 3 ? Promise.reject(Object.assign(new Error('No space left on device'), { code: 28 })) : put(...args));
    await assert.rejects(
      store.records.write(
        () => ({}),
        async (w) => {
          for (let i = 0; i < 600; i++) await w.append({ data: new Uint8Array([i % 256]), meta: {} });
        },
      ),
      (err: Error) => {
        assert.equal(err.message, `cache ${box.cache}: could not write a record set (256 records so far): No space left on device (the disk is full)`);
        return true;
      },
    );
    records.put = put;
    assert.deepEqual(store.records.setIds(), [], 'the half-written set is dropped');
  } finally {
    await store.close();
  }
  // Through a run: the scratch directory cannot be made (a file where cache/tmp should be).
  const file = box.write('p.yaml', BLOBS);
  rmSync(join(box.cache, 'tmp'), { recursive: true, force: true });
  writeFileSync(join(box.cache, 'tmp'), 'not a directory');
  const r = await box.cli(['run', file]);
  assert.equal(r.code, 1);
  assert.match(r.stdout + r.stderr, new RegExp(`cache ${box.cache.replace(/[/.]/g, '\\$&')}: could not make a scratch directory: .*ENOTDIR`));
  assert.doesNotMatch(r.stdout + r.stderr, /worker exited with code/);
});

test('a rotted record fails its reader; verify drops the set and its producer, and the rerun does not re-adopt it', async () => {
  const box = sandbox();
  const file = box.write('p.yaml', BLOBS);
  assert.equal((await box.cli(['run', file])).code, 0);
  const made = await box.show(file, 'make');
  const set = (made.outputs['records'] as unknown as { set: string }).set;

  // Record 2 ('l') silently becomes record 0 ('h'): valid msgpack, same length, other bytes.
  const store = new Store(box.cache);
  const records = (store.records as unknown as { records: { get(k: unknown): Buffer; put(k: unknown, v: Buffer): Promise<boolean> } }).records;
  await records.put([set, 2], Buffer.from(records.get([set, 0])));
  await store.close();

  // A consumer that runs now (a new key: sleep_ms is keyed for readblob) fails, nothing is committed.
  const fresh = await box.cli(['run', file, '--set', 'read.with.sleep_ms=1']);
  assert.equal(fresh.code, 1, fresh.stdout);
  assert.match(fresh.stdout + fresh.stderr, /record 2 does not match its checksum/);

  const verify = await box.cli(['cache', 'verify']);
  assert.equal(verify.code, 1);
  assert.match(verify.stdout, /✖ make \([0-9a-f]{12}\) output records: record set hashes to .* dropped/);
  assert.match(verify.stdout, /2 result\(s\) checked, 1 problem\(s\)/, 'read checked every record it read: its result stands');

  const rerun = await box.cli(['run', file, '--set', 'read.with.sleep_ms=1']);
  assert.equal(rerun.code, 0, rerun.stdout + rerun.stderr);
  const read = await box.show(file, 'read');
  assert.deepEqual((read.outputs['out']!.value as { joined: string }).joined, 'hello');
  assert.notEqual(((await box.show(file, 'make')).outputs['records'] as unknown as { set: string }).set, set, 'a fresh set, not the rotted one');
  assert.deepEqual(box.runs(), ['make', 'read', 'read', 'make', 'read']);
  const clean = await box.cli(['cache', 'verify']);
  assert.equal(clean.code, 0, clean.stdout);
  assert.match(clean.stdout, /3 result\(s\) checked, 0 problem/);
});

test('verify drops every result computed from a broken input that was read unchecked (a json value; a set from an older cache)', async () => {
  const box = sandbox();
  const json = box.write('j.yaml', TOY_PIPELINE);
  assert.equal((await box.cli(['run', json])).code, 0);
  const src = await box.show(json, 'src[seed=1]');
  const store = new Store(box.cache);
  const m = store.manifest(src.key)!;
  await store.manifests.put(src.key, { ...m, outputs: { out: { ...m.outputs['out']!, value: { value: 999 } } as Manifest['outputs'][string] } });
  await store.close();
  const verify = await box.cli(['cache', 'verify']);
  assert.equal(verify.code, 1);
  assert.match(verify.stdout, /✖ src\[seed=1\] \([0-9a-f]{12}\) output out: json value does not match its digest — dropped/);
  for (const model of ['resnet', 'deit']) assert.match(verify.stdout, new RegExp(`✖ train\\[model=${model},seed=1\\] \\([0-9a-f]{12}\\) output \\(all\\): computed from input a = output out of src\\[seed=1\\], which is broken — dropped`));
  assert.match(verify.stdout, /7 result\(s\) checked, 3 problem\(s\)/, 'total read sound train outputs: kept');
  assert.equal((await box.cli(['run', json])).code, 0);
  assert.deepEqual(box.runs().slice(7).sort(), ['src[seed=1]', 'train[model=deit,seed=1]', 'train[model=resnet,seed=1]']);

  // A record set as an older medpipe wrote it (no per-record checksums), then rotted.
  const blobs = box.write('b.yaml', BLOBS);
  assert.equal((await box.cli(['run', blobs])).code, 0);
  const set = ((await box.show(blobs, 'make')).outputs['records'] as unknown as { set: string }).set;
  const again = new Store(box.cache);
  const inner = again.records as unknown as { records: { get(k: unknown): Buffer; put(k: unknown, v: Buffer): Promise<boolean> }; sums: { remove(k: string): Promise<boolean> } };
  await inner.sums.remove(set);
  await inner.records.put([set, 2], Buffer.from(inner.records.get([set, 0])));
  await again.close();
  const legacy = await box.cli(['cache', 'verify']);
  assert.match(legacy.stdout, /✖ make .* output records: record set hashes to/);
  assert.match(legacy.stdout, /✖ read \([0-9a-f]{12}\) output \(all\): computed from input records = output records of make, which is broken — dropped/);
});

test('writing a set identical to a rotted one replaces it; a set without checksums (older caches) is checked whole on open', async () => {
  const box = sandbox();
  const store = new Store(box.cache);
  try {
    const fill = async (w: { append(r: { data: Uint8Array; meta: object }): Promise<void> }) => {
      for (const ch of 'abcd') await w.append({ data: new TextEncoder().encode(ch), meta: { ch } });
    };
    const first = await store.records.write(() => ({ n: 4 }), fill);
    const inner = store.records as unknown as { records: { get(k: unknown): Buffer; put(k: unknown, v: Buffer): Promise<boolean> }; sums: { remove(k: string): Promise<boolean> } };
    await inner.records.put([first.set, 1], Buffer.from(inner.records.get([first.set, 3])));
    assert.throws(() => store.records.reader(first.set, 'input x').get(1), /input x \(record 1 does not match its checksum\)/);
    assert.equal(store.records.findByDigest(first.digest), undefined, 'a rotted set is not found by its digest');

    const second = await store.records.write(() => ({ n: 4 }), fill);
    assert.equal(second.digest, first.digest);
    assert.notEqual(second.set, first.set);
    assert.equal(store.records.hasSet(first.set), false, 'the rotted set is dropped');
    assert.equal(new TextDecoder().decode(store.records.reader(second.set, 'input x').get(1).data), 'b');

    await inner.sums.remove(second.set);
    assert.equal(new TextDecoder().decode(store.records.reader(second.set, 'input x').get(1).data), 'b', 'intact without sums');
    await inner.records.put([second.set, 2], Buffer.from(inner.records.get([second.set, 0])));
    assert.throws(() => store.records.reader(second.set, 'input x'), /corrupt cache entry: input x/);
  } finally {
    await store.close();
  }
});

test('cache gc and a run exclude each other: gc refuses while a run goes, a run waits for gc', async () => {
  const box = sandbox();
  const file = box.write('p.yaml', BLOBS.replace('inputs: {file: make.file, records: make.records}', 'inputs: {file: make.file, records: make.records}\n    with: {sleep_ms: 12000}'));
  const other = box.write('other.yaml', TOY_PIPELINE);
  const running = box.cli(['run', file]);
  // Until `read` has started: make's blob and set are committed, read is about to use them.
  for (let i = 0; i < 600 && !box.runs().includes('read'); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(box.runs().includes('read'), 'read started');
  // gc of another pipeline reaches nothing of this run: without the lock it deletes make's outputs.
  const gc = await box.cli(['cache', 'gc', other, '--yes']);
  assert.equal(gc.code, 1, gc.stdout + gc.stderr);
  assert.match(gc.stderr, /cache .* is in use by `pipeline run .*p\.yaml` \(pid \d+ on .*\); gc deletes nothing while a run is going/);
  const run = await running;
  assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.match(run.stdout, /2 ran/);

  // gc holds the cache (here: this process, as a slow gc would): a run waits, then goes.
  const store = new Store(box.cache);
  let release!: () => void;
  const held = holdingCache(store, 'exclusive', 'pipeline cache gc', () => new Promise<void>((r) => (release = r)));
  await new Promise((r) => setTimeout(r, 100));
  const child = spawn(process.execPath, [BIN, 'run', file, '--set', 'make.with.text=other'], { cwd: box.dir, env: { ...process.env, CI: 'true', MEDPIPE_CACHE: box.cache, TOY_RUN_LOG: box.runLog }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  child.stdout.resume();
  const exited = new Promise<number | null>((r) => child.on('close', r));
  for (let i = 0; i < 1200 && !stderr.includes('waiting for'); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(stderr, /waiting for `pipeline cache gc` \(pid \d+ on .*\) to finish with cache/);
  await new Promise((r) => setTimeout(r, 1000));
  assert.deepEqual(box.runs(), ['make', 'read'], 'nothing runs while gc holds the cache');
  release();
  await held;
  await store.close();
  assert.equal(await exited, 0, stderr);
  assert.deepEqual(box.runs(), ['make', 'read', 'make', 'read']);
  const gcAfter = await box.cli(['cache', 'gc', file, '--yes', '--keep-variants', '0']);
  assert.equal(gcAfter.code, 0, gcAfter.stdout + gcAfter.stderr);
  assert.match(gcAfter.stdout, /deleted 2 result\(s\)/);
});

/** Starts the CLI and collects what it prints, so a test can watch it wait. */
function startCli(box: ReturnType<typeof sandbox>, args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: box.dir, env: { ...process.env, CI: 'true', MEDPIPE_CACHE: box.cache, TOY_RUN_LOG: box.runLog, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { text: '', code: undefined as number | null | undefined };
  child.stdout.on('data', (d) => (out.text += d));
  child.stderr.on('data', (d) => (out.text += d));
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r((out.code = code))));
  return { out, exited };
}

async function until(what: string, ready: () => boolean): Promise<void> {
  for (let i = 0; i < 1200 && !ready(); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(ready(), what);
}

test('cache pull, cache verify and exec hold the cache against gc: gc refuses mid-pull and deletes nothing; each waits for a gc that holds it', async () => {
  const server = await startDavServer({ onGet: (p) => gate(p) });
  let gate: (path: string) => Promise<void> = async () => {};
  try {
    const box = sandbox();
    const file = box.write('p.yaml', BLOBS);
    const other = box.write('other.yaml', TOY_PIPELINE);
    const pushed = await box.cli(['run', file, '--remote', server.url]);
    assert.equal(pushed.code, 0, pushed.stdout + pushed.stderr);
    const readKey = (await box.show(file, 'read')).key as string;

    // A second cache pulls; the download of `read` is held after `make` is in that cache.
    const pulling = join(box.dir, 'pulling');
    let reached = false;
    let open!: () => void;
    const opened = new Promise<void>((r) => (open = r));
    gate = async (p) => {
      if (!p.includes(readKey)) return;
      reached = true;
      await opened;
    };
    const pull = startCli(box, ['cache', 'pull', file, '--remote', server.url], { MEDPIPE_CACHE: pulling });
    await until(`the pull reached read (${pull.out.text})`, () => reached);
    // gc of another pipeline would delete make's result, which read is being pulled onto.
    const gc = await box.cli(['cache', 'gc', other, '--yes', '--keep-variants', '0'], { env: { MEDPIPE_CACHE: pulling } });
    assert.equal(gc.code, 1, gc.stdout + gc.stderr);
    assert.match(gc.stderr, /cache .*pulling is in use by `pipeline cache pull .*p\.yaml` \(pid \d+ on .*\); gc deletes nothing while a run is going/);
    open();
    assert.equal(await pull.exited, 0, pull.out.text);
    assert.match(pull.out.text, /2 pulled, 0 already local/);
    const verified = await box.cli(['cache', 'verify'], { env: { MEDPIPE_CACHE: pulling } });
    assert.match(verified.stdout, /2 result\(s\) checked, 0 problem/, verified.stdout + verified.stderr);
    assert.deepEqual(box.runs(), ['make', 'read'], 'nothing recomputed');

    // gc holds a cache (here: this process, as a slow gc would): verify, pull and exec wait, then go.
    const execCache = join(box.dir, 'exec-cache');
    const { dag, registry, pipeline } = await openPipeline(file, [], { builtinKinds: [] });
    const task = buildTask({ pipeline: pipeline.spec.name, baseDir: pipeline.spec.baseDir, remote: server.url, log: join(box.dir, 'exec.log') }, dag, registry, 'read', () => undefined);
    const taskFile = box.write('task.json', JSON.stringify(task));
    const fresh = join(box.dir, 'fresh');
    for (const [cache, args, done] of [
      [pulling, ['cache', 'verify'], /2 result\(s\) checked, 0 problem/],
      [fresh, ['cache', 'pull', file, '--remote', server.url], /2 pulled/],
      [execCache, ['exec', taskFile, '--cache', execCache, '--remote', server.url], /already on the remote \([0-9a-f]{12}\): nothing to do/],
    ] as const) {
      const store = new Store(cache);
      let release!: () => void;
      const held = holdingCache(store, 'exclusive', 'pipeline cache gc', () => new Promise<void>((r) => (release = r)));
      await new Promise((r) => setTimeout(r, 100));
      const waiting = startCli(box, [...args], { MEDPIPE_CACHE: cache });
      await until(`${args.join(' ')} waits for gc (${waiting.out.text})`, () => /waiting for `pipeline cache gc` \(pid \d+ on .*\) to finish with cache/.test(waiting.out.text));
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(waiting.out.code, undefined, `${args.join(' ')} does not finish while gc holds the cache`);
      assert.doesNotMatch(waiting.out.text, done);
      release();
      await held;
      await store.close();
      assert.equal(await waiting.exited, 0, waiting.out.text);
      assert.match(waiting.out.text, done);
    }
    assert.deepEqual(box.runs(), ['make', 'read'], 'nothing recomputed');
  } finally {
    await server.close();
  }
});

const damagedIndex = /cache index .*index\.lmdb is damaged: (.*)\. Run `pipeline cache repair --cache .*` to rebuild it/;

async function assertRefusedOverDamage(box: ReturnType<typeof sandbox>, file: string, problem: RegExp): Promise<void> {
  for (const args of [['status', file], ['run', file], ['cache', 'ls'], ['cache', 'verify']]) {
    const r = await box.cli(args);
    assert.equal(r.code, 1, `${args.join(' ')}: exits 1, no signal (SIGBUS before)\n${r.stdout}${r.stderr}`);
    assert.match(r.stderr, damagedIndex, args.join(' '));
    assert.match(r.stderr.match(damagedIndex)![1]!, problem);
    assert.doesNotMatch(r.stdout, /0 problem/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
}

test('a truncated index.lmdb is refused at open with the file and the fix; cache repair rebuilds it and the next run completes', async () => {
  const box = sandbox();
  const file = box.write('p.yaml', BLOBS);
  assert.equal((await box.cli(['run', file])).code, 0);
  const index = join(box.cache, 'index.lmdb');
  truncateSync(index, statSync(index).size / 2);
  await assertRefusedOverDamage(box, file, /^truncated: \d+ bytes, but its pages reach \d+$/);

  const repair = await box.cli(['cache', 'repair']);
  assert.equal(repair.code, 0, repair.stdout + repair.stderr);
  assert.match(repair.stdout, /was damaged \(truncated: .*\); the damaged file is kept as .*index\.lmdb\.damaged-/);
  assert.match(repair.stdout, /re-indexed \d result\(s\)/);
  const run = await box.cli(['run', file]);
  assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.equal(((await box.show(file, 'read')).outputs['out']!.value as { joined: string }).joined, 'hello');
  const verify = await box.cli(['cache', 'verify']);
  assert.match(verify.stdout, /2 result\(s\) checked, 0 problem/);
  assert.match((await box.cli(['cache', 'repair'])).stdout, /reads whole: nothing to repair/);
});

test('a lost index.lmdb (deleted, not copied) is refused, not read as an empty cache; cache repair re-indexes the results from manifests/ and nothing json or file-backed is recomputed', async () => {
  const box = sandbox();
  const file = box.write('p.yaml', BLOBS);
  const toy = box.write('toy.yaml', TOY_PIPELINE);
  assert.equal((await box.cli(['run', file])).code, 0);
  assert.equal((await box.cli(['run', toy])).code, 0);
  const ran = box.runs().length;
  rmSync(join(box.cache, 'index.lmdb'));
  rmSync(join(box.cache, 'index.lmdb-lock'), { force: true });
  // Base: status said "never run" for every node, run recomputed them all, repair said "nothing to repair".
  await assertRefusedOverDamage(box, file, /^the file is missing, while manifests\/ still holds the results it indexed$/);

  const repair = await box.cli(['cache', 'repair']);
  assert.equal(repair.code, 0, repair.stdout + repair.stderr);
  assert.match(repair.stdout, /index\.lmdb was missing .*; a new one was made/);
  // The record set of `make` lived in the lost index: that result alone is recomputed.
  assert.match(repair.stdout, /re-indexed 8 result\(s\) .*; 1 could not be verified/);
  const status = await box.cli(['status', toy]);
  assert.match(status.stdout, /7 cached, 0 to run/, status.stdout);
  assert.equal((await box.cli(['run', toy])).code, 0);
  assert.equal(box.runs().length, ran, 'no toy node recomputed');
  const again = await box.cli(['run', file]);
  assert.equal(again.code, 0, again.stdout + again.stderr);
  assert.deepEqual(box.runs().slice(ran), ['make'], 'only the record-set producer reruns; read is an early cut-off');
  assert.equal(((await box.show(file, 'read')).outputs['out']!.value as { joined: string }).joined, 'hello');
});

test('cache repair of a --cache that does not exist says so and makes nothing there, as ls and verify do', async () => {
  const box = sandbox();
  const typo = join(box.dir, 'cahce');
  const repair = await box.cli(['cache', 'repair', '--cache', typo]);
  // Base: exit 0, "reads whole: nothing to repair", and a new empty cache at the typo.
  assert.equal(repair.code, 2, repair.stdout + repair.stderr);
  assert.match(repair.stderr, /--cache .*cahce: no cache at .*cahce/);
  assert.ok(!existsSync(typo), 'an empty cache was made at the mistyped path');
});

test('64 flipped bytes in index.lmdb: every command says the index is damaged (verify never "0 problems"); repair re-indexes every result from its manifest file', async () => {
  const box = sandbox();
  const file = box.write('p.yaml', BLOBS);
  assert.equal((await box.cli(['run', file])).code, 0);
  const index = join(box.cache, 'index.lmdb');
  const bytes = readFileSync(index);
  const at = bytes.indexOf('"pipeline":"blobs"');
  assert.ok(at > 0);
  for (let i = 0; i < 64; i++) bytes[at + i] = bytes[at + i]! ^ 0x5a;
  writeFileSync(index, bytes);
  await assertRefusedOverDamage(box, file, /^an entry of its manifests table does not match its checksum$/);

  const repair = await box.cli(['cache', 'repair']);
  assert.equal(repair.code, 0, repair.stdout + repair.stderr);
  assert.match(repair.stdout, /re-indexed 2 result\(s\) \(1 record set\(s\) salvaged from the damaged index\); 0 could not be verified/);
  const run = await box.cli(['run', file]);
  assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.match(run.stdout, /2 cached/);
  assert.deepEqual(box.runs(), ['make', 'read'], 'nothing recomputed');
  assert.match((await box.cli(['cache', 'verify'])).stdout, /2 result\(s\) checked, 0 problem/);

  // The second meta page without its magic number (LMDB would say MDB_INVALID), then the first.
  const again = readFileSync(index);
  const magic = Buffer.from([0xde, 0xc0, 0xef, 0xbe]);
  again.writeUInt32LE(0, again.indexOf(magic, again.indexOf(magic) + 4));
  writeFileSync(index, again);
  await assertRefusedOverDamage(box, file, /^a meta page lacks the LMDB magic number \(page 1\)$/);
  again.writeUInt32LE(0, again.indexOf(magic));
  writeFileSync(index, again);
  await assertRefusedOverDamage(box, file, /^its first page is not an LMDB header$/);
});

test('cache repair and a run exclude each other: repair refuses while a run holds the cache, a run refuses while a repair holds it', async () => {
  const box = sandbox();
  const toy = box.write('toy.yaml', TOY_PIPELINE);
  assert.equal((await box.cli(['run', toy])).code, 0);
  const ran = box.runs().length;
  // A run holds the cache (here: this process, as a long run would).
  const store = new Store(box.cache);
  let release!: () => void;
  const held = holdingCache(store, 'shared', `pipeline run ${toy}`, () => new Promise<void>((r) => (release = r)));
  await new Promise((r) => setTimeout(r, 100));
  const repair = await box.cli(['cache', 'repair']);
  release();
  await held;
  await store.close();
  // Base: exit 0, "reads whole: nothing to repair", with the run still going.
  assert.equal(repair.code, 1, repair.stdout + repair.stderr);
  assert.match(repair.stderr, /a run holds the cache; repair rebuilds the index of .* only while nothing uses it: try again when `pipeline run .*toy\.yaml` \(pid \d+ on .*\) has finished/);
  assert.ok(!existsSync(join(box.cache, 'repair.lock')), 'the refused repair left its lock behind');

  // A repair holds the cache (its lock file, written as a repair in progress writes it): a run refuses and computes nothing.
  writeFileSync(join(box.cache, 'repair.lock'), JSON.stringify({ host: hostname(), pid: process.pid, since: new Date().toISOString() }));
  const run = await box.cli(['run', box.write('p.yaml', BLOBS)]);
  // Base: the run went ahead against the index being rebuilt.
  assert.equal(run.code, 1, run.stdout + run.stderr);
  assert.match(run.stderr, /`pipeline cache repair` \(pid \d+ on .*\) is rebuilding the index of cache .*; try again when it has finished/);
  assert.equal(box.runs().length, ran, 'nothing computed while repair holds the cache');
  // A lock left by a repair that died is taken over.
  writeFileSync(join(box.cache, 'repair.lock'), JSON.stringify({ host: hostname(), pid: 2 ** 22 + 12345, since: new Date().toISOString() }));
  const after = await box.cli(['cache', 'repair']);
  assert.equal(after.code, 0, after.stdout + after.stderr);
  assert.match(after.stdout, /reads whole: nothing to repair/);
  assert.ok(!existsSync(join(box.cache, 'repair.lock')));
});

test('cache repair of a lost index builds it aside and renames it into place: whoever opens index.lmdb mid-repair finds every result, never a partial index', async () => {
  const box = sandbox();
  const file = box.write('p.yaml', BLOBS);
  const toy = box.write('toy.yaml', TOY_PIPELINE);
  assert.equal((await box.cli(['run', file])).code, 0);
  assert.equal((await box.cli(['run', toy])).code, 0);
  rmSync(join(box.cache, 'index.lmdb'));
  rmSync(join(box.cache, 'index.lmdb-lock'), { force: true });
  const repairing = box.cli(['cache', 'repair']);
  let done = false;
  void repairing.then(() => (done = true));
  let seen: number | undefined;
  // The first moment index.lmdb exists, open it as a run starting then would.
  while (seen === undefined) {
    if (existsSync(join(box.cache, 'index.lmdb'))) {
      const store = new Store(box.cache);
      seen = [...store.manifests.getKeys()].length;
      await store.close();
    } else if (done) break;
    else await new Promise((r) => setImmediate(r));
  }
  const repair = await repairing;
  assert.equal(repair.code, 0, repair.stdout + repair.stderr);
  assert.match(repair.stdout, /re-indexed 8 result\(s\)/);
  // Base: the index was built in place, and a store opened as it appeared read 0 or a few results.
  assert.equal(seen, 8, 'results in index.lmdb when it first appeared');
  assert.deepEqual(readdirSync(box.cache).filter((f) => f.includes('rebuilding')), [], 'the temporary index is gone');
});

test('cache ls, verify and repair pointed at a folder that is not a medpipe cache refuse it and write nothing there', async () => {
  const box = sandbox();
  const other = join(box.dir, 'photos');
  mkdirSync(other);
  writeFileSync(join(other, 'a.jpg'), 'not a cache');
  for (const verb of ['ls', 'verify', 'repair']) {
    const out = await box.cli(['cache', verb, '--cache', other]);
    // Base: exit 0 and an index.lmdb made among the photos.
    assert.equal(out.code, 2, `${verb}: ${out.stdout}${out.stderr}`);
    assert.match(out.stderr, /--cache .*photos: not a medpipe cache: .*photos/);
  }
  assert.deepEqual(readdirSync(other), ['a.jpg']);
  // A cache whose index is lost still is one (manifests/ marks it): repair is not refused there.
  const toy = box.write('toy.yaml', TOY_PIPELINE);
  assert.equal((await box.cli(['run', toy])).code, 0);
  rmSync(join(box.cache, 'index.lmdb'));
  assert.equal((await box.cli(['cache', 'repair', '--cache', box.cache])).code, 0);
});

test('a repair lock from another host counts until it goes unrenewed for 60 s (a repair that died with its node does not block the cache forever); cache rm refuses during a repair', async () => {
  const box = sandbox();
  const toy = box.write('toy.yaml', TOY_PIPELINE);
  assert.equal((await box.cli(['run', toy])).code, 0);
  const lock = join(box.cache, 'repair.lock');
  const foreign = JSON.stringify({ host: `not-${hostname()}`, pid: 1, since: new Date().toISOString() });
  // Fresh, from another host: live. cache rm refuses too (base: it wrote the index under the repair).
  writeFileSync(lock, foreign);
  const rm = await box.cli(['cache', 'rm', toy, 'total']);
  assert.equal(rm.code, 1, rm.stdout + rm.stderr);
  assert.match(rm.stderr, /`pipeline cache repair` \(pid 1 on not-.*\) is rebuilding the index of cache .*counts as dead once it has not been renewed for 60 s/);
  assert.doesNotMatch(rm.stdout, /removed total/);
  // Not renewed for two minutes: dead wherever it ran (base: live forever, every command refused).
  const old = new Date(Date.now() - 120_000);
  utimesSync(lock, old, old);
  const after = await box.cli(['cache', 'repair']);
  assert.equal(after.code, 0, after.stdout + after.stderr);
  assert.ok(!existsSync(lock));
  const rm2 = await box.cli(['cache', 'rm', toy, 'total']);
  assert.equal(rm2.code, 0, rm2.stdout + rm2.stderr);
  assert.match(rm2.stdout, /removed total/);
});
