// Refreshes test/fixtures/dicom/ (needs dcmtk and gdcm-tools on PATH):
//   npx tsc -p tsconfig.json && node dist/test/support/make-dicom-fixtures.js
// The files are checked in so the decoder tests run where Debian's tools are not installed.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { convert, CONVERSIONS, missingTools, MULTI_FRAME_CONVERSIONS, writeOriginals } from './dicom-conversions.js';

const dir = path.resolve('test/fixtures/dicom');
const missing = await missingTools();
if (missing.length > 0) throw new Error(`make-dicom-fixtures: missing ${missing.join(', ')} (apt-get install dcmtk libgdcm-tools)`);
await fs.rm(dir, { recursive: true, force: true });
await fs.mkdir(dir, { recursive: true });
await writeOriginals(dir);
for (const c of [...CONVERSIONS, ...MULTI_FRAME_CONVERSIONS]) await convert(dir, c);
console.log(`wrote ${(await fs.readdir(dir)).length} files to ${dir}`);
