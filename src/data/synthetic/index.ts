// Synthetic data sets by name, each written in the real on-disk layout its importer reads.
import { generateAptos } from './aptos.js';
import { generateCbis } from './cbis.js';
import { generateDdsmRaw } from './ddsm.js';
import { generateIsic } from './isic.js';
import { generateNatural } from './natural.js';
import { DatasetWriter, type SyntheticOptions } from './writer.js';

export const SYNTHETIC_DATASETS = ['aptos2019', 'isic2019', 'cbis-ddsm', 'cbis-ddsm-jpeg', 'ddsm-raw', 'natural'] as const;
export type SyntheticDataset = (typeof SYNTHETIC_DATASETS)[number];

/** The importer format that reads each synthetic data set. */
export const SYNTHETIC_FORMAT: Record<SyntheticDataset, string> = {
  aptos2019: 'aptos2019',
  isic2019: 'isic2019',
  'cbis-ddsm': 'cbis-ddsm',
  'cbis-ddsm-jpeg': 'cbis-ddsm-jpeg',
  'ddsm-raw': 'ddsm-raw',
  natural: 'imagefolder',
};

export interface SynthesizeOptions extends SyntheticOptions {
  dataset: SyntheticDataset;
  monochrome1_fraction?: number;
}

/** Writes the data set under root and returns relative path -> sha256 of every file written. */
export async function synthesize(root: string, opts: SynthesizeOptions): Promise<Record<string, string>> {
  const writer = new DatasetWriter(root);
  const base = { count: opts.count, size: opts.size, seed: opts.seed };
  switch (opts.dataset) {
    case 'aptos2019':
      await generateAptos(writer, base);
      break;
    case 'isic2019':
      await generateIsic(writer, base);
      break;
    case 'cbis-ddsm':
    case 'cbis-ddsm-jpeg':
      await generateCbis(writer, { ...base, layout: opts.dataset === 'cbis-ddsm' ? 'dicom' : 'jpeg', monochrome1_fraction: opts.monochrome1_fraction ?? 0 });
      break;
    case 'ddsm-raw':
      await generateDdsmRaw(writer, base);
      break;
    case 'natural':
      await generateNatural(writer, base);
      break;
  }
  return writer.listing();
}
