// The compressed files the decoder is tested on, each made from an uncompressed synthetic
// mammogram by Debian's own tools (dcmtk, gdcm), and for lossy ones the tool that decodes it
// back, whose pixels are the reference. Shared by the live test (tools installed) and by the
// script that refreshes the checked-in fixtures (test/fixtures/dicom/).
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { mammogramDicom, type Depth } from './mammo-dicom.js';

const run = promisify(execFile);

export interface Conversion {
  /** File stem: <name>.dcm, and <name>.ref.dcm for the reference decode of a lossy one. */
  name: string;
  depth: Depth;
  /** Made from the multi-frame original (MULTI_FRAMES frames) rather than the single-frame one. */
  multiframe?: boolean;
  syntax: string;
  /** Command and options; the input and output paths follow. */
  encode: string[];
  /** Lossy only: the Debian decoder whose output the decode must match. */
  reference?: string[];
  /** Lossy only: the largest difference from the original allowed (JPEG-LS NEAR bounds it exactly). */
  maxErrorVsOriginal?: number;
  /** Lossy only: the largest difference from the reference decode allowed (default 1). */
  maxErrorVsReference?: number;
}

export const CONVERSIONS: readonly Conversion[] = [
  { name: 'rle-8', depth: 8, syntax: '1.2.840.10008.1.2.5', encode: ['dcmcrle'] },
  { name: 'rle-16', depth: 16, syntax: '1.2.840.10008.1.2.5', encode: ['dcmcrle'] },
  { name: 'deflated-16', depth: 16, syntax: '1.2.840.10008.1.2.1.99', encode: ['dcmconv', '+td'] },
  { name: 'jpeg-lossless-sv1-8', depth: 8, syntax: '1.2.840.10008.1.2.4.70', encode: ['dcmcjpeg', '+e1'] },
  { name: 'jpeg-lossless-sv1-16', depth: 16, syntax: '1.2.840.10008.1.2.4.70', encode: ['dcmcjpeg', '+e1'] },
  { name: 'jpeg-lossless-p14-12', depth: 12, syntax: '1.2.840.10008.1.2.4.57', encode: ['dcmcjpeg', '+el', '+sv', '6'] },
  { name: 'jpeg-lossless-p14-16', depth: 16, syntax: '1.2.840.10008.1.2.4.57', encode: ['dcmcjpeg', '+el', '+sv', '7'] },
  { name: 'jpeg-ls-16', depth: 16, syntax: '1.2.840.10008.1.2.4.80', encode: ['dcmcjpls'] },
  { name: 'jpeg-ls-12', depth: 12, syntax: '1.2.840.10008.1.2.4.80', encode: ['dcmcjpls'] },
  { name: 'j2k-lossless-16', depth: 16, syntax: '1.2.840.10008.1.2.4.90', encode: ['gdcmconv', '--j2k'] },
  { name: 'j2k-lossless-12', depth: 12, syntax: '1.2.840.10008.1.2.4.90', encode: ['gdcmconv', '--j2k'] },
  { name: 'jpeg-baseline-8', depth: 8, syntax: '1.2.840.10008.1.2.4.50', encode: ['dcmcjpeg', '+eb'], reference: ['dcmdjpeg'], maxErrorVsOriginal: 40 },
  { name: 'jpeg-extended-8', depth: 8, syntax: '1.2.840.10008.1.2.4.51', encode: ['dcmcjpeg', '+ee'], reference: ['dcmdjpeg'], maxErrorVsOriginal: 40 },
  // Process 4: decoded by the same IJG 12-bit library as dcmdjpeg's, so exactly its pixels.
  { name: 'jpeg-extended-12', depth: 12, syntax: '1.2.840.10008.1.2.4.51', encode: ['dcmcjpeg', '+ee'], reference: ['dcmdjpeg'], maxErrorVsOriginal: 64, maxErrorVsReference: 0 },
  { name: 'jpeg-ls-near-12', depth: 12, syntax: '1.2.840.10008.1.2.4.81', encode: ['dcmcjpls', '+en'], reference: ['dcmdjpls'], maxErrorVsOriginal: 2 },
  { name: 'jpeg-ls-near-8', depth: 8, syntax: '1.2.840.10008.1.2.4.81', encode: ['dcmcjpls', '+en'], reference: ['dcmdjpls'], maxErrorVsOriginal: 2 },
  { name: 'j2k-lossy-16', depth: 16, syntax: '1.2.840.10008.1.2.4.91', encode: ['gdcmconv', '--j2k', '--lossy', '-q', '50'], reference: ['gdcmconv', '--raw'], maxErrorVsOriginal: 8000 },
];

export const MULTI_FRAMES = 3;

/** Multi-frame files: refused unless the first frame is asked for. */
export const MULTI_FRAME_CONVERSIONS: readonly Conversion[] = [
  { name: 'multiframe-rle-16', depth: 16, multiframe: true, syntax: '1.2.840.10008.1.2.5', encode: ['dcmcrle'] },
  { name: 'multiframe-jpeg-lossless-sv1-16', depth: 16, multiframe: true, syntax: '1.2.840.10008.1.2.4.70', encode: ['dcmcjpeg', '+e1'] },
  { name: 'multiframe-jpeg-ls-16', depth: 16, multiframe: true, syntax: '1.2.840.10008.1.2.4.80', encode: ['dcmcjpls'] },
];

export const TOOLS = ['dcmcrle', 'dcmconv', 'dcmcjpeg', 'dcmdjpeg', 'dcmcjpls', 'dcmdjpls', 'gdcmconv'];

/** The tools from TOOLS that are not on PATH. */
export async function missingTools(): Promise<string[]> {
  const missing: string[] = [];
  for (const tool of TOOLS) {
    const found = await run('sh', ['-c', `command -v ${tool}`]).then(
      () => true,
      () => false,
    );
    if (!found) missing.push(tool);
  }
  return missing;
}

export function originalName(depth: Depth, multiframe = false): string {
  return multiframe ? `multiframe-original-${depth}.dcm` : `original-${depth}.dcm`;
}

/** Writes the three single-frame originals and the 16-bit multi-frame one into dir. */
export async function writeOriginals(dir: string): Promise<void> {
  for (const depth of [8, 12, 16] as const) await fs.writeFile(path.join(dir, originalName(depth)), mammogramDicom(depth, { width: 40, height: 48 }));
  await fs.writeFile(path.join(dir, originalName(16, true)), mammogramDicom(16, { width: 40, height: 48, frames: MULTI_FRAMES }));
}

/** Runs the conversion (and its reference decode) in dir, next to the originals. */
export async function convert(dir: string, c: Conversion): Promise<void> {
  const out = path.join(dir, `${c.name}.dcm`);
  const [cmd, ...opts] = c.encode;
  await run(cmd, [...opts, path.join(dir, originalName(c.depth, c.multiframe)), out]);
  if (c.reference !== undefined) {
    const [ref, ...refOpts] = c.reference;
    await run(ref, [...refOpts, out, path.join(dir, `${c.name}.ref.dcm`)]);
  }
}
