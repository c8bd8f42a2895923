// Numbers that summarise a map (for the json summary and the tests): where its mass lies.

export interface Box {
  top: number;
  left: number;
  height: number;
  width: number;
}

/** The share of a non-negative [H, W] map's total inside `box` (0 for an all-zero map). */
export function massIn(map: ArrayLike<number>, width: number, box: Box): number {
  let inside = 0;
  let total = 0;
  for (let i = 0; i < map.length; i++) {
    const y = Math.floor(i / width);
    const x = i % width;
    total += map[i];
    if (y >= box.top && y < box.top + box.height && x >= box.left && x < box.left + box.width) inside += map[i];
  }
  return total > 0 ? inside / total : 0;
}

export interface MapSummary {
  /** Mass-weighted centre, as fractions of height and width (0.5, 0.5 = the middle). */
  centroid: [number, number] | null;
  /** The strongest pixel, [row, column]. */
  peak: [number, number] | null;
  /** Share of pixels carrying any mass. */
  support: number;
}

export function summarise(map: ArrayLike<number>, height: number, width: number): MapSummary {
  let total = 0;
  let cy = 0;
  let cx = 0;
  let best = -Infinity;
  let peak: [number, number] | null = null;
  let nonzero = 0;
  for (let i = 0; i < map.length; i++) {
    const v = map[i];
    const y = Math.floor(i / width);
    const x = i % width;
    total += v;
    cy += v * (y + 0.5);
    cx += v * (x + 0.5);
    if (v > 0) nonzero++;
    if (v > best) {
      best = v;
      peak = [y, x];
    }
  }
  const r = (v: number) => Number(v.toFixed(4));
  return {
    centroid: total > 0 ? [r(cy / total / height), r(cx / total / width)] : null,
    peak: total > 0 ? peak : null,
    support: r(nonzero / map.length),
  };
}
