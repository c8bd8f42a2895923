// Whether a stage saw Ctrl-C decides whether its returned result is stored (execute.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { watchedSignal } from '../src/run/watched-signal.js';

test('a stage signal follows the run and tells whether the stage noticed the abort', async () => {
  const run = new AbortController();
  const ignored = watchedSignal(run.signal);
  const polled = watchedSignal(run.signal);
  const listened = watchedSignal(run.signal);
  const timer = watchedSignal(run.signal);
  const handler = watchedSignal(run.signal);
  assert.equal(polled.signal.aborted, false, 'a read before the abort sees nothing');
  listened.signal.addEventListener('abort', () => {});
  handler.signal.onabort = () => {};
  const slept = sleep(60_000, null, { signal: timer.signal }).then(() => 'slept', (e: Error) => e.name);
  run.abort();
  assert.equal(polled.signal.aborted, true);
  assert.equal(await slept, 'AbortError', 'a real AbortSignal: timers accept it');
  assert.deepEqual([ignored, polled, listened, timer, handler].map((w) => w.noticed()), [false, true, true, true, true]);
  assert.ok(ignored.signal instanceof AbortSignal && ignored.signal.reason === run.signal.reason);
  assert.equal(ignored.noticed(), true, 'reading the reason after the abort is noticing it');
  for (const w of [ignored, polled, listened, timer, handler]) w.dispose();
});

test('a stage signal made after the abort is aborted already; dispose stops following', () => {
  const run = new AbortController();
  run.abort();
  assert.equal(watchedSignal(run.signal).signal.aborted, true);
  const later = new AbortController();
  const w = watchedSignal(later.signal);
  w.dispose();
  later.abort();
  assert.equal(w.signal.aborted, false);
});

test('a listener the stage removed before the abort (an early fetch or sleep) is not noticing it; throwIfAborted is', async () => {
  const run = new AbortController();
  const early = watchedSignal(run.signal);
  await sleep(1, null, { signal: early.signal }); // adds and removes its abort listener
  const removed = watchedSignal(run.signal);
  const l = () => {};
  removed.signal.addEventListener('abort', l);
  removed.signal.removeEventListener('abort', l);
  const unset = watchedSignal(run.signal);
  unset.signal.onabort = () => {};
  unset.signal.onabort = null;
  const thrown = watchedSignal(run.signal);
  run.abort();
  assert.throws(() => thrown.signal.throwIfAborted());
  assert.deepEqual([early, removed, unset, thrown].map((w) => w.noticed()), [false, false, false, true]);
  for (const w of [early, removed, unset, thrown]) w.dispose();
});
