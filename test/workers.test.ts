// Persistent workers of the local executor: reused across nodes, replaced after a crash, past
// the memory limit, and for stages that ask for isolation; a worker that stops (SIGSTOP) is
// killed after the stall timeout and its node fails saying so, with its lock released.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { openPipeline } from '../src/cli/session.js';
import { LocalExecutor, type LocalExecutorOptions } from '../src/run/executors/local.js';
import { SILENT } from '../src/run/plan.js';
import { describeReason } from '../src/run/reason.js';
import type { Reporter } from '../src/run/reporter.js';
import { runNodes } from '../src/run/scheduler.js';
import { Store } from '../src/store/store.js';
import { sandbox, TOY_MODULE } from './support/toy.js';

async function runWith(yaml: string, opts: LocalExecutorOptions, jobs: number, reporter: Reporter = SILENT, cacheName?: string) {
  const box = sandbox();
  const file = box.write('w.yaml', yaml);
  const opened = await openPipeline(file, [], { builtinKinds: [TOY_MODULE] });
  const store = new Store(cacheName ? join(box.dir, cacheName) : box.cache);
  const executor = new LocalExecutor(opts);
  try {
    const outcomes = await runNodes({ ...opened, store }, new Set(opened.dag.order), {
      capacity: { jobs, cpus: jobs, gpu: 0, memory_gb: 8 },
      dryRun: false,
      signal: new AbortController().signal,
      executor,
      reporter,
    });
    const pids = new Map([...outcomes].flatMap(([id, o]) => {
      const out = o.manifest?.outputs['out'];
      return out?.type === 'json' ? [[id, (out.value as { pid: number }).pid] as const] : [];
    }));
    return { outcomes, pids, started: executor.started, store, box };
  } finally {
    await executor.close();
  }
}

const many = (kind: string, n: number) => `
name: w
plugins: [$TOY]
axes: {i: [${[...Array(n).keys()].join(', ')}]}
stages:
  who: {uses: ${kind}, matrix: [i], with: {n: "\${i}"}}
`;

test('one worker runs many nodes in turn, each node with its own log', async () => {
  const { outcomes, pids, started, store, box } = await runWith(many('whoami', 8), {}, 2);
  assert.deepEqual([...outcomes.values()].map((o) => o.state), Array(8).fill('ran'));
  assert.ok(started <= 2, `${started} workers for 8 nodes at --jobs 2`);
  assert.ok(new Set(pids.values()).size <= 2);
  for (const [id, o] of outcomes) {
    const log = readFileSync(join(box.cache, o.log!), 'utf8');
    assert.match(log, new RegExp(`${id.replace(/[[\]]/g, '\\$&')} key ${o.key}`));
    assert.doesNotMatch(log, /who\[i=\d\] key [0-9a-f]{64}[\s\S]*who\[i=\d\] key/, 'a log holds one node only');
  }
  await store.close();
});

test('isolated stages, a worker past the memory limit and a crashed worker each get a fresh process', async () => {
  const alone = await runWith(many('whoami_alone', 4), {}, 1);
  assert.equal(alone.started, 4);
  assert.equal(new Set(alone.pids.values()).size, 4);
  await alone.store.close();

  const fat = await runWith(many('whoami', 4), { maxRssMb: 1 }, 1);
  assert.equal(fat.started, 4, 'every worker grew past 1 MiB and was replaced');
  await fat.store.close();

  const crash = await runWith(`
name: w
plugins: [$TOY]
stages:
  boom: {uses: resumable, with: {steps: 3, crash_at: 1}}
  after: {uses: whoami, with: {n: 1}}
  later: {uses: whoami, with: {n: 2}}
`, {}, 1);
  assert.equal(crash.outcomes.get('boom')!.state, 'failed');
  assert.match(describeReason(crash.outcomes.get('boom')!.reason!), /worker exited with code 9/);
  assert.deepEqual([crash.outcomes.get('after')!.state, crash.outcomes.get('later')!.state], ['ran', 'ran']);
  // The three nodes race for the one slot, so the crash may come first or last; what must hold:
  // the crashed worker runs nothing after it, and every process started is accounted for.
  const boomLog = readFileSync(join(crash.box.cache, crash.outcomes.get('boom')!.log!), 'utf8');
  const crashedPid = Number(/\(worker pid (\d+)\)/.exec(boomLog)![1]);
  const finishedAfter = [...crash.pids].filter(([, pid]) => pid !== crashedPid);
  assert.equal(crash.pids.size, 2);
  const distinct = new Set([crashedPid, ...crash.pids.values()]);
  assert.equal(crash.started, distinct.size, 'one process per worker seen, none started for nothing');
  assert.ok(finishedAfter.length >= 1 || crash.started === 1, 'nodes after the crash ran on a fresh worker');
  await crash.store.close();
});

