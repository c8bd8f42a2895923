// synthesize: writes a seeded fake data set (APTOS, ISIC, CBIS-DDSM as DICOM or the JPEG
// mirror, original DDSM, or a 10-class "natural images" proxy) in its real on-disk layout,
// for the demo and the tests. The data set is a directory output: stored in the cache as one
// tree, keyed by its content, and unpacked read-only for whoever reads it (preprocess's
// `source` input), here or after a pull from a remote.
import path from 'node:path';
import { defineStage, type StageContext } from '../src/contract.js';
import { SYNTHETIC_DATASETS, type SyntheticDataset, type SynthesizeOptions } from '../src/data/synthetic/index.js';

export interface SynthesizeParams {
  dataset: SyntheticDataset;
  count: number;
  size: number;
  seed: number;
  monochrome1_fraction: number;
}

const DEFAULTS = { count: 200, size: 128, seed: 0, monochrome1_fraction: 0 };

export default defineStage<SynthesizeParams>({
  kind: 'synthesize',
  // 2: the data set is a directory output instead of a folder outside the cache plus digests.
  // 3: harder APTOS/ISIC/CBIS-DDSM images (overlapping cues, nuisances) and a proxy drawn in
  //    the medical sets' palettes and backgrounds.
  // 4: proxy objects mostly in their class's ink (close lesion colours), some faint.
  version: 4,
  description: 'Write a seeded synthetic data set in a real data set\'s on-disk layout',
  params: {
    type: 'object',
    additionalProperties: false,
    required: ['dataset'],
    properties: {
      dataset: { enum: [...SYNTHETIC_DATASETS] },
      count: { type: 'integer', minimum: 1, default: DEFAULTS.count, description: 'images (CBIS-DDSM: views)' },
      size: { type: 'integer', minimum: 16, maximum: 2048, default: DEFAULTS.size, description: 'image width in pixels (mammograms are 1.6x taller)' },
      seed: { type: 'integer', default: DEFAULTS.seed },
      monochrome1_fraction: { type: 'number', minimum: 0, maximum: 1, default: DEFAULTS.monochrome1_fraction, description: 'cbis-ddsm: share of MONOCHROME1 DICOMs' },
    },
  },
  outputs: { dataset: 'dir' },

  async run(ctx: StageContext<SynthesizeParams>) {
    const p = { ...DEFAULTS, ...ctx.params };
    const { synthesize } = await import('../src/data/synthetic/index.js');
    const options: SynthesizeOptions = { dataset: p.dataset, count: p.count, size: p.size, seed: p.seed, monochrome1_fraction: p.monochrome1_fraction };
    ctx.progress(`writing ${p.count} ${p.dataset} images`);
    const root = path.join(ctx.workdir, 'dataset');
    const files = await synthesize(root, options);
    ctx.log(`${p.dataset}: ${Object.keys(files).length} files`);
    await ctx.outputs.dir('dataset', root);
  },
});
