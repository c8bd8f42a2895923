#!/usr/bin/env node
// Builds medpipe's native kernels (native/src/*.cc -> native/build/medpipe_native.node)
// at `npm install` time with the machine's C++ compiler. It NEVER fails the install: on any
// problem it prints one line and exits 0, and medpipe runs on the pure-wasm path.
//
// Order: g++ (or $CXX) directly against the headers of the running Node (no download; one
// compiler process per source, as many as there are cores, then a link), then
// node-gyp with binding.gyp (npm's bundled copy) if those headers are absent. The list of
// sources is binding.gyp's (JSON), for both.
// A per-ISA kernel whose target the compiler lacks (AMX needs g++ >= 11) is left out, not
// the whole build: one tiny test compile per such file first, and on failure that file is
// compiled with MEDPIPE_NO_<ISA> (same symbols, reporting "not built"; the runtime then picks
// the next kernel) and the build line says which kernel is missing and why (the target, and
// the compiler's error line from the test compile).
// MEDPIPE_NATIVE=0 skips the build; MEDPIPE_NATIVE_OUT=<dir> builds into <dir> instead of
// native/build (the tests' builds with a stand-in compiler).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
// Absolute: the smoke test require()s the file, and a bare relative path names a package.
const outDir = process.env.MEDPIPE_NATIVE_OUT ? resolve(process.env.MEDPIPE_NATIVE_OUT) : join(here, 'build');
const out = join(outDir, 'medpipe_native.node');

function done(msg) {
  console.log(`medpipe native kernels: ${msg}`);
  process.exit(0);
}

function sources() {
  const gyp = JSON.parse(readFileSync(join(here, 'binding.gyp'), 'utf8'));
  return gyp.targets[0].sources.map((s) => join(here, s));
}

// The line of a compiler's stderr that says what went wrong: the first naming an error (g++
// opens with context such as "x.cc: In function 'void f()':"), else the first non-blank one;
// trimmed, and cut at 200 characters (a C++ error can run to thousands).
function firstError(stderr) {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const line = lines.find((l) => /\berror\b/i.test(l)) ?? lines[0];
  return line !== undefined && line.length > 200 ? `${line.slice(0, 199)}…` : line;
}

// One process per source, as many at once as there are cores (a loaded machine compiles 13
// files one after another for minutes), then one link. Resolves undefined, or the first error.
function run(cmd, args) {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), 900000);
    p.on('error', (e) => { clearTimeout(timer); resolve(e.message); });
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve(code === 0 ? undefined : (firstError(stderr) ?? `exit ${code ?? signal}`));
    });
  });
}

// What each optional kernel's file needs of the compiler (its target attribute and the
// intrinsics it calls), the define that leaves it out, and the target named when it is missing.
const probes = [
  {
    kernel: 'AMX', define: 'MEDPIPE_NO_AMX', target: 'amx-tile',
    code: `#include <immintrin.h>
__attribute__((target("amx-tile,amx-bf16"))) void f(const void* cfg, const void* a, float* c) {
  _tile_loadconfig(cfg); _tile_zero(0); _tile_loadd(4, a, 64); _tile_loadd(6, a, 64);
  _tile_dpbf16ps(0, 4, 6); _tile_stored(0, c, 64); _tile_release();
}
`,
  },
  {
    kernel: 'avx512bf16', define: 'MEDPIPE_NO_AVX512BF16', target: 'avx512bf16',
    code: `#include <immintrin.h>
__attribute__((target("avx512f,avx512bf16"))) __m512 f(__m512 c, __m512i a, __m512i b) {
  return _mm512_dpbf16_ps(c, (__m512bh)a, (__m512bh)b);
}
bool g() { __builtin_cpu_init(); return __builtin_cpu_supports("avx512bf16"); }
`,
  },
];

// The probes that fail with this compiler (x86-64 only: elsewhere those files compile to
// nothing), each with the compiler's error line (`why`), the build directory's path cut from it.
async function missingTargets(cxx, flags, objDir) {
  if (process.arch !== 'x64') return [];
  const results = await Promise.all(probes.map((p, i) => {
    const src = join(objDir, `probe-${i}.cc`);
    writeFileSync(src, p.code);
    return run(cxx, [...flags, '-c', src, '-o', join(objDir, `probe-${i}.o`)]);
  }));
  return probes.flatMap((p, i) => (results[i] === undefined ? [] : [{ ...p, why: results[i].split(`${objDir}/`).join('') }]));
}

