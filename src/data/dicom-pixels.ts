// A DICOM file's stored pixel values for one frame, whatever its transfer syntax: read as is
// (uncompressed), after inflating the data set (deflated), or through the codec of its family
// (encapsulated). What the values mean (rescale, window, MONOCHROME1) is decode.ts's job.
import { inflateRawSync } from 'node:zlib';
import type * as DicomParser from 'dicom-parser';
import { decodeFrame, type CodecFamily } from './codecs/frame-decoders.js';
import { CodecError, type Samples } from './codecs/frame.js';
import { DecodeError, messageOf } from './decode-error.js';
import { EXPLICIT_VR_BIG_ENDIAN, pixelEncoding, SUPPORTED_SYNTAXES, syntaxName } from './dicom-syntax.js';

/** 'refuse': a file with more than one frame is an error; 'first': its first frame is used. */
export type MultiFrame = 'refuse' | 'first';
export const MULTI_FRAME_MODES: readonly MultiFrame[] = ['refuse', 'first'];

export interface DicomPixels {
  syntax: string;
  rows: number;
  columns: number;
  bitsStored: number;
  signed: boolean;
  photometric: 'MONOCHROME1' | 'MONOCHROME2';
  /** Stored values of the frame, unmasked: BitsStored and the sign are applied by the reader. */
  samples: Samples;
  dataSet: DicomParser.DataSet;
}

type DicomParserModule = typeof DicomParser;
let dicomParserModule: Promise<DicomParserModule> | undefined;

/** dicom-parser ships a UMD bundle: under ESM its API sits on the default export. */
export function loadDicomParser(): Promise<DicomParserModule> {
  dicomParserModule ??= import('dicom-parser').then((m) => {
    const mod = m as unknown as { default?: DicomParserModule } & DicomParserModule;
    return mod.default ?? mod;
  });
  return dicomParserModule;
}

/** A deflated data set larger than this is refused rather than inflated (a zip bomb guard). */
const MAX_INFLATED_BYTES = 1 << 30;

export async function readDicomPixels(bytes: Uint8Array, file: string, multiframe: MultiFrame = 'refuse'): Promise<DicomPixels> {
  const dp = await loadDicomParser();
  let syntax: string | undefined;
  try {
    syntax = dp.readPart10Header(bytes).string('x00020010');
  } catch (e) {
    throw new DecodeError(file, `not a DICOM Part-10 file: ${messageOf(e)}`);
  }
  if (syntax === undefined) throw new DecodeError(file, 'DICOM file meta lacks the Transfer Syntax UID (0002,0010)');
  syntax = syntax.replace(/\0/g, '').trim();
  const encoding = pixelEncoding(syntax);
  if (encoding === undefined) {
    throw new DecodeError(
      file,
      `unsupported DICOM transfer syntax ${syntax} (${syntaxName(syntax)}); the syntaxes read are ` +
        `${SUPPORTED_SYNTAXES.map((s) => `${s} ${syntaxName(s)}`).join(', ')} — convert the file, e.g. with dcmdjpeg/gdcmconv --raw`,
    );
  }
  let ds: DicomParser.DataSet;
  try {
    ds = dp.parseDicom(bytes, encoding === 'deflate' ? { inflater: inflater(file) as never } : undefined);
  } catch (e) {
    if (e instanceof DecodeError) throw e;
    throw new DecodeError(file, `truncated or corrupt DICOM: ${messageOf(e)}`);
  }
  const rows = ds.uint16('x00280010');
  const columns = ds.uint16('x00280011');
  const bitsAllocated = ds.uint16('x00280100');
  const bitsStored = ds.uint16('x00280101') ?? bitsAllocated;
  const signed = (ds.uint16('x00280103') ?? 0) === 1;
  const samplesPerPixel = ds.uint16('x00280002') ?? 1;
  const photometric = (ds.string('x00280004') ?? 'MONOCHROME2').trim().toUpperCase();
  const frames = ds.intString('x00280008') ?? 1;
  const pixel = ds.elements['x7fe00010'];
  if (!rows || !columns || !bitsAllocated || !bitsStored) {
    throw new DecodeError(file, 'DICOM lacks Rows/Columns/BitsAllocated (not an image?)');
  }
  if (samplesPerPixel !== 1 || (photometric !== 'MONOCHROME1' && photometric !== 'MONOCHROME2')) {
    throw new DecodeError(file, `only monochrome DICOM is supported, got ${photometric} with ${samplesPerPixel} samples per pixel`);
  }
  if (bitsAllocated !== 8 && bitsAllocated !== 16) {
    throw new DecodeError(file, `only 8- or 16-bit DICOM pixels are supported, got BitsAllocated ${bitsAllocated}`);
  }
  if (!pixel) throw new DecodeError(file, 'DICOM has no Pixel Data (7FE0,0010)');
  if (frames > 1 && multiframe === 'refuse') {
    throw new DecodeError(file, `multi-frame DICOM (${frames} frames) is refused; set the preprocess parameter multiframe: first to use its first frame`);
  }
  const spec = { rows, columns, bitsAllocated, signed };
  let samples: Samples;
  if (encoding === 'native' || encoding === 'deflate') {
    samples = nativeSamples(ds, pixel, spec, syntax === EXPLICIT_VR_BIG_ENDIAN, file);
  } else {
    if (!pixel.encapsulatedPixelData) throw new DecodeError(file, `${syntaxName(syntax)} pixel data is not encapsulated (corrupt file?)`);
    const frame = firstFrame(dp, ds, pixel, frames, encoding, file);
    try {
      samples = await decodeFrame(encoding, frame, spec);
    } catch (e) {
      if (e instanceof CodecError) throw new DecodeError(file, `${syntaxName(syntax)}: ${e.message}`);
      throw e;
    }
  }
  return { syntax, rows, columns, bitsStored, signed, photometric, samples, dataSet: ds };
}

