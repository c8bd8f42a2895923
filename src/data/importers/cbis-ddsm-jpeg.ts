// The Kaggle JPEG mirror of CBIS-DDSM (awsaf49/cbis-ddsm-breast-cancer-image-dataset):
// csv/{mass,calc}_case_description_{train,test}_set.csv as on TCIA, csv/dicom_info.csv with one
// row per converted DICOM (SeriesInstanceUID, SeriesDescription, PatientID = case folder,
// image_path = CBIS-DDSM/jpeg/<uid>/<n>.jpg) and the JPEGs under jpeg/<uid>/.
// A case row's image is found by the series UID in its "image file path" (third component),
// else by its case folder name; only "full mammogram images" series count.
import { readCsv } from '../csv.js';
import { FileIndex } from '../files.js';
import { cbisClasses, CBIS_RULES, CBIS_UNITS, labelCases, readCases } from './cbis-cases.js';
import { enumOption, type ImportItem, type Importer, type ImportResult, type Problem } from './types.js';

const INFO = 'csv/dicom_info.csv';
const FULL = 'full mammogram images';

function stripMirrorPrefix(p: string): string {
  const posix = p.split('\\').join('/');
  const at = posix.indexOf('jpeg/');
  return at >= 0 ? posix.slice(at) : posix;
}

export const cbisDdsmJpeg: Importer = {
  format: 'cbis-ddsm-jpeg',
  description: 'CBIS-DDSM, Kaggle JPEG mirror: full mammograms, mass presence (binary)',
  where:
    'Download https://www.kaggle.com/datasets/awsaf49/cbis-ddsm-breast-cancer-image-dataset ' +
    '(kaggle datasets download -d awsaf49/cbis-ddsm-breast-cancer-image-dataset) and unzip it; the root holds csv/ and jpeg/.',
  required: () => [INFO, 'jpeg'],
  async import(root, options): Promise<ImportResult> {
    const unit = enumOption(options, 'unit', CBIS_UNITS, 'view');
    const rule = enumOption(options, 'rule', CBIS_RULES, 'mass');
    const { cases, problems: caseProblems, sources } = await readCases(root, 'csv');
    const problems: Problem[] = [...caseProblems];
    const info = await readCsv(root, INFO, ['image_path', 'SeriesInstanceUID', 'SeriesDescription', 'PatientID']);
    problems.push(...info.problems);
    if (info.found) sources.push(INFO);
    const bySeries = new Map<string, string>();
    const byFolder = new Map<string, string>();
    for (const row of info.rows) {
      if (row.get('SeriesDescription').toLowerCase() !== FULL) continue;
      const image = stripMirrorPrefix(row.get('image_path'));
      if (!bySeries.has(row.get('SeriesInstanceUID'))) bySeries.set(row.get('SeriesInstanceUID'), image);
      if (!byFolder.has(row.get('PatientID'))) byFolder.set(row.get('PatientID'), image);
    }
    const files = new FileIndex(root);
    const items: ImportItem[] = [];
    for (const s of labelCases(cases, unit, rule)) {
      const parts = s.source.imagePath.split('/');
      const image = bySeries.get(parts[2] ?? '') ?? byFolder.get(parts[0] ?? '');
      if (!image) {
        problems.push({
          file: s.source.csv,
          line: s.source.line,
          reason: `no "${FULL}" row in ${INFO} for series ${parts[2] ?? '?'} or case ${parts[0] ?? '?'}`,
        });
        continue;
      }
      if (!(await files.isFile(image))) {
        problems.push({ file: image, reason: `missing image (case ${s.source.csv} line ${s.source.line}, via ${INFO})` });
        continue;
      }
      items.push({ id: s.id, path: image, label: s.label, split: s.split });
    }
    return { items, classes: cbisClasses(rule), problems, sources };
  },
};
