import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { BIN, sandbox, TOY_PIPELINE } from './support/toy.js';

const SLOW = TOY_PIPELINE.replace('      offset: ${vars.base}', '      offset: ${vars.base}\n      sleep_ms: 400');

test('two processes started together on one pipeline compute each node exactly once', async () => {
  const box = sandbox();
  const file = box.write('p.yaml', SLOW);
  const [a, b] = await Promise.all([box.cli(['run', file]), box.cli(['run', file])]);
  assert.equal(a.code, 0, a.stdout + a.stderr);
  assert.equal(b.code, 0, b.stdout + b.stderr);
  const runs = box.runs();
  assert.equal(runs.length, 7, `executions: ${runs.join(', ')}`);
  assert.equal(new Set(runs).size, 7, 'no node executed twice');
  assert.match(a.stdout + b.stdout, /computed by another run|cached/);
});

test('two processes at --jobs 1 on one cache: a node waiting for the other\'s lock lends its slot, each node is computed once, and both finish', async () => {
  const box = sandbox();
  const file = box.write('p.yaml', SLOW);
  const [a, b] = await Promise.all([box.cli(['run', file, '--jobs', '1']), box.cli(['run', file, '--jobs', '1'])]);
  assert.equal(a.code, 0, a.stdout + a.stderr);
  assert.equal(b.code, 0, b.stdout + b.stderr);
  const runs = box.runs();
  assert.equal(runs.length, 7, `executions: ${runs.join(', ')}`);
  assert.equal(new Set(runs).size, 7, 'no node executed twice');
  const status = await box.cli(['status', file]);
  assert.match(status.stdout, /7 cached, 0 to run/, status.stdout);
});

test('kill -9 in the middle of a node leaves a consistent cache, and the next run finishes the job', async () => {
  const box = sandbox();
  const file = box.write('p.yaml', TOY_PIPELINE.replace('      offset: ${vars.base}', '      offset: ${vars.base}\n      sleep_ms: 3000'));
  // Its own process group, so the kill takes the runner and its workers together, as a crash would.
  const child = spawn(process.execPath, [BIN, 'run', file, '--jobs', '1'], {
    cwd: box.dir,
    env: { ...process.env, CI: 'true', MEDPIPE_CACHE: box.cache, TOY_RUN_LOG: box.runLog },
    detached: true,
    stdio: 'ignore',
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const deadline = Date.now() + 20_000;
  while (!box.runs().some((r) => r.startsWith('train')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.ok(box.runs().some((r) => r.startsWith('train')), 'a train node started');
  process.kill(-child.pid!, 'SIGKILL');
  await exited;

  const verify = await box.cli(['cache', 'verify']);
  assert.equal(verify.code, 0, verify.stdout);
  assert.match(verify.stdout, /2 result\(s\) checked, 0 problem\(s\)/, 'only the two finished src nodes are visible');
  const status = await box.cli(['status', file]);
  assert.match(status.stdout, /train\[model=resnet,seed=1\]\s+to run\s+never run/);

  const before = box.runs().length;
  const resumed = await box.cli(['run', file, '--set', 'train.with.sleep_ms=0']);
  assert.equal(resumed.code, 0, resumed.stdout + resumed.stderr);
  assert.deepEqual(box.runs().slice(before).filter((r) => r.startsWith('src')), [], 'finished nodes are kept');
  assert.match(resumed.stdout, /5 ran, 2 cached/);
});

/** `pipeline run FILE -j 2 --plain`, interrupted (SIGINT) once `n` nodes say they are running:
 *  its whole output and exit code. */
async function interruptOnceRunning(box: ReturnType<typeof sandbox>, file: string, n: number): Promise<{ out: string; code: number | null }> {
  const child = spawn(process.execPath, [BIN, 'run', file, '-j', '2', '--plain'], {
    cwd: box.dir,
    env: { ...process.env, CI: 'true', MEDPIPE_CACHE: box.cache, TOY_RUN_LOG: box.runLog },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const deadline = Date.now() + 20_000;
  let gone = false;
  void exited.then(() => (gone = true));
  while ((out.match(/ running/g) ?? []).length < n && !gone && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.equal((out.match(/ running/g) ?? []).length, n, out);
  child.kill('SIGINT');
  const code = await exited;
  return { out, code };
}

test('Ctrl-C with -j 2: the two running nodes are interrupted, the two still queued are reported as not started', async () => {
  const box = sandbox();
  const file = box.write('q.yaml', `
name: queued
plugins: [$TOY]
axes:
  v: [1, 2, 3, 4]
stages:
  slow:
    uses: emit
    matrix: [v]
    with:
      value: \${v}
      sleep_ms: 30000
`);
  const { out, code } = await interruptOnceRunning(box, file, 2);
  assert.equal(code, 130, out);
  assert.match(out, /2 interrupted, 2 not started in /, out);
  assert.match(out, /slow \(4\): 2 interrupted, 2 not started/, 'the per-stage line tells them apart too');
  assert.equal((out.match(/□ slow\[v=\d\] not started/g) ?? []).length, 2, out);
  assert.doesNotMatch(out, /interrupted \(interrupted\)/, 'the state is not repeated as its reason');
  assert.match(out, /■ slow\[v=\d\] interrupted {2}\[/, out);
});

test('Ctrl-C: nodes that finish after it are stored, and nodes never started do not count as done', async () => {
  const box = sandbox();
  const file = box.write('n.yaml', `
name: naps
plugins: [$TOY]
axes:
  v: [1, 2, 3, 4]
stages:
  nap:
    uses: nap
    matrix: [v]
    with:
      value: \${v}
      sleep_ms: 3000
`);
  const { out, code } = await interruptOnceRunning(box, file, 2);
  assert.equal(code, 130, out);
  // The two naps ignore the signal and finish: their results are kept.
  assert.match(out, /2 ran, 2 not started in /, out);
  assert.equal((out.match(/✔ nap\[v=\d\] ran/g) ?? []).length, 2, out);
  for (const line of out.split('\n').filter((l) => /□ nap\[v=\d\] not started/.test(l))) {
    assert.match(line, /\[0\/4 done · 2 running · [12] not started · /, `nothing finished yet: ${line}`);
  }
  assert.match(out, /✔ nap\[v=\d\] ran \(first run\) {2}\[1\/4 done · 1 running · 2 not started · [\d:]+ elapsed · ETA/, out);
  assert.match(out, /✔ nap\[v=\d\] ran \(first run\) {2}\[2\/4 done · 2 not started · [\d:]+ elapsed\]/, out);
  const again = await box.cli(['run', file, '--set', 'nap.with.sleep_ms=0']);
  assert.equal(again.code, 0, again.stdout + again.stderr);
  assert.match(again.stdout, /2 ran, 2 cached/, 'what finished after Ctrl-C is not computed again');
});
