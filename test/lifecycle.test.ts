// The node lifecycle in one process, with a fake executor: what is decided (hit, reason),
// what is held while a node runs (the local lock), what is published, and how waiting ends.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import type { JSONValue } from '../src/contract.js';
import { openPipeline } from '../src/cli/session.js';
import type { ExecResult, Executor } from '../src/run/executor.js';
import type { Job } from '../src/run/job.js';
import { describeReason } from '../src/run/reason.js';
import { SILENT } from '../src/run/plan.js';
import { runNodes } from '../src/run/scheduler.js';
import type { NodeOutcome, RunOptions } from '../src/run/types.js';
import type { Manifest } from '../src/store/artifacts.js';
import { openRemote } from '../src/remote/open.js';
import { RemoteCache } from '../src/remote/remote-cache.js';
import { Slots } from '../src/run/slots.js';
import { Store } from '../src/store/store.js';
import { digestJSON } from '../src/util/hash.js';
import { sandbox, TOY_MODULE } from './support/toy.js';

/** Publishes what the toy `emit`/`add` kinds would, without running them; records each job. */
class FakeExecutor implements Executor {
  readonly name = 'fake';
  readonly jobs: Job[] = [];
  /** Per node id: fail with this message, or finish without committing. */
  constructor(
    private readonly store: Store,
    private readonly behaviour: Record<string, 'fail' | 'no-commit' | ((job: Job) => Promise<void>)> = {},
  ) {}

  async run(job: Job): Promise<ExecResult> {
    this.jobs.push(job);
    const b = this.behaviour[job.node.id];
    if (b === 'fail') return { ok: false, interrupted: false, error: `fake failure of ${job.node.id}` };
    if (typeof b === 'function') await b(job);
    if (b === 'no-commit') return { ok: true };
    await this.store.commit(fakeManifest(job));
    return { ok: true };
  }
}

function fakeManifest(job: Job): Manifest {
  const inputs = Object.values(job.inputs).flatMap((i) => i.entries.map((e) => (e.artifact.type === 'json' ? ((e.artifact.value as { value: number }).value) : 0)));
  const value: JSONValue = { value: (job.node.params['value'] as number | undefined) ?? inputs.reduce((a, b) => a + b, 0) };
  return {
    key: job.key,
    pipeline: job.pipeline,
    node: job.node.id,
    stage: job.node.stage,
    kind: job.node.kind,
    version: 1,
    material: job.material,
    outputs: { out: { type: 'json', digest: digestJSON(value), value } },
    provenance: { started: new Date().toISOString(), duration_s: 0, host: 'test', pid: process.pid, log: job.log, versions: {}, reported: {} },
  };
}

const PIPELINE = `
name: life
plugins: [$TOY]
stages:
  one: {uses: emit, with: {value: 1}}
  two: {uses: emit, with: {value: 2}}
  sum: {uses: add, inputs: {a: one.out, b: two.out}}
`;

async function setup() {
  const box = sandbox();
  const file = box.write('life.yaml', PIPELINE);
  const opened = await openPipeline(file, [], { builtinKinds: [TOY_MODULE] });
  const store = new Store(join(box.dir, 'cache'));
  const rc = { ...opened, store };
  const all = new Set(opened.dag.order);
  const run = (executor: Executor, extra: Partial<RunOptions> = {}) =>
    runNodes(rc, all, { capacity: { jobs: 2, cpus: 2, gpu: 0, memory_gb: 8 }, dryRun: false, signal: new AbortController().signal, executor, reporter: SILENT, ...extra });
  return { box, store, rc, all, run };
}

const said = (o: NodeOutcome | undefined) => (o?.reason ? describeReason(o.reason) : undefined);