test('a worker killed by SIGSEGV or SIGABRT fails its node naming both causes (the cache index, native code) and `cache verify` to tell which, the cache path quoted', async () => {
  const crash = await runWith(`
name: w
plugins: [$TOY]
stages:
  segv: {uses: resumable, with: {steps: 2, crash_at: 1, crash_signal: SIGSEGV}}
  abrt: {uses: resumable, with: {steps: 2, crash_at: 1, crash_signal: SIGABRT}}
`, {}, 1, SILENT, "lab's cache");
  const dir = crash.store.dir;
  assert.match(dir, /lab's cache$/);
  const quoted = `'${dir.replace(/'/g, `'\\''`)}'`;
  for (const [node, native] of [['segv', 'a fault in native code'], ['abrt', 'native code aborting']] as const) {
    const o = crash.outcomes.get(node)!;
    assert.equal(o.state, 'failed');
    assert.equal(
      describeReason(o.reason!),
      `worker exited with SIG${node.toUpperCase()} (a crash: a damaged page of the cache index ${join(dir, 'index.lmdb')} or ${native}${node === 'abrt' ? " (a kernel, a stage's addon, V8 out of memory)" : " (a kernel, a stage's addon)"} can cause it; \`pipeline cache verify --cache ${quoted}\` tells which: if the index is damaged, \`pipeline cache repair --cache ${quoted}\` rebuilds it, and if it reads whole the worker's last words are in ${join(dir, 'logs', 'workers.log')})`,
    );
  }
  await crash.store.close();
});

test('a SIGSTOPped worker is killed after the stall timeout: the node fails saying so and its lock is released', async () => {
  let stopped: number | undefined;
  let cache = '';
  const reporter: Reporter = {
    ...SILENT,
    progress(id) {
      if (stopped !== undefined || id !== 'slow') return;
      const logs = join(cache, 'logs');
      const name = readdirSync(logs).find((f) => f.startsWith('slow.'));
      const pid = name && /worker pid (\d+)/.exec(readFileSync(join(logs, name), 'utf8'))?.[1];
      if (!pid) return;
      stopped = Number(pid);
      process.kill(stopped, 'SIGSTOP');
    },
  };
  const box0 = sandbox();
  cache = box0.cache;
  process.env['MEDPIPE_CACHE'] = cache;
  const yaml = `
name: w
plugins: [$TOY]
stages:
  slow: {uses: whoami, with: {n: 1, sleep_ms: 60000}}
  after: {uses: add, inputs: {a: slow.out}}
  other: {uses: whoami, with: {n: 2}}
`;
  const file = box0.write('w.yaml', yaml);
  const opened = await openPipeline(file, [], { builtinKinds: [TOY_MODULE] });
  const store = new Store(cache);
  const executor = new LocalExecutor({ stallMs: 3000 });
  const t0 = Date.now();
  const outcomes = await runNodes({ ...opened, store }, new Set(opened.dag.order), {
    capacity: { jobs: 2, cpus: 2, gpu: 0, memory_gb: 8 },
    dryRun: false,
    signal: new AbortController().signal,
    executor,
    reporter,
  });
  await executor.close();
  assert.ok(stopped !== undefined, `the worker was stopped: ${JSON.stringify([...outcomes].map(([id, o]) => [id, o.state, o.reason]))}`);
  assert.ok(Date.now() - t0 < 30_000, 'not waited for the 60 s the node would take');
  const slow = outcomes.get('slow')!;
  assert.equal(slow.state, 'failed');
  assert.match(describeReason(slow.reason!), new RegExp(`worker pid ${stopped} made no progress for \\d+ s \\(stopped or hung\\): killed.*MEDPIPE_STALL_S`));
  assert.equal(outcomes.get('after')!.state, 'skipped');
  assert.equal(outcomes.get('other')!.state, 'ran', JSON.stringify(outcomes.get('other')));
  assert.equal(store.lockHolder(slow.key!), undefined);
  assert.throws(() => process.kill(stopped!, 0), 'the stopped worker is gone');
  await store.close();
});
