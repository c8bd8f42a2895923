// The SLURM executor's pure parts: sbatch options from the YAML, the batch script, the task a
// job carries, and what squeue/sacct/scontrol/sbatch print. No SLURM needed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { expandPipeline } from '../src/config/expand.js';
import { loadPipeline } from '../src/config/load.js';
import { buildDag } from '../src/graph/dag.js';
import { foldState, parseSacct, parseSbatch, parseScontrol, parseSqueue } from '../src/run/batch/slurm/queue.js';
import { batchScript, jobName, sbatchArgs, settingsFor } from '../src/run/batch/slurm/settings.js';
import { SlurmSystem } from '../src/run/batch/slurm/system.js';
import type { Queue } from '../src/run/batch/slurm/queue.js';
import { shellWord } from '../src/util/shell.js';
import { buildTask, parseTask } from '../src/run/batch/task.js';
import { sandbox, toyRegistry } from './support/toy.js';

const PIPELINE = `
name: cluster
plugins: [$TOY]
axes:
  seed: [1, 2]
slurm:
  partition: gpu
  account: lab
  time: "1-00:00:00"
  extra: [--constraint=a100]
  setup: module load nodejs
  logs: /shared/logs
stages:
  src:
    uses: emit
    matrix: [seed]
    with:
      value: \${seed}
  train:
    uses: add
    matrix: [seed]
    inputs: {a: src.out}
    resources: {cpus: 8, gpu: 2, memory_gb: 31.5}
    slurm:
      time: 90
      qos: long
      gpu_type: a100
      extra: [--exclusive]
      setup: conda activate medpipe
  total:
    uses: collect
    inputs: {items: train.out}
`;

async function opened() {
  const box = sandbox();
  const spec = loadPipeline(box.write('p.yaml', PIPELINE), { sets: [] });
  const registry = await toyRegistry();
  const pipeline = expandPipeline(spec, registry);
  return { spec, registry, pipeline, dag: buildDag(pipeline) };
}

test('sbatch options: resources and the slurm: blocks (pipeline default, then the stage)', async () => {
  const { spec, pipeline } = await opened();
  const train = pipeline.nodes.get('train[seed=1]')!;
  const settings = settingsFor(spec.raw, 'train');
  assert.deepEqual(settings.extra, ['--constraint=a100', '--exclusive'], 'extra options add up');
  assert.equal(settings.setup, 'module load nodejs\nconda activate medpipe');
  assert.equal(settings.logs, '/shared/logs');
  const args = sbatchArgs({ name: jobName('cluster', train.id), resources: train.resources, settings, after: ['101', '102'], output: '/shared/logs/x.%j.log' });
  assert.deepEqual(args, [
    '--parsable',
    '--job-name=medpipe:cluster:train[seed=1]',
    '--output=/shared/logs/x.%j.log',
    '--open-mode=append',
    '--cpus-per-task=8',
    '--gres=gpu:a100:2',
    '--mem=32256M',
    '--partition=gpu',
    '--account=lab',
    '--qos=long',
    '--time=90',
    '--dependency=afterok:101:102',
    '--kill-on-invalid-dep=yes',
    '--constraint=a100',
    '--exclusive',
  ]);

  // A stage without its own block: the pipeline default; no GPU or memory asked when none is set.
  const src = pipeline.nodes.get('src[seed=2]')!;
  const plain = sbatchArgs({ name: jobName('cluster', src.id), resources: src.resources, settings: settingsFor(spec.raw, 'src'), after: [], output: 'o.log' });
  assert.ok(plain.includes('--cpus-per-task=1'));
  assert.ok(plain.includes('--time=1-00:00:00'));
  assert.ok(!plain.some((a) => a.startsWith('--gres') || a.startsWith('--mem') || a.startsWith('--dependency') || a.startsWith('--qos')));
  assert.deepEqual(settingsFor({ name: 'x', stages: {} }, 'none'), {});
});

