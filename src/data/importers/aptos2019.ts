// APTOS 2019 Blindness Detection (Kaggle): train.csv (id_code,diagnosis 0-4) and
// train_images/<id_code>.png. Labels are the diabetic-retinopathy grades, in grade order.
import { readCsv } from '../csv.js';
import { FileIndex } from '../files.js';
import type { ImportItem, Importer, ImportResult, Problem } from './types.js';

export const APTOS_CLASSES = ['No DR', 'Mild', 'Moderate', 'Severe', 'Proliferative DR'];
const CSV = 'train.csv';
const IMAGES = 'train_images';

export const aptos2019: Importer = {
  format: 'aptos2019',
  description: 'APTOS 2019 Blindness Detection: 5 diabetic-retinopathy grades',
  where:
    'Download "train.csv" and "train_images/" from https://www.kaggle.com/competitions/aptos2019-blindness-detection/data ' +
    '(kaggle competitions download -c aptos2019-blindness-detection) and unzip them into the root directory.',
  required: () => [CSV, IMAGES],
  async import(root): Promise<ImportResult> {
    const table = await readCsv(root, CSV, ['id_code', 'diagnosis']);
    const problems: Problem[] = [...table.problems];
    const files = new FileIndex(root);
    const items: ImportItem[] = [];
    const seen = new Set<string>();
    for (const row of table.rows) {
      const id = row.get('id_code');
      const diagnosis = row.get('diagnosis');
      if (id === '') {
        problems.push({ file: CSV, line: row.line, reason: 'empty id_code' });
        continue;
      }
      if (!/^[0-4]$/.test(diagnosis)) {
        problems.push({ file: CSV, line: row.line, reason: `diagnosis must be 0-4, got ${JSON.stringify(diagnosis)}` });
        continue;
      }
      if (seen.has(id)) {
        problems.push({ file: CSV, line: row.line, reason: `duplicate id_code ${id}` });
        continue;
      }
      seen.add(id);
      const rel = `${IMAGES}/${id}.png`;
      if (!(await files.isFile(rel))) {
        problems.push({ file: rel, reason: `missing image (named by ${CSV} line ${row.line})` });
        continue;
      }
      items.push({ id, path: rel, label: Number(diagnosis) });
    }
    return { items, classes: [...APTOS_CLASSES], problems, sources: [CSV] };
  },
};
