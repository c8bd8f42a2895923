#!/usr/bin/env node
// Builds medpipe's native kernels (native/src/*.cc -> native/build/medpipe_native.node)
// at `npm install` time with the machine's C++ compiler. It NEVER fails the install: on any
// problem it prints one line and exits 0, and medpipe runs on the pure-wasm path.
//
// Order: g++ (or $CXX) directly against the headers of the running Node (no download; one
// compiler process per source, as many as there are cores, then a link), then
// node-gyp with binding.gyp (npm's bundled copy) if those headers are absent. The list of
// sources is binding.gyp's (JSON), for both.
// MEDPIPE_NATIVE=0 skips the build.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const outDir = join(here, 'build');
const out = join(outDir, 'medpipe_native.node');

function done(msg) {
  console.log(`medpipe native kernels: ${msg}`);
  process.exit(0);
}

function sources() {
  const gyp = JSON.parse(readFileSync(join(here, 'binding.gyp'), 'utf8'));
  return gyp.targets[0].sources.map((s) => join(here, s));
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
      resolve(code === 0 ? undefined : (stderr.trim().split('\n')[0] || `exit ${code ?? signal}`));
    });
  });
}

async function compileAndLink(cxx, include, outFile) {
  const objDir = join(outDir, `obj-${process.pid}`);
  mkdirSync(objDir, { recursive: true });
  try {
    const flags = ['-O3', '-ffp-contract=off', '-fno-math-errno', '-std=c++17', '-fPIC', '-pthread', '-fvisibility=hidden', '-DNODE_GYP_MODULE_NAME=medpipe_native', `-I${include}`];
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
    if (failure !== undefined) return failure;
    const link = ['-shared', '-pthread', '-o', outFile, ...objects];
    if (process.platform === 'darwin') link.push('-undefined', 'dynamic_lookup');
    return await run(cxx, link);
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
  if (existsSync(join(include, 'node_api.h'))) {
    const cxx = process.env.CXX || 'g++';
    const r = await compileAndLink(cxx, include, tmp);
    if (r === undefined) how = cxx;
    else err = `${cxx} failed: ${r}`;
  } else err = `no Node headers at ${include}`;
  if (!how) {
    const gyp = process.env.npm_config_node_gyp;
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
  done(`built with ${how} (${isa})`);
} catch (e) {
  done(`not built (${e instanceof Error ? e.message.split('\n')[0] : String(e)}); the wasm path will be used`);
}
