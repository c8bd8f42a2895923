// ISIC 2019 (challenge.isic-archive.com): ISIC_2019_Training_GroundTruth.csv, one-hot rows
// image,MEL,NV,BCC,AK,BKL,DF,VASC,SCC,UNK, and ISIC_2019_Training_Input/<image>.jpg.
// UNK has no training images, so the task has the 8 other classes, in the CSV's column order.
import { readCsv } from '../csv.js';
import { FileIndex } from '../files.js';
import type { ImportItem, Importer, ImportResult, Problem } from './types.js';

export const ISIC_COLUMNS = ['MEL', 'NV', 'BCC', 'AK', 'BKL', 'DF', 'VASC', 'SCC', 'UNK'];
export const ISIC_CLASSES = ISIC_COLUMNS.filter((c) => c !== 'UNK');
const CSV = 'ISIC_2019_Training_GroundTruth.csv';
const IMAGES = 'ISIC_2019_Training_Input';

export const isic2019: Importer = {
  format: 'isic2019',
  description: 'ISIC 2019 skin lesions: 8 diagnostic classes',
  where:
    'Download ISIC_2019_Training_Input.zip and ISIC_2019_Training_GroundTruth.csv from ' +
    'https://challenge.isic-archive.com/data/#2019 and unzip so that the root holds the CSV and ISIC_2019_Training_Input/.',
  required: () => [CSV, IMAGES],
  async import(root): Promise<ImportResult> {
    const table = await readCsv(root, CSV, ['image', ...ISIC_COLUMNS]);
    const problems: Problem[] = [...table.problems];
    const files = new FileIndex(root);
    const items: ImportItem[] = [];
    const seen = new Set<string>();
    for (const row of table.rows) {
      const id = row.get('image');
      if (id === '') {
        problems.push({ file: CSV, line: row.line, reason: 'empty image name' });
        continue;
      }
      const values = ISIC_COLUMNS.map((c) => Number(row.get(c)));
      const bad = ISIC_COLUMNS.filter((c, i) => row.get(c) === '' || !(values[i] === 0 || values[i] === 1));
      if (bad.length > 0) {
        problems.push({ file: CSV, line: row.line, reason: `columns ${bad.join(', ')} must be 0 or 1` });
        continue;
      }
      const hot = ISIC_COLUMNS.filter((_, i) => values[i] === 1);
      if (hot.length !== 1) {
        problems.push({ file: CSV, line: row.line, reason: `expected exactly one class set to 1, found ${hot.length} (${hot.join(', ')})` });
        continue;
      }
      const label = ISIC_CLASSES.indexOf(hot[0]);
      if (label < 0) {
        problems.push({ file: CSV, line: row.line, reason: `class ${hot[0]} is not one of the 8 training classes` });
        continue;
      }
      if (seen.has(id)) {
        problems.push({ file: CSV, line: row.line, reason: `duplicate image ${id}` });
        continue;
      }
      seen.add(id);
      const rel = `${IMAGES}/${id}.jpg`;
      if (!(await files.isFile(rel))) {
        problems.push({ file: rel, reason: `missing image (named by ${CSV} line ${row.line})` });
        continue;
      }
      items.push({ id, path: rel, label });
    }
    return { items, classes: [...ISIC_CLASSES], problems, sources: [CSV] };
  },
};
