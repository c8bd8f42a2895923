// `pipeline run --executor slurm` against a real SLURM (the one-node cluster .ci/services.sh
// starts: compute node = this machine). Every node runs as an sbatch job that reads and writes
// only a shared file:// remote and its own exec cache; TOY_RUN_LOG counts the executions.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { BIN, sandbox, TOY_PIPELINE, type Sandbox } from './support/toy.js';

const SKIP = process.env['MEDPIPE_TEST_SLURM'] ? false : 'MEDPIPE_TEST_SLURM is not set: start a cluster with `eval "$(bash .ci/services.sh)"` to run the SLURM tests';

const TOY = TOY_PIPELINE.replace('stages:\n', 'slurm:\n  time: "00:05:00"\nstages:\n').replace('    uses: collect\n', '    uses: collect\n    resources: {cpus: 2}\n    slurm: {time: 3, extra: [--comment=medpipe-test]}\n');
const BRANCHES = `
name: branches
plugins: [$TOY]
stages:
  a: {uses: emit, with: {value: 41}}
  bad: {uses: add, inputs: {a: a.out}, with: {fail: true}}
  after_bad: {uses: add, inputs: {a: bad.out}}
  good: {uses: add, inputs: {a: a.out}, with: {offset: 1}}
  good2: {uses: add, inputs: {a: good.out}, with: {offset: 2}}
`;
const SLOW = `
name: slow
plugins: [$TOY]
stages:
  a: {uses: emit, with: {value: 5, sleep_ms: 1500}}
  b: {uses: add, inputs: {a: a.out}, with: {sleep_ms: 500}}
  c: {uses: add, inputs: {a: b.out}, with: {offset: 3}}
`;

interface Cluster {
  box: Sandbox;
  remote: string;
  env: Record<string, string>;
}

function cluster(remote = mkdtempSync(join(tmpdir(), 'medpipe-slurm-remote-'))): Cluster {
  const box = sandbox();
  // Each sandbox gets its own compute-node cache: results can only pass through the remote.
  return { box, remote, env: { MEDPIPE_EXEC_CACHE: join(box.dir, 'exec-cache'), MEDPIPE_SLURM_POLL_MS: '300', MEDPIPE_REMOTE: remote } };
}

const slurmRun = (c: Cluster, file: string, ...more: string[]) => c.box.cli(['run', file, '--executor', 'slurm', ...more], { env: c.env });
const submitted = (stdout: string) => [...stdout.matchAll(/SLURM job (\d+) submitted/g)].map((m) => m[1]!);
const scontrol = (job: string) => execFileSync('scontrol', ['show', 'job', '-o', job], { encoding: 'utf8' });

