// Pillow's Image.resize(size, Image.BILINEAR) for 8-bit images, byte for byte: the resize the
// paper's code runs (torchvision Resize((256, 256)) on PIL images). Pillow's bilinear is
// antialiased: when shrinking, the triangle filter widens with the scale factor, so every
// source pixel contributes (libvips' linear kernel, sharp's, samples differently).
// Same arithmetic as Pillow's Resample.c: double-precision filter weights normalised per
// output pixel, rounded to 22-bit fixed point; a horizontal pass to a uint8 image (only over
// the rows the vertical pass reads), then a vertical pass; rounding and clipping as clip8.

const PRECISION_BITS = 32 - 8 - 2;

interface Coefficients {
  /** Per output pixel: first source index and number of taps. */
  bounds: Int32Array;
  /** Fixed-point weights, `ksize` per output pixel. */
  kk: Int32Array;
  ksize: number;
}

function bilinear(x: number): number {
  const a = x < 0 ? -x : x;
  return a < 1 ? 1 - a : 0;
}

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc for the support of one axis. */
function coefficients(inSize: number, outSize: number): Coefficients {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = 1 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const weights = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    // C's (int) truncates toward zero.
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = bilinear((x + xmin - center + 0.5) * ss);
      weights[x] = w;
      ww += w;
    }
    for (let x = 0; x < ksize; x++) {
      const w = x < xmax ? (ww !== 0 ? weights[x]! / ww : weights[x]!) : 0;
      kk[xx * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * (1 << PRECISION_BITS)) : Math.trunc(0.5 + w * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { bounds, kk, ksize };
}

function clip8(v: number): number {
  const s = v >> PRECISION_BITS;
  return s < 0 ? 0 : s > 255 ? 255 : s;
}

/**
 * Resizes HWC uint8 pixels (any channel count) to outW x outH as Pillow's BILINEAR resize.
 * Returns `src` itself when the size does not change (Pillow copies).
 */
export function pilBilinearResize(src: Uint8Array, width: number, height: number, channels: number, outW: number, outH: number): Uint8Array {
  if (src.length !== width * height * channels) throw new Error(`pilBilinearResize: ${src.length} bytes are not ${width}x${height}x${channels}`);
  if (outW < 1 || outH < 1) throw new Error(`pilBilinearResize: output size ${outW}x${outH}`);
  if (outW === width && outH === height) return src;
  const c = channels;
  const needH = outW !== width;
  const needV = outH !== height;
  const vert = needV ? coefficients(height, outH) : undefined;
  // The horizontal pass covers only the source rows the vertical pass reads.
  let rowFirst = 0;
  let rowCount = height;
  if (vert) {
    rowFirst = vert.bounds[0]!;
    const lastOut = outH - 1;
    rowCount = vert.bounds[lastOut * 2]! + vert.bounds[lastOut * 2 + 1]! - rowFirst;
  }
  let mid = src;
  let midRows = height;
  let midOffset = 0;
  if (needH) {
    const { bounds, kk, ksize } = coefficients(width, outW);
    mid = new Uint8Array(rowCount * outW * c);
    const half = 1 << (PRECISION_BITS - 1);
    for (let y = 0; y < rowCount; y++) {
      const inRow = (y + rowFirst) * width * c;
      const outRow = y * outW * c;
      for (let xx = 0; xx < outW; xx++) {
        const xmin = bounds[xx * 2]!;
        const xmax = bounds[xx * 2 + 1]!;
        const k = xx * ksize;
        for (let ch = 0; ch < c; ch++) {
          let ss = half;
          for (let x = 0; x < xmax; x++) ss += src[inRow + (x + xmin) * c + ch]! * kk[k + x]!;
          mid[outRow + xx * c + ch] = clip8(ss);
        }
      }
    }
    midRows = rowCount;
    midOffset = rowFirst;
  }
  if (!vert) return mid;
  const { bounds, kk, ksize } = vert;
  const out = new Uint8Array(outH * outW * c);
  const rowLen = outW * c;
  const half = 1 << (PRECISION_BITS - 1);
  for (let yy = 0; yy < outH; yy++) {
    const ymin = bounds[yy * 2]! - midOffset;
    const ymax = bounds[yy * 2 + 1]!;
    if (ymin < 0 || ymin + ymax > midRows) throw new Error('pilBilinearResize: row bounds outside the intermediate image');
    const k = yy * ksize;
    for (let i = 0; i < rowLen; i++) {
      let ss = half;
      for (let y = 0; y < ymax; y++) ss += mid[(y + ymin) * rowLen + i]! * kk[k + y]!;
      out[yy * rowLen + i] = clip8(ss);
    }
  }
  return out;
}