test('decide, execute, publish: a miss runs once with its parents\' outputs; the next run is all hits', async () => {
  const { store, run } = await setup();
  const fake = new FakeExecutor(store);
  const first = await run(fake);
  assert.deepEqual([...first.values()].map((o) => o.state), ['ran', 'ran', 'ran']);
  assert.deepEqual(first.get('one')!.reason, { why: 'never-run' });
  const sumJob = fake.jobs.find((j) => j.node.id === 'sum')!;
  assert.deepEqual(sumJob.inputs['a']!.entries.map((e) => e.artifact.type === 'json' && e.artifact.value), [{ value: 1 }]);
  assert.deepEqual(first.get('sum')!.manifest!.outputs['out'], { type: 'json', digest: digestJSON({ value: 3 }), value: { value: 3 } });
  // Nothing held once a node is done.
  for (const j of fake.jobs) assert.equal(store.lockHolder(j.key), undefined);

  const again = new FakeExecutor(store);
  const second = await run(again);
  assert.equal(again.jobs.length, 0);
  assert.deepEqual([...second.values()].map((o) => o.state), ['cached', 'cached', 'cached']);
  await store.close();
});

test('a failure is structured and stops only its descendants; a worker that publishes nothing fails saying so', async () => {
  const { store, run } = await setup();
  const out = await run(new FakeExecutor(store, { two: 'fail' }));
  assert.equal(out.get('one')!.state, 'ran');
  assert.equal(out.get('two')!.state, 'failed');
  assert.deepEqual(out.get('two')!.reason, { why: 'error', message: 'fake failure of two' });
  assert.equal(out.get('sum')!.state, 'skipped');
  assert.deepEqual(out.get('sum')!.reason, { why: 'upstream-stopped', upstream: 'two' });
  assert.equal(store.lockHolder(out.get('two')!.key!), undefined, 'the lock of a failed node is released');

  const silent = await run(new FakeExecutor(store, { two: 'no-commit' }));
  assert.equal(silent.get('two')!.state, 'failed');
  assert.equal(said(silent.get('two')), 'worker finished without publishing a result');
  await store.close();
});

test('dry run: keys where known, reasons as data (never run, changed, upstream will run)', async () => {
  const { store, run, box } = await setup();
  const dry = await run(new FakeExecutor(store), { dryRun: true });
  assert.deepEqual([...dry.values()].map((o) => o.state), ['would-run', 'would-run', 'would-run']);
  assert.deepEqual(dry.get('sum')!.reason, { why: 'upstream-will-run', upstream: 'one' });
  await run(new FakeExecutor(store));
  const file = box.write('life.yaml', PIPELINE.replace('value: 2', 'value: 5'));
  const opened = await openPipeline(file, [], { builtinKinds: [TOY_MODULE] });
  const changed = await runNodes({ ...opened, store }, new Set(opened.dag.order), {
    capacity: { jobs: 1, cpus: 1, gpu: 0, memory_gb: 8 },
    dryRun: true,
    signal: new AbortController().signal,
    executor: new FakeExecutor(store),
    reporter: SILENT,
  });
  assert.equal(changed.get('one')!.state, 'cached');
  const r = changed.get('two')!.reason!;
  assert.equal(r.why, 'changed');
  assert.match(describeReason(r), /params changed \(value: 2 -> 5\)/);
  await store.close();
});

test('a node whose lock another live process holds: waited for, found when that one commits; bounded with a clear message', async () => {
  const { store, run, rc } = await setup();
  // Learn the keys, then hold `two`'s lock as another run of this host would.
  const planned = await run(new FakeExecutor(store), { dryRun: true });
  const key = planned.get('two')!.key!;
  assert.ok(await store.tryLock(key, 'two', 'someone-else', 60_000));
  const fake = new FakeExecutor(store);
  const waiting = run(fake, { lockWaitMs: 60_000 });
  // The other run publishes; this one must take its result instead of computing it.
  setTimeout(() => {
    const other = new FakeExecutor(store);
    void other.run({ ...fakeJobFor(rc, key, 'two') });
  }, 400);
  const out = await waiting;
  assert.equal(out.get('two')!.state, 'cached');
  assert.deepEqual(out.get('two')!.reason, { why: 'computed-elsewhere', via: 'lock' });
  assert.equal(out.get('sum')!.state, 'ran');
  assert.ok(!fake.jobs.some((j) => j.node.id === 'two'));
  await store.unlock(key, 'someone-else');

  // A holder that never finishes: the wait ends after lockWaitMs, naming the holder and the knob.
  await store.invalidate(key);
  assert.ok(await store.tryLock(key, 'two', 'someone-else', 60_000));
  const t0 = Date.now();
  const stuck = await run(new FakeExecutor(store), { lockWaitMs: 500 });
  assert.ok(Date.now() - t0 < 10_000);
  assert.equal(stuck.get('two')!.state, 'failed');
  assert.match(said(stuck.get('two'))!, /gave up after \d+ s waiting for the local lock on two \(key [0-9a-f]{12}\): \S+ pid \d+ is still computing it.*MEDPIPE_LOCK_WAIT_S/);
  assert.equal(stuck.get('sum')!.state, 'skipped');
  await store.close();
});

