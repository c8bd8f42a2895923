// DICOM RLE Lossless (PS3.5 Annex G) for one monochrome frame: a 64-byte header of up to 15
// segment offsets, one PackBits-coded segment per byte plane, most significant plane first.
import { CodecError, type FrameSpec, type Samples } from './frame.js';

export function decodeRle(frame: Uint8Array, spec: FrameSpec): Samples {
  const n = spec.rows * spec.columns;
  const planes = spec.bitsAllocated / 8;
  if (frame.length < 64) throw new CodecError(`RLE frame of ${frame.length} bytes has no 64-byte segment header`);
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const segments = view.getUint32(0, true);
  if (segments !== planes) {
    throw new CodecError(`RLE frame has ${segments} segments, expected ${planes} for one ${spec.bitsAllocated}-bit sample per pixel`);
  }
  const offsets: number[] = [];
  for (let s = 0; s < segments; s++) offsets.push(view.getUint32(4 + 4 * s, true));
  offsets.push(frame.length);
  const bytes = new Uint8Array(n * planes);
  for (let s = 0; s < segments; s++) {
    const start = offsets[s];
    const end = offsets[s + 1];
    if (start < 64 || end < start || end > frame.length) throw new CodecError(`RLE segment ${s + 1} has a bad offset (${start})`);
    const plane = unpackBits(frame.subarray(start, end), n, s + 1);
    // Little-endian sample bytes: the first (most significant) segment is the high byte.
    const byte = planes - 1 - s;
    for (let i = 0; i < n; i++) bytes[i * planes + byte] = plane[i];
  }
  if (planes === 1) return bytes;
  return spec.signed ? new Int16Array(bytes.buffer, 0, n) : new Uint16Array(bytes.buffer, 0, n);
}

function unpackBits(src: Uint8Array, n: number, segment: number): Uint8Array {
  const out = new Uint8Array(n);
  let o = 0;
  let i = 0;
  while (o < n && i < src.length) {
    const h = (src[i++] << 24) >> 24;
    if (h >= 0) {
      const count = h + 1;
      if (i + count > src.length || o + count > n) throw new CodecError(`RLE segment ${segment}: literal run past the end`);
      out.set(src.subarray(i, i + count), o);
      i += count;
      o += count;
    } else if (h !== -128) {
      const count = 1 - h;
      if (i >= src.length || o + count > n) throw new CodecError(`RLE segment ${segment}: replicate run past the end`);
      out.fill(src[i++], o, o + count);
      o += count;
    }
  }
  if (o < n) throw new CodecError(`RLE segment ${segment} decodes to ${o} bytes, expected ${n} (truncated?)`);
  return out;
}
