// Fake CBIS-DDSM in both distributed layouts: TCIA's (case CSVs at the root, DICOM under
// <case folder>/<study uid>/<series uid>/000000.dcm) and the Kaggle JPEG mirror's (csv/ with the
// same case CSVs plus dicom_info.csv, jpeg/<series uid>/1-<n>.jpg). Each breast gets a mass,
// calcifications or both, seen on CC and MLO; a view with both appears in the mass and the
// calc CSVs as two copies of one image, as in the real data.
import { CASE_CSVS } from '../importers/cbis-cases.js';
import { writeDicom, syntheticUid } from '../dicom-write.js';
import { Rng } from '../rng.js';
import { encodeImage } from './encode.js';
import { drawMammogram, toUint16 } from './mammo.js';
import { Raster } from './raster.js';
import { csvText, type DatasetWriter, type SyntheticOptions } from './writer.js';

export interface CbisOptions extends SyntheticOptions {
  layout: 'dicom' | 'jpeg';
  /** Share of DICOM files written as MONOCHROME1 (inverted stored values). */
  monochrome1_fraction: number;
}

interface Abnormality {
  type: 'mass' | 'calc';
  pathology: 'MALIGNANT' | 'BENIGN' | 'BENIGN_WITHOUT_CALLBACK';
}

interface View {
  patient: string;
  side: 'LEFT' | 'RIGHT';
  view: 'CC' | 'MLO';
  split: 'train' | 'test';
  abnormalities: Abnormality[];
  index: number;
}

const MASS_HEADER = [
  'patient_id', 'breast_density', 'left or right breast', 'image view', 'abnormality id', 'abnormality type',
  'mass shape', 'mass margins', 'assessment', 'pathology', 'subtlety', 'image file path', 'cropped image file path', 'ROI mask file path',
];
const CALC_HEADER = [
  'patient_id', 'breast density', 'left or right breast', 'image view', 'abnormality id', 'abnormality type',
  'calc type', 'calc distribution', 'assessment', 'pathology', 'subtlety', 'image file path', 'cropped image file path', 'ROI mask file path',
];
const INFO_HEADER = [
  'file_path', 'image_path', 'Laterality', 'PatientID', 'PhotometricInterpretation', 'Rows', 'Columns',
  'SOPInstanceUID', 'SeriesDescription', 'SeriesInstanceUID', 'StudyInstanceUID',
];

export function planViews(count: number, rng: Rng): View[] {
  const views: View[] = [];
  const pathology = (): Abnormality['pathology'] => rng.pick(['MALIGNANT', 'BENIGN', 'BENIGN_WITHOUT_CALLBACK'] as const);
  for (let p = 1; views.length < count; p++) {
    const patient = `P_${String(p).padStart(5, '0')}`;
    const split = rng.bool(0.8) ? 'train' : 'test';
    const sides: ('LEFT' | 'RIGHT')[] = rng.bool(0.3) ? ['LEFT', 'RIGHT'] : [rng.bool() ? 'LEFT' : 'RIGHT'];
    for (const side of sides) {
      const kind = rng.float();
      const abnormalities: Abnormality[] = [];
      if (kind < 0.6) {
        abnormalities.push({ type: 'mass', pathology: pathology() });
        if (rng.bool(0.15)) abnormalities.push({ type: 'mass', pathology: pathology() });
      }
      if (kind >= 0.45) abnormalities.push({ type: 'calc', pathology: pathology() });
      for (const view of ['CC', 'MLO'] as const) {
        if (views.length >= count) break;
        views.push({ patient, side, view, split, abnormalities, index: views.length });
      }
    }
  }
  return views;
}

function caseFolder(type: 'mass' | 'calc', v: View): string {
  const t = type === 'mass' ? 'Mass' : 'Calc';
  const s = v.split === 'train' ? 'Training' : 'Test';
  return `${t}-${s}_${v.patient}_${v.side}_${v.view}`;
}

