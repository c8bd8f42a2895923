// Every number says how it was made: a node's manifest names the medpipe version, the git
// commit of the pipeline's repository and whether its tracked files were changed, and the
// native kernels' ISA and thread count.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { REPO, sandbox } from './support/toy.js';

const pipeline = (value: number) => `
name: prov
plugins: [$TOY]
stages:
  src:
    uses: emit
    with: {value: ${value}}
`;

interface Shown {
  provenance: { versions: Record<string, string>; repository?: { commit: string; dirty: boolean } | null };
}

test("a manifest records medpipe's version and the pipeline repository's commit, clean or dirty", async (t) => {
  try {
    execFileSync('git', ['--version'], { stdio: 'ignore' });
  } catch {
    t.skip('git is not installed');
    return;
  }
  const box = sandbox();
  const git = (...args: string[]) => execFileSync('git', ['-C', box.dir, '-c', 'user.name=t', '-c', 'user.email=t@example.org', ...args], { encoding: 'utf8' }).trim();
  git('init', '-q');
  const file = box.write('p.yaml', pipeline(1));
  git('add', 'p.yaml');
  git('commit', '-qm', 'pipeline');
  const head = git('rev-parse', 'HEAD');

  assert.equal((await box.cli(['run', file])).code, 0);
  const clean = (await box.show(file, 'src')) as unknown as Shown;
  const version = (JSON.parse(readFileSync(`${REPO}/package.json`, 'utf8')) as { version: string }).version;
  assert.equal(clean.provenance.versions['medpipe'], version);
  assert.deepEqual(clean.provenance.repository, { commit: head, dirty: false }, 'the cache (untracked) does not make the tree dirty');

  box.write('p.yaml', pipeline(2));
  assert.equal((await box.cli(['run', file])).code, 0);
  const dirty = (await box.show(file, 'src')) as unknown as Shown;
  assert.deepEqual(dirty.provenance.repository, { commit: head, dirty: true }, 'an edited tracked pipeline file');
});

test('the engine provenance of a training stage names the native kernels and their ISA and threads', async (t) => {
  const { activateEngine } = await import('../src/engine/activate.js');
  const { nativeStatus } = await import('../src/engine/native.js');
  const seen: Record<string, unknown>[] = [];
  const { engine } = await activateEngine('wasm', (info) => void seen.push(info));
  const recorded = (seen[0]!['engine'] as { details: Record<string, unknown>; threads: number });
  assert.equal(recorded.threads, engine.threads);
  if (!nativeStatus().startsWith('loaded')) {
    t.skip(`native kernels not in use: ${nativeStatus()}`);
    return;
  }
  assert.match(String(recorded.details['nativeIsa']), /^(avx512|avx2|c)$/, 'the GEMM kernel the addon picked (c: portable)');
  assert.ok(Number(recorded.details['nativeThreads']) >= 1);
});
