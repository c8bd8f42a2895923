// Uncompressed synthetic mammograms at the bit depths clinical archives use, as the originals
// that Debian's DICOM tools compress for the decoder tests.
import { writeDicom, syntheticUid } from '../../src/data/dicom-write.js';
import { Rng } from '../../src/data/rng.js';
import { drawMammogram } from '../../src/data/synthetic/mammo.js';

export type Depth = 8 | 12 | 16;

export interface MammoDicomOptions {
  width?: number;
  height?: number;
  /** Each frame is a different mammogram. */
  frames?: number;
  seed?: number;
}

export function mammogramDicom(depth: Depth, options: MammoDicomOptions = {}): Uint8Array {
  const { width = 96, height = 120, frames = 1, seed = 21 } = options;
  const max = 2 ** depth - 1;
  const n = width * height;
  const pixels = depth === 8 ? new Uint8Array(n * frames) : new Uint16Array(n * frames);
  for (let f = 0; f < frames; f++) {
    const findings = { side: f % 2 === 0 ? 'LEFT' : 'RIGHT', view: 'MLO', mass: 'malignant', calcifications: true } as const;
    const image = drawMammogram(width, height, findings, new Rng(seed, depth, f));
    for (let i = 0; i < n; i++) pixels[f * n + i] = Math.max(0, Math.min(max, Math.round(image.data[i] * max)));
  }
  return writeDicom({
    rows: height,
    columns: width,
    bitsAllocated: depth === 8 ? 8 : 16,
    bitsStored: depth,
    pixels,
    ...(frames > 1 ? { frames } : {}),
    sopInstanceUid: syntheticUid(seed, depth, frames, 3),
    studyInstanceUid: syntheticUid(seed, depth, frames, 1),
    seriesInstanceUid: syntheticUid(seed, depth, frames, 2),
  });
}
