// preprocess: imports a data set from its on-disk layout, decodes and resizes every image to
// size x size (aspect not kept, as in the paper), and writes one uint8 HWC record per image in
// the importer's order, with per-channel mean/std of the whole set in the set's metadata.
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { defineStage, type FingerprintContext, type JSONObject, type StageContext } from '../src/contract.js';
import { DecodeError, RESIZE_KERNELS, type Channels, type DicomWindowing, type ResizeKernel } from '../src/data/decode.js';
import { MULTI_FRAME_MODES, type MultiFrame } from '../src/data/dicom-pixels.js';
import { importFingerprint } from '../src/data/fingerprint.js';
import { FORMATS, importerFor, type ImportItem, type ImportOptions, type Problem } from '../src/data/importers/index.js';
import { orderedMap } from '../src/data/ordered-pool.js';
import { problemJson, problemsMessage } from '../src/data/problems.js';
import { ChannelStats } from '../src/data/stats.js';
import { exists } from '../src/data/files.js';

export interface PreprocessParams {
  format: string;
  /** Data-set root, relative to the pipeline file; omit when a `source` input provides it. */
  root?: string;
  /** Importer options (e.g. CBIS-DDSM `unit`/`rule`, csv `file`). */
  options?: ImportOptions;
  size: number;
  channels: Channels;
  kernel: ResizeKernel;
  windowing: DicomWindowing;
  /** DICOM with several frames: refused (absent) or its first frame ('first'). */
  multiframe?: MultiFrame;
  on_error: 'fail' | 'skip';
  /** Images decoded at once; 0 = one per CPU. Results do not depend on it. */
  concurrency: number;
}

const DEFAULTS = { size: 256, channels: 3 as Channels, kernel: 'lanczos3' as ResizeKernel, windowing: 'auto' as DicomWindowing, on_error: 'fail' as const, concurrency: 0 };

function withDefaults(p: Partial<PreprocessParams> & { format: string }): PreprocessParams {
  return { ...DEFAULTS, ...p };
}

function rootOf(params: PreprocessParams, baseDir: string): string | undefined {
  return params.root === undefined ? undefined : path.resolve(baseDir, params.root);
}

