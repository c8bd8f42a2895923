// Images in a PACS: QIDO-RS lists the instances (a study, a series, or any query), WADO-RS
// fetches each one not yet here into <root>/<study>/<series>/<sop>.dcm (a temp file renamed
// when whole, a bounded number at a time), so an interrupted import continues where it
// stopped, and the files are keyed like any data on disk. Labels come from a DICOM attribute
// of each instance or from a CSV in the root keyed by a UID or the patient ID.
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { readCsv } from '../csv.js';
import { attribute, DicomWebError, retrieveInstance, searchInstances, serviceUrl, type DicomJson } from '../dicomweb/client.js';
import { loadDicomParser } from '../dicom-pixels.js';
import { EXPLICIT_VR_LITTLE_ENDIAN, pixelEncoding, syntaxName } from '../dicom-syntax.js';
import { exists, ordinal } from '../files.js';
import { orderedMap } from '../ordered-pool.js';
import { ImportOptionError, stringOption, type ImportItem, type Importer, type ImportOptions, type ImportResult, type Problem } from './types.js';

const TAGS = {
  SOPInstanceUID: '00080018',
  StudyInstanceUID: '0020000D',
  SeriesInstanceUID: '0020000E',
  PatientID: '00100020',
  AccessionNumber: '00080050',
} as const;
type KeyName = keyof typeof TAGS;

const UID = /^[0-9]+(\.[0-9]+)*$/;

interface LabelRule {
  attribute?: string;
  csv?: { file: string; key: KeyName; column: string };
}

function labelRule(options: ImportOptions): LabelRule {
  const label = options['label'];
  if (typeof label !== 'object' || label === null || Array.isArray(label)) {
    throw new ImportOptionError('option label must be {attribute: <tag, e.g. 00200062>} or {csv: <file in the root>, key: SOPInstanceUID|StudyInstanceUID|SeriesInstanceUID|PatientID|AccessionNumber, column: <label column>}');
  }
  const l = label as ImportOptions;
  if (l['attribute'] !== undefined) {
    const tag = stringOption(l, 'attribute', '').toUpperCase();
    if (!/^[0-9A-F]{8}$/.test(tag)) throw new ImportOptionError(`option label.attribute must be a tag as 8 hex digits (e.g. 00200062 for ImageLaterality), got ${JSON.stringify(l['attribute'])}`);
    return { attribute: tag };
  }
  const file = stringOption(l, 'csv', '');
  if (file === '') throw new ImportOptionError('option label needs attribute or csv');
  const key = stringOption(l, 'key', 'SOPInstanceUID');
  if (!(key in TAGS)) throw new ImportOptionError(`option label.key must be one of ${Object.keys(TAGS).join(', ')}, got ${JSON.stringify(key)}`);
  return { csv: { file, key: key as KeyName, column: stringOption(l, 'column', 'label') } };
}

function stringMap(options: ImportOptions, name: string): Record<string, string> {
  const v = options[name];
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v) || !Object.values(v).every((x) => typeof x === 'string')) {
    throw new ImportOptionError(`option ${name} must map QIDO-RS matching keys to strings, e.g. {Modality: MG}`);
  }
  return v as Record<string, string>;
}

function uidOption(options: ImportOptions, name: string): string | undefined {
  const v = stringOption(options, name, '');
  if (v === '') return undefined;
  if (!UID.test(v)) throw new ImportOptionError(`option ${name} must be a DICOM UID, got ${JSON.stringify(v)}`);
  return v;
}

function concurrencyOption(options: ImportOptions): number {
  const v = options['concurrency'] ?? 4;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 32) throw new ImportOptionError(`option concurrency must be an integer from 1 to 32, got ${JSON.stringify(v)}`);
  return v;
}

interface Listed {
  study: string;
  series: string;
  sop: string;
  rel: string;
  json: DicomJson;
}

/** UIDs from the server become path segments: anything but digits and dots is refused. */
function listed(instance: DicomJson): Listed | string {
  const study = attribute(instance, TAGS.StudyInstanceUID);
  const series = attribute(instance, TAGS.SeriesInstanceUID);
  const sop = attribute(instance, TAGS.SOPInstanceUID);
  for (const [name, uid] of [['StudyInstanceUID', study], ['SeriesInstanceUID', series], ['SOPInstanceUID', sop]] as const) {
    if (uid === undefined || !UID.test(uid) || uid.length > 64) return `QIDO-RS answered an instance with ${name} ${JSON.stringify(uid)}`;
  }
  return { study: study!, series: series!, sop: sop!, rel: `${study}/${series}/${sop}.dcm`, json: instance };
}

/** The instance's SOP Instance UID and transfer syntax from its file meta, checked against what was asked. */
async function header(bytes: Uint8Array, sop: string): Promise<string> {
  const dp = await loadDicomParser();
  let meta: { sop?: string; syntax?: string };
  try {
    const h = dp.readPart10Header(bytes);
    const clean = (s: string | undefined) => s?.replace(/\0/g, '').trim();
    meta = { sop: clean(h.string('x00020003')), syntax: clean(h.string('x00020010')) };
  } catch {
    throw new DicomWebError('WADO-RS did not answer a DICOM Part-10 file');
  }
  if (meta.sop !== sop) throw new DicomWebError(`WADO-RS answered instance ${JSON.stringify(meta.sop)} for ${sop}`);
  return meta.syntax ?? '';
}

