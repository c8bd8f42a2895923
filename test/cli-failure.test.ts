// What a user reads when a node fails: the error and the end of its log, not a stack trace.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { sandbox } from './support/toy.js';

test('a failed node is summarised by its error and its last log lines; the stack trace stays in the log file', async () => {
  const box = sandbox();
  const file = box.write('fail.yaml', `
name: failing
plugins: [$TOY]
stages:
  ok: {uses: emit, with: {value: 1}}
  bad: {uses: emit, with: {value: 2, sleep_ms: 60, fail: true}}
`);
  const r = await box.cli(['run', file]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const summary = r.stdout.slice(r.stdout.indexOf('✖ bad: '));
  assert.match(summary, /^✖ bad: toy failure in bad\n  log: (\S+)\n/);
  assert.match(summary, /\n  \| .*slept \d+\/60 ms/, 'the node\'s own last lines are shown');
  assert.doesNotMatch(r.stdout + r.stderr, /^\s*(\| )?\s+at \S/m, 'no stack frame in what the user reads');
  const log = readFileSync(/  log: (\S+)/.exec(summary)![1]!, 'utf8');
  assert.match(log, /^\s+at \S/m, 'the log file keeps the stack for debugging');
  assert.equal((await box.cli(['status', file])).stdout.split('\n').find((l) => l.startsWith('ok '))?.includes('cached'), true, 'the node that succeeded stays cached');
});
