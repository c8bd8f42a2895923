// A user's own data as a CSV of (path, label[, split]); paths relative to the CSV's folder.
// Classes are the distinct labels, numerically ordered when all are integers, else ordinally,
// unless the `classes` option fixes the order.
import path from 'node:path';
import { readCsv } from '../csv.js';
import { FileIndex, ordinal } from '../files.js';
import type { SplitName } from '../split.js';
import { ImportOptionError, stringOption, type ImportItem, type Importer, type ImportOptions, type ImportResult, type Problem } from './types.js';

const SPLITS = new Set<string>(['train', 'val', 'test']);

function classOrder(labels: Iterable<string>, options: ImportOptions): string[] {
  const fixed = options['classes'];
  if (fixed !== undefined) {
    if (!Array.isArray(fixed) || !fixed.every((c): c is string => typeof c === 'string')) {
      throw new ImportOptionError('option classes must be a list of strings');
    }
    return [...fixed];
  }
  const distinct = [...new Set(labels)];
  const numeric = distinct.every((l) => /^-?\d+$/.test(l));
  return numeric ? distinct.sort((a, b) => Number(a) - Number(b)) : distinct.sort(ordinal);
}

export const csvList: Importer = {
  format: 'csv',
  description: 'a CSV with path,label (and optionally split) columns',
  where: 'Write <root>/labels.csv (or the file named by option `file`) with a header path,label[,split]; paths relative to the CSV.',
  required: (options) => [stringOption(options, 'file', 'labels.csv')],
  async import(root, options): Promise<ImportResult> {
    const file = stringOption(options, 'file', 'labels.csv');
    const pathColumn = stringOption(options, 'path_column', 'path');
    const labelColumn = stringOption(options, 'label_column', 'label');
    const splitColumn = stringOption(options, 'split_column', 'split');
    const table = await readCsv(root, file, [pathColumn, labelColumn]);
    const problems: Problem[] = [...table.problems];
    const hasSplit = table.header.includes(splitColumn);
    const dir = path.posix.dirname(file.split('\\').join('/'));
    const prefix = dir === '.' ? '' : `${dir}/`;
    const classes = classOrder(
      table.rows.map((r) => r.get(labelColumn)).filter((l) => l !== ''),
      options,
    );
    const files = new FileIndex(root);
    const items: ImportItem[] = [];
    const seen = new Set<string>();
    for (const row of table.rows) {
      const rel = path.posix.normalize(prefix + row.get(pathColumn).split('\\').join('/'));
      const labelName = row.get(labelColumn);
      const label = classes.indexOf(labelName);
      const split = hasSplit ? row.get(splitColumn) : '';
      if (row.get(pathColumn) === '' || rel.startsWith('../')) {
        problems.push({ file, line: row.line, reason: `path must be non-empty and inside the root, got ${JSON.stringify(row.get(pathColumn))}` });
        continue;
      }
      if (label < 0) {
        problems.push({ file, line: row.line, reason: `label ${JSON.stringify(labelName)} is not one of the classes ${JSON.stringify(classes)}` });
        continue;
      }
      if (split !== '' && !SPLITS.has(split)) {
        problems.push({ file, line: row.line, reason: `split must be train, val or test, got ${JSON.stringify(split)}` });
        continue;
      }
      const id = rel.replace(/\.[^./]+$/, '');
      if (seen.has(id)) {
        problems.push({ file, line: row.line, reason: `image ${rel} listed twice` });
        continue;
      }
      seen.add(id);
      if (!(await files.isFile(rel))) {
        problems.push({ file: rel, reason: `missing image (named by ${file} line ${row.line})` });
        continue;
      }
      items.push(split === '' ? { id, path: rel, label } : { id, path: rel, label, split: split as SplitName });
    }
    return { items, classes, problems, sources: [file] };
  },
};
