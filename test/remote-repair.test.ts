// A broken remote entry is replaced by the next runner that recomputes it (or by
// `cache push --repair`); of two different results under one key, the remote's first one wins.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { startDavServer, startS3Server, type TestServer } from './support/remote-servers.js';
import { sandbox, blobsPipeline } from './support/toy.js';

const BLOBS = blobsPipeline('hello remote');

const NOISY = `
name: noisy
plugins: [$TOY]
stages:
  draw:
    uses: noisy
    with: {sleep_ms: SLEEP}
  use:
    uses: add
    inputs: {a: draw.out}
    with: {offset: 100}
`;
const noisy = (sleepMs = 0) => NOISY.replace('SLEEP', String(sleepMs));

/** Any warning but the one every run on an unsigned remote prints. */
const OTHER_WARNING = /warning: (?!remote \S+ is used without a team key)/;

const servers: TestServer[] = [];
after(() => Promise.all(servers.map((s) => s.close())));

const shared = () => mkdtempSync(join(tmpdir(), 'medpipe-shared-'));

/** A remote, and the directory its objects are stored in (to tamper with them behind its back). */
interface Target {
  name: string;
  open(): Promise<{ url: string; root: string; env?: Record<string, string> }>;
}
const targets: Target[] = [
  {
    name: 'file://',
    async open() {
      const root = shared();
      return { url: pathToFileURL(root).href, root };
    },
  },
  {
    name: 'http (in-process, nginx semantics)',
    async open() {
      const server = await startDavServer();
      servers.push(server);
      return { url: server.url, root: server.root };
    },
  },
  {
    name: 's3 (in-process, conditional PUT)',
    async open() {
      const server = await startS3Server('lab');
      servers.push(server);
      return { url: 's3://lab/team', root: join(server.root, 'team'), env: { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_REGION: 'us-east-1', MEDPIPE_S3_ENDPOINT: server.url } };
    },
  },
];