describe('SLURM executor (real cluster)', { skip: SKIP }, () => {
  test('a toy DAG runs as sbatch jobs chained with afterok; a rerun submits nothing', async () => {
    const c = cluster();
    const file = c.box.write('p.yaml', TOY);
    const started = Date.now();
    const r = await slurmRun(c, file);
    const took = (Date.now() - started) / 1000;
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /7 ran/);
    assert.deepEqual(c.box.runs().sort(), ['src[seed=1]', 'src[seed=2]', 'total', 'train[model=deit,seed=1]', 'train[model=deit,seed=2]', 'train[model=resnet,seed=1]', 'train[model=resnet,seed=2]']);
    const jobs = submitted(r.stdout);
    assert.equal(jobs.length, 7, 'the whole DAG is submitted up front');
    assert.match(r.stdout, /train\[model=deit,seed=1\] waiting \(SLURM job \d+ PENDING \(Dependency\)\)/);
    // A job can start and finish between two polls (300 ms), so not every node is seen RUNNING:
    // the progress shows the state and the compute node for each job that was.
    assert.match(r.stdout, /▶ \S+ running \(SLURM job \d+ RUNNING on /);
    for (const line of r.stdout.split('\n').filter((l) => / running \(SLURM job \d+ RUNNING/.test(l))) assert.match(line, / RUNNING on \S/, line);

    // Names say which node; resources and slurm: blocks reached sbatch; total waited on train.
    const total = scontrol(jobs[6]!);
    assert.match(total, /JobName=medpipe:toy:total /);
    assert.match(total, /TimeLimit=00:03:00 /);
    assert.match(total, /NumCPUs=2 /);
    assert.match(total, /Comment=medpipe-test /);
    assert.match(scontrol(jobs[0]!), /TimeLimit=00:05:00 /);
    assert.match(readFileSync(join(c.box.cache, 'slurm', 'logs', 'toy', `total.${jobs[6]}.log`), 'utf8'), /medpipe exec toy total .*SLURM job \d+\)\n.*key [0-9a-f]{64}/);
    process.stderr.write(`# 3-level toy DAG, 7 jobs: ${took.toFixed(1)} s from submit to the last job's result\n`);

    const again = await slurmRun(c, file);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.match(again.stdout, /7 cached/);
    assert.deepEqual(submitted(again.stdout), [], 'nothing submitted');
    assert.equal(c.box.runs().length, 7);

    // The results are on the remote for anyone: a collaborator without SLURM executes nothing.
    const b = sandbox();
    const local = await b.cli(['run', b.write('p.yaml', TOY), '--remote', c.remote]);
    assert.equal(local.code, 0, local.stdout + local.stderr);
    assert.deepEqual(b.runs(), []);
  });

  test('a failed job: SLURM state and log shown, descendants cancelled, the other branch completes', async () => {
    const c = cluster();
    const r = await slurmRun(c, c.box.write('p.yaml', BRANCHES));
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /2 ran, 1 cached|3 ran/);
    assert.match(r.stdout, /✖ bad failed \(SLURM job (\d+) FAILED \(exit 1:0, NonZeroExitCode\)\)/);
    assert.match(r.stdout, /↷ after_bad skipped \(upstream bad (failed: SLURM job \d+ cancelled|did not finish)/);
    const log = /log: (\S+bad\.\d+\.log)/.exec(r.stdout)?.[1];
    assert.ok(log && existsSync(log), `log path shown: ${r.stdout}`);
    assert.match(r.stdout, /\| .*failed: toy failure in bad/, 'the tail of the job log is shown');
    const runs = c.box.runs();
    assert.ok(runs.includes('good') && runs.includes('good2') && runs.includes('bad'));
    assert.ok(!runs.includes('after_bad'), 'the descendant never ran');
    const afterBad = /after_bad waiting \(SLURM job (\d+) submitted/.exec(r.stdout)![1]!;
    assert.match(scontrol(afterBad), /JobState=CANCELLED/);
  });

  test('--detach submits and exits; status shows the jobs; a later run reattaches instead of resubmitting', async () => {
    const c = cluster();
    const file = c.box.write('p.yaml', SLOW);
    const d = await slurmRun(c, file, '--detach');
    assert.equal(d.code, 0, d.stdout + d.stderr);
    assert.match(d.stdout, /3 node\(s\) queued on SLURM/);
    const jobs = submitted(d.stdout);
    assert.equal(jobs.length, 3);
    const status = await c.box.cli(['status', file], { env: c.env });
    assert.match(status.stdout, /SLURM jobs submitted from this cache:/);
    assert.match(status.stdout, new RegExp(`c\\s+${jobs[2]}\\s+PENDING\\s+Dependency`));
    assert.match(status.stdout, /b\s+queued \(SLURM \d+\)/);

    const r = await slurmRun(c, file);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(submitted(r.stdout), [], 'reattached, not resubmitted');
    assert.match(r.stdout, new RegExp(`reattached to SLURM job ${jobs[2]}`));
    assert.match(r.stdout, /3 ran/);
    assert.deepEqual(c.box.runs(), ['a', 'b', 'c']);
    const after = await c.box.cli(['status', file], { env: c.env });
    assert.doesNotMatch(after.stdout, /SLURM jobs submitted/, 'followed jobs leave the record');
  });

  test('Ctrl-C without a terminal leaves the jobs queued and says so; the next run reattaches', async () => {
    const c = cluster();
    const file = c.box.write('p.yaml', SLOW.replace('value: 5', 'value: 6'));
    const child = spawn(process.execPath, [BIN, 'run', file, '--executor', 'slurm'], {
      cwd: c.box.dir,
      env: { ...process.env, CI: 'true', MEDPIPE_CACHE: c.box.cache, TOY_RUN_LOG: c.box.runLog, ...c.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let sent = false;
    child.stdout.on('data', (d: Buffer) => {
      out += d;
      // Once: a second Ctrl-C means "exit now".
      if (!sent && /c waiting \(SLURM job \d+ submitted/.test(out)) sent = child.kill('SIGINT');
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 130, out + err);
    assert.match(err, /3 SLURM job\(s\) left in the queue/);
    const r = await slurmRun(c, file);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(submitted(r.stdout), []);
    assert.deepEqual(c.box.runs(), ['a', 'b', 'c']);
  });

  test('a node another runner holds the remote lease of is waited for, not submitted', async () => {
    const c = cluster();
    const file = c.box.write('p.yaml', SLOW.replace('value: 5', 'value: 7'));
    // The other runner: a local run on the same remote, slow at `a`.
    const other = sandbox();
    const otherRun = other.cli(['run', other.write('p.yaml', SLOW.replace('value: 5', 'value: 7').replace('sleep_ms: 1500', 'sleep_ms: 4000')), '--remote', c.remote], { env: { TOY_RUN_LOG: c.box.runLog } });
    const leases = join(c.remote, 'leases');
    // Until the other runner is inside `a` (holding its lease).
    for (let i = 0; i < 100 && !(existsSync(leases) && readdirSync(leases).length > 0 && c.box.runs().includes('a')); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(c.box.runs().includes('a'), 'the other runner started a');
    const r = await slurmRun(c, file);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal((await otherRun).code, 0);
    assert.match(r.stdout, /a waiting \(computed by \S+ pid \d+ \(remote lease\)\)/);
    assert.doesNotMatch(r.stdout, /a waiting \(SLURM job/, 'a was not submitted');
    const runs = c.box.runs();
    assert.equal(runs.filter((n) => n === 'a').length, 1, `executions: ${runs.join(', ')}`);
  });
});

// Without a cluster: the CLI refuses clearly instead of half-working.
test('--executor slurm without a remote, or --detach alone, is a clear error', async () => {
  const box = sandbox();
  const file = box.write('p.yaml', TOY);
  const r = await box.cli(['run', file, '--executor', 'slurm', '--remote', 'none']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--executor slurm needs a remote cache every compute node can reach/);
  const d = await box.cli(['run', file, '--detach']);
  assert.equal(d.code, 2);
  assert.match(d.stderr, /--detach needs --executor slurm/);
  mkdirSync(join(box.dir, 'x'));
  writeFileSync(join(box.dir, 'x', 'task.json'), '{"format":"nope"}');
  const e = await box.cli(['exec', join(box.dir, 'x', 'task.json')]);
  assert.notEqual(e.code, 0);
  assert.match(e.stderr + e.stdout, /not a medpipe SLURM task/);
});
