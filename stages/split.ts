// split: train/val/test index lists over a preprocessed record set, with per-split class counts.
// Modes: `stratified` (seeded, by ratios), `paper` (the authors' Random(42).shuffle split, index
// for index) and `lists` (fixed lists of record ids, or the split each record carries).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { defineStage, type JSONObject, type JSONValue, type StageContext } from '../src/contract.js';
import { listsSplit, paperSplit, splitCounts, stratifiedSplit, SPLIT_NAMES, type Ratios, type Split, type SplitName } from '../src/data/split.js';

export interface SplitParams {
  mode: 'stratified' | 'paper' | 'lists';
  ratios: Ratios;
  seed: number;
  /** paper mode: fraction held out for val + test (APTOS 0.3, ISIC 0.2). */
  held_out: number;
  /** lists mode: per split, record ids or a text file (relative to the pipeline file) of ids. Omitted: each record's meta.split. */
  lists?: Partial<Record<SplitName, string[] | string>>;
}

const DEFAULTS = { mode: 'stratified' as const, ratios: { train: 0.8, val: 0.1, test: 0.1 }, seed: 42, held_out: 0.2 };

const idList = { oneOf: [{ type: 'array', items: { type: 'string' } }, { type: 'string' }] };

export default defineStage<SplitParams>({
  kind: 'split',
  version: 1,
  description: 'Train/val/test index lists (stratified, the authors\' paper split, or fixed lists) with class counts',
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      mode: { enum: ['stratified', 'paper', 'lists'], default: DEFAULTS.mode },
      ratios: {
        type: 'object',
        additionalProperties: false,
        required: ['train', 'val', 'test'],
        properties: { train: { type: 'number', minimum: 0 }, val: { type: 'number', minimum: 0 }, test: { type: 'number', minimum: 0 } },
        default: DEFAULTS.ratios,
      },
      seed: { type: 'integer', default: DEFAULTS.seed },
      held_out: { type: 'number', minimum: 0, maximum: 1, default: DEFAULTS.held_out },
      lists: {
        type: 'object',
        additionalProperties: false,
        properties: { train: idList, val: idList, test: idList },
      },
    },
  },
  inputs: { records: { type: 'records', description: 'preprocessed records (labels and ids are read from their meta)' } },
  outputs: { split: 'json' },

  async fingerprint(params, ctx) {
    // List files read from disk are key material; inline lists are already in the params.
    const files = Object.values(params.lists ?? {}).filter((v): v is string => typeof v === 'string');
    if (files.length === 0) return null;
    const absolute = files.map((f) => path.resolve(ctx.baseDir, f));
    const digests = await ctx.hashFiles(absolute);
    return Object.fromEntries(files.map((f, i) => [f, digests[absolute[i]] ?? null]));
  },

  async check(params, ctx) {
    const out: string[] = [];
    for (const [name, v] of Object.entries(params.lists ?? {})) {
      if (typeof v !== 'string') continue;
      try {
        await fs.access(path.resolve(ctx.baseDir, v));
      } catch {
        out.push(`split: the ${name} list file ${v} does not exist`);
      }
    }
    return out;
  },

  async run(ctx: StageContext<SplitParams>) {
    const params = { ...DEFAULTS, ...ctx.params };
    const reader = ctx.inputs.records('records');
    const classes = Array.isArray(reader.meta['classes']) ? reader.meta['classes'].map(String) : [];
    const labels: number[] = [];
    const ids: string[] = [];
    const own: (SplitName | undefined)[] = [];
    for (const r of reader.iterate()) {
      labels.push(Number(r.meta['label']));
      ids.push(String(r.meta['id']));
      const s = r.meta['split'];
      own.push(typeof s === 'string' && (SPLIT_NAMES as readonly string[]).includes(s) ? (s as SplitName) : undefined);
    }
    let split: Split;
    const extra: JSONObject = {};
    if (params.mode === 'paper') {
      split = paperSplit(labels.length, params.held_out, params.seed);
    } else if (params.mode === 'stratified') {
      split = stratifiedSplit(labels, params.ratios, params.seed);
    } else if (params.lists === undefined) {
      split = { train: [], val: [], test: [] };
      own.forEach((s, i) => s && split[s].push(i));
      extra['unassigned'] = own.filter((s) => s === undefined).length;
      if (split.train.length === 0) throw new Error('split: mode lists without `lists` needs records whose meta carries split (train/val/test); none do');
    } else {
      const lists = await readLists(params.lists, ctx.baseDir);
      const result = listsSplit(ids, lists);
      if (result.unknown.length > 0 || result.duplicated.length > 0) {
        const parts = [];
        if (result.unknown.length) parts.push(`ids not in the records: ${result.unknown.join(', ')}`);
        if (result.duplicated.length) parts.push(`ids in more than one list: ${result.duplicated.join(', ')}`);
        throw new Error(`split: ${parts.join('; ')}`);
      }
      split = result.split;
      extra['unassigned'] = result.unassigned;
    }
    const counts = splitCounts(split, labels, classes);
    ctx.log(`split ${params.mode}: train ${split.train.length}, val ${split.val.length}, test ${split.test.length}`);
    const value: JSONValue = { mode: params.mode, classes, train: split.train, val: split.val, test: split.test, counts, ...extra };
    ctx.outputs.json('split', value);
  },
});

async function readLists(lists: Partial<Record<SplitName, string[] | string>>, baseDir: string): Promise<Record<SplitName, string[]>> {
  const out: Record<SplitName, string[]> = { train: [], val: [], test: [] };
  for (const name of SPLIT_NAMES) {
    const v = lists[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) out[name] = v;
    else {
      const text = await fs.readFile(path.resolve(baseDir, v), 'utf8');
      // One id per line; an image extension is stripped so lists of file names work too.
      out[name] = text
        .split(/\r?\n/)
        .map((l) => l.trim().split(/\s+/)[0] ?? '')
        .filter((l) => l !== '')
        .map((l) => l.replace(/\.(jpe?g|png|dcm)$/i, ''));
    }
  }
  return out;
}
