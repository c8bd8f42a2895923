// CBIS-DDSM case descriptions and the labelling rule shared by the DICOM (TCIA) and JPEG
// (Kaggle mirror) importers.
//
// The paper's task is "presence of masses", binary. CBIS-DDSM has no normal mammograms: every
// full mammogram carries at least one mass or calcification abnormality, one CSV row each,
// and a mammogram with both appears in the mass and the calc CSVs as two DICOM copies. So:
//
//   unit 'view' (default): one sample per (patient, side, view) — the physical mammogram, so
//     its two copies never land in different splits or count twice;
//   rule 'mass' (default): label 1 if any abnormality on that view is a mass, 0 if it has
//     calcifications only. The image used is a mass row's copy for positives, else the first.
//   rule 'malignant': label 1 if any abnormality on the view is MALIGNANT (either type).
//   unit 'file': one sample per distinct full-mammogram file, labelled from its own CSV rows.
//
// The official train/test assignment (from the CSV name) is kept as the item's split.
import { readCsv } from '../csv.js';
import type { Problem } from './types.js';

export type CbisType = 'mass' | 'calc';
export type CbisUnit = 'view' | 'file';
export type CbisRule = 'mass' | 'malignant';
export const CBIS_UNITS: readonly CbisUnit[] = ['view', 'file'];
export const CBIS_RULES: readonly CbisRule[] = ['mass', 'malignant'];

export const CASE_CSVS: readonly { file: string; type: CbisType; split: 'train' | 'test' }[] = [
  { file: 'mass_case_description_train_set.csv', type: 'mass', split: 'train' },
  { file: 'mass_case_description_test_set.csv', type: 'mass', split: 'test' },
  { file: 'calc_case_description_train_set.csv', type: 'calc', split: 'train' },
  { file: 'calc_case_description_test_set.csv', type: 'calc', split: 'test' },
];

export interface CbisCase {
  csv: string;
  line: number;
  type: CbisType;
  split: 'train' | 'test';
  patient: string;
  side: string;
  view: string;
  pathology: string;
  /** The CSV's "image file path", trimmed, POSIX separators. */
  imagePath: string;
}

export interface CbisSample {
  id: string;
  label: number;
  split: 'train' | 'test';
  /** The row whose image file stands for the sample. */
  source: CbisCase;
}

export function cbisClasses(rule: CbisRule): string[] {
  return rule === 'mass' ? ['no mass', 'mass'] : ['benign', 'malignant'];
}

const PATHOLOGIES = new Set(['MALIGNANT', 'BENIGN', 'BENIGN_WITHOUT_CALLBACK']);

/** Reads the four case CSVs from root/dir; a missing CSV is a problem, not a crash. */
export async function readCases(root: string, dir: string): Promise<{ cases: CbisCase[]; problems: Problem[]; sources: string[] }> {
  const cases: CbisCase[] = [];
  const problems: Problem[] = [];
  const sources: string[] = [];
  for (const spec of CASE_CSVS) {
    const rel = dir === '' ? spec.file : `${dir}/${spec.file}`;
    const table = await readCsv(root, rel, ['patient_id', 'left or right breast', 'image view', 'pathology', 'image file path']);
    problems.push(...table.problems);
    if (table.found) sources.push(rel);
    for (const row of table.rows) {
      const c: CbisCase = {
        csv: rel,
        line: row.line,
        type: spec.type,
        split: spec.split,
        patient: row.get('patient_id'),
        side: row.get('left or right breast').toUpperCase(),
        view: row.get('image view').toUpperCase(),
        pathology: row.get('pathology').toUpperCase(),
        imagePath: row.get('image file path').split('\\').join('/').replace(/^\/+/, ''),
      };
      const bad: string[] = [];
      if (c.patient === '') bad.push('empty patient_id');
      if (c.side !== 'LEFT' && c.side !== 'RIGHT') bad.push(`"left or right breast" must be LEFT or RIGHT, got ${JSON.stringify(c.side)}`);
      if (c.view !== 'CC' && c.view !== 'MLO') bad.push(`"image view" must be CC or MLO, got ${JSON.stringify(c.view)}`);
      if (!PATHOLOGIES.has(c.pathology)) bad.push(`unknown pathology ${JSON.stringify(c.pathology)}`);
      if (c.imagePath === '') bad.push('empty "image file path"');
      if (bad.length > 0) problems.push({ file: rel, line: row.line, reason: bad.join('; ') });
      else cases.push(c);
    }
  }
  return { cases, problems, sources };
}

function positive(c: CbisCase, rule: CbisRule): boolean {
  return rule === 'mass' ? c.type === 'mass' : c.pathology === 'MALIGNANT';
}

/** Applies the unit/rule above; samples come in order of first appearance (CSV order). */
export function labelCases(cases: readonly CbisCase[], unit: CbisUnit, rule: CbisRule): CbisSample[] {
  const groups = new Map<string, CbisCase[]>();
  for (const c of cases) {
    const key = unit === 'view' ? `${c.patient}_${c.side}_${c.view}` : c.imagePath;
    const g = groups.get(key);
    if (g) g.push(c);
    else groups.set(key, [c]);
  }
  const samples: CbisSample[] = [];
  for (const [key, group] of groups) {
    const hit = group.find((c) => positive(c, rule));
    const source = hit ?? group[0];
    const id = unit === 'view' ? key : (source.imagePath.split('/')[0] ?? key);
    samples.push({ id, label: hit ? 1 : 0, split: source.split, source });
  }
  return samples;
}
