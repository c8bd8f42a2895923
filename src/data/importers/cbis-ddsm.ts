// CBIS-DDSM as TCIA distributes it: the four case-description CSVs and DICOM files.
// The CSVs' "image file path" (<case folder>/<study uid>/<series uid>/000000.dcm) is tried
// first, at the root and under CBIS-DDSM/; NBIA's newer downloads use descriptive folder
// names instead, so failing that the case folder is searched for its full-mammogram .dcm.
import { FileIndex } from '../files.js';
import { cbisClasses, CBIS_RULES, CBIS_UNITS, labelCases, readCases } from './cbis-cases.js';
import { enumOption, type ImportItem, type Importer, type ImportResult, type Problem } from './types.js';

const PREFIXES = ['', 'CBIS-DDSM/'];

async function resolveDicom(files: FileIndex, imagePath: string): Promise<string | undefined> {
  for (const prefix of PREFIXES) {
    if (await files.isFile(prefix + imagePath)) return prefix + imagePath;
  }
  const folder = imagePath.split('/')[0];
  for (const prefix of PREFIXES) {
    const dcms = (await files.walk(prefix + folder)).filter((f) => f.toLowerCase().endsWith('.dcm'));
    if (dcms.length === 1) return dcms[0];
    const full = dcms.filter((f) => /full mammogram/i.test(f));
    if (full.length === 1) return full[0];
  }
  return undefined;
}

export const cbisDdsm: Importer = {
  format: 'cbis-ddsm',
  description: 'CBIS-DDSM (TCIA DICOM): full mammograms, mass presence (binary)',
  where:
    'Download the CBIS-DDSM collection (DICOM, with NBIA Data Retriever) and its four case-description CSVs from ' +
    'https://www.cancerimagingarchive.net/collection/cbis-ddsm/ ; put the CSVs in the root and the DICOM folders at the root or under CBIS-DDSM/.',
  required: () => ['mass_case_description_train_set.csv', 'calc_case_description_train_set.csv'],
  async import(root, options): Promise<ImportResult> {
    const unit = enumOption(options, 'unit', CBIS_UNITS, 'view');
    const rule = enumOption(options, 'rule', CBIS_RULES, 'mass');
    const { cases, problems: caseProblems, sources } = await readCases(root, '');
    const problems: Problem[] = [...caseProblems];
    const files = new FileIndex(root);
    const items: ImportItem[] = [];
    for (const s of labelCases(cases, unit, rule)) {
      const path = await resolveDicom(files, s.source.imagePath);
      if (!path) {
        problems.push({
          file: s.source.imagePath,
          reason: `missing DICOM (named by ${s.source.csv} line ${s.source.line}; also looked under CBIS-DDSM/ and in the case folder)`,
        });
        continue;
      }
      items.push({ id: s.id, path, label: s.label, split: s.split });
    }
    return { items, classes: cbisClasses(rule), problems, sources };
  },
};
