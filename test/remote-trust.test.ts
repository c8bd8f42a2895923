// Hostile or stuck writers on a shared remote: unsigned remotes, required signatures, planted
// checkpoints, forged and never-ending leases.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { sandbox, TOY_PIPELINE, type Sandbox, blobsPipeline } from './support/toy.js';

const BLOBS = blobsPipeline('hello remote');

const RESUMABLE = `
name: ckpt
plugins: [$TOY]
stages:
  fit:
    uses: resumable
    with: {steps: 8}
`;

const UNSIGNED = /warning: remote \S+ is used without a team key: anyone who can write to it can plant results, checkpoints and leases[^\n]*Set MEDPIPE_CACHE_KEY[^\n]*remote_trust: signed/g;
const TEAM = { MEDPIPE_CACHE_KEY: 'team secret' };

const shared = () => mkdtempSync(join(tmpdir(), 'medpipe-shared-'));

/** A node's key, from a run in a throwaway cache without any remote. */
async function keyOf(yaml: string, node: string): Promise<string> {
  const probe = sandbox();
  const file = probe.write('p.yaml', yaml);
  const r = await probe.cli(['run', file, '--remote', 'none']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  return (await probe.show(file, node)).key;
}

function writeLease(root: string, key: string, lease: object): void {
  mkdirSync(join(root, 'leases'), { recursive: true });
  // Renamed into place, as the file backend does: a reader never sees half of it.
  const tmp = join(root, 'leases', `${key}.tmp`);
  writeFileSync(tmp, JSON.stringify(lease));
  renameSync(tmp, join(root, 'leases', key));
}

function resumedFrom(box: Sandbox, file: string): Promise<number> {
  return box.show(file, 'fit').then((m) => (m.outputs['out']!.value as { resumedFrom: number }).resumedFrom);
}

test('an unsigned remote is one loud warning per run, naming the risk and the fix; a team key silences it', async () => {
  const remote = shared();
  const a = sandbox();
  const r = await a.cli(['run', a.write('p.yaml', TOY_PIPELINE), '--remote', remote]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.stderr.match(UNSIGNED)?.length, 1, r.stderr);
  const pushed = await a.cli(['cache', 'push', '--remote', remote]);
  assert.equal(pushed.stderr.match(UNSIGNED)?.length, 1, 'cache push says it too');

  const b = sandbox();
  const keyed = await b.cli(['run', b.write('p.yaml', TOY_PIPELINE), '--remote', shared()], { env: TEAM });
  assert.equal(keyed.code, 0, keyed.stdout + keyed.stderr);
  assert.doesNotMatch(keyed.stderr, /warning/);
  const none = await b.cli(['run', b.write('p.yaml', TOY_PIPELINE), '--remote', 'none']);
  assert.doesNotMatch(none.stderr, /warning/, 'no remote, no warning');
});

test('remote_trust: signed (or --remote-trust signed) refuses a remote without a team key, and unsigned entries with one', async () => {
  const remote = shared();
  const writer = sandbox();
  assert.equal((await writer.cli(['run', writer.write('p.yaml', BLOBS), '--remote', remote])).code, 0, 'an unsigned writer fills the remote');

  const b = sandbox();
  const strict = b.write('p.yaml', BLOBS.replace('name: blobs', 'name: blobs\nremote_trust: signed'));
  const refused = await b.cli(['run', strict, '--remote', remote]);
  assert.equal(refused.code, 2, refused.stdout + refused.stderr);
  assert.match(refused.stderr, /p\.yaml: remote_trust is signed but MEDPIPE_CACHE_KEY is not set, so nothing on file:\S+ can be verified/);
  assert.deepEqual(b.runs(), [], 'nothing ran, nothing was read');
  const flag = await b.cli(['run', b.write('q.yaml', BLOBS), '--remote', remote, '--remote-trust', 'signed']);
  assert.equal(flag.code, 2);
  assert.match(flag.stderr, /--remote-trust: remote_trust is signed but MEDPIPE_CACHE_KEY is not set/);
  const bogus = await b.cli(['run', b.write('q.yaml', BLOBS), '--remote', remote, '--remote-trust', 'maybe']);
  assert.equal(bogus.code, 2);
  assert.match(bogus.stderr, /--remote-trust: must be one of any, signed, got "maybe"/);
  const badField = await b.cli(['status', b.write('r.yaml', BLOBS.replace('name: blobs', 'name: blobs\nremote_trust: sometimes'))]);
  assert.equal(badField.code, 2);
  assert.match(badField.stderr, /r\.yaml:\d+:\d+: remote_trust: must be one of/);

  const keyed = await b.cli(['run', strict, '--remote', remote], { env: TEAM });
  assert.equal(keyed.code, 0, keyed.stdout + keyed.stderr);
  assert.match(keyed.stderr, /ignoring remote entry [0-9a-f]{12}: unsigned/);
  assert.deepEqual(b.runs().sort(), ['make', 'read'], 'the unsigned results were not used');
});

/** A well-formed unsigned checkpoint at step 7: its sha256 tag is what anyone can compute, a team key's HMAC is not. */
const planted = (key: string): Buffer => {
  const data = Buffer.from('7');
  return Buffer.concat([Buffer.from('medpipe-ckpt/1\n'), createHash('sha256').update(`${key}\nstate\n`).update(data).digest(), data]);
};

test('a checkpoint planted on the remote steers only a run that trusts unsigned entries', async () => {
  const key = await keyOf(RESUMABLE, 'fit');
  const remote = shared();
  // What a writer without the key can put there: a well-formed but unsigned checkpoint at step 7.
  mkdirSync(join(remote, 'ckpt', key), { recursive: true });
  writeFileSync(join(remote, 'ckpt', key, 'state'), planted(key));

  const keyed = sandbox();
  const strict = keyed.write('p.yaml', RESUMABLE.replace('name: ckpt', 'name: ckpt\nremote_trust: signed'));
  const r = await keyed.cli(['run', strict, '--remote', remote], { env: TEAM });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(await resumedFrom(keyed, strict), 0, 'started from scratch');
  const log = readFileSync(join(keyed.cache, 'logs', `fit.${key.slice(0, 12)}.log`), 'utf8');
  assert.match(log, /ignoring checkpoint state on file:\S+: not signed with this MEDPIPE_CACHE_KEY/);

  // The same plant on a remote used without a key is taken, which is what the run's warning says.
  const unsigned = shared();
  mkdirSync(join(unsigned, 'ckpt', key), { recursive: true });
  writeFileSync(join(unsigned, 'ckpt', key, 'state'), planted(key));
  const open = sandbox();
  const file = open.write('p.yaml', RESUMABLE);
  const ro = await open.cli(['run', file, '--remote', unsigned]);
  assert.equal(ro.code, 0, ro.stdout + ro.stderr);
  assert.match(ro.stderr, UNSIGNED);
  assert.equal(await resumedFrom(open, file), 7);
});

test('a forged lease never holds a run up: one whose expiry is years ahead, or an unsigned one under a team key', async () => {
  const key = await keyOf(BLOBS, 'make');
  const ghost = (expires: number) => ({ owner: 'ghost', host: 'another-machine', pid: 1, acquired: Date.now(), expires });

  const remote = shared();
  writeLease(remote, key, ghost(Date.now() + 10 * 365 * 86_400_000));
  const a = sandbox();
  const started = Date.now();
  const r = await a.cli(['run', a.write('p.yaml', BLOBS), '--remote', remote]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.ok(Date.now() - started < 20_000, 'did not wait on it');
  assert.match(r.stderr, /ignoring the remote lease on [0-9a-f]{12} held by another-machine pid 1: expires \d{4}-\d\d-\d\dT[^,]+, further ahead than a renewal \(TTL 60 s\) ever puts it/);
  assert.deepEqual(a.runs().sort(), ['make', 'read']);

  const keyedRemote = shared();
  writeLease(keyedRemote, key, ghost(Date.now() + 50_000));
  const b = sandbox();
  const rb = await b.cli(['run', b.write('p.yaml', BLOBS), '--remote', keyedRemote], { env: TEAM });
  assert.equal(rb.code, 0, rb.stdout + rb.stderr);
  assert.match(rb.stderr, /ignoring the remote lease on [0-9a-f]{12} held by another-machine pid 1: unsigned \(MEDPIPE_CACHE_KEY is set/);
  assert.doesNotMatch(rb.stdout, /waiting/);
});

test('a lease kept alive forever is waited for only so long, with a message naming its holder', async () => {
  const key = await keyOf(BLOBS, 'make');
  const [remote, remote2] = [shared(), shared()];
  // A holder that renews but never finishes (a hung node whose parent keeps its heartbeat).
  const acquired = Date.now();
  const renew = () => {
    for (const root of [remote, remote2]) writeLease(root, key, { owner: 'ghost', host: 'another-machine', pid: 1, acquired, expires: Date.now() + 5_000 });
  };
  renew();
  const heartbeat = setInterval(renew, 200);
  try {
    const a = sandbox();
    const started = Date.now();
    const r = await a.cli(['run', a.write('p.yaml', BLOBS), '--remote', remote], { env: { MEDPIPE_REMOTE_MAX_WAIT_MS: '1500' } });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.ok(Date.now() - started >= 1400, 'waited for it first');
    assert.match(r.stdout, /make waiting \(computed by another-machine pid 1 \(remote lease\)\)/);
    assert.match(r.stderr, /remote lease on [0-9a-f]{12} held by another-machine pid 1 since \d{4}-[^ ]+ has outlived the longest wait \(2 s, MEDPIPE_REMOTE_MAX_WAIT_MS\): taking it as stale and computing the node here/);
    assert.deepEqual(a.runs().sort(), ['make', 'read']);

    // A node this cache has a duration for is given that plus the margin, not the max wait.
    const b = sandbox();
    const before = b.write('p.yaml', BLOBS.replace('hello remote', 'an earlier text'));
    assert.equal((await b.cli(['run', before, '--remote', 'none'])).code, 0);
    const t0 = Date.now();
    const rb = await b.cli(['run', b.write('p.yaml', BLOBS), '--remote', remote2], { env: { MEDPIPE_REMOTE_WAIT_MARGIN_MS: '1000' } });
    assert.equal(rb.code, 0, rb.stdout + rb.stderr);
    assert.match(rb.stderr, /has outlived the node's expected 0 s plus a margin of 1 s \(MEDPIPE_REMOTE_WAIT_MARGIN_MS\)/);
    assert.ok(Date.now() - t0 < 30_000);
  } finally {
    clearInterval(heartbeat);
  }
});

test('a SLURM task submitted by a signing run is refused on a compute node without the team key', async () => {
  const box = sandbox();
  const task = { format: 'medpipe-slurm-task/1', pipeline: 'p', baseDir: box.dir, remote: shared(), signed: true, target: 'n', nodes: [{ node: { id: 'n' }, kindModule: 'x' }], log: 'l' };
  const file = box.write('task.json', JSON.stringify(task));
  const r = await box.cli(['exec', file]);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /task\.json \(submitted by a run with MEDPIPE_CACHE_KEY set\): remote_trust is signed but MEDPIPE_CACHE_KEY is not set/);
});
