// Resampling a ViT's absolute position embedding to another patch grid, as timm's
// resample_abs_pos_embed does when a checkpoint meets a model of another input size:
// F.interpolate(mode='bicubic', antialias=True, align_corners=False) over the patch grid,
// prefix (CLS) tokens untouched. PyTorch's antialiased bicubic is PIL's resampler: Keys'
// cubic with a = -0.5, the kernel widened by the scale when shrinking, weights normalised
// over the taps that fall inside the grid (no edge clamping). It is separable and linear,
// so it is a matrix per axis; the same matrices serve the load-time (JS) and the
// differentiable (tfjs) paths.

function keysCubic(x: number): number {
  const a = -0.5;
  const t = Math.abs(x);
  if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
  return 0;
}

/** Row-major [outSize, inSize] weights of the 1-D antialiased bicubic resample. */
export function resampleMatrix(inSize: number, outSize: number): Float32Array {
  const m = new Float32Array(outSize * inSize);
  const scale = inSize / outSize;
  const support = scale >= 1 ? 2 * scale : 2;
  const invScale = scale >= 1 ? 1 / scale : 1;
  for (let i = 0; i < outSize; i++) {
    const center = scale * (i + 0.5);
    // Math.trunc, as the C++ int64 cast; then clamped into the grid.
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize);
    const w: number[] = [];
    let total = 0;
    for (let j = xmin; j < xmax; j++) {
      const v = keysCubic((j - center + 0.5) * invScale);
      w.push(v);
      total += v;
    }
    for (let j = xmin; j < xmax; j++) m[i * inSize + j] = total !== 0 ? w[j - xmin] / total : 0;
  }
  return m;
}

/**
 * pos_embed [1, prefix + g0*g0, D] -> [1, prefix + g1*g1, D] (square grids, row-major
 * tokens), in double precision then rounded once.
 */
export function resamplePosEmbed(data: Float32Array, shape: readonly number[], newGrid: number, prefix = 1): { shape: number[]; data: Float32Array } {
  const [one, n, D] = shape;
  const g0 = Math.round(Math.sqrt(n - prefix));
  if (one !== 1 || shape.length !== 3 || g0 * g0 !== n - prefix) {
    throw new Error(`pos_embed of shape [${shape}] is not [1, ${prefix} + g*g, dim] for a square grid`);
  }
  const out = new Float32Array((prefix + newGrid * newGrid) * D);
  out.set(data.subarray(0, prefix * D));
  const W = resampleMatrix(g0, newGrid);
  // Rows first (over y), then columns (over x); exact order matters only in rounding.
  const tmp = new Float64Array(newGrid * g0 * D);
  for (let i = 0; i < newGrid; i++)
    for (let a = 0; a < g0; a++) {
      const w = W[i * g0 + a];
      if (w === 0) continue;
      for (let b = 0; b < g0; b++) {
        const src = (prefix + a * g0 + b) * D;
        const dst = (i * g0 + b) * D;
        for (let d = 0; d < D; d++) tmp[dst + d] += w * data[src + d];
      }
    }
  for (let i = 0; i < newGrid; i++)
    for (let j = 0; j < newGrid; j++) {
      const acc = new Float64Array(D);
      for (let b = 0; b < g0; b++) {
        const w = W[j * g0 + b];
        if (w === 0) continue;
        const src = (i * g0 + b) * D;
        for (let d = 0; d < D; d++) acc[d] += w * tmp[src + d];
      }
      out.set(acc, (prefix + i * newGrid + j) * D);
    }
  return { shape: [1, prefix + newGrid * newGrid, D], data: out };
}
