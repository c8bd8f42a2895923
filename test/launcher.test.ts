// bin/pipeline, the launcher users start: an interrupt sent to it alone (timeout -s INT, a job
// runner, kill -INT PID) reaches node, which prints its interrupted summary and exits 130; a
// terminal's Ctrl-C, which reaches both the launcher and node, still counts once.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO, sandbox, type Sandbox } from './support/toy.js';

const LAUNCHER = join(REPO, 'bin', 'pipeline');

const SLOW = `
name: slow
plugins: [$TOY]
stages:
  wait: {uses: emit, with: {value: 1, sleep_ms: 20000}}
`;

/** Starts `pipeline run`, sends INT once the node runs (to the launcher's pid, or to its whole process group), and returns what it printed and its exit code. */
async function interrupt(box: Sandbox, file: string, to: 'launcher' | 'group' | 'ignoring'): Promise<{ code: number | null; out: string }> {
  // 'ignoring': the launcher starts with INT ignored, as a script's background job does (`pipeline run … &`).
  const [command, args] = to === 'ignoring' ? ['/bin/sh', ['-c', 'trap "" INT; exec "$0" "$@"', LAUNCHER, 'run', file, '--plain']] : [LAUNCHER, ['run', file, '--plain']];
  const child = spawn(command, args, {
    cwd: box.dir,
    env: { ...process.env, CI: 'true', MEDPIPE_CACHE: box.cache, TOY_RUN_LOG: box.runLog },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: to === 'group',
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + 15_000;
  while (!/ running/.test(out) && !gone && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.match(out, / running/);
  process.kill(to === 'group' ? -child.pid! : child.pid!, 'SIGINT');
  const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  const code = await exited;
  clearTimeout(killer);
  return { code, out };
}

test('an INT sent to the launcher alone reaches node (interrupted summary, exit 130); one sent to its process group, as Ctrl-C is, counts once', async () => {
  const box = sandbox();
  const file = box.write('slow.yaml', SLOW);
  const alone = await interrupt(box, file, 'launcher');
  assert.equal(alone.code, 130, alone.out);
  assert.match(alone.out, /stopping: finished nodes are kept/);
  assert.match(alone.out, /1 interrupted in /);
  const group = await interrupt(box, file, 'group');
  assert.equal(group.code, 130, group.out);
  assert.match(group.out, /1 interrupted in /, 'the summary is printed: the launcher passing the terminal\'s INT on is not a second Ctrl-C (which kills at once)');
  assert.equal(group.out.match(/stopping:/g)?.length, 1);
});

test('a launcher started with INT ignored (a background job of a script: `pipeline run … &`, then kill -INT) still stops on kill -INT', async () => {
  const box = sandbox();
  const file = box.write('slow.yaml', SLOW);
  // Base: the shell could not trap the INT it was started ignoring; the node ran its 20 s to the end and the run exited 0.
  const r = await interrupt(box, file, 'ignoring');
  assert.equal(r.code, 130, r.out);
  assert.match(r.out, /1 interrupted in /);
});
