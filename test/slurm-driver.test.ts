// The submit/follow logic of the SLURM executor without a cluster: a stand-in queue runs each
// batch script with bash as soon as its afterok dependencies completed (and cancels it when one
// failed, like --kill-on-invalid-dep=yes). The scripts run the real `pipeline exec`.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { openPipeline } from '../src/cli/session.js';
import { RemoteCache } from '../src/remote/remote-cache.js';
import { openRemote } from '../src/remote/open.js';
import { LineReporter } from '../src/cli/reporters/line.js';
import { runNodes } from '../src/run/scheduler.js';
import { SlurmExecutor } from '../src/run/batch/slurm/system.js';
import { foldState, type Queue } from '../src/run/batch/slurm/queue.js';
import type { JobInfo } from '../src/run/batch/system.js';
import { describeReason } from '../src/run/reason.js';
import { Store } from '../src/store/store.js';
import { sandbox, type Sandbox } from './support/toy.js';

interface FakeJob {
  raw: string;
  after: string[];
  script: string;
  output: string;
  exitCode?: string;
  reason?: string;
  child?: ChildProcess;
}

class BashQueue implements Queue {
  readonly jobs = new Map<string, FakeJob>();
  private next = 500;

  constructor(private readonly env: Record<string, string>) {}

  async submit(args: string[], script: string): Promise<string> {
    const id = String(this.next++);
    const dep = args.find((a) => a.startsWith('--dependency=afterok:'));
    const output = args.find((a) => a.startsWith('--output='))!.slice('--output='.length).replace('%j', id);
    this.jobs.set(id, { raw: 'PENDING', after: dep ? dep.split(':').slice(1) : [], script, output });
    this.tick();
    return id;
  }

  private tick(): void {
    for (const [id, job] of this.jobs) {
      if (job.raw !== 'PENDING') continue;
      const deps = job.after.map((d) => this.jobs.get(d)!.raw);
      if (deps.some((s) => s !== 'COMPLETED' && foldState(s) !== 'PENDING' && foldState(s) !== 'RUNNING')) {
        Object.assign(job, { raw: 'CANCELLED', reason: 'DependencyNeverSatisfied' });
      } else if (deps.every((s) => s === 'COMPLETED')) this.start(id, job);
    }
  }

  private start(id: string, job: FakeJob): void {
    job.raw = 'RUNNING';
    const fd = openSync(job.output, 'a');
    const child = spawn('bash', ['-s'], { env: { ...process.env, ...this.env, SLURM_JOB_ID: id }, stdio: ['pipe', fd, fd] });
    closeSync(fd);
    job.child = child;
    child.stdin!.end(job.script);
    child.on('exit', (code) => {
      if (job.raw === 'RUNNING') Object.assign(job, code === 0 ? { raw: 'COMPLETED', exitCode: '0:0' } : { raw: 'FAILED', exitCode: `${code ?? 0}:0`, reason: 'NonZeroExitCode' });
      this.tick();
    });
  }

  async states(ids: string[]): Promise<Map<string, JobInfo>> {
    const out = new Map<string, JobInfo>();
    for (const id of ids) {
      const j = this.jobs.get(id);
      if (j) out.set(id, { id, raw: j.raw, state: foldState(j.raw), ...(j.reason ? { reason: j.reason } : {}), ...(j.exitCode ? { exitCode: j.exitCode } : {}) });
    }
    return out;
  }

  async cancel(ids: string[]): Promise<void> {
    for (const id of ids) {
      const j = this.jobs.get(id)!;
      j.child?.kill('SIGTERM');
      j.raw = 'CANCELLED';
    }
    this.tick();
  }
}

const PIPELINE = `
name: fake
plugins: [$TOY]
stages:
  a: {uses: emit, with: {value: 3}}
  bad: {uses: add, inputs: {a: a.out}, with: {fail: true}}
  after_bad: {uses: add, inputs: {a: bad.out}}
  good: {uses: add, inputs: {a: a.out}, with: {offset: 1}}
  good2: {uses: add, inputs: {a: good.out}, with: {offset: 2}}
`;

async function run(box: Sandbox, file: string, remoteDir: string, queue: BashQueue, lines: string[]) {
  const opened = await openPipeline(file, [], { builtinKinds: [] });
  const store = new Store(box.cache);
  const remote = new RemoteCache(openRemote(remoteDir), store, { warn: (m) => lines.push(`warning: ${m}`) });
  try {
    return await runNodes({ ...opened, store }, new Set(opened.dag.order), {
      capacity: { jobs: 1, cpus: 1, gpu: 0, memory_gb: 1 },
      dryRun: false,
      signal: new AbortController().signal,
      executor: new SlurmExecutor({ queue, pollMs: 50, note: (t) => lines.push(t) }),
      reporter: new LineReporter((l) => lines.push(l), 0),
      remote,
    });
  } finally {
    await remote.close();
    await store.close();
  }
}

test('without SLURM: dependencies, a failure that cancels its descendants only, a rerun that submits nothing', async () => {
  const box = sandbox();
  const remoteDir = mkdtempSync(join(tmpdir(), 'medpipe-fake-remote-'));
  const env = { MEDPIPE_EXEC_CACHE: join(box.dir, 'exec'), TOY_RUN_LOG: box.runLog };
  const queue = new BashQueue(env);
  const lines: string[] = [];
  const file = box.write('p.yaml', PIPELINE);
  const outcomes = await run(box, file, remoteDir, queue, lines);
  const states = Object.fromEntries([...outcomes].map(([id, o]) => [id, o.state]));
  assert.deepEqual(states, { a: 'ran', bad: 'failed', after_bad: 'skipped', good: 'ran', good2: 'ran' }, lines.join('\n'));
  assert.match(describeReason(outcomes.get('bad')!.reason!), /^SLURM job \d+ FAILED \(exit 1:0, NonZeroExitCode\)$/);
  assert.match(outcomes.get('bad')!.log!, /^slurm\/logs\/fake\/bad\.\d+\.log$/);
  assert.match(describeReason(outcomes.get('after_bad')!.reason!), /upstream bad/);
  assert.deepEqual(box.runs().sort(), ['a', 'bad', 'good', 'good2']);
  assert.equal(queue.jobs.size, 5, 'all five submitted at once');
  assert.deepEqual(
    [...queue.jobs.values()].map((j) => j.after.length),
    [0, 1, 1, 1, 1],
    'children wait on their parent job',
  );
  // The ledger kept nothing of jobs that ended: a rerun resubmits the failed branch only.
  queue.jobs.clear();
  const again = await run(box, box.write('p.yaml', PIPELINE.replace('with: {fail: true}', 'with: {fail: false}')), remoteDir, queue, lines);
  assert.equal(again.get('a')!.state, 'cached');
  assert.equal(again.get('good2')!.state, 'cached');
  assert.equal(again.get('after_bad')!.state, 'ran');
  assert.equal(queue.jobs.size, 2, 'bad and after_bad only');
  queue.jobs.clear();
  const third = await run(box, box.write('p.yaml', PIPELINE.replace('with: {fail: true}', 'with: {fail: false}')), remoteDir, queue, lines);
  assert.ok([...third.values()].every((o) => o.state === 'cached'));
  assert.equal(queue.jobs.size, 0, 'a rerun submits nothing');
});