export async function generateCbis(writer: DatasetWriter, opts: CbisOptions): Promise<void> {
  const rng = new Rng(opts.seed, 0xdd5);
  const views = planViews(opts.count, rng);
  const width = opts.size;
  const height = Math.round(opts.size * 1.6);
  const csvRows = new Map<string, string[][]>(CASE_CSVS.map((c) => [c.file, []]));
  const infoRows: string[][] = [];
  const csvDir = opts.layout === 'jpeg' ? 'csv/' : '';
  let jpegCounter = 0;

  for (const v of views) {
    const masses = v.abnormalities.filter((a) => a.type === 'mass');
    const calcs = v.abnormalities.filter((a) => a.type === 'calc');
    const image = drawMammogram(
      width,
      height,
      {
        side: v.side,
        view: v.view,
        mass: masses.length === 0 ? 'none' : masses.some((m) => m.pathology === 'MALIGNANT') ? 'malignant' : 'benign',
        calcifications: calcs.length > 0,
      },
      new Rng(opts.seed, 0xdd5, v.index),
    );
    for (const [type, list] of [['mass', masses], ['calc', calcs]] as const) {
      if (list.length === 0) continue;
      const folder = caseFolder(type, v);
      const tn = type === 'mass' ? 1 : 2;
      const study = syntheticUid(opts.seed, v.index, tn, 1);
      const series = syntheticUid(opts.seed, v.index, tn, 2);
      const sop = syntheticUid(opts.seed, v.index, tn, 3);
      const imagePath = `${folder}/${study}/${series}/000000.dcm`;
      if (opts.layout === 'dicom') {
        const invert = rng.float() < opts.monochrome1_fraction;
        const bytes = writeDicom({
          rows: height,
          columns: width,
          bitsAllocated: 16,
          bitsStored: 16,
          photometric: invert ? 'MONOCHROME1' : 'MONOCHROME2',
          pixels: toUint16(image, invert),
          patientId: folder,
          laterality: v.side === 'LEFT' ? 'L' : 'R',
          viewPosition: v.view,
          sopInstanceUid: sop,
          studyInstanceUid: study,
          seriesInstanceUid: series,
          seriesDescription: 'full mammogram images',
        });
        await writer.write(imagePath, bytes);
      } else {
        const jpeg = `jpeg/${series}/1-${++jpegCounter}.jpg`;
        await writer.write(jpeg, await encodeImage(grey8(image), 'jpeg'));
        infoRows.push([`CBIS-DDSM/dicom/${sop}.dcm`, `CBIS-DDSM/${jpeg}`, v.side[0], folder, 'MONOCHROME2', String(height), String(width), sop, 'full mammogram images', series, study]);
      }
      const file = CASE_CSVS.find((c) => c.type === type && c.split === v.split)?.file ?? '';
      list.forEach((a, k) => {
        const crop = `${folder}_${k + 1}/${syntheticUid(opts.seed, v.index, tn, 10 + k)}/${syntheticUid(opts.seed, v.index, tn, 20 + k)}/000000.dcm`;
        const roi = crop.replace(/000000\.dcm$/, '000001.dcm');
        const assessment = a.pathology === 'MALIGNANT' ? '5' : '3';
        const detail = type === 'mass' ? ['OVAL', 'CIRCUMSCRIBED'] : ['PLEOMORPHIC', 'CLUSTERED'];
        csvRows.get(file)?.push([v.patient, String(1 + (v.index % 4)), v.side, v.view, String(k + 1), type === 'mass' ? 'mass' : 'calcification', ...detail, assessment, a.pathology, '3', imagePath, crop, roi]);
        if (opts.layout === 'jpeg') {
          // Crops and masks appear in dicom_info too; the importer must skip them.
          infoRows.push([`CBIS-DDSM/dicom/x${k}.dcm`, `CBIS-DDSM/jpeg/${crop.split('/')[2]}/2-${k + 1}.jpg`, v.side[0], `${folder}_${k + 1}`, 'MONOCHROME2', '64', '64', syntheticUid(opts.seed, v.index, tn, 30 + k), 'cropped images', crop.split('/')[2], crop.split('/')[1]]);
        }
      });
    }
  }
  for (const spec of CASE_CSVS) {
    await writer.write(`${csvDir}${spec.file}`, csvText(spec.type === 'mass' ? MASS_HEADER : CALC_HEADER, csvRows.get(spec.file) ?? []));
  }
  if (opts.layout === 'jpeg') await writer.write('csv/dicom_info.csv', csvText(INFO_HEADER, infoRows));
}

function grey8(img: Raster): Raster {
  const out = new Raster(img.width, img.height, 1);
  out.data.set(img.data);
  return out;
}
