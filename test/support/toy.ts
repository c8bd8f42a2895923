import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadKinds, type Registry } from '../../src/registry.js';

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const TOY_MODULE = fileURLToPath(new URL('../fixtures/toy-stages.js', import.meta.url));
export const BIN = join(REPO, 'bin', 'pipeline.js');

export function toyRegistry(): Promise<Registry> {
  return loadKinds([TOY_MODULE]);
}

export interface Sandbox {
  dir: string;
  cache: string;
  runLog: string;
  write(name: string, yaml: string): string;
  /** Node ids executed so far, one entry per execution. */
  runs(): string[];
  cli(args: string[], options?: { env?: Record<string, string> }): Promise<CliResult>;
  /** A node's cached manifest (`pipeline show`); fails when the node is not cached. */
  show(file: string, node: string): Promise<ShownManifest>;
}

export interface ShownManifest {
  key: string;
  outputs: Record<string, { digest: string; value?: unknown }>;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function sandbox(): Sandbox {
  const dir = mkdtempSync(join(tmpdir(), 'medpipe-test-'));
  const cache = join(dir, 'cache');
  const runLog = join(dir, 'runs.log');
  return {
    dir,
    cache,
    runLog,
    write(name, yaml) {
      const path = join(dir, name);
      writeFileSync(path, yaml.replace(/\$TOY/g, TOY_MODULE));
      return path;
    },
    runs() {
      return existsSync(runLog) ? readFileSync(runLog, 'utf8').split('\n').filter(Boolean) : [];
    },
    cli(args, options = {}) {
      return runCli(args, { cwd: dir, env: { MEDPIPE_CACHE: cache, TOY_RUN_LOG: runLog, ...options.env } });
    },
    async show(file, node) {
      const r = await this.cli(['show', file, node, '--json']);
      if (r.code !== 0) throw new Error(`pipeline show ${node} exited ${r.code}:\n${r.stdout}${r.stderr}`);
      return JSON.parse(r.stdout) as ShownManifest;
    },
  };
}

/**
 * The data stages of the ML end-to-end tests: a tiny synthetic APTOS, preprocessed to 32 px
 * and split (stratified). Append the stages under test.
 */
export function tinyAptos(name: string, options: { count: number; seed: number }): string {
  return `
name: ${name}
stages:
  synthesize:
    uses: synthesize
    with: {dataset: aptos2019, count: ${options.count}, size: 40, seed: ${options.seed}}
  preprocess:
    uses: preprocess
    inputs: {source: synthesize.dataset}
    with: {format: aptos2019, size: 32}
  split:
    uses: split
    inputs: {records: preprocess.records}
`;
}

export function runCli(args: string[], options: { cwd: string; env: Record<string, string> }): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd, env: { ...process.env, CI: 'true', ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A file and a record-set output (`make`) read by one consumer (`read`): the artifact round trip. */
export function blobsPipeline(text: string): string {
  return `
name: blobs
plugins: [$TOY]
stages:
  make:
    uses: blob
    with: {text: ${JSON.stringify(text)}}
  read:
    uses: readblob
    inputs: {file: make.file, records: make.records}
`;
}

/** A small pipeline over two axes: src(seed) -> train(model, seed) -> total. */
export const TOY_PIPELINE = `
name: toy
plugins: [$TOY]
axes:
  seed: [1, 2]
  model: {resnet: ResNet50, deit: DeiT-S}
vars:
  base: 10
stages:
  src:
    uses: emit
    matrix: [seed]
    with:
      value: \${seed}
  train:
    uses: add
    matrix: [model, seed]
    inputs:
      a: src.out
    with:
      tag: \${model}
      offset: \${vars.base}
  total:
    uses: collect
    inputs:
      items: train.out
table:
  stage: train
  value: out.value
  rows: [model]
  columns: []
  over: seed
`;

/** A directory result (`tree`) read by the node after it (`readtree`). */
export const TREE_PIPELINE = `
name: trees
plugins: [$TOY]
stages:
  make: {uses: tree, with: {text: hello}}
  read: {uses: readtree, inputs: {dir: make.dir}}
`;

/** The reduced demo (pipelines/table1-demo.yaml, every data set, one seed, tiny sets, one
 *  epoch per training stage, DINO without its warm-up so its one step learns), as
 *  `pipeline run` arguments: the slow end-to-end tests' one definition of it. */
export const REDUCED_DEMO_ARGS: string[] = [
  'axes.seed=[1]',
  'vars.images={aptos2019: 60, isic2019: 64, cbis_ddsm: 60}',
  'synthesize_proxy.with.count=100',
  'pretrain.with.epochs=1',
  'dino.with.epochs=1',
  'dino.with.warmup_epochs=0',
  'finetune.with.epochs=1',
].flatMap((s) => ['--set', s]);
