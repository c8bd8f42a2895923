// The s3:// backend through the AWS SDK against test/support's S3 server (path style, with
// conditional PUT): no S3-compatible server is packaged for Debian 12, see .ci/services.sh.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { startS3Server, type TestServer } from './support/remote-servers.js';
import { sandbox, TOY_PIPELINE } from './support/toy.js';

const servers: TestServer[] = [];
after(() => Promise.all(servers.map((s) => s.close())));

const SLOW = TOY_PIPELINE.replace('      offset: ${vars.base}', '      offset: ${vars.base}\n      sleep_ms: 300');
const credentials = { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_REGION: 'us-east-1' };

test("s3: B gets A's results; two runners together compute each node once", async () => {
  const server = await startS3Server('lab');
  servers.push(server);
  const env = { ...credentials, MEDPIPE_S3_ENDPOINT: server.url };
  const [a, b] = [sandbox(), sandbox()];
  const first = await a.cli(['run', a.write('p.yaml', TOY_PIPELINE), '--remote', 's3://lab/medpipe'], { env });
  assert.equal(first.code, 0, first.stdout + first.stderr);
  assert.ok(server.log.some((l) => l.startsWith('PUT /lab/medpipe/ac/')), 'manifests went to the bucket under the prefix');
  const second = await b.cli(['run', b.write('p.yaml', TOY_PIPELINE), '--remote', 's3://lab/medpipe'], { env });
  assert.equal(second.code, 0, second.stdout + second.stderr);
  assert.match(second.stdout, /7 cached/);
  assert.deepEqual(b.runs(), []);

  const [c, d] = [sandbox(), sandbox()];
  const shared = { ...env, MEDPIPE_REMOTE: 's3://lab/other', TOY_RUN_LOG: c.runLog };
  const [rc, rd] = await Promise.all([c.cli(['run', c.write('p.yaml', SLOW)], { env: shared }), d.cli(['run', d.write('p.yaml', SLOW)], { env: shared })]);
  assert.equal(rc.code, 0, rc.stdout + rc.stderr);
  assert.equal(rd.code, 0, rd.stdout + rd.stderr);
  assert.equal(c.runs().length, 7, c.runs().join(', '));
  assert.equal(new Set(c.runs()).size, 7);
});

test('s3: an unreachable endpoint is a warning and a local run, not a failure', async () => {
  const a = sandbox();
  const r = await a.cli(['run', a.write('p.yaml', TOY_PIPELINE), '--remote', 's3://lab/x?endpoint=http://127.0.0.1:9'], { env: credentials });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stderr, /warning: remote cache unavailable, computing locally/);
  assert.equal(a.runs().length, 7);
});
