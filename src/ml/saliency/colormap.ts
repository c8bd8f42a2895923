// Colour maps and overlays for saliency panels, on plain arrays. jet is what
// pytorch-grad-cam's show_cam_on_image uses (cv2.COLORMAP_JET); viridis is what DINO's
// attention images get (plt.imsave's default). Every map is matplotlib's 256-entry table,
// looked up as matplotlib does (index floor(t * 256), clamped): viridis and inferno are
// d3-scale-chromatic's copies of those tables; jet and gray are sampled from matplotlib's
// segment data the way its LinearSegmentedColormap builds its table.
import { interpolateInferno, interpolateViridis } from 'd3-scale-chromatic';

export const COLORMAPS = ['jet', 'viridis', 'inferno', 'gray'] as const;
export type ColormapName = (typeof COLORMAPS)[number];

type Segments = [number, number][];

/** matplotlib's _jet_data: per channel, (position, value) breakpoints. */
const JET: [Segments, Segments, Segments] = [
  [[0, 0], [0.35, 0], [0.66, 1], [0.89, 1], [1, 0.5]],
  [[0, 0], [0.125, 0], [0.375, 1], [0.64, 1], [0.91, 0], [1, 0]],
  [[0, 0.5], [0.11, 1], [0.34, 1], [0.65, 0], [1, 0]],
];
const GRAY: Segments = [[0, 0], [1, 1]];

function piecewise(segments: Segments, v: number): number {
  for (let i = 1; i < segments.length; i++) {
    const [x1, y1] = segments[i];
    if (v <= x1) {
      const [x0, y0] = segments[i - 1];
      return y0 + ((y1 - y0) * (v - x0)) / (x1 - x0);
    }
  }
  return segments[segments.length - 1][1];
}

const N = 256;

function table(color: (t: number) => [number, number, number]): [number, number, number][] {
  return Array.from({ length: N }, (_, i) => color(i));
}

/** d3-scale-chromatic's "#rrggbb". */
function hex(color: string): [number, number, number] {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(color);
  if (!m) throw new Error(`colormap: unexpected colour ${color}`);
  return [parseInt(m[1]!, 16), parseInt(m[2]!, 16), parseInt(m[3]!, 16)];
}

/** Each map as 256 RGB entries in 0..255 (floats where matplotlib's table has them). */
const TABLES: Record<ColormapName, [number, number, number][]> = {
  jet: table((i) => JET.map((s) => piecewise(s, i / (N - 1)) * 255) as [number, number, number]),
  gray: table((i) => {
    const g = piecewise(GRAY, i / (N - 1)) * 255;
    return [g, g, g];
  }),
  // d3's ramp indexes its table by floor(t * 256): the entry's centre gives back entry i.
  viridis: table((i) => hex(interpolateViridis((i + 0.5) / N))),
  inferno: table((i) => hex(interpolateInferno((i + 0.5) / N))),
};

/** The colour of v in [0, 1] (clamped; NaN is 0), as 0..255 RGB: matplotlib's cmap(v) * 255. */
export function colorOf(name: ColormapName, v: number): [number, number, number] {
  const t = Number.isFinite(v) ? Math.min(1, Math.max(0, v)) : 0;
  return TABLES[name][Math.min(N - 1, Math.floor(t * N))]!;
}

/** Min-max scaling to [0, 1], as pytorch-grad-cam's scale_cam_image; a flat map becomes 0. */
export function normalise(map: ArrayLike<number>): Float32Array {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < map.length; i++) {
    lo = Math.min(lo, map[i]);
    hi = Math.max(hi, map[i]);
  }
  const span = hi - lo;
  return Float32Array.from(map, (v) => (span > 0 ? (v - lo) / span : 0));
}

/** An HWC image with values in [0, 1] (1 or 3 channels) as 8-bit RGB. */
export function toRgb(image: ArrayLike<number>, pixels: number, channels: number): Uint8Array {
  if (channels !== 1 && channels !== 3) throw new Error(`toRgb: 1 or 3 channels, got ${channels}`);
  if (image.length !== pixels * channels) throw new Error(`toRgb: ${image.length} values for ${pixels} pixels x ${channels}`);
  const out = new Uint8Array(pixels * 3);
  for (let i = 0; i < pixels; i++) {
    for (let c = 0; c < 3; c++) out[i * 3 + c] = Math.round(Math.min(1, Math.max(0, image[i * channels + (channels === 1 ? 0 : c)])) * 255);
  }
  return out;
}

/**
 * The map, min-max scaled and coloured, blended over the image: (1 - alpha) * image +
 * alpha * colour (pytorch-grad-cam's show_cam_on_image with image_weight = 1 - alpha).
 */
export function overlay(rgb: Uint8Array, map: ArrayLike<number>, name: ColormapName, alpha: number): Uint8Array {
  if (rgb.length !== map.length * 3) throw new Error(`overlay: image has ${rgb.length / 3} pixels, the map ${map.length}`);
  const scaled = normalise(map);
  const out = new Uint8Array(rgb.length);
  for (let i = 0; i < scaled.length; i++) {
    const col = colorOf(name, scaled[i]);
    for (let c = 0; c < 3; c++) out[i * 3 + c] = Math.round((1 - alpha) * rgb[i * 3 + c] + alpha * col[c]);
  }
  return out;
}

/** The map alone, coloured (DINO's per-head attention images). */
export function colorise(map: ArrayLike<number>, name: ColormapName): Uint8Array {
  const scaled = normalise(map);
  const out = new Uint8Array(scaled.length * 3);
  for (let i = 0; i < scaled.length; i++) out.set(colorOf(name, scaled[i]).map(Math.round), i * 3);
  return out;
}
