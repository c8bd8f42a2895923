// An independent reference for the model tests: PyTorch's modules written as plain loops
// over NCHW Float64 arrays and PyTorch-layout weights, sharing no code with src/ml/models
// (no tfjs, no layout conversion). Slow; for tiny sizes only.

export interface Weights {
  get(name: string): { shape: number[]; data: ArrayLike<number> } | undefined;
}

export interface Img {
  c: number;
  h: number;
  w: number;
  /** [c][h][w] */
  d: Float64Array;
}

function w(ws: Weights, name: string): ArrayLike<number> {
  const t = ws.get(name);
  if (!t) throw new Error(`reference: no weight ${name}`);
  return t.data;
}

function shape(ws: Weights, name: string): number[] {
  const t = ws.get(name);
  if (!t) throw new Error(`reference: no weight ${name}`);
  return t.shape;
}

/** nn.Conv2d (no dilation, groups 1), zero padding. */
export function conv(ws: Weights, name: string, x: Img, stride: number, pad: number, bias?: string): Img {
  const [O, I, K] = shape(ws, name);
  const W = w(ws, name);
  const B = bias ? w(ws, bias) : undefined;
  const oh = Math.floor((x.h + 2 * pad - K) / stride) + 1;
  const ow = Math.floor((x.w + 2 * pad - K) / stride) + 1;
  const d = new Float64Array(O * oh * ow);
  for (let o = 0; o < O; o++)
    for (let y = 0; y < oh; y++)
      for (let xx = 0; xx < ow; xx++) {
        let s = B ? B[o] : 0;
        for (let i = 0; i < I; i++)
          for (let ky = 0; ky < K; ky++) {
            const iy = y * stride - pad + ky;
            if (iy < 0 || iy >= x.h) continue;
            for (let kx = 0; kx < K; kx++) {
              const ix = xx * stride - pad + kx;
              if (ix < 0 || ix >= x.w) continue;
              s += W[((o * I + i) * K + ky) * K + kx] * x.d[(i * x.h + iy) * x.w + ix];
            }
          }
        d[(o * oh + y) * ow + xx] = s;
      }
  return { c: O, h: oh, w: ow, d };
}

/** Per-channel batch statistics over a batch of images: mean and biased variance. */
export function batchStats(xs: Img[]): { mean: Float64Array; variance: Float64Array; n: number } {
  const C = xs[0].c;
  const hw = xs[0].h * xs[0].w;
  const n = xs.length * hw;
  const mean = new Float64Array(C);
  const variance = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (const x of xs) for (let k = 0; k < hw; k++) s += x.d[c * hw + k];
    const m = s / n;
    let v = 0;
    for (const x of xs) for (let k = 0; k < hw; k++) v += (x.d[c * hw + k] - m) ** 2;
    mean[c] = m;
    variance[c] = v / n;
  }
  return { mean, variance, n };
}

/** nn.BatchNorm2d over a batch; `stats` given: training mode, else running statistics. */
export function bn(ws: Weights, p: string, xs: Img[], training: boolean): Img[] {
  const g = w(ws, `${p}.weight`);
  const b = w(ws, `${p}.bias`);
  const st = training ? batchStats(xs) : { mean: w(ws, `${p}.running_mean`), variance: w(ws, `${p}.running_var`) };
  return xs.map((x) => {
    const hw = x.h * x.w;
    const d = new Float64Array(x.d.length);
    for (let c = 0; c < x.c; c++) {
      const inv = 1 / Math.sqrt(st.variance[c] + 1e-5);
      for (let k = 0; k < hw; k++) d[c * hw + k] = (x.d[c * hw + k] - st.mean[c]) * inv * g[c] + b[c];
    }
    return { ...x, d };
  });
}

export function relu(x: Img): Img {
  return { ...x, d: x.d.map((v) => Math.max(0, v)) };
}

export function add(a: Img, b: Img): Img {
  return { ...a, d: a.d.map((v, i) => v + b.d[i]) };
}

