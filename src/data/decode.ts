// Decoding one image file to size x size uint8 pixels (HWC, 1 or 3 channels), as the paper
// does: resized without keeping the aspect ratio. PNG/JPEG go through sharp; DICOM through
// dicom-pixels.ts (monochrome, uncompressed or compressed), windowed to 8 bits, then sharp.
// Every failure is a DecodeError naming the file, so a run can list all bad files at once.
import { promises as fs } from 'node:fs';
import type { Sharp } from 'sharp';
import type { Samples } from './codecs/frame.js';
import { DecodeError, messageOf } from './decode-error.js';
import { readDicomPixels, type MultiFrame } from './dicom-pixels.js';
import { pilBilinearResize } from './pil-resize.js';

export type Channels = 1 | 3;
/** sharp's (libvips') kernels, and `pil_bilinear`: Pillow's antialiased BILINEAR resize, byte
 *  for byte, which is what the paper's code (torchvision Resize on PIL images) does. */
export type ResizeKernel = 'nearest' | 'linear' | 'cubic' | 'mitchell' | 'lanczos2' | 'lanczos3' | 'pil_bilinear';
export const RESIZE_KERNELS: readonly ResizeKernel[] = ['nearest', 'linear', 'cubic', 'mitchell', 'lanczos2', 'lanczos3', 'pil_bilinear'];
/** 'auto': the file's window centre/width when present, else min-max; 'minmax' always min-max. */
export type DicomWindowing = 'auto' | 'minmax';

export interface DecodeOptions {
  size: number;
  channels: Channels;
  kernel?: ResizeKernel;
  windowing?: DicomWindowing;
  /** DICOM with several frames: refused (default) or its first frame. */
  multiframe?: MultiFrame;
}

export type DicomReadOptions = Pick<DecodeOptions, 'windowing' | 'multiframe'>;

export { DecodeError };

type SharpFactory = (typeof import('sharp'))['default'];
let sharpModule: Promise<SharpFactory> | undefined;

export function loadSharp(): Promise<SharpFactory> {
  sharpModule ??= import('sharp').then((m) => m.default);
  return sharpModule;
}

export function isDicom(path: string, bytes: Uint8Array): boolean {
  if (/\.dcm$/i.test(path)) return true;
  return bytes.length >= 132 && bytes[128] === 0x44 && bytes[129] === 0x49 && bytes[130] === 0x43 && bytes[131] === 0x4d;
}

export interface GrayImage {
  width: number;
  height: number;
  /** One byte per pixel, row-major, 0 = black as displayed. */
  data: Uint8Array;
}

/**
 * DICOM -> 8-bit grey as a radiologist would see it: stored values masked to BitsStored (and
 * sign-extended for PixelRepresentation 1), Modality LUT (rescale slope/intercept), then the
 * VOI linear window (PS3.3 C.11.2.1.2) or min-max, then MONOCHROME1 inverted.
 */
export async function dicomToGray(bytes: Uint8Array, file: string, options: DicomReadOptions = {}): Promise<GrayImage> {
  const px = await readDicomPixels(bytes, file, options.multiframe);
  const ds = px.dataSet;
  const n = px.rows * px.columns;
  const slope = ds.floatString('x00281053') ?? 1;
  const intercept = ds.floatString('x00281052') ?? 0;
  const values = storedValues(px.samples, px.bitsStored, px.signed);
  for (let i = 0; i < n; i++) values[i] = values[i] * slope + intercept;

  const centre = ds.floatString('x00281050', 0);
  const width = ds.floatString('x00281051', 0);
  const out = new Uint8Array(n);
  if ((options.windowing ?? 'auto') === 'auto' && centre !== undefined && width !== undefined && width >= 1) {
    const lo = centre - 0.5 - (width - 1) / 2;
    const hi = centre - 0.5 + (width - 1) / 2;
    for (let i = 0; i < n; i++) {
      const x = values[i];
      out[i] = x <= lo ? 0 : x > hi ? 255 : Math.round(((x - (centre - 0.5)) / (width - 1) + 0.5) * 255);
    }
  } else {
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < n; i++) {
      if (values[i] < min) min = values[i];
      if (values[i] > max) max = values[i];
    }
    const scale = max > min ? 255 / (max - min) : 0;
    for (let i = 0; i < n; i++) out[i] = Math.round((values[i] - min) * scale);
  }
  if (px.photometric === 'MONOCHROME1') for (let i = 0; i < n; i++) out[i] = 255 - out[i];
  return { width: px.columns, height: px.rows, data: out };
}

/** Stored values masked to BitsStored and, for signed pixels, sign-extended from its top bit. */
export function storedValues(samples: Samples, bitsStored: number, signed: boolean): Float32Array {
  const n = samples.length;
  const values = new Float32Array(n);
  const mask = bitsStored >= 32 ? 0xffffffff : 2 ** bitsStored - 1;
  const signBit = 2 ** (bitsStored - 1);
  for (let i = 0; i < n; i++) {
    let v = samples[i] & mask;
    if (signed && v >= signBit) v -= 2 * signBit;
    values[i] = v;
  }
  return values;
}

/** Resizes (aspect not kept) and fixes the channel count; sharp does the work off the JS thread,
 *  except Pillow's resize, which runs here after the channel conversion (PIL: convert, then
 *  resize). */
async function finish(image: Sharp, file: string, options: DecodeOptions): Promise<Uint8Array> {
  const { size, channels } = options;
  const kernel = options.kernel ?? 'lanczos3';
  if (kernel === 'pil_bilinear') {
    const converted = image.removeAlpha().toColourspace(channels === 1 ? 'b-w' : 'srgb');
    const { data, info } = await converted.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    if (info.channels !== channels) throw new DecodeError(file, `decoder produced ${info.channels} channels, expected ${channels}`);
    return pilBilinearResize(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), info.width, info.height, channels, size, size);
  }
  let pipeline = image.removeAlpha().resize(size, size, { fit: 'fill', kernel });
  pipeline = channels === 1 ? pipeline.toColourspace('b-w') : pipeline.toColourspace('srgb');
  const { data, info } = await pipeline.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  if (info.width !== size || info.height !== size || info.channels !== channels) {
    throw new DecodeError(file, `decoder produced ${info.width}x${info.height}x${info.channels}, expected ${size}x${size}x${channels}`);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Reads and decodes absPath; `file` is the name errors show (the path relative to the root). */
export async function decodeFile(absPath: string, file: string, options: DecodeOptions): Promise<Uint8Array> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(absPath);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DecodeError(file, code === 'ENOENT' ? 'missing file' : `cannot read: ${messageOf(e)}`);
  }
  return decodeBytes(bytes, file, options);
}

export async function decodeBytes(bytes: Uint8Array, file: string, options: DecodeOptions): Promise<Uint8Array> {
  if (bytes.length === 0) throw new DecodeError(file, 'empty file (0 bytes)');
  const sharp = await loadSharp();
  try {
    if (isDicom(file, bytes)) {
      const gray = await dicomToGray(bytes, file, options);
      return await finish(sharp(gray.data, { raw: { width: gray.width, height: gray.height, channels: 1 } }), file, options);
    }
    // failOn 'warning' makes libjpeg/libpng's "premature end of data" an error: a truncated
    // download must not pass as an image with a grey bottom half.
    return await finish(sharp(bytes, { failOn: 'warning', limitInputPixels: false }), file, options);
  } catch (e) {
    if (e instanceof DecodeError) throw e;
    throw new DecodeError(file, `undecodable image: ${messageOf(e)}`);
  }
}
