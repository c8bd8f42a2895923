// Map upsampling on plain typed arrays (HWC, row-major), so the maps' geometry is testable
// without tfjs and identical on every backend.

/**
 * Bilinear resize with pixel-centre alignment (torch's interpolate(align_corners=False) and
 * cv2.resize, which pytorch-grad-cam uses), clamping at the borders. Works for any channel
 * count: Grad-CAM maps (1) and RGB panels (3).
 */
export function resizeBilinear(src: ArrayLike<number>, h: number, w: number, channels: number, outH: number, outW: number): Float32Array {
  if (src.length !== h * w * channels) throw new Error(`resizeBilinear: ${src.length} values for ${h}x${w}x${channels}`);
  const out = new Float32Array(outH * outW * channels);
  const sy = h / outH;
  const sx = w / outW;
  for (let oy = 0; oy < outH; oy++) {
    const fy = Math.min(Math.max((oy + 0.5) * sy - 0.5, 0), h - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, h - 1);
    const wy = fy - y0;
    for (let ox = 0; ox < outW; ox++) {
      const fx = Math.min(Math.max((ox + 0.5) * sx - 0.5, 0), w - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, w - 1);
      const wx = fx - x0;
      for (let c = 0; c < channels; c++) {
        const a = src[(y0 * w + x0) * channels + c];
        const b = src[(y0 * w + x1) * channels + c];
        const d = src[(y1 * w + x0) * channels + c];
        const e = src[(y1 * w + x1) * channels + c];
        const top = a + (b - a) * wx;
        const bottom = d + (e - d) * wx;
        out[(oy * outW + ox) * channels + c] = top + (bottom - top) * wy;
      }
    }
  }
  return out;
}

/** Each cell of a g x g grid becomes a factor x factor block: DINO's
 *  interpolate(scale_factor=patch_size, mode="nearest"), one patch per token. */
export function upsampleNearest(src: ArrayLike<number>, h: number, w: number, factor: number): Float32Array {
  if (src.length !== h * w) throw new Error(`upsampleNearest: ${src.length} values for ${h}x${w}`);
  if (!Number.isInteger(factor) || factor < 1) throw new Error(`upsampleNearest: factor must be a positive integer, got ${factor}`);
  const W = w * factor;
  const out = new Float32Array(h * factor * W);
  for (let y = 0; y < h * factor; y++) {
    const row = Math.floor(y / factor) * w;
    for (let x = 0; x < W; x++) out[y * W + x] = src[row + Math.floor(x / factor)];
  }
  return out;
}
