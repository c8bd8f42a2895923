// Fake original DDSM as the authors' code reads it: ddsm_raw/<kind>_<n>_<side>_<view>.jpg with
// kind normal / benign (round mass) / cancer (spiculated mass), and seeded 80/10/10 lists in
// ddsm_raw_image_lists/{train,val,test}.txt.
import { Rng } from '../rng.js';
import { encodeImage } from './encode.js';
import { drawMammogram } from './mammo.js';
import type { DatasetWriter, SyntheticOptions } from './writer.js';

export async function generateDdsmRaw(writer: DatasetWriter, opts: SyntheticOptions): Promise<void> {
  const rng = new Rng(opts.seed, 0xdd50);
  const names: string[] = [];
  for (let i = 0; i < opts.count; i++) {
    // Half normal, the other half benign or cancer: balanced normal vs abnormal.
    const kind = i % 2 === 0 ? 'normal' : i % 4 === 1 ? 'benign' : 'cancer';
    const side = rng.bool() ? 'LEFT' : 'RIGHT';
    const view = rng.bool() ? 'CC' : 'MLO';
    const name = `${kind}_${String(i).padStart(4, '0')}_${side}_${view}`;
    const img = drawMammogram(
      opts.size,
      Math.round(opts.size * 1.6),
      { side, view, mass: kind === 'normal' ? 'none' : kind === 'benign' ? 'benign' : 'malignant', calcifications: false },
      new Rng(opts.seed, 0xdd50, i),
    );
    await writer.write(`ddsm_raw/${name}.jpg`, await encodeImage(img, 'jpeg'));
    names.push(name);
  }
  rng.shuffle(names);
  const nVal = Math.round(names.length * 0.1);
  const nTest = Math.round(names.length * 0.1);
  const lists = { val: names.slice(0, nVal), test: names.slice(nVal, nVal + nTest), train: names.slice(nVal + nTest) };
  for (const [split, list] of Object.entries(lists)) {
    await writer.write(`ddsm_raw_image_lists/${split}.txt`, list.map((n) => `${n}\n`).join(''));
  }
}
