// The original DDSM as the authors' code reads it: ddsm_raw_image_lists/{train,val,test}.txt,
// one image name per line, images ddsm_raw/<name>.jpg; the name's prefix gives the case type
// (normal / benign / cancer), binarised to normal vs abnormal. The lists are the split.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { FileIndex } from '../files.js';
import type { SplitName } from '../split.js';
import type { ImportItem, Importer, ImportResult, Problem } from './types.js';

const LISTS = 'ddsm_raw_image_lists';
const IMAGES = 'ddsm_raw';
const SPLITS: readonly SplitName[] = ['train', 'val', 'test'];
export const DDSM_CLASSES = ['normal', 'abnormal'];

function labelOf(name: string): number | undefined {
  const lower = name.toLowerCase();
  if (lower.startsWith('normal')) return 0;
  if (lower.startsWith('benign') || lower.startsWith('cancer')) return 1;
  return undefined;
}

export const ddsmRaw: Importer = {
  format: 'ddsm-raw',
  description: 'DDSM as read by the authors\' code: normal vs abnormal, fixed train/val/test lists',
  where:
    'Convert the original DDSM (http://www.eng.usf.edu/cvprg/mammography/database.html) to JPEG as the authors did and ' +
    'place ddsm_raw/<name>.jpg and ddsm_raw_image_lists/{train,val,test}.txt in the root.',
  required: () => [LISTS, IMAGES],
  async import(root): Promise<ImportResult> {
    const problems: Problem[] = [];
    const sources: string[] = [];
    const files = new FileIndex(root);
    const items: ImportItem[] = [];
    const seen = new Set<string>();
    for (const split of SPLITS) {
      const rel = `${LISTS}/${split}.txt`;
      let text: string;
      try {
        text = await fs.readFile(path.join(root, rel), 'utf8');
      } catch (e) {
        problems.push({ file: rel, reason: `cannot read list: ${(e as Error).message}` });
        continue;
      }
      sources.push(rel);
      const lines = text.split(/\r?\n/);
      for (let i = 0; i < lines.length; i++) {
        const name = lines[i].trim().split(/\s+/)[0] ?? '';
        if (name === '') continue;
        const line = i + 1;
        const base = name.split('/').pop() ?? name;
        const label = labelOf(base);
        if (label === undefined) {
          problems.push({ file: rel, line, reason: `name ${JSON.stringify(name)} starts with none of normal, benign, cancer` });
          continue;
        }
        const id = base.replace(/\.(jpe?g|png)$/i, '');
        if (seen.has(id)) {
          problems.push({ file: rel, line, reason: `image ${id} listed twice` });
          continue;
        }
        seen.add(id);
        const image = `${IMAGES}/${/\.(jpe?g|png)$/i.test(name) ? name : `${name}.jpg`}`;
        if (!(await files.isFile(image))) {
          problems.push({ file: image, reason: `missing image (named by ${rel} line ${line})` });
          continue;
        }
        items.push({ id, path: image, label, split });
      }
    }
    return { items, classes: [...DDSM_CLASSES], problems, sources };
  },
};
