// `npm run demo:table`: runs pipelines/table1-demo.yaml cold (a fresh cache and data directory
// under the system's temp dir), then writes its table, the machine and the timings into the
// README's demo section. Extra arguments go to `pipeline run` (e.g. --set ... for a trial).
//   npm run demo:table            # rewrites README.md
//   npm run demo:table -- --dry   # prints the section only
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nativeStatus } from '../src/engine/native.js';
import { demoSection, replaceSection, type Machine } from './demo-section.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(REPO, 'bin', 'pipeline.js');
const DEMO = 'pipelines/table1-demo.yaml';

/** CPU seconds of this process's waited-for descendants (Linux /proc; null elsewhere). */
function childCpuSeconds(): number | null {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 16 and 17 of stat(5) (cutime, cstime) are at 13 and 14 after the command name.
    const ticks = Number(fields[13]) + Number(fields[14]);
    const hz = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    return ticks / hz;
  } catch {
    return null;
  }
}

function git(...args: string[]): string | null {
  try {
    return execFileSync('git', ['-C', REPO, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

function run(args: string[], env: NodeJS.ProcessEnv, echo: boolean): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (echo) process.stdout.write(d);
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout }));
  });
}

const argv = process.argv.slice(2);
const dry = argv.includes('--dry');
const extra = argv.filter((a) => a !== '--dry');
const dir = mkdtempSync(join(tmpdir(), 'medpipe-demo-table-'));
const env = { ...process.env, MEDPIPE_CACHE: join(dir, 'cache') };
// Synthesized data sets are directory outputs inside the cache: nothing outside it to set.
const data: string[] = [];
const machine: Machine = {
  cpu: cpus()[0]?.model.trim() ?? 'unknown CPU',
  cores: availableParallelism(),
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  native: nativeStatus(),
  node: process.version,
  load: loadavg()[0]!,
};
const cpuBefore = childCpuSeconds();
const started = Date.now();
const r = await run(['run', DEMO, '--plain', ...data, ...extra], env, true);
const wallSeconds = (Date.now() - started) / 1000;
const cpuAfter = childCpuSeconds();
if (r.code !== 0) {
  console.error(`demo:table: the run failed (exit ${r.code}); the cache is kept at ${dir}`);
  process.exit(1);
}
const shown = await run(['show', DEMO, 'report', '-o', 'markdown', ...data, ...extra], env, false);
if (shown.code !== 0) throw new Error('demo:table: `pipeline show report -o markdown` failed');
const section = demoSection({
  table: shown.stdout,
  machine,
  wallSeconds,
  cpuSeconds: cpuBefore === null || cpuAfter === null ? null : cpuAfter - cpuBefore,
  commit: git('rev-parse', 'HEAD'),
  dirty: (git('status', '--porcelain', '--untracked-files=no') ?? '') !== '',
  date: new Date(started).toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
  command: ['npx pipeline run', DEMO, ...extra].join(' '),
});
rmSync(dir, { recursive: true, force: true });
if (dry) {
  console.log(section);
} else {
  const readme = join(REPO, 'README.md');
  writeFileSync(readme, replaceSection(readFileSync(readme, 'utf8'), section));
  console.log(`\nREADME.md: demo section rewritten\n${section}`);
}
