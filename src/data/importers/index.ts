// The importer registry: data-set format name -> importer.
import { aptos2019 } from './aptos2019.js';
import { cbisDdsm } from './cbis-ddsm.js';
import { cbisDdsmJpeg } from './cbis-ddsm-jpeg.js';
import { csvList } from './csv-list.js';
import { ddsmRaw } from './ddsm-raw.js';
import { dicomweb } from './dicomweb.js';
import { imagefolder } from './imagefolder.js';
import { isic2019 } from './isic2019.js';
import type { Importer } from './types.js';

export const IMPORTERS: Readonly<Record<string, Importer>> = {
  aptos2019,
  isic2019,
  'cbis-ddsm': cbisDdsm,
  'cbis-ddsm-jpeg': cbisDdsmJpeg,
  'ddsm-raw': ddsmRaw,
  imagefolder,
  csv: csvList,
  dicomweb,
};

export const FORMATS = Object.keys(IMPORTERS);

export function importerFor(format: string): Importer {
  const importer = IMPORTERS[format];
  if (!importer) throw new Error(`unknown data-set format ${JSON.stringify(format)}; known: ${FORMATS.join(', ')}`);
  return importer;
}

export type { Importer, ImportItem, ImportResult, Problem, ImportOptions } from './types.js';
