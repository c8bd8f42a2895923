import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadPipeline } from '../src/config/load.js';
import { sandbox, TOY_PIPELINE } from './support/toy.js';

test('.inf, .nan and 1e400 are refused at load with file:line and the field; --set too', async () => {
  const box = sandbox();
  for (const written of ['.inf', '-.inf', '.nan', '1e400']) {
    const file = box.write('p.yaml', TOY_PIPELINE.replace('offset: ${vars.base}', `offset: ${written}`));
    assert.throws(
      () => loadPipeline(file),
      (err: Error) => {
        assert.match(err.message, new RegExp(`p\\.yaml:\\d+:\\d+: stages\\.train\\.with\\.offset: ${written.replace(/\./g, '\\.')} is not a finite number`));
        return true;
      },
    );
  }
  const file = box.write('ok.yaml', TOY_PIPELINE);
  assert.throws(() => loadPipeline(file, { sets: ['train.with.offset=.inf'] }), /--set train\.with\.offset=\.inf: Infinity is not a finite number/);
  assert.throws(() => loadPipeline(file, { sets: ['train.with.offset={a: [1, .nan]}'] }), /a\.1: NaN is not a finite number/);
  // Through the CLI: a located error, exit 2, nothing runs (the issue: `lr: .inf` passed `status`).
  const bad = box.write('bad.yaml', TOY_PIPELINE.replace('offset: ${vars.base}', 'offset: 1e400'));
  const status = await box.cli(['status', bad]);
  assert.equal(status.code, 2, status.stdout + status.stderr);
  assert.match(status.stderr, /bad\.yaml:\d+:\d+: stages\.train\.with\.offset: 1e400 is not a finite number/);
});
