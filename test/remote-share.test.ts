// Two collaborators (two local caches) sharing one remote, through the CLI as users run it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { digestJSON } from '../src/util/hash.js';
import { nginxUrl, startDavServer, type TestServer } from './support/remote-servers.js';
import { BIN, sandbox, TOY_PIPELINE, type Sandbox, blobsPipeline } from './support/toy.js';

const SLOW = TOY_PIPELINE.replace('      offset: ${vars.base}', '      offset: ${vars.base}\n      sleep_ms: 400');
const BLOBS = blobsPipeline('hello remote');

/** Any warning but the one every run on an unsigned remote prints. */
const OTHER_WARNING = /warning: (?!remote \S+ is used without a team key)/;

const servers: TestServer[] = [];
after(() => Promise.all(servers.map((s) => s.close())));

interface Target {
  name: string;
  url(): Promise<string>;
}
const targets: Target[] = [
  { name: 'file://', url: async () => pathToFileURL(mkdtempSync(join(tmpdir(), 'medpipe-shared-'))).href },
  { name: 'http (in-process)', url: async () => (servers.push(await startDavServer()), servers.at(-1)!.url) },
];
if (process.env['MEDPIPE_TEST_WEBDAV']) targets.push({ name: 'http (real nginx WebDAV)', url: async () => nginxUrl()! });

async function manifestOf(box: Sandbox, file: string, node: string): Promise<{ key: string; outputs: Record<string, { digest: string }> }> {
  const shown = await box.cli(['show', file, node, '--json']);
  assert.equal(shown.code, 0, shown.stdout + shown.stderr);
  return JSON.parse(shown.stdout) as { key: string; outputs: Record<string, { digest: string }> };
}

/** Overwrites a remote object behind the cache's back, as a faulty disk or an attacker would. */
async function overwrite(remote: string, path: string, bytes: string): Promise<void> {
  if (remote.startsWith('file:')) writeFileSync(join(fileURLToPath(remote), path), bytes);
  else assert.ok((await fetch(new URL(path, remote), { method: 'PUT', body: bytes })).ok);
}

for (const target of targets) {
  describe(`shared cache over ${target.name}`, () => {
    test("B gets A's results without executing any node", async () => {
      const remote = await target.url();
      const [a, b] = [sandbox(), sandbox()];
      const first = await a.cli(['run', a.write('p.yaml', TOY_PIPELINE), '--remote', remote]);
      assert.equal(first.code, 0, first.stdout + first.stderr);
      assert.equal(a.runs().length, 7);
      const second = await b.cli(['run', b.write('p.yaml', TOY_PIPELINE)], { env: { MEDPIPE_REMOTE: remote } });
      assert.equal(second.code, 0, second.stdout + second.stderr);
      assert.deepEqual(b.runs(), [], 'nothing executed on B');
      assert.match(second.stdout, /7 cached/);
      assert.doesNotMatch(second.stderr, OTHER_WARNING);
      // Now local to B: a run without the remote is still all cached.
      const offline = await b.cli(['run', b.write('p.yaml', TOY_PIPELINE), '--remote', 'none']);
      assert.match(offline.stdout, /7 cached/);
    });

    test('two runners started together on one remote compute each node exactly once', async () => {
      const remote = await target.url();
      const [a, b] = [sandbox(), sandbox()];
      const env = { TOY_RUN_LOG: a.runLog, MEDPIPE_REMOTE: remote };
      const [ra, rb] = await Promise.all([a.cli(['run', a.write('p.yaml', SLOW)], { env }), b.cli(['run', b.write('p.yaml', SLOW)], { env })]);
      assert.equal(ra.code, 0, ra.stdout + ra.stderr);
      assert.equal(rb.code, 0, rb.stdout + rb.stderr);
      const runs = a.runs();
      assert.equal(runs.length, 7, `executions: ${runs.join(', ')}`);
      assert.equal(new Set(runs).size, 7, 'no node executed twice');
      assert.match(ra.stdout + rb.stdout, /computed by another run \(remote\)|on remote/);
    });

    test('a tampered remote blob is detected: a warning and a recompute, never a result', async () => {
      const remote = await target.url();
      const [a, b] = [sandbox(), sandbox()];
      const fileA = a.write('p.yaml', BLOBS);
      assert.equal((await a.cli(['run', fileA, '--remote', remote])).code, 0);
      const digest = (await manifestOf(a, fileA, 'make')).outputs['file']!.digest;
      await overwrite(remote, `cas/${digest}`, 'poisoned bytes');

      const r = await b.cli(['run', b.write('p.yaml', BLOBS), '--remote', remote]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stderr, /warning: remote entry for make \([0-9a-f]{12}\): output file has digest [0-9a-f]{12}…, expected [0-9a-f]{12}…/);
      assert.deepEqual(b.runs(), ['make'], 'make recomputed; read, whose inputs are unchanged, pulled');
      const read = await b.cli(['show', b.write('p.yaml', BLOBS), 'read', '--json']);
      assert.match(read.stdout, /"text": "hello remote"/);
      // B's push repaired the blob the reader dropped: a third collaborator gets everything.
      const c = sandbox();
      const rc = await c.cli(['run', c.write('p.yaml', BLOBS), '--remote', remote]);
      assert.equal(rc.code, 0, rc.stdout + rc.stderr);
      assert.deepEqual(c.runs(), []);
      assert.doesNotMatch(rc.stderr, OTHER_WARNING);
    });
  });
}