/** nn.MaxPool2d(3, 2, 1): padding counts as -inf. */
export function maxPool(x: Img, k: number, s: number, pad: number): Img {
  const oh = Math.floor((x.h + 2 * pad - k) / s) + 1;
  const ow = Math.floor((x.w + 2 * pad - k) / s) + 1;
  const d = new Float64Array(x.c * oh * ow);
  for (let c = 0; c < x.c; c++)
    for (let y = 0; y < oh; y++)
      for (let xx = 0; xx < ow; xx++) {
        let m = -Infinity;
        for (let ky = 0; ky < k; ky++)
          for (let kx = 0; kx < k; kx++) {
            const iy = y * s - pad + ky;
            const ix = xx * s - pad + kx;
            if (iy >= 0 && iy < x.h && ix >= 0 && ix < x.w) m = Math.max(m, x.d[(c * x.h + iy) * x.w + ix]);
          }
        d[(c * oh + y) * ow + xx] = m;
      }
  return { c: x.c, h: oh, w: ow, d };
}

/** nn.Linear on one vector. */
export function fc(ws: Weights, p: string, v: ArrayLike<number>): Float64Array {
  const [O, I] = shape(ws, `${p}.weight`);
  const W = w(ws, `${p}.weight`);
  const B = ws.get(`${p}.bias`) ? w(ws, `${p}.bias`) : undefined;
  const out = new Float64Array(O);
  for (let o = 0; o < O; o++) {
    let s = B ? B[o] : 0;
    for (let i = 0; i < I; i++) s += W[o * I + i] * v[i];
    out[o] = s;
  }
  return out;
}

export interface RefResNet {
  block: 'basic' | 'bottleneck';
  /** [prefix, stride, hasDownsample] per block, in order. */
  blocks: [string, number, boolean][];
}

/** torchvision ResNet.forward over a batch of NCHW images. */
export function resnetRef(ws: Weights, cfg: RefResNet, xs: Img[], training: boolean): Float64Array[] {
  const convAll = (name: string, ys: Img[], s: number, p: number) => ys.map((y) => conv(ws, name, y, s, p));
  let h = bn(ws, 'bn1', convAll('conv1.weight', xs, 2, 3), training).map(relu).map((y) => maxPool(y, 3, 2, 1));
  for (const [p, stride, down] of cfg.blocks) {
    let out: Img[];
    if (cfg.block === 'basic') {
      out = bn(ws, `${p}.bn1`, convAll(`${p}.conv1.weight`, h, stride, 1), training).map(relu);
      out = bn(ws, `${p}.bn2`, convAll(`${p}.conv2.weight`, out, 1, 1), training);
    } else {
      out = bn(ws, `${p}.bn1`, convAll(`${p}.conv1.weight`, h, 1, 0), training).map(relu);
      out = bn(ws, `${p}.bn2`, convAll(`${p}.conv2.weight`, out, stride, 1), training).map(relu);
      out = bn(ws, `${p}.bn3`, convAll(`${p}.conv3.weight`, out, 1, 0), training);
    }
    const id = down ? bn(ws, `${p}.downsample.1`, convAll(`${p}.downsample.0.weight`, h, stride, 0), training) : h;
    h = out.map((o, i) => relu(add(o, id[i])));
  }
  return h.map((y) => {
    const hw = y.h * y.w;
    const pooled = new Float64Array(y.c);
    for (let c = 0; c < y.c; c++) {
      let s = 0;
      for (let k = 0; k < hw; k++) s += y.d[c * hw + k];
      pooled[c] = s / hw;
    }
    return fc(ws, 'fc', pooled);
  });
}

/** erf by its Maclaurin series (|x| < 3) or continued fraction: ~1e-12, independent of tf.erf. */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 3) {
    let term = ax;
    let sum = ax;
    for (let n = 1; n < 200; n++) {
      term *= (-ax * ax) / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) < 1e-17) break;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc continued fraction (Lentz), ample for |x| >= 3.
  let f = 0;
  for (let k = 60; k >= 1; k--) f = (k / 2) / (ax + f);
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f);
  return Math.sign(x) * (1 - erfc);
}

