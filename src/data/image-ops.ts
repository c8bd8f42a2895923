// Pure typed-array image operations on HWC pixels for the loader's augmentations. Channel values
// are floats in [0, 1] once read from uint8 records. Bilinear sampling uses pixel centres
// (align_corners=False, as torch's interpolate) and clamps at the sampled box's edges, as if the
// box had been cropped out first, which is what torchvision does.

export interface Box {
  top: number;
  left: number;
  height: number;
  width: number;
}

export interface ImageView {
  data: ArrayLike<number>;
  height: number;
  width: number;
  channels: number;
  /** Multiplier taking stored values to [0, 1] (1/255 for uint8). */
  scale: number;
}

/**
 * Resamples `box` of `src` to outH x outW (bilinear), optionally mirrored, writing [0, 1] floats
 * into out at offset. One pass does crop + resize + flips, so no intermediate images exist.
 */
export function sampleBox(src: ImageView, box: Box, outH: number, outW: number, hflip: boolean, vflip: boolean, out: Float32Array, offset: number): void {
  const { data, width, channels: c, scale } = src;
  const sy = box.height / outH;
  const sx = box.width / outW;
  const maxY = box.top + box.height - 1;
  const maxX = box.left + box.width - 1;
  // A column's taps and weight depend on ox alone: worked out once per call, not once per row.
  const col0 = new Int32Array(outW);
  const col1 = new Int32Array(outW);
  const colW = new Float64Array(outW);
  for (let ox = 0; ox < outW; ox++) {
    const tx = hflip ? outW - 1 - ox : ox;
    let fx = box.left + (tx + 0.5) * sx - 0.5;
    fx = fx < box.left ? box.left : fx > maxX ? maxX : fx;
    const x0 = Math.floor(fx);
    col0[ox] = x0 * c;
    col1[ox] = (x0 < maxX ? x0 + 1 : x0) * c;
    colW[ox] = fx - x0;
  }
  const rowStride = width * c;
  for (let oy = 0; oy < outH; oy++) {
    const ty = vflip ? outH - 1 - oy : oy;
    let fy = box.top + (ty + 0.5) * sy - 0.5;
    fy = fy < box.top ? box.top : fy > maxY ? maxY : fy;
    const y0 = Math.floor(fy);
    const y1 = y0 < maxY ? y0 + 1 : y0;
    const wy = fy - y0;
    const row0 = y0 * rowStride;
    const row1 = y1 * rowStride;
    let o = offset + oy * outW * c;
    for (let ox = 0; ox < outW; ox++, o += c) {
      const wx = colW[ox]!;
      const a = row0 + col0[ox]!;
      const b = row0 + col1[ox]!;
      const d = row1 + col0[ox]!;
      const e = row1 + col1[ox]!;
      for (let ch = 0; ch < c; ch++) {
        const pa = data[a + ch]!;
        const pd = data[d + ch]!;
        const top = pa + (data[b + ch]! - pa) * wx;
        const bottom = pd + (data[e + ch]! - pd) * wx;
        out[o + ch] = (top + (bottom - top) * wy) * scale;
      }
    }
  }
}

/** Resize so the shorter side is `size`, keeping aspect (torchvision Resize(int)). */
export function resizeShorter(src: ImageView, size: number): ImageView {
  if (Math.min(src.height, src.width) === size) return src;
  const h = src.height <= src.width ? size : Math.floor((size * src.height) / src.width);
  const w = src.width <= src.height ? size : Math.floor((size * src.width) / src.height);
  const out = new Float32Array(h * w * src.channels);
  sampleBox(src, { top: 0, left: 0, height: src.height, width: src.width }, h, w, false, false, out, 0);
  return { data: out, height: h, width: w, channels: src.channels, scale: 1 };
}

const clamp01 = (v: number): number => (v < 0 ? 0 : v > 1 ? 1 : v);

/** torchvision adjust_brightness: blend with black. */
export function adjustBrightness(px: Float32Array, offset: number, n: number, factor: number): void {
  for (let i = offset; i < offset + n; i++) px[i] = clamp01(px[i] * factor);
}

function greyAt(px: Float32Array, i: number, c: number): number {
  return c === 3 ? 0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2] : px[i];
}

/** torchvision adjust_contrast: blend with the mean grey level of the whole image. */
export function adjustContrast(px: Float32Array, offset: number, n: number, c: number, factor: number): void {
  let sum = 0;
  for (let i = offset; i < offset + n; i += c) sum += greyAt(px, i, c);
  const mean = sum / (n / c);
  for (let i = offset; i < offset + n; i++) px[i] = clamp01(factor * px[i] + (1 - factor) * mean);
}

/** torchvision adjust_saturation: blend with the per-pixel grey. No-op for one channel. */
export function adjustSaturation(px: Float32Array, offset: number, n: number, c: number, factor: number): void {
  if (c !== 3) return;
  for (let i = offset; i < offset + n; i += 3) {
    const g = greyAt(px, i, 3);
    for (let k = 0; k < 3; k++) px[i + k] = clamp01(factor * px[i + k] + (1 - factor) * g);
  }
}

/** torchvision adjust_hue: rotate the hue by `shift` turns (in [-0.5, 0.5]) in HSV. */
export function adjustHue(px: Float32Array, offset: number, n: number, c: number, shift: number): void {
  if (c !== 3 || shift === 0) return;
  for (let i = offset; i < offset + n; i += 3) {
    const r = px[i];
    const g = px[i + 1];
    const b = px[i + 2];
    const max = Math.max(r, g, b);
    const min = Math.min(r, g, b);
    const delta = max - min;
    let h = 0;
    if (delta > 0) {
      if (max === r) h = ((g - b) / delta) % 6;
      else if (max === g) h = (b - r) / delta + 2;
      else h = (r - g) / delta + 4;
      h /= 6;
    }
    h = (((h + shift) % 1) + 1) % 1;
    const s = max === 0 ? 0 : delta / max;
    const v = max;
    const h6 = h * 6;
    const k = Math.floor(h6);
    const f = h6 - k;
    const p = v * (1 - s);
    const q = v * (1 - s * f);
    const t = v * (1 - s * (1 - f));
    let r2: number;
    let g2: number;
    let b2: number;
    switch (k % 6) {
      case 0:
        (r2 = v), (g2 = t), (b2 = p);
        break;
      case 1:
        (r2 = q), (g2 = v), (b2 = p);
        break;
      case 2:
        (r2 = p), (g2 = v), (b2 = t);
        break;
      case 3:
        (r2 = p), (g2 = q), (b2 = v);
        break;
      case 4:
        (r2 = t), (g2 = p), (b2 = v);
        break;
      default:
        (r2 = v), (g2 = p), (b2 = q);
    }
    px[i] = r2;
    px[i + 1] = g2;
    px[i + 2] = b2;
  }
}

/** (x - mean[c]) / std[c] in place. */
export function normalise(px: Float32Array, offset: number, n: number, c: number, mean: readonly number[], std: readonly number[]): void {
  for (let i = 0; i < n; i++) {
    const ch = i % c;
    px[offset + i] = (px[offset + i] - (mean[ch] ?? 0)) / (std[ch] || 1);
  }
}