export default defineStage<PreprocessParams>({
  kind: 'preprocess',
  version: 1,
  description: 'Import a data set, resize every image to size x size uint8 records, with channel mean/std',
  params: {
    type: 'object',
    additionalProperties: false,
    required: ['format'],
    properties: {
      format: { enum: FORMATS, description: 'on-disk layout of the data set' },
      root: { type: 'string', description: 'data-set directory, relative to the pipeline file (omit with a source input)' },
      options: { type: 'object', description: 'importer options, e.g. {unit: view, rule: mass} for CBIS-DDSM' },
      size: { type: 'integer', minimum: 8, maximum: 4096, default: DEFAULTS.size },
      channels: { enum: [1, 3], default: DEFAULTS.channels },
      kernel: { enum: RESIZE_KERNELS, default: DEFAULTS.kernel },
      windowing: { enum: ['auto', 'minmax'], default: DEFAULTS.windowing, description: 'DICOM: file window if present (auto) or min-max' },
      // No schema default: a default would enter every preprocess key and recompute all caches.
      multiframe: { enum: MULTI_FRAME_MODES, description: 'DICOM with several frames: refuse (when absent) or use the first' },
      on_error: { enum: ['fail', 'skip'], default: DEFAULTS.on_error },
      concurrency: { type: 'integer', minimum: 0, default: DEFAULTS.concurrency, description: '0 = one per CPU' },
    },
  },
  unkeyed: ['concurrency'],
  inputs: {
    source: { type: 'dir', optional: true, description: 'the data-set folder as a directory output (synthesize)' },
  },
  outputs: { records: 'records', problems: 'json' },

  async fingerprint(raw, ctx) {
    const params = withDefaults(raw);
    const root = rootOf(params, ctx.baseDir);
    // Data coming through a `source` input is already keyed by that input's digest.
    if (root === undefined) return null;
    const result = await importerFor(params.format).import(root, params.options ?? {});
    return { format: params.format, ...(await importFingerprint(root, result, ctx)) };
  },

  async check(raw, ctx: FingerprintContext) {
    const params = withDefaults(raw);
    const root = rootOf(params, ctx.baseDir);
    if (root === undefined) return [];
    const importer = importerFor(params.format);
    const missing: string[] = [];
    for (const rel of importer.required(params.options ?? {})) {
      // Shown relative to where the user stands, not to the pipeline file.
      if (!(await exists(path.join(root, rel)))) missing.push(path.relative(process.cwd(), path.join(root, rel)) || '.');
    }
    if (missing.length > 0) return [`${params.format}: missing ${missing.join(', ')}. ${importer.where}`];
    const { problems } = await importer.import(root, params.options ?? {});
    const shown = problems.slice(0, 20).map((p) => `${params.format}: ${p.file}${p.line === undefined ? '' : ` line ${p.line}`}: ${p.reason}`);
    if (problems.length > shown.length) shown.push(`${params.format}: ... and ${problems.length - shown.length} more problems`);
    return shown;
  },

  async run(ctx: StageContext<PreprocessParams>) {
    const params = withDefaults(ctx.params);
    const root = await resolveRoot(ctx, params);
    const { decodeFile } = await import('../src/data/decode.js');
    const imported = await importerFor(params.format).import(root, params.options ?? {});
    const problems: Problem[] = [...imported.problems];
    const concurrency = params.concurrency > 0 ? params.concurrency : availableParallelism();
    const stats = new ChannelStats(params.channels);
    const classCounts = imported.classes.map(() => 0);
    const total = imported.items.length;
    let lastProgress = 0;
    let written = 0;
    const started = Date.now();
    ctx.log(`${params.format}: ${total} images, ${imported.classes.length} classes, ${problems.length} import problems; decoding with concurrency ${concurrency}`);
    ctx.provenance({ decode_concurrency: concurrency });

    await ctx.outputs.records(
      'records',
      () => {
        const { mean, std } = stats.result();
        return {
          format: params.format,
          classes: imported.classes,
          shape: [params.size, params.size, params.channels],
          layout: 'HWC',
          dtype: 'uint8',
          mean,
          std,
          stats_scale: 'mean/std of pixel/255',
          count: written,
          class_counts: Object.fromEntries(imported.classes.map((c, i) => [c, classCounts[i]])),
          skipped: problems.length,
        };
      },
      async (writer) => {
        const decode = (item: ImportItem): Promise<Uint8Array> =>
          decodeFile(path.join(root, item.path), item.path, {
            size: params.size,
            channels: params.channels,
            kernel: params.kernel,
            windowing: params.windowing,
            ...(params.multiframe === undefined ? {} : { multiframe: params.multiframe }),
          });
        let done = 0;
        for await (const r of orderedMap(imported.items, decode, { concurrency, signal: ctx.signal })) {
          done++;
          if (!r.ok) {
            problems.push({ file: r.item.path, reason: r.error instanceof DecodeError ? r.error.reason : String(r.error) });
          } else if (params.on_error === 'skip' || problems.length === 0) {
            // In fail mode decoding goes on after the first problem only to find all the others.
            const meta: JSONObject = { id: r.item.id, label: r.item.label, path: r.item.path };
            if (r.item.split !== undefined) meta['split'] = r.item.split;
            await writer.append({ data: r.value, meta });
            stats.add(r.value);
            classCounts[r.item.label]++;
            written++;
          }
          const now = Date.now();
          if (now - lastProgress > 200 || done === total) {
            lastProgress = now;
            const rate = done / Math.max(0.001, (now - started) / 1000);
            ctx.progress(`decoded ${done}/${total} (${rate.toFixed(0)} img/s)${problems.length ? `, ${problems.length} bad` : ''}`);
          }
        }
        if (params.on_error === 'fail' && problems.length > 0) {
          throw new Error(problemsMessage(`preprocess ${params.format}`, problems, 'set on_error: skip to leave them out'));
        }
      },
    );
    if (problems.length > 0) ctx.log(problemsMessage(`skipped`, problems, 'on_error: skip'));
    ctx.outputs.json('problems', { skipped: problems.map(problemJson) });
  },
});

async function resolveRoot(ctx: StageContext<PreprocessParams>, params: PreprocessParams): Promise<string> {
  if (ctx.inputs.has('source')) {
    if (params.root !== undefined) throw new Error('preprocess: give either `root` or a `source` input, not both');
    return ctx.inputs.dir('source');
  }
  const root = rootOf(params, ctx.baseDir);
  if (root === undefined) throw new Error('preprocess: `root` is required when there is no `source` input');
  return root;
}