export interface RefViT {
  patch: number;
  dim: number;
  depth: number;
  heads: number;
  eps: number;
}

function layerNormRef(ws: Weights, p: string, v: Float64Array, eps: number): Float64Array {
  const D = v.length;
  let m = 0;
  for (const a of v) m += a;
  m /= D;
  let s = 0;
  for (const a of v) s += (a - m) ** 2;
  const inv = 1 / Math.sqrt(s / D + eps);
  const g = w(ws, `${p}.weight`);
  const b = w(ws, `${p}.bias`);
  return v.map((a, i) => (a - m) * inv * g[i] + b[i]);
}

/** timm VisionTransformer.forward for one NCHW image (token pooling, pre-norm blocks). */
export function vitRef(ws: Weights, cfg: RefViT, x: Img): Float64Array {
  const D = cfg.dim;
  const pe = conv(ws, 'patch_embed.proj.weight', x, cfg.patch, 0, 'patch_embed.proj.bias');
  const N = pe.h * pe.w;
  // flatten(2).transpose(1, 2): token n = (row, col) in row-major order.
  let tokens: Float64Array[] = [Float64Array.from(w(ws, 'cls_token'))];
  for (let n = 0; n < N; n++) {
    const t = new Float64Array(D);
    for (let d = 0; d < D; d++) t[d] = pe.d[d * N + n];
    tokens.push(t);
  }
  const pos = w(ws, 'pos_embed');
  tokens = tokens.map((t, n) => t.map((v, d) => v + pos[n * D + d]));
  const T = tokens.length;
  const H = cfg.heads;
  const hd = D / H;
  for (let b = 0; b < cfg.depth; b++) {
    const p = `blocks.${b}`;
    const qkv = tokens.map((t) => fc(ws, `${p}.attn.qkv`, layerNormRef(ws, `${p}.norm1`, t, cfg.eps)));
    const merged = tokens.map(() => new Float64Array(D));
    for (let h = 0; h < H; h++)
      for (let i = 0; i < T; i++) {
        const scores = new Float64Array(T);
        for (let j = 0; j < T; j++) {
          let s = 0;
          for (let e = 0; e < hd; e++) s += qkv[i][h * hd + e] * qkv[j][D + h * hd + e];
          scores[j] = s / Math.sqrt(hd);
        }
        const mx = Math.max(...scores);
        const ex = scores.map((s) => Math.exp(s - mx));
        const z = ex.reduce((a, c) => a + c, 0);
        for (let j = 0; j < T; j++) for (let e = 0; e < hd; e++) merged[i][h * hd + e] += (ex[j] / z) * qkv[j][2 * D + h * hd + e];
      }
    tokens = tokens.map((t, i) => {
      const a = fc(ws, `${p}.attn.proj`, merged[i]);
      const t1 = t.map((v, d) => v + a[d]);
      const hidden = fc(ws, `${p}.mlp.fc1`, layerNormRef(ws, `${p}.norm2`, t1, cfg.eps)).map((v) => 0.5 * v * (1 + erf(v / Math.SQRT2)));
      const m = fc(ws, `${p}.mlp.fc2`, hidden);
      return t1.map((v, d) => v + m[d]);
    });
  }
  const normed = tokens.map((t) => layerNormRef(ws, 'norm', t, cfg.eps));
  return fc(ws, 'head', normed[0]);
}

/** NHWC flat batch -> NCHW images. */
export function fromNHWC(data: ArrayLike<number>, b: number, h: number, wd: number, c: number): Img[] {
  const out: Img[] = [];
  for (let n = 0; n < b; n++) {
    const d = new Float64Array(c * h * wd);
    for (let y = 0; y < h; y++) for (let x = 0; x < wd; x++) for (let k = 0; k < c; k++) d[(k * h + y) * wd + x] = data[((n * h + y) * wd + x) * c + k];
    out.push({ c, h, w: wd, d });
  }
  return out;
}

/** max |a - b| / max |b| over all elements. */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`relErr: lengths ${a.length} and ${b.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / (den || 1);
}
