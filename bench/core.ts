// Framework overheads: cached no-op run of a 1,000-node pipeline end to end, planning time,
// store throughput. Printed, never asserted.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expandPipeline } from '../src/config/expand.js';
import { loadPipeline } from '../src/config/load.js';
import { buildDag } from '../src/graph/dag.js';
import { selectNodes } from '../src/graph/select.js';
import { loadKinds } from '../src/registry.js';
import { Store } from '../src/store/store.js';
import { childrenCpuSeconds, fmt, summary, time } from './stats.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const TOY = fileURLToPath(new URL('../test/fixtures/toy-stages.js', import.meta.url));
const BIN = join(REPO, 'bin', 'pipeline.js');

/** 10 sources x 3 axes of 10: 10 + 990 = 1,000 nodes, each consumer reading its matching source. */
export function thousandNodePipeline(): string {
  return `
name: bench1000
plugins: [${TOY}]
axes:
  a: [${[...Array(10).keys()].join(', ')}]
  b: [${[...Array(11).keys()].join(', ')}]
  c: [${[...Array(9).keys()].join(', ')}]
stages:
  src:
    uses: emit
    matrix: [a]
    with: {value: "\${a}"}
  work:
    uses: add
    matrix: [a, b, c]
    inputs: {a: src.out}
    with: {tag: "\${b}-\${c}"}
`;
}

/** Wall seconds, and CPU seconds (user + sys) of the command's whole process tree where known. */
function measured<T>(fn: () => T): { value: T; seconds: number; cpu?: number } {
  const c0 = childrenCpuSeconds();
  const t0 = process.hrtime.bigint();
  const value = fn();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const c1 = childrenCpuSeconds();
  return { value, seconds, ...(c0 !== undefined && c1 !== undefined ? { cpu: c1 - c0 } : {}) };
}

function cli(args: string[], cwd: string, cache: string, env: Record<string, string> = {}): { seconds: number; cpu?: number; code: number | null; out: string } {
  const { value: r, ...took } = measured(() => spawnSync(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, CI: 'true', MEDPIPE_CACHE: cache, ...env }, encoding: 'utf8' }));
  return { ...took, code: r.status, out: r.stdout + r.stderr };
}

/**
 * The same DAG as thousandNodePipeline for Snakemake (10 sources, 990 jobs reading their
 * source), one `sh` job each, --cores = this machine's: the per-job cost Snakemake pays.
 */
function snakemakeCold(dir: string): { seconds: number; cpu?: number; version: string } | undefined {
  const version = spawnSync('snakemake', ['--version'], { encoding: 'utf8' });
  if (version.status !== 0) return undefined;
  const work = dir;
  mkdirSync(work, { recursive: true });
  writeFileSync(
    join(work, 'Snakefile'),
    `A = range(10)
B = range(11)
C = range(9)
rule all:
    input: expand("work/{a}_{b}_{c}.json", a=A, b=B, c=C)
rule src:
    output: "src/{a}.json"
    shell: "echo '{{\\"value\\": {wildcards.a}}}' > {output}"
rule work:
    input: "src/{a}.json"
    output: "work/{a}_{b}_{c}.json"
    shell: "cat {input} > {output}"
`,
  );
  const { value: r, ...took } = measured(() => spawnSync('snakemake', ['--cores', String(cpus().length), '--quiet'], { cwd: work, encoding: 'utf8' }));
  if (r.status !== 0) throw new Error(`snakemake failed:\n${r.stdout}${r.stderr}`);
  return { ...took, version: version.stdout.trim() };
}

