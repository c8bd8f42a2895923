// DICOM transfer syntaxes: which ones the decoder reads and how (uncompressed, deflated, or
// encapsulated through a codec family), and names for all of them, so an error can say
// "MPEG2 Main Profile" rather than a bare UID.
import type { CodecFamily } from './codecs/frame-decoders.js';

export const IMPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2';
export const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';
export const EXPLICIT_VR_BIG_ENDIAN = '1.2.840.10008.1.2.2';
export const DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1.99';

/** 'native': pixels stored as is; 'deflate': the whole data set zlib-deflated; else a codec. */
export type PixelEncoding = 'native' | 'deflate' | CodecFamily;

interface SyntaxInfo {
  name: string;
  /** Absent: recognised but not decoded. */
  encoding?: PixelEncoding;
}

const SYNTAXES: Readonly<Record<string, SyntaxInfo>> = {
  [IMPLICIT_VR_LITTLE_ENDIAN]: { name: 'Implicit VR Little Endian', encoding: 'native' },
  [EXPLICIT_VR_LITTLE_ENDIAN]: { name: 'Explicit VR Little Endian', encoding: 'native' },
  [EXPLICIT_VR_BIG_ENDIAN]: { name: 'Explicit VR Big Endian', encoding: 'native' },
  [DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN]: { name: 'Deflated Explicit VR Little Endian', encoding: 'deflate' },
  '1.2.840.10008.1.2.5': { name: 'RLE Lossless', encoding: 'rle' },
  '1.2.840.10008.1.2.4.50': { name: 'JPEG Baseline (Process 1)', encoding: 'jpeg-baseline' },
  '1.2.840.10008.1.2.4.51': { name: 'JPEG Extended (Process 2 & 4)', encoding: 'jpeg-baseline' },
  '1.2.840.10008.1.2.4.57': { name: 'JPEG Lossless, Non-Hierarchical (Process 14)', encoding: 'jpeg-lossless' },
  '1.2.840.10008.1.2.4.70': {
    name: 'JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [Selection Value 1])',
    encoding: 'jpeg-lossless',
  },
  '1.2.840.10008.1.2.4.80': { name: 'JPEG-LS Lossless Image Compression', encoding: 'jpeg-ls' },
  '1.2.840.10008.1.2.4.81': { name: 'JPEG-LS Lossy (Near-Lossless) Image Compression', encoding: 'jpeg-ls' },
  '1.2.840.10008.1.2.4.90': { name: 'JPEG 2000 Image Compression (Lossless Only)', encoding: 'jpeg-2000' },
  '1.2.840.10008.1.2.4.91': { name: 'JPEG 2000 Image Compression', encoding: 'jpeg-2000' },
  '1.2.840.10008.1.2.4.100': { name: 'MPEG2 Main Profile / Main Level' },
  '1.2.840.10008.1.2.4.201': { name: 'High-Throughput JPEG 2000 Image Compression (Lossless Only)' },
  '1.2.840.10008.1.2.4.203': { name: 'High-Throughput JPEG 2000 Image Compression' },
};

export function syntaxName(uid: string): string {
  return SYNTAXES[uid]?.name ?? 'unknown transfer syntax';
}

export function pixelEncoding(uid: string): PixelEncoding | undefined {
  return SYNTAXES[uid]?.encoding;
}

/** Every syntax the decoder reads, for error messages and the README. */
export const SUPPORTED_SYNTAXES: readonly string[] = Object.keys(SYNTAXES).filter((uid) => SYNTAXES[uid].encoding !== undefined);