test('kill -9 between blob and manifest upload leaves no entry that reads as valid (http)', async () => {
  let killed = false;
  let child: ReturnType<typeof spawn> | undefined;
  const server = await startDavServer({
    onPut(path) {
      if (killed || !path.includes('/ac/')) return true;
      // The runner dies at the moment its first manifest would go up.
      killed = true;
      process.kill(-child!.pid!, 'SIGKILL');
      return false;
    },
  });
  servers.push(server);
  const a = sandbox();
  const file = a.write('p.yaml', BLOBS);
  child = spawn(process.execPath, [BIN, 'run', file, '--remote', server.url], {
    cwd: a.dir,
    env: { ...process.env, CI: 'true', MEDPIPE_CACHE: a.cache, TOY_RUN_LOG: a.runLog },
    detached: true,
    stdio: 'ignore',
  });
  const exit = await new Promise<NodeJS.Signals | null>((resolve) => child!.on('exit', (_, signal) => resolve(signal)));
  assert.equal(exit, 'SIGKILL');
  assert.ok(readdirSync(join(server.root, 'cas')).length >= 2, 'blobs were uploaded');
  assert.equal(existsSync(join(server.root, 'ac')), false, 'no manifest reached the remote');

  const b = sandbox();
  const r = await b.cli(['run', b.write('p.yaml', BLOBS), '--remote', server.url]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.deepEqual(b.runs().sort(), ['make', 'read'], 'B computes: nothing on the remote passed as a result');
  assert.doesNotMatch(r.stdout, /waiting/, "the dead runner's lease (same host, dead pid) does not hold B up");
  assert.equal(readdirSync(join(server.root, 'ac')).length, 2);
});

test('a push cut short on a shared directory leaves only temp files, which no reader opens', async () => {
  const shared = mkdtempSync(join(tmpdir(), 'medpipe-shared-'));
  const a = sandbox();
  const file = a.write('p.yaml', BLOBS);
  assert.equal((await a.cli(['run', file, '--remote', shared])).code, 0);
  const key = (await manifestOf(a, file, 'make')).key;
  // What a writer killed mid-copy leaves: a half-written staging file, blobs, no manifest.
  const entry = readFileSync(join(shared, 'ac', key));
  writeFileSync(join(shared, 'tmp', 'killed-writer.part'), entry.subarray(0, entry.length >> 1));
  rmSync(join(shared, 'ac'), { recursive: true });
  const b = sandbox();
  const r = await b.cli(['run', b.write('p.yaml', BLOBS), '--remote', `file://${shared}`]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.deepEqual(b.runs().sort(), ['make', 'read']);
  assert.equal(readdirSync(join(shared, 'ac')).length, 2);
});

test('an expired remote lease (crashed owner elsewhere) is taken over; a live one is waited for', async () => {
  const shared = mkdtempSync(join(tmpdir(), 'medpipe-shared-'));
  const probe = sandbox();
  const pfile = probe.write('p.yaml', BLOBS);
  await probe.cli(['run', pfile]);
  const key = (await manifestOf(probe, pfile, 'make')).key;
  const lease = (expires: number) => JSON.stringify({ owner: 'ghost', host: 'another-machine', pid: 1, expires });

  mkdirSync(join(shared, 'leases'), { recursive: true });
  writeFileSync(join(shared, 'leases', key), lease(Date.now() - 1000));
  const b = sandbox();
  const r = await b.cli(['run', b.write('p.yaml', BLOBS), '--remote', shared]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.deepEqual(b.runs().sort(), ['make', 'read']);
  assert.equal(existsSync(join(shared, 'leases', key)), false, 'released after the push');

  const shared2 = mkdtempSync(join(tmpdir(), 'medpipe-shared-'));
  mkdirSync(join(shared2, 'leases'), { recursive: true });
  // Long enough to outlast the CLI's start on a loaded machine (1.5 s did not, at load 30).
  const expires = Date.now() + 8000;
  writeFileSync(join(shared2, 'leases', key), lease(expires));
  const c = sandbox();
  const rc = await c.cli(['run', c.write('p.yaml', BLOBS), '--remote', shared2]);
  assert.equal(rc.code, 0, rc.stdout + rc.stderr);
  assert.match(rc.stdout, /make waiting \(computed by another-machine pid 1 \(remote lease\)\)/);
  assert.ok(Date.now() >= expires - 100, 'waited for the live lease to expire');
  assert.deepEqual(c.runs().sort(), ['make', 'read']);
});

test('signed manifests: trusted with the team key; unsigned, wrongly signed or forged ones are ignored', async () => {
  const shared = mkdtempSync(join(tmpdir(), 'medpipe-shared-'));
  const team = { MEDPIPE_CACHE_KEY: 'team secret', MEDPIPE_REMOTE: shared };
  const a = sandbox();
  const fileA = a.write('p.yaml', BLOBS);
  assert.equal((await a.cli(['run', fileA], { env: team })).code, 0);

  const b = sandbox();
  const rb = await b.cli(['run', b.write('p.yaml', BLOBS)], { env: team });
  assert.deepEqual(b.runs(), [], 'same key: everything from the remote');
  assert.doesNotMatch(rb.stderr, /warning/);

  const c = sandbox();
  const rc = await c.cli(['run', c.write('p.yaml', BLOBS)], { env: { ...team, MEDPIPE_CACHE_KEY: 'another key' } });
  assert.equal(rc.code, 0);
  assert.match(rc.stderr, /ignoring remote entry [0-9a-f]{12}: bad signature/);
  assert.deepEqual(c.runs().sort(), ['make', 'read']);

  // A writer without the key can still put entries there; keyed readers do not trust them.
  const unsigned = mkdtempSync(join(tmpdir(), 'medpipe-shared-'));
  const d = sandbox();
  assert.equal((await d.cli(['run', d.write('p.yaml', BLOBS), '--remote', unsigned])).code, 0);
  const e = sandbox();
  const re = await e.cli(['run', e.write('p.yaml', BLOBS), '--remote', unsigned], { env: { MEDPIPE_CACHE_KEY: 'team secret' } });
  assert.match(re.stderr, /ignoring remote entry [0-9a-f]{12}: unsigned/);
  assert.deepEqual(e.runs().sort(), ['make', 'read']);

  // Forgery: change read's result and its digest consistently, keep the old signature.
  const readKey = (await manifestOf(a, fileA, 'read')).key;
  const path = join(shared, 'ac', readKey);
  const envelope = JSON.parse(readFileSync(path, 'utf8')) as { manifest: { outputs: { out: { value: { text: string }; digest: string } } } };
  envelope.manifest.outputs.out.value.text = 'forged';
  envelope.manifest.outputs.out.digest = digestJSON(envelope.manifest.outputs.out.value);
  writeFileSync(path, JSON.stringify(envelope));
  const f = sandbox();
  const rf = await f.cli(['run', f.write('p.yaml', BLOBS)], { env: team });
  assert.match(rf.stderr, /ignoring remote entry [0-9a-f]{12}: bad signature/);
  assert.deepEqual(f.runs(), ['read']);
  const shown = await f.cli(['show', f.write('p.yaml', BLOBS), 'read', '--json']);
  assert.doesNotMatch(shown.stdout, /forged/);
});

test('cache push and pull by hand; remote: in the pipeline file; status sees the remote', async () => {
  const server = await startDavServer();
  servers.push(server);
  const a = sandbox();
  const fileA = a.write('p.yaml', TOY_PIPELINE);
  assert.equal((await a.cli(['run', fileA])).code, 0);
  const pushed = await a.cli(['cache', 'push', fileA, 'train', '--remote', server.url]);
  assert.equal(pushed.code, 0, pushed.stdout + pushed.stderr);
  assert.match(pushed.stdout, /^6 pushed, 0 already on/m, 'train and its ancestors');
  const all = await a.cli(['cache', 'push', '--remote', server.url]);
  assert.match(all.stdout, /^1 pushed, 6 already on/m);

  const b = sandbox();
  const fileB = b.write('p.yaml', TOY_PIPELINE.replace('name: toy', `name: toy\nremote: ${server.url}`));
  const status = await b.cli(['status', fileB]);
  assert.match(status.stdout, /7 cached, 0 to run/);
  const pulled = await b.cli(['cache', 'pull', fileB, 'src']);
  assert.equal(pulled.code, 0, pulled.stdout + pulled.stderr);
  assert.match(pulled.stdout, /^2 pulled, 0 already local, 0 not on/m);
  const rest = await b.cli(['cache', 'pull', fileB]);
  assert.match(rest.stdout, /^5 pulled, 2 already local/m);
  const run = await b.cli(['run', fileB, '--remote', 'none']);
  assert.match(run.stdout, /7 cached/);
  assert.deepEqual(b.runs(), []);

  const none = await b.cli(['cache', 'pull', b.write('q.yaml', TOY_PIPELINE)]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /no remote cache configured/);
});
