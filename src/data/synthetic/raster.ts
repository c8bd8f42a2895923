// A tiny float raster with anti-aliased shape painting, enough to draw synthetic medical-looking
// images. Values are in [0, 1] per channel (HWC); shapes are coverage functions evaluated at
// pixel centres, so edges are soft and nothing depends on a graphics library.
import type { Rng } from '../rng.js';

export type Colour = readonly number[];

/** Coverage from a signed distance (negative inside): a 1-pixel-wide ramp, or `soft` pixels. */
export function coverage(distance: number, soft = 1): number {
  const t = 0.5 - distance / Math.max(1e-6, soft);
  return t <= 0 ? 0 : t >= 1 ? 1 : t;
}

export class Raster {
  readonly data: Float32Array;

  constructor(
    readonly width: number,
    readonly height: number,
    readonly channels: number,
  ) {
    this.data = new Float32Array(width * height * channels);
  }

  fill(colour: Colour): void {
    for (let i = 0; i < this.width * this.height; i++) {
      for (let c = 0; c < this.channels; c++) this.data[i * this.channels + c] = colour[c] ?? colour[0];
    }
  }

  /** visit(x, y, i) for every pixel of the box [x0, x1) x [y0, y1) inside the image, row by
   *  row; (x, y) is the pixel centre, i the index of its first channel. */
  private forEachPixel(x0: number, y0: number, x1: number, y1: number, visit: (x: number, y: number, i: number) => void): void {
    const xa = Math.max(0, Math.floor(x0));
    const ya = Math.max(0, Math.floor(y0));
    const xb = Math.min(this.width, Math.ceil(x1));
    const yb = Math.min(this.height, Math.ceil(y1));
    for (let y = ya; y < yb; y++) {
      for (let x = xa; x < xb; x++) visit(x + 0.5, y + 0.5, (y * this.width + x) * this.channels);
    }
  }

  /**
   * Blends `colour` over the box [x0, x1) x [y0, y1) with per-pixel alpha = opacity * cov(x, y),
   * where (x, y) is the pixel centre.
   */
  paint(x0: number, y0: number, x1: number, y1: number, cov: (x: number, y: number) => number, colour: Colour, opacity = 1): void {
    const ch = this.channels;
    this.forEachPixel(x0, y0, x1, y1, (x, y, i) => {
      const a = opacity * cov(x, y);
      if (a <= 0) return;
      for (let c = 0; c < ch; c++) {
        const col = colour[c] ?? colour[0];
        this.data[i + c] += (col - this.data[i + c]) * a;
      }
    });
  }

  /** Adds f(x, y) * weights[c] over a box (for intensity bumps and textures). */
  add(x0: number, y0: number, x1: number, y1: number, f: (x: number, y: number) => number, weights: Colour = [1]): void {
    const ch = this.channels;
    this.forEachPixel(x0, y0, x1, y1, (x, y, i) => {
      const v = f(x, y);
      if (v === 0) return;
      for (let c = 0; c < ch; c++) this.data[i + c] += v * (weights[c] ?? weights[0]);
    });
  }

  disc(cx: number, cy: number, r: number, colour: Colour, opacity = 1, soft = 1): void {
    const m = r + soft;
    this.paint(cx - m, cy - m, cx + m, cy + m, (x, y) => coverage(Math.hypot(x - cx, y - cy) - r, soft), colour, opacity);
  }

  /** A star-shaped blob: radius r(θ) = radiusAt(θ); soft edge of `soft` pixels. */
  blob(cx: number, cy: number, maxR: number, radiusAt: (theta: number) => number, colour: Colour, opacity = 1, soft = 1): void {
    const m = maxR + soft;
    this.paint(
      cx - m,
      cy - m,
      cx + m,
      cy + m,
      (x, y) => {
        const dx = x - cx;
        const dy = y - cy;
        return coverage(Math.hypot(dx, dy) - radiusAt(Math.atan2(dy, dx)), soft);
      },
      colour,
      opacity,
    );
  }

  /** A thick anti-aliased segment. */
  line(x0: number, y0: number, x1: number, y1: number, width: number, colour: Colour, opacity = 1): void {
    const m = width / 2 + 1;
    const dx = x1 - x0;
    const dy = y1 - y0;
    const len2 = dx * dx + dy * dy || 1e-9;
    this.paint(
      Math.min(x0, x1) - m,
      Math.min(y0, y1) - m,
      Math.max(x0, x1) + m,
      Math.max(y0, y1) + m,
      (x, y) => {
        const t = Math.max(0, Math.min(1, ((x - x0) * dx + (y - y0) * dy) / len2));
        return coverage(Math.hypot(x - (x0 + t * dx), y - (y0 + t * dy)) - width / 2);
      },
      colour,
      opacity,
    );
  }