function inflater(file: string): (arr: Uint8Array, position: number) => Uint8Array {
  return (arr, position) => {
    let inflated: Buffer;
    try {
      inflated = inflateRawSync(arr.subarray(position), { maxOutputLength: MAX_INFLATED_BYTES });
    } catch (e) {
      throw new DecodeError(file, `deflated data set does not inflate: ${messageOf(e)}`);
    }
    const full = new Uint8Array(position + inflated.length);
    full.set(arr.subarray(0, position));
    full.set(inflated, position);
    return full;
  };
}

function nativeSamples(ds: DicomParser.DataSet, pixel: DicomParser.Element, spec: { rows: number; columns: number; bitsAllocated: number; signed: boolean }, bigEndian: boolean, file: string): Samples {
  const n = spec.rows * spec.columns;
  const bytesPer = spec.bitsAllocated / 8;
  const bytes = ds.byteArray;
  const available = Math.min(pixel.length, bytes.length - pixel.dataOffset);
  if (available < n * bytesPer) {
    throw new DecodeError(file, `truncated DICOM pixel data: ${Math.max(0, available)} bytes, expected ${n * bytesPer} for ${spec.columns}x${spec.rows}x${spec.bitsAllocated}-bit`);
  }
  if (bytesPer === 1) return bytes.subarray(pixel.dataOffset, pixel.dataOffset + n);
  const out = spec.signed ? new Int16Array(n) : new Uint16Array(n);
  const view = new DataView(bytes.buffer, bytes.byteOffset + pixel.dataOffset, 2 * n);
  for (let i = 0; i < n; i++) out[i] = view.getUint16(2 * i, !bigEndian);
  return out;
}

function firstFrame(dp: DicomParserModule, ds: DicomParser.DataSet, pixel: DicomParser.Element, frames: number, family: CodecFamily, file: string): Uint8Array {
  const fragments = pixel.fragments ?? [];
  if (fragments.length === 0) throw new DecodeError(file, 'encapsulated Pixel Data has no fragments');
  try {
    if (frames === 1) return dp.readEncapsulatedPixelDataFromFragments(ds, pixel, 0, fragments.length);
    if ((pixel.basicOffsetTable ?? []).length > 0) return dp.readEncapsulatedImageFrame(ds, pixel, 0);
    if (fragments.length === frames) return dp.readEncapsulatedPixelDataFromFragments(ds, pixel, 0, 1);
    if (family === 'jpeg-baseline' || family === 'jpeg-lossless') return dp.readEncapsulatedImageFrame(ds, pixel, 0, dp.createJPEGBasicOffsetTable(ds, pixel));
  } catch (e) {
    throw new DecodeError(file, `encapsulated Pixel Data: ${messageOf(e)}`);
  }
  throw new DecodeError(file, `cannot find where the first of ${frames} frames ends: no Basic Offset Table and ${fragments.length} fragments`);
}