/** As stored when the decoder reads that syntax (no transcoding, lossless stays bit-exact), else transcoded by the server. */
async function fetchOne(root: string, base: URL, item: Listed): Promise<void> {
  let bytes = await retrieveInstance(base, item.study, item.series, item.sop, '*');
  const stored = await header(bytes, item.sop);
  if (pixelEncoding(stored) === undefined) {
    bytes = await retrieveInstance(base, item.study, item.series, item.sop, EXPLICIT_VR_LITTLE_ENDIAN);
    const got = await header(bytes, item.sop);
    if (pixelEncoding(got) === undefined) throw new DicomWebError(`stored as ${stored} (${syntaxName(stored)}), and the server did not transcode it to ${EXPLICIT_VR_LITTLE_ENDIAN}`);
  }
  const target = path.join(root, item.rel);
  await mkdir(path.dirname(target), { recursive: true });
  const tmp = `${target}.${process.pid}.partial`;
  await writeFile(tmp, bytes);
  await rename(tmp, target);
}

export const dicomweb: Importer = {
  format: 'dicomweb',
  description: 'a DICOMweb server (QIDO-RS + WADO-RS): instances fetched into the root, labelled by an attribute or a CSV',
  where:
    'Give options {url: http://host:8042/dicom-web, study/series/query to select, label: {attribute: 00200062} or {csv: labels.csv, key: SOPInstanceUID, column: label}}; ' +
    'credentials in MEDPIPE_DICOMWEB_TOKEN or MEDPIPE_DICOMWEB_USER/MEDPIPE_DICOMWEB_PASSWORD. The root is where the instances are kept (created).',
  required: (options) => {
    const rule = labelRule(options);
    return rule.csv ? [rule.csv.file] : [];
  },
  async import(root, options): Promise<ImportResult> {
    const base = serviceUrl(stringOption(options, 'url', ''));
    const rule = labelRule(options);
    const study = uidOption(options, 'study');
    const series = uidOption(options, 'series');
    const include = rule.attribute ? [rule.attribute] : rule.csv ? [TAGS[rule.csv.key]] : [];
    const found = await searchInstances(base, { ...(study ? { study } : {}), ...(series ? { series } : {}), filters: stringMap(options, 'query'), include });
    const problems: Problem[] = [];
    const byPath = new Map<string, Listed>();
    for (const instance of found) {
      const l = listed(instance);
      if (typeof l === 'string') problems.push({ file: base.href, reason: l });
      else byPath.set(l.rel, l);
    }
    const instances = [...byPath.values()].sort((a, b) => ordinal(a.rel, b.rel));

    const missing: Listed[] = [];
    for (const l of instances) if (!(await exists(path.join(root, l.rel)))) missing.push(l);
    const failed = new Set<string>();
    for await (const r of orderedMap(missing, (l) => fetchOne(root, base, l), { concurrency: concurrencyOption(options) })) {
      if (r.ok) continue;
      failed.add(r.item.rel);
      problems.push({ file: r.item.rel, reason: `not fetched: ${r.error instanceof Error ? r.error.message : String(r.error)}` });
    }

    const labelOf = new Map<string, string>();
    const sources: string[] = [];
    if (rule.csv) {
      const table = await readCsv(root, rule.csv.file, [rule.csv.key, rule.csv.column]);
      problems.push(...table.problems);
      sources.push(rule.csv.file);
      for (const row of table.rows) labelOf.set(row.get(rule.csv.key), row.get(rule.csv.column));
    }
    const keyTag = rule.attribute ?? TAGS[rule.csv!.key];
    const labelled: Array<{ l: Listed; label: string }> = [];
    for (const l of instances) {
      if (failed.has(l.rel)) continue;
      const key = attribute(l.json, keyTag);
      const label = rule.attribute ? key : key === undefined ? undefined : labelOf.get(key);
      if (label === undefined || label === '') {
        const why = rule.attribute ? `has no ${rule.attribute} attribute in the QIDO-RS answer` : `${rule.csv!.key} ${JSON.stringify(key)} is not in ${rule.csv!.file}`;
        problems.push({ file: l.rel, reason: `no label: ${why}` });
        continue;
      }
      labelled.push({ l, label });
    }
    const fixed = options['classes'];
    if (fixed !== undefined && (!Array.isArray(fixed) || !fixed.every((c): c is string => typeof c === 'string'))) throw new ImportOptionError('option classes must be a list of strings');
    const classes = fixed !== undefined ? [...(fixed as string[])] : [...new Set(labelled.map((x) => x.label))].sort(ordinal);
    const items: ImportItem[] = [];
    for (const { l, label } of labelled) {
      const index = classes.indexOf(label);
      if (index < 0) problems.push({ file: l.rel, reason: `label ${JSON.stringify(label)} is not one of the classes ${JSON.stringify(classes)}` });
      else items.push({ id: l.sop, path: l.rel, label: index });
    }
    return { items, classes, problems, sources };
  },
};