test('a bad slurm: block is a schema error that names the field', async () => {
  const box = sandbox();
  const file = box.write('bad.yaml', PIPELINE.replace('time: 90', 'time: "ninety minutes"'));
  assert.throws(() => loadPipeline(file, { sets: [] }), /time/);
  const file2 = box.write('bad2.yaml', PIPELINE.replace('qos: long', 'gpus: 2'));
  assert.throws(() => loadPipeline(file2, { sets: [] }), /gpus/);
});

test('the batch script feeds the task to `pipeline exec -` unexpanded, after the setup lines', () => {
  const task = JSON.stringify({ format: 'x', text: "it's $HOME `date` $(id) \\n" });
  const script = batchScript({ node: '/opt/node 20/bin/node', bin: '/srv/medpipe/bin/pipeline', task, setup: 'module load nodejs', comment: 'medpipe p node n' });
  assert.match(script, /^#!\/bin\/bash\n/);
  assert.ok(script.indexOf('module load nodejs') < script.indexOf('exec '));
  assert.match(script, /MEDPIPE_NODE='\/opt\/node 20\/bin\/node' exec \/srv\/medpipe\/bin\/pipeline exec - --cache "\$\{MEDPIPE_EXEC_CACHE:-/);
  // Run it with a stand-in for the launcher: stdin must be the task, byte for byte.
  const echo = batchScript({ node: '/bin/sh', bin: '/bin/sh', task, comment: 'c' }).replace('exec /bin/sh exec -', "exec /bin/sh -c 'cat; echo \"$MEDPIPE_NODE $*\" >&2' sh").replace(/--cache .* <</, '--cache C <<');
  const ran = spawnSync('bash', ['-c', echo], { encoding: 'utf8', env: { ...process.env, MEDPIPE_EXEC_CACHE: '/x' } });
  assert.equal(ran.status, 0, ran.stderr);
  assert.equal(ran.stdout.trim(), task);
  assert.equal(ran.stderr.trim(), '/bin/sh --cache C', 'the launcher is told which node to run');
  assert.equal(shellWord("a'b"), `'a'\\''b'`);
  assert.throws(() => batchScript({ node: 'n', bin: 'b', task: '{\n}', comment: '' }), /one line/);
});

test('a SLURM job that dies of a memory fault says so in its log (the batch script runs the launcher, not bin/pipeline.js)', async () => {
  const box = sandbox();
  let script = '';
  const queue: Queue = { submit: async (_args, s) => ((script = s), '7'), states: async () => new Map(), cancel: async () => {} };
  const { dag, pipeline } = await opened();
  const node = pipeline.nodes.get(dag.order[0]!)!;
  await new SlurmSystem(queue).submit({ raw: {}, node, pipeline: 'cluster', task: '{"format": "medpipe-slurm-task/1"}', after: [], log: '/dev/null' });
  // A native crash stood in for by SIGSEGV on entry to the CLI (not the crash report it starts).
  const segv = box.write('segv.mjs', "if (process.argv[1]?.endsWith('pipeline.js')) process.kill(process.pid, 'SIGSEGV');\n");
  const exec = join(box.dir, 'exec cache');
  const ran = spawnSync('bash', ['-s'], { input: script, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: `--import=${pathToFileURL(segv).href}`, MEDPIPE_EXEC_CACHE: exec } });
  assert.equal(ran.status, 139, ran.stderr);
  assert.equal(ran.stderr.trim(), `error: medpipe was killed by SIGSEGV; its cache index ${join(exec, 'index.lmdb')} does not exist`);
});

test("a task carries the target, its parents, and the ancestors whose keys are not known yet", async () => {
  const { pipeline, registry, dag } = await opened();
  const base = { pipeline: 'cluster', baseDir: pipeline.spec.baseDir, remote: 'file:///r', log: '/l.log' };
  // Nothing known: the whole ancestry travels, parents first.
  const all = buildTask(base, dag, registry, 'total', () => undefined);
  assert.deepEqual(all.nodes.map((n) => n.node.id), ['src[seed=1]', 'src[seed=2]', 'train[seed=1]', 'train[seed=2]', 'total']);
  // Known keys stop the walk: train's key is known, so src is not needed.
  const some = buildTask(base, dag, registry, 'total', (id) => (id.startsWith('train') ? `key-${id}` : undefined));
  assert.deepEqual(some.nodes.map((n) => [n.node.id, n.key]), [
    ['train[seed=1]', 'key-train[seed=1]'],
    ['train[seed=2]', 'key-train[seed=2]'],
    ['total', undefined],
  ]);
  assert.match(some.nodes[0]!.kindModule, /^file:.*toy-stages\.js$/);
  const back = parseTask(JSON.stringify(some));
  assert.equal(back.target, 'total');
  assert.throws(() => parseTask('{"format":"other"}'), /not a medpipe SLURM task/);
});

test('squeue, sacct, scontrol and sbatch output', () => {
  const sq = parseSqueue(['101|RUNNING|None|gpu-node-07', '102|PENDING|Dependency|', '103|PENDING|(Resources)|', '104|COMPLETED|None|n1', 'garbage line', ''].join('\n'));
  assert.deepEqual(sq.get('101'), { id: '101', raw: 'RUNNING', state: 'RUNNING', nodes: 'gpu-node-07' });
  assert.deepEqual(sq.get('102'), { id: '102', raw: 'PENDING', state: 'PENDING', reason: 'Dependency' });
  assert.equal(sq.get('104')!.state, 'COMPLETED');
  assert.equal(sq.size, 4);

  const acct = parseSacct(['Slurm accounting storage is disabled', '201|FAILED|1:0|None', '202|CANCELLED by 1000|0:15|DependencyNeverSatisfied', '203|TIMEOUT|0:0|', '204|OUT_OF_MEMORY|0:125|', '205|COMPLETED|0:0|'].join('\n'));
  assert.deepEqual(acct.get('201'), { id: '201', raw: 'FAILED', state: 'FAILED', exitCode: '1:0' });
  assert.deepEqual(acct.get('202'), { id: '202', raw: 'CANCELLED', state: 'CANCELLED', exitCode: '0:15', reason: 'DependencyNeverSatisfied' });
  assert.equal(acct.get('203')!.state, 'FAILED');
  assert.equal(acct.get('204')!.raw, 'OUT_OF_MEMORY');
  assert.equal(acct.get('205')!.state, 'COMPLETED');
  assert.equal(parseSacct('Slurm accounting storage is disabled\n').size, 0);

  const shown = parseScontrol('JobId=3 JobName=medpipe:toy:a JobState=FAILED Reason=NonZeroExitCode Dependency=(null) ExitCode=3:0 StdOut=/tmp/a.3.log');
  assert.equal(shown['ExitCode'], '3:0');
  assert.equal(shown['JobName'], 'medpipe:toy:a');
  assert.equal(shown['StdOut'], '/tmp/a.3.log');

  assert.equal(parseSbatch('4242\n'), '4242');
  assert.equal(parseSbatch('4242;cluster-a\n'), '4242');
  assert.throws(() => parseSbatch('sbatch: error: invalid partition'), /no job id/);

  for (const [raw, folded] of [
    ['CONFIGURING', 'RUNNING'],
    ['COMPLETING', 'RUNNING'],
    ['REQUEUED', 'PENDING'],
    ['NODE_FAIL', 'FAILED'],
    ['PREEMPTED', 'FAILED'],
    ['DEADLINE', 'CANCELLED'],
    ['CANCELLED+', 'CANCELLED'],
    ['WHATEVER', 'UNKNOWN'],
  ] as const) {
    assert.equal(foldState(raw), folded, raw);
  }
});