for (const target of targets) {
  describe(`repair over ${target.name}`, () => {
    test('a tampered entry is replaced by the runner that recomputes it: the remote then serves the good one', async () => {
      const { url: remote, root, env = {} } = await target.open();
      const a = sandbox();
      const fileA = a.write('p.yaml', BLOBS);
      assert.equal((await a.cli(['run', fileA, '--remote', remote], { env })).code, 0);
      const readKey = (await a.show(fileA, 'read')).key;
      // The entry's value changed, its digest not: write-once kept it there for good until now.
      const entryPath = join(root, 'ac', readKey);
      const entry = JSON.parse(readFileSync(entryPath, 'utf8')) as { manifest: { outputs: { out: { value: { text: string } } } } };
      entry.manifest.outputs.out.value.text = 'planted';
      writeFileSync(entryPath, JSON.stringify(entry));

      const b = sandbox();
      const rb = await b.cli(['run', b.write('p.yaml', BLOBS), '--remote', remote], { env });
      assert.equal(rb.code, 0, rb.stdout + rb.stderr);
      assert.match(rb.stderr, /remote entry for read \([0-9a-f]{12}\): output out has digest/);
      assert.match(rb.stderr, /replaced the broken remote entry for read \([0-9a-f]{12}: output out fails its digest\) with this cache's result/);
      assert.deepEqual(b.runs(), ['read']);

      const c = sandbox();
      const fileC = c.write('p.yaml', BLOBS);
      const rc = await c.cli(['run', fileC, '--remote', remote], { env });
      assert.equal(rc.code, 0, rc.stdout + rc.stderr);
      assert.deepEqual(c.runs(), [], 'everything from the remote');
      assert.doesNotMatch(rc.stderr, OTHER_WARNING);
      assert.equal(((await c.show(fileC, 'read')).outputs['out']!.value as { text: string }).text, 'hello remote');
    });
  });
}

test('under a team key an unsigned entry is superseded by the signed recomputation; one signed with another key only by --repair', async () => {
  const remote = shared();
  const team = { MEDPIPE_CACHE_KEY: 'team secret' };
  const keyless = sandbox();
  assert.equal((await keyless.cli(['run', keyless.write('p.yaml', BLOBS), '--remote', remote])).code, 0, 'a writer without the key came first');
  const b = sandbox();
  const rb = await b.cli(['run', b.write('p.yaml', BLOBS), '--remote', remote], { env: team });
  assert.equal(rb.code, 0, rb.stdout + rb.stderr);
  assert.equal(rb.stderr.match(/replaced the broken remote entry for (make|read) \([0-9a-f]{12}: unsigned/g)?.length, 2, rb.stderr);
  const c = sandbox();
  const rc = await c.cli(['run', c.write('p.yaml', BLOBS), '--remote', remote], { env: team });
  assert.deepEqual(c.runs(), [], 'the signed entries are served now');
  assert.doesNotMatch(rc.stderr, /warning/);

  // Signed with another key: maybe another team's, maybe a wrong local key. A run leaves it alone...
  const other = { MEDPIPE_CACHE_KEY: 'another key' };
  const d = sandbox();
  const fileD = d.write('p.yaml', BLOBS);
  const rd = await d.cli(['run', fileD, '--remote', remote], { env: other });
  assert.equal(rd.code, 0, rd.stdout + rd.stderr);
  assert.match(rd.stderr, /left the remote entry for make \([0-9a-f]{12}\) alone: bad signature[^\n]*cache push --repair/);
  const e = sandbox();
  assert.equal((await e.cli(['run', e.write('p.yaml', BLOBS), '--remote', remote], { env: team })).code, 0);
  assert.deepEqual(e.runs(), [], "the team's entries survived");
  // ...and `cache push --repair`, a deliberate act, replaces it.
  const repaired = await d.cli(['cache', 'push', fileD, '--remote', remote, '--repair'], { env: other });
  assert.match(repaired.stdout, /2 broken remote entries repaired/);
  const f = sandbox();
  await f.cli(['run', f.write('p.yaml', BLOBS), '--remote', remote], { env: other });
  assert.deepEqual(f.runs(), [], 'now signed with the other key');
});

test('cache push --repair finds a corrupt blob and an unreadable entry, replaces both, and says so', async () => {
  const remote = shared();
  const a = sandbox();
  const fileA = a.write('p.yaml', BLOBS);
  assert.equal((await a.cli(['run', fileA, '--remote', remote])).code, 0);
  const make = await a.show(fileA, 'make');
  const readKey = (await a.show(fileA, 'read')).key;
  writeFileSync(join(remote, 'cas', make.outputs['file']!.digest), 'poisoned bytes');
  writeFileSync(join(remote, 'ac', readKey), '{"torn');

  const repaired = await a.cli(['cache', 'push', fileA, '--remote', remote, '--repair']);
  assert.equal(repaired.code, 0, repaired.stdout + repaired.stderr);
  assert.match(repaired.stdout, /^0 pushed, 0 already on file:\S+, 2 broken remote entries repaired$/m);
  assert.match(repaired.stderr, /replaced the corrupt remote blob [0-9a-f]{12} of make output file/);
  assert.match(repaired.stderr, /replaced the broken remote entry for read \([0-9a-f]{12}: not JSON\)/);
  const again = await a.cli(['cache', 'push', fileA, '--remote', remote, '--repair']);
  assert.match(again.stdout, /^0 pushed, 2 already on file:\S+, 0 broken remote entries repaired$/m);

  const c = sandbox();
  const rc = await c.cli(['run', c.write('p.yaml', BLOBS), '--remote', remote]);
  assert.equal(rc.code, 0, rc.stdout + rc.stderr);
  assert.deepEqual(c.runs(), []);
  assert.doesNotMatch(rc.stderr, OTHER_WARNING);
});

test('two different results under one key: the remote keeps the first, cache push adopts it locally', async () => {
  const remote = shared();
  const a = sandbox();
  const fileA = a.write('p.yaml', noisy());
  assert.equal((await a.cli(['run', fileA, '--remote', remote], { env: { TOY_NOISE: '1' } })).code, 0);
  const b = sandbox();
  const fileB = b.write('p.yaml', noisy());
  assert.equal((await b.cli(['run', fileB, '--remote', 'none'], { env: { TOY_NOISE: '2' } })).code, 0);
  assert.equal((await b.show(fileB, 'draw')).key, (await a.show(fileA, 'draw')).key, 'one key, two results');

  const pushed = await b.cli(['cache', 'push', fileB, '--remote', remote]);
  assert.equal(pushed.code, 0, pushed.stdout + pushed.stderr);
  assert.match(pushed.stdout, /1 differed from the remote's and were replaced locally by it \(first committed wins\), 1 not pushed \(built on a replaced result\)/);
  assert.match(pushed.stderr, /draw \([0-9a-f]{12}\): this cache's result differs from the one already on file:\S+ \(output out; the stage is not bit-reproducible\?\)/);
  assert.deepEqual((await b.show(fileB, 'draw')).outputs['out']!.value, { value: 1 }, "B holds the remote's result now");
  // Downstream is keyed on it: B's next run gets A's `use` from the remote instead of its own.
  const before = b.runs().length;
  const run = await b.cli(['run', fileB, '--remote', remote]);
  assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.equal(b.runs().length, before, 'nothing executed');
  assert.deepEqual((await b.show(fileB, 'use')).outputs['out']!.value, { value: 101 });
  assert.equal(readdirSync(join(remote, 'ac')).length, 2, "B's own `use` (built on its own draw) never reached the remote");
});

test("a run that computed a node while another's result landed adopts that one, and builds downstream on it", async () => {
  const first = shared();
  const a = sandbox();
  const fileA = a.write('p.yaml', noisy());
  assert.equal((await a.cli(['run', fileA, '--remote', first], { env: { TOY_NOISE: '1' } })).code, 0);
  const drawKey = (await a.show(fileA, 'draw')).key;
  const useKey = (await a.show(fileA, 'use')).key;

  // B computes draw (slowly) on another remote; A's result lands there meanwhile, as after a lease expired mid-run.
  const remote = shared();
  const b = sandbox();
  const fileB = b.write('p.yaml', noisy(3000));
  const running = b.cli(['run', fileB, '--remote', remote], { env: { TOY_NOISE: '2' } });
  // Once draw runs, not merely once the lease exists: right after taking the lease B looks at
  // the remote again, and a result landed by then is a plain hit, not the race under test.
  for (let t = 0; !b.runs().includes('draw') && t < 600; t++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(existsSync(join(remote, 'leases', drawKey)), 'B holds the lease');
  assert.deepEqual(b.runs(), ['draw'], 'B is computing draw');
  mkdirSync(join(remote, 'ac'), { recursive: true });
  copyFileSync(join(first, 'ac', drawKey), join(remote, 'ac', drawKey));
  const rb = await running;
  assert.equal(rb.code, 0, rb.stdout + rb.stderr);
  assert.match(rb.stderr, /draw \([0-9a-f]{12}\): this cache's result differs from the one already on/);
  assert.deepEqual(b.runs(), ['draw', 'use']);
  assert.deepEqual((await b.show(fileB, 'use')).outputs['out']!.value, { value: 101 }, "built on the remote's draw");
  assert.equal((await b.show(fileB, 'use')).key, useKey, "the same key as A's: caches agree");
  assert.ok(existsSync(join(remote, 'ac', useKey)));
});
