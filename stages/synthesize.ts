// synthesize: writes a seeded fake data set (APTOS, ISIC, CBIS-DDSM as DICOM or the JPEG
// mirror, original DDSM, or a 10-class "natural images" proxy) in its real on-disk layout,
// for the demo and the tests. The data set goes to `dest`; the output records the parameters and
// every file's digest, so downstream keys change exactly when the data change (see
// src/data/synthetic/materialize.ts for why a directory plus digests, not an artifact).
import path from 'node:path';
import { defineStage, type StageContext } from '../src/contract.js';
import { SYNTHETIC_DATASETS, SYNTHETIC_FORMAT, type SyntheticDataset, type SynthesizeOptions } from '../src/data/synthetic/index.js';

export interface SynthesizeParams {
  dataset: SyntheticDataset;
  /** Output directory, relative to the pipeline file. */
  dest: string;
  count: number;
  size: number;
  seed: number;
  monochrome1_fraction: number;
}

const DEFAULTS = { count: 200, size: 128, seed: 0, monochrome1_fraction: 0 };

export default defineStage<SynthesizeParams>({
  kind: 'synthesize',
  version: 1,
  description: 'Write a seeded synthetic data set in a real data set\'s on-disk layout',
  params: {
    type: 'object',
    additionalProperties: false,
    required: ['dataset', 'dest'],
    properties: {
      dataset: { enum: [...SYNTHETIC_DATASETS] },
      dest: { type: 'string', minLength: 1, description: 'output directory, relative to the pipeline file; replaced on each run' },
      count: { type: 'integer', minimum: 1, default: DEFAULTS.count, description: 'images (CBIS-DDSM: views)' },
      size: { type: 'integer', minimum: 16, maximum: 2048, default: DEFAULTS.size, description: 'image width in pixels (mammograms are 1.6x taller)' },
      seed: { type: 'integer', default: DEFAULTS.seed },
      monochrome1_fraction: { type: 'number', minimum: 0, maximum: 1, default: DEFAULTS.monochrome1_fraction, description: 'cbis-ddsm: share of MONOCHROME1 DICOMs' },
    },
  },
  outputs: { dataset: 'json' },

  async run(ctx: StageContext<SynthesizeParams>) {
    const p = { ...DEFAULTS, ...ctx.params };
    const { materialize } = await import('../src/data/synthetic/materialize.js');
    const options: SynthesizeOptions = { dataset: p.dataset, count: p.count, size: p.size, seed: p.seed, monochrome1_fraction: p.monochrome1_fraction };
    ctx.progress(`writing ${p.count} ${p.dataset} images to ${p.dest}`);
    const files = await materialize(path.resolve(ctx.baseDir, p.dest), options);
    ctx.log(`${p.dataset}: ${Object.keys(files).length} files in ${p.dest}`);
    ctx.outputs.json('dataset', {
      dataset: p.dataset,
      format: SYNTHETIC_FORMAT[p.dataset],
      dest: p.dest.split(path.sep).join('/'),
      params: { ...options },
      files,
    });
  },
});