export async function benchCore(log: (line: string) => void): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'medpipe-bench-'));
  const cache = join(dir, 'cache');
  const file = join(dir, 'bench1000.yaml');
  writeFileSync(file, thousandNodePipeline());

  const registry = await loadKinds([TOY]);
  const plans: number[] = [];
  for (let i = 0; i < 7; i++) {
    const [, s] = await time(() => {
      const spec = loadPipeline(file);
      const p = expandPipeline(spec, registry);
      const dag = buildDag(p);
      return selectNodes(p, dag, {});
    });
    plans.push(s);
  }
  log(`planning (load + expand + validate + DAG) of 1,000 nodes: median ${fmt(summary(plans).median)} (min ${fmt(summary(plans).min)}, n=${plans.length})`);

  // Cold runs alternate with Snakemake's, each on a fresh cache, so both see the same load.
  const colds: number[] = [];
  const snakes: number[] = [];
  const coldCpu: number[] = [];
  const snakeCpu: number[] = [];
  let snakeVersion: string | undefined;
  for (let i = 0; i < 3; i++) {
    const c = i === 0 ? cache : join(dir, `cache-cold-${i}`);
    const cold = cli(['run', file, '--plain'], dir, c);
    if (cold.code !== 0) throw new Error(`cold run failed:\n${cold.out.slice(-3000)}`);
    colds.push(cold.seconds);
    if (cold.cpu !== undefined) coldCpu.push(cold.cpu);
    const snake = snakemakeCold(join(dir, `snakemake-${i}`));
    if (snake) {
      snakes.push(snake.seconds);
      if (snake.cpu !== undefined) snakeCpu.push(snake.cpu);
      snakeVersion = snake.version;
    }
  }
  const cs = summary(colds);
  log(`cold run of 1,000 toy nodes (persistent workers, --jobs = cores): median ${fmt(cs.median)} = ${fmt(cs.median / 1000)} per node (min ${fmt(cs.min)}, max ${fmt(cs.max)}, n=${cs.n})`);
  if (snakes.length === 0) log('  snakemake: not installed (apt-get install snakemake), no side-by-side');
  else {
    const ss = summary(snakes);
    log(`  snakemake ${snakeVersion}, 1,000 shell jobs of the same shape, --cores = cores: median ${fmt(ss.median)} = ${fmt(ss.median / 1000)} per job (min ${fmt(ss.min)}, max ${fmt(ss.max)}); medpipe/snakemake ${(cs.median / ss.median).toFixed(2)}x`);
    if (coldCpu.length === colds.length && snakeCpu.length === snakes.length) {
      const mc = summary(coldCpu).median;
      const sc = summary(snakeCpu).median;
      log(`  CPU time (user + sys, whole process tree), medians: medpipe ${fmt(mc)} = ${fmt(mc / 1000)} per node, snakemake ${fmt(sc)} = ${fmt(sc / 1000)} per job; medpipe/snakemake ${(mc / sc).toFixed(2)}x`);
    }
  }
  const noops: number[] = [];
  const noopCpu: number[] = [];
  const helps: number[] = [];
  const helpCpu: number[] = [];
  for (let i = 0; i < 5; i++) {
    const r = cli(['run', file], dir, cache);
    if (!/1000 cached/.test(r.out)) throw new Error(`no-op run was not a no-op:\n${r.out}`);
    noops.push(r.seconds);
    if (r.cpu !== undefined) noopCpu.push(r.cpu);
    const help = cli(['--help'], dir, cache);
    helps.push(help.seconds);
    if (help.cpu !== undefined) helpCpu.push(help.cpu);
  }
  const s = summary(noops);
  const cpuOf = (xs: number[]) => (xs.length > 0 ? `, CPU ${fmt(summary(xs).median)}` : '');
  log(`cached no-op \`pipeline run\` of 1,000 nodes, end to end: median ${fmt(s.median)}${cpuOf(noopCpu)} (min ${fmt(s.min)}, max ${fmt(s.max)}, n=${s.n}; goal < 1 s)`);
  log(`  of which process start + CLI load (\`pipeline --help\`): median ${fmt(summary(helps).median)}${cpuOf(helpCpu)}`);

  const store = new Store(join(dir, 'store-bench'));
  const n = 2000;
  const record = randomBytes(64 * 1024);
  const [, wsec] = await time(() =>
    store.records.write(
      () => ({ shape: [n] }),
      async (w) => {
        for (let i = 0; i < n; i++) await w.append({ data: record, meta: { i } });
      },
    ),
  );
  const sets = store.records.setIds();
  const reader = store.records.reader(sets[0]!, 'bench');
  const [, rsec] = await time(() => {
    let bytes = 0;
    for (const r of reader.iterate()) bytes += r.data.length;
    return bytes;
  });
  const mb = (n * record.length) / 2 ** 20;
  log(`record sets (64 KiB records): write ${(n / wsec).toFixed(0)} records/s (${(mb / wsec).toFixed(0)} MiB/s), read ${(n / rsec).toFixed(0)} records/s (${(mb / rsec).toFixed(0)} MiB/s)`);
  const blobPath = join(dir, 'blob.bin');
  writeFileSync(blobPath, randomBytes(64 * 2 ** 20));
  const [, bsec] = await time(() => store.blobs.put(blobPath, { move: true }));
  log(`blob put (64 MiB, hash + rename): ${(64 / bsec).toFixed(0)} MiB/s`);
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