// Resolves { error } (the first failure) or { missing } (the kernels left out).
async function compileAndLink(cxx, include, outFile) {
  const objDir = join(outDir, `obj-${process.pid}`);
  mkdirSync(objDir, { recursive: true });
  try {
    const flags = ['-O3', '-ffp-contract=off', '-fno-math-errno', '-std=c++17', '-fPIC', '-pthread', '-fvisibility=hidden', '-DNODE_GYP_MODULE_NAME=medpipe_native', `-I${include}`];
    const missing = await missingTargets(cxx, flags, objDir);
    // Every file gets the defines: gemm.cc's CPU check names the ISA too.
    flags.push(...missing.map((p) => `-D${p.define}`));
    const queue = sources().map((src) => [src, join(objDir, basename(src).replace(/\.cc$/, '.o'))]);
    const objects = queue.map(([, o]) => o);
    let failure;
    const worker = async () => {
      for (let job = queue.shift(); job && failure === undefined; job = queue.shift()) {
        const e = await run(cxx, [...flags, '-c', job[0], '-o', job[1]]);
        if (e !== undefined) failure ??= `${basename(job[0])}: ${e}`;
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, availableParallelism()) }, worker));
    if (failure !== undefined) return { error: failure };
    const link = ['-shared', '-pthread', '-o', outFile, ...objects];
    if (process.platform === 'darwin') link.push('-undefined', 'dynamic_lookup');
    const error = await run(cxx, link);
    return error === undefined ? { missing } : { error };
  } finally {
    rmSync(objDir, { recursive: true, force: true });
  }
}

function smokeTest(file) {
  const r = spawnSync(process.execPath, ['-e', `const m = require(${JSON.stringify(file)}); const i = m.info(); if (!i.isa || !Array.isArray(m.ops)) process.exit(1); console.log(i.isa + (i.bf16 ? ' + bf16 on ' + (i.bf16Kernel || 'avx512bf16') : ''))`], { encoding: 'utf8', timeout: 30000 });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

try {
  if (process.env.MEDPIPE_NATIVE === '0') done('skipped (MEDPIPE_NATIVE=0); the wasm path will be used');
  mkdirSync(outDir, { recursive: true });
  const tmp = join(outDir, `medpipe_native.tmp-${process.pid}.node`);
  const include = join(dirname(dirname(process.execPath)), 'include', 'node');
  let how = '';
  let err = '';
  let notBuilt = '';
  if (existsSync(join(include, 'node_api.h'))) {
    const cxx = process.env.CXX || 'g++';
    const r = await compileAndLink(cxx, include, tmp);
    if (r.error === undefined) {
      how = cxx;
      notBuilt = r.missing.map((p) => ` (${p.kernel} kernel not built: ${cxx} lacks ${p.target}: ${p.why})`).join('');
    } else err = `${cxx} failed: ${r.error}`;
  } else err = `no Node headers at ${include}`;
  if (!how) {
    // node-gyp builds in (and its clean step empties) native/build, whatever MEDPIPE_NATIVE_OUT says.
    const gyp = process.env.MEDPIPE_NATIVE_OUT ? undefined : process.env.npm_config_node_gyp;
    if (gyp && existsSync(gyp)) {
      const r = spawnSync(process.execPath, [gyp, 'rebuild'], { cwd: here, encoding: 'utf8', timeout: 600000 });
      const built = join(here, 'build', 'Release', 'medpipe_native.node');
      if (r.status === 0 && existsSync(built)) {
        renameSync(built, tmp);
        how = 'node-gyp';
      } else err += `; node-gyp failed: ${(r.stderr ?? '').trim().split('\n').pop()}`;
    }
  }
  if (!how) done(`not built (${err}); the wasm path will be used`);
  const isa = smokeTest(tmp);
  if (!isa) {
    rmSync(tmp, { force: true });
    done('built but failed to load; the wasm path will be used');
  }
  renameSync(tmp, out);
  done(`built with ${how} (${isa})${notBuilt}`);
} catch (e) {
  done(`not built (${e instanceof Error ? e.message.split('\n')[0] : String(e)}); the wasm path will be used`);
}
