// [slow] native/build.mjs with a compiler that lacks the AMX target (g++ < 11 rejects
// target("amx-tile")): the build must still produce the addon, without the AMX kernel, say so
// on its one line, and the addon must report no AMX (the bf16 GEMMs then run on vdpbf16ps).
// One full build (a minute or two of CPU on a loaded machine) into a temporary directory via
// MEDPIPE_NATIVE_OUT, so native/build is not touched. Skipped without g++ or Node's headers.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { REPO } from './support/toy.js';

const include = join(dirname(dirname(process.execPath)), 'include', 'node');
const skip = process.platform !== 'linux' || process.arch !== 'x64'
  ? 'the stand-in compiler is a shell script around g++ on x86-64 Linux'
  : spawnSync('g++', ['--version']).status !== 0
    ? 'no g++'
    : !existsSync(join(include, 'node_api.h')) ? `no Node headers at ${include}` : false;
if (skip) console.log(`# native-build: SKIPPED — ${skip}`);

// g++ as it would be without AMX support: any source that names the amx-tile target is
// rejected (the probe, and ukr_amx.cc unless it is compiled with MEDPIPE_NO_AMX) with g++'s
// two lines, the function's context then the error; every call is logged so that the test
// sees the probe was what failed.
const WRAPPER = `#!/bin/sh
echo "$*" >> "$(dirname "$0")/calls.log"
for a; do case "$a" in -DMEDPIPE_NO_AMX) exec g++ "$@";; esac; done
for a; do
  case "$a" in
    *.cc) if grep -q 'amx-tile' "$a"; then
      echo "$a: In function 'void f(const void*, const void*, float*)':" >&2
      echo "$a:2:62: error: attribute(target(\\"amx-tile,amx-bf16\\")) is unknown" >&2
      exit 1
    fi;;
  esac
done
exec g++ "$@"
`;

function runBuild(env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [join(REPO, 'native', 'build.mjs')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, out }));
  });
}

interface Info { isa: string; bf16: boolean; bf16Kernel: string; amxBuilt: boolean; avx512bf16Built: boolean }

// The addon's info() in a fresh process (the bf16 kernel is picked once, at load).
function infoOf(file: string, bf16Force?: string): Info {
  const env = { ...process.env };
  delete env.MEDPIPE_NATIVE_ISA; // the build's own kernel choice, whatever the suite runs under
  if (bf16Force === undefined) delete env.MEDPIPE_NATIVE_BF16;
  else env.MEDPIPE_NATIVE_BF16 = bf16Force;
  const r = spawnSync(process.execPath, ['-e', `const m = require(${JSON.stringify(file)}); if (!Array.isArray(m.ops)) process.exit(2); console.log(JSON.stringify(m.info()))`], { env, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Info;
}

test('[slow] native build with a compiler lacking amx-tile: built without the AMX kernel, said so with the compiler\'s error, info() reports no AMX', { skip, timeout: 1_200_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'medpipe-native-build-'));
  try {
    const cxx = join(dir, 'g++-no-amx');
    writeFileSync(cxx, WRAPPER);
    chmodSync(cxx, 0o755);
    const outDir = join(dir, 'out');
    const repoAddon = join(REPO, 'native', 'build', 'medpipe_native.node');
    const before = existsSync(repoAddon) ? statSync(repoAddon).mtimeMs : undefined;
    const env: NodeJS.ProcessEnv = { ...process.env, CXX: cxx, MEDPIPE_NATIVE_OUT: outDir };
    delete env.MEDPIPE_NATIVE;
    delete env.MEDPIPE_NATIVE_ISA;
    const { code, out } = await runBuild(env);
    assert.equal(code, 0, out);
    // The compiler's error line (not its context line), the probe's directory cut from it.
    assert.match(out, /^medpipe native kernels: built with \S*g\+\+-no-amx \([^)]*\) \(AMX kernel not built: \S*g\+\+-no-amx lacks amx-tile: probe-0\.cc:2:62: error: attribute\(target\("amx-tile,amx-bf16"\)\) is unknown\)$/m, out);
    assert.doesNotMatch(out, /avx512bf16 kernel not built/, 'this g++ has avx512bf16: only AMX is left out');
    const calls = readFileSync(join(dir, 'calls.log'), 'utf8').split('\n');
    assert.ok(calls.some((c) => /probe-\d+\.cc/.test(c) && !c.includes('-DMEDPIPE_NO_AMX')), 'the probe ran first');
    assert.ok(calls.some((c) => c.includes('ukr_amx.cc') && c.includes('-DMEDPIPE_NO_AMX')), 'ukr_amx.cc compiled without its tile code');

    const file = join(outDir, 'medpipe_native.node');
    assert.ok(existsSync(file), `${file} built`);
    assert.equal(existsSync(repoAddon) ? statSync(repoAddon).mtimeMs : undefined, before, 'native/build left alone');
    const info = infoOf(file);
    assert.equal(info.amxBuilt, false);
    assert.equal(info.avx512bf16Built, true);
    assert.notEqual(info.bf16Kernel, 'amx');
    // Forcing AMX finds none (no bf16 at all), not a crash on a tile instruction.
    const forced = infoOf(file, 'amx');
    assert.equal(forced.bf16, false);
    assert.equal(forced.bf16Kernel, '');
    // Where the CPU has AVX512_BF16 the bf16 GEMMs still run, on vdpbf16ps.
    const cpuBf16 = /\bavx512_bf16\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
    if (cpuBf16) assert.equal(info.bf16Kernel, 'avx512bf16');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
