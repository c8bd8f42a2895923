#!/usr/bin/env node
// Builds medpipe's native kernels (native/src/*.cc -> native/build/medpipe_native.node)
// at `npm install` time with the machine's C++ compiler. It NEVER fails the install: on any
// problem it prints one line and exits 0, and medpipe runs on the pure-wasm path.
//
// Order: g++ (or $CXX) directly against the headers of the running Node (no download), then
// node-gyp with binding.gyp (npm's bundled copy) if those headers are absent. The list of
// sources is binding.gyp's (JSON), for both.
// MEDPIPE_NATIVE=0 skips the build.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
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

function smokeTest(file) {
  const r = spawnSync(process.execPath, ['-e', `const m = require(${JSON.stringify(file)}); const i = m.info(); if (!i.isa || !Array.isArray(m.ops)) process.exit(1); console.log(i.isa + (i.bf16 ? ' + bf16' : ''))`], { encoding: 'utf8', timeout: 30000 });
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
    const args = ['-O3', '-ffp-contract=off', '-std=c++17', '-shared', '-fPIC', '-pthread', '-fvisibility=hidden',
      '-DNODE_GYP_MODULE_NAME=medpipe_native', `-I${include}`, '-o', tmp, ...sources()];
    if (process.platform === 'darwin') args.push('-undefined', 'dynamic_lookup');
    const r = spawnSync(cxx, args, { encoding: 'utf8', timeout: 300000 });
    if (r.status === 0 && existsSync(tmp)) how = cxx;
    else err = `${cxx} failed: ${(r.error?.message ?? r.stderr ?? '').trim().split('\n')[0]}`;
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