  /** Filled polygon, 4x4 supersampled. */
  polygon(points: readonly (readonly [number, number])[], colour: Colour, opacity = 1): void {
    const xs = points.map((p) => p[0]);
    const ys = points.map((p) => p[1]);
    const inside = (x: number, y: number): boolean => {
      let hit = false;
      for (let i = 0, j = points.length - 1; i < points.length; j = i++) {
        const [xi, yi] = points[i];
        const [xj, yj] = points[j];
        if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) hit = !hit;
      }
      return hit;
    };
    this.paint(
      Math.min(...xs) - 1,
      Math.min(...ys) - 1,
      Math.max(...xs) + 1,
      Math.max(...ys) + 1,
      (x, y) => {
        let n = 0;
        for (let a = 0; a < 4; a++) for (let b = 0; b < 4; b++) if (inside(x - 0.375 + a * 0.25, y - 0.375 + b * 0.25)) n++;
        return n / 16;
      },
      colour,
      opacity,
    );
  }

  /** Adds i.i.d. Gaussian noise of standard deviation sigma to every channel. */
  noise(rng: Rng, sigma: number): void {
    for (let i = 0; i < this.data.length; i++) this.data[i] += sigma * rng.normal();
  }

  /** Multiplies every channel by f(x, y) (vignetting, illumination). */
  multiply(f: (x: number, y: number) => number): void {
    const ch = this.channels;
    for (let y = 0; y < this.height; y++) {
      for (let x = 0; x < this.width; x++) {
        const v = f(x + 0.5, y + 0.5);
        const i = (y * this.width + x) * ch;
        for (let c = 0; c < ch; c++) this.data[i + c] *= v;
      }
    }
  }

  toUint8(): Uint8Array {
    const out = new Uint8Array(this.data.length);
    for (let i = 0; i < out.length; i++) out[i] = Math.max(0, Math.min(255, Math.round(this.data[i] * 255)));
    return out;
  }
}

/**
 * Smooth fractal value noise in about [-1, 1]: random lattices of decreasing cell size,
 * interpolated with smoothstep, summed with halving amplitude.
 */
export function valueNoise(width: number, height: number, cell: number, octaves: number, rng: Rng): Float32Array {
  const out = new Float32Array(width * height);
  let amplitude = 1;
  let total = 0;
  for (let o = 0; o < octaves; o++) {
    const c = Math.max(1, cell / 2 ** o);
    const gw = Math.ceil(width / c) + 2;
    const gh = Math.ceil(height / c) + 2;
    const grid = new Float32Array(gw * gh);
    for (let i = 0; i < grid.length; i++) grid[i] = rng.float() * 2 - 1;
    for (let y = 0; y < height; y++) {
      const gy = y / c;
      const y0 = Math.floor(gy);
      const ty = smoothstep(gy - y0);
      for (let x = 0; x < width; x++) {
        const gx = x / c;
        const x0 = Math.floor(gx);
        const tx = smoothstep(gx - x0);
        const a = grid[y0 * gw + x0];
        const b = grid[y0 * gw + x0 + 1];
        const d = grid[(y0 + 1) * gw + x0];
        const e = grid[(y0 + 1) * gw + x0 + 1];
        out[y * width + x] += amplitude * ((a + (b - a) * tx) * (1 - ty) + (d + (e - d) * tx) * ty);
      }
    }
    total += amplitude;
    amplitude /= 2;
  }
  for (let i = 0; i < out.length; i++) out[i] /= total;
  return out;
}

function smoothstep(t: number): number {
  return t * t * (3 - 2 * t);
}

/** r(θ) for an irregular blob: base radius with a few random harmonics of given roughness. */
export function wobblyRadius(rng: Rng, radius: number, roughness: number, harmonics = 5): (theta: number) => number {
  const amps = Array.from({ length: harmonics }, (_, k) => (roughness * rng.float()) / (k + 1));
  const phases = Array.from({ length: harmonics }, () => rng.uniform(0, 2 * Math.PI));
  return (theta) => {
    let r = 1;
    for (let k = 0; k < harmonics; k++) r += amps[k] * Math.cos((k + 2) * theta + phases[k]);
    return radius * Math.max(0.3, r);
  };
}

/** Balanced labels in a seeded order: every class appears even in tiny sets. */
export function balancedLabels(count: number, classes: number, rng: Rng): number[] {
  return rng.shuffle(Array.from({ length: count }, (_, i) => i % classes));
}