test('a node takes its lock once it has a slot: at --jobs 1 the queued node holds no lock, and one waiting for another runner\'s lock lets the next node have its slot', async () => {
  const { store, run, rc } = await setup();
  const planned = await run(new FakeExecutor(store), { dryRun: true });
  const key = (id: string) => planned.get(id)!.key!;
  const one = { jobs: 1, cpus: 1, gpu: 0, memory_gb: 8 };
  // Whichever of one and two runs first, the other is queued meanwhile: it must hold no lock,
  // or a second run on this cache would wait for it instead of computing it.
  const seen: string[] = [];
  const peek = (other: string) => async () => void seen.push(store.lockHolder(key(other))?.owner ?? 'no lock');
  const first = await run(new FakeExecutor(store, { one: peek('two'), two: peek('one') }), { capacity: one });
  assert.deepEqual([first.get('one')!.state, first.get('two')!.state], ['ran', 'ran']);
  assert.equal(seen[0], 'no lock', 'the queued node took its lock before its slot');

  // `one` is being computed by another runner: while it waits for that lock, `two` gets the slot.
  for (const id of ['one', 'two']) await store.invalidate(key(id));
  assert.ok(await store.tryLock(key('one'), 'one', 'someone-else', 60_000));
  let published = Infinity;
  let twoRan = Infinity;
  setTimeout(() => {
    published = Date.now();
    void new FakeExecutor(store).run({ ...fakeJobFor(rc, key('one'), 'one'), node: { id: 'one', stage: 'one', kind: 'emit', axes: {}, params: { value: 1 } } });
  }, 600);
  const fake = new FakeExecutor(store, { two: async () => void (twoRan = Date.now()) });
  const second = await run(fake, { capacity: one, lockWaitMs: 60_000 });
  await store.unlock(key('one'), 'someone-else');
  assert.deepEqual(second.get('one')!.reason, { why: 'computed-elsewhere', via: 'lock' });
  assert.equal(second.get('two')!.state, 'ran');
  assert.ok(twoRan < published, 'two ran while one waited for the lock, not after');
  await store.close();
});

test('a node that gave its slot back while waiting for a lock takes the remote lease only once it has a slot again: a lease held while queued ages into "stale" and another cache computes the node too', async () => {
  const { box, store, run } = await setup();
  const planned = await run(new FakeExecutor(store), { dryRun: true });
  const key = (id: string) => planned.get(id)!.key!;
  const remote = new RemoteCache(openRemote(join(box.dir, 'remote')), store, { warn: () => {} });
  assert.ok(await store.tryLock(key('one'), 'one', 'someone-else', 60_000));
  // `one` waits for that lock, so `two` gets the only slot; while `two` runs, the other runner
  // gives the lock up without a result and `one` takes it, with no slot to run in.
  let lockedByOne = false;
  let leaseWhileQueued: string | undefined = 'not looked at';
  const two = async () => {
    await store.unlock(key('one'), 'someone-else');
    for (let i = 0; i < 50 && !lockedByOne; i++) {
      await new Promise((r) => setTimeout(r, 100));
      lockedByOne = (store.lockHolder(key('one'))?.owner ?? 'someone-else') !== 'someone-else';
    }
    await new Promise((r) => setTimeout(r, 300));
    leaseWhileQueued = (await remote.holder(key('one')))?.owner;
  };
  const out = await run(new FakeExecutor(store, { two }), { capacity: { jobs: 1, cpus: 1, gpu: 0, memory_gb: 8 }, remote, lockWaitMs: 60_000 });
  assert.deepEqual([out.get('one')!.state, out.get('two')!.state, out.get('sum')!.state], ['ran', 'ran', 'ran']);
  assert.ok(lockedByOne, 'one took the lock while two ran (the case under test)');
  assert.equal(leaseWhileQueued, undefined, 'one held the remote lease while queued for a slot');
  await store.close();
});

test('a node that gave its slot back while waiting for another runner\'s remote lease does not keep the lease it then wins while it has no slot', async () => {
  const { box, store, run } = await setup();
  const planned = await run(new FakeExecutor(store), { dryRun: true });
  const key = (id: string) => planned.get(id)!.key!;
  const remote = new RemoteCache(openRemote(join(box.dir, 'remote')), store, { warn: () => {} });
  assert.equal(await remote.lease(key('one'), 'someone-else'), 'acquired');
  // `one` waits for that lease, so `two` gets the only slot; while `two` runs, the other runner
  // gives the lease up without a result.
  let leaseWhileQueued: string | undefined = 'not looked at';
  const two = async () => {
    await remote.release(key('one'), 'someone-else');
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 100));
      leaseWhileQueued = (await remote.holder(key('one')))?.owner;
    }
  };
  const fake = new FakeExecutor(store, { two });
  const out = await run(fake, { capacity: { jobs: 1, cpus: 1, gpu: 0, memory_gb: 8 }, remote });
  assert.deepEqual([out.get('one')!.state, out.get('two')!.state, out.get('sum')!.state], ['ran', 'ran', 'ran']);
  assert.deepEqual(fake.jobs.map((j) => j.node.id), ['two', 'one', 'sum'], 'two ran while one waited for the lease (the case under test)');
  // Base: held by this run (lease won at once, then queued for the slot two holds).
  assert.equal(leaseWhileQueued, undefined, "one still held the remote lease two seconds into two's run");
  await store.close();
});

test('a slot asked for after Ctrl-C is refused at once: the node never starts, and the wait never hangs', async () => {
  const slots = new Slots({ jobs: 1, cpus: 1, gpu: 0, memory_gb: 1 });
  const need = slots.needOf({}, 'n');
  const aborted = AbortSignal.abort();
  // Free: not handed out after the abort.
  await assert.rejects(slots.acquire(need, aborted), /interrupted/);
  // Full: refused rather than queued behind a listener that never fires.
  const held = await slots.acquire(need, new AbortController().signal);
  const late = slots.acquire(need, aborted).then(
    () => 'got a slot',
    () => 'refused',
  );
  const timer = new Promise((r) => setTimeout(() => r('still waiting'), 500));
  assert.equal(await Promise.race([late, timer]), 'refused');
  held();
  assert.equal(await Promise.race([late, timer]), 'refused');
});

function fakeJobFor(rc: { pipeline: { spec: { name: string } } }, key: string, node: string): Job {
  return {
    cacheDir: '',
    pipeline: rc.pipeline.spec.name,
    baseDir: '',
    node: { id: node, stage: node, kind: 'emit', axes: {}, params: { value: 2 } },
    kindModule: TOY_MODULE,
    key,
    material: { kind: 'emit', version: 1, params: { value: 2 }, inputs: {} },
    inputs: {},
    log: 'x.log',
  };
}

test('status and run say that a node interrupted mid-run resumes from its checkpoints, not just "never run"', async () => {
  const box = sandbox();
  const file = box.write('ck.yaml', `
name: ck
plugins: [$TOY]
stages:
  c: {uses: emit, with: {value: 1}}
`);
  const planned = JSON.parse((await box.cli(['status', file, '--json'])).stdout) as { nodes: { node: string; key: string }[] };
  const key = planned.nodes.find((n) => n.node === 'c')!.key;
  // What an interrupted run leaves: a checkpoint under the node's key.
  const store = new Store(box.cache);
  await store.saveCheckpoint(key, 'state', Buffer.from('{"i":4}'));
  await store.close();
  const status = await box.cli(['status', file]);
  // Base: "c  to run  never run".
  assert.match(status.stdout, /c\s+to run\s+never run \(an interrupted run left checkpoints: it resumes from them if they verify\)/, status.stdout);
  const run = await box.cli(['run', file, '--plain']);
  assert.match(run.stdout, /▶ c running \(first run, resuming from the checkpoints an interrupted run left\)/, run.stdout);
});
