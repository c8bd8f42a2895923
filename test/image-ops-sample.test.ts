// sampleBox (crop + bilinear resize + flips in one pass) against its previous implementation,
// kept here verbatim as the oracle: the column taps are now worked out once per call instead of
// once per output pixel, which must not move a single value (the fine-tuned weights depend on it).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sampleBox, type Box, type ImageView } from '../src/data/image-ops.js';
import { Rng } from '../src/data/rng.js';

function previousSampleBox(src: ImageView, box: Box, outH: number, outW: number, hflip: boolean, vflip: boolean, out: Float32Array, offset: number): void {
  const { data, width, channels: c, scale } = src;
  const sy = box.height / outH;
  const sx = box.width / outW;
  const maxY = box.top + box.height - 1;
  const maxX = box.left + box.width - 1;
  for (let oy = 0; oy < outH; oy++) {
    const ty = vflip ? outH - 1 - oy : oy;
    let fy = box.top + (ty + 0.5) * sy - 0.5;
    fy = fy < box.top ? box.top : fy > maxY ? maxY : fy;
    const y0 = Math.floor(fy);
    const y1 = y0 < maxY ? y0 + 1 : y0;
    const wy = fy - y0;
    for (let ox = 0; ox < outW; ox++) {
      const tx = hflip ? outW - 1 - ox : ox;
      let fx = box.left + (tx + 0.5) * sx - 0.5;
      fx = fx < box.left ? box.left : fx > maxX ? maxX : fx;
      const x0 = Math.floor(fx);
      const x1 = x0 < maxX ? x0 + 1 : x0;
      const wx = fx - x0;
      const a = (y0 * width + x0) * c;
      const b = (y0 * width + x1) * c;
      const d = (y1 * width + x0) * c;
      const e = (y1 * width + x1) * c;
      const o = offset + (oy * outW + ox) * c;
      for (let ch = 0; ch < c; ch++) {
        const top = data[a + ch]! + (data[b + ch]! - data[a + ch]!) * wx;
        const bottom = data[d + ch]! + (data[e + ch]! - data[d + ch]!) * wx;
        out[o + ch] = (top + (bottom - top) * wy) * scale;
      }
    }
  }
}

test('sampleBox equals its previous implementation bit for bit (uint8 and float sources, 1 and 3 channels, flips, up- and downscaling)', () => {
  const rng = new Rng(3, 5);
  for (let k = 0; k < 300; k++) {
    const c = k % 3 === 0 ? 1 : 3;
    const height = rng.intIn(1, 41);
    const width = rng.intIn(1, 41);
    const n = height * width * c;
    const float = k % 2 === 1;
    const data = float ? new Float32Array(n) : new Uint8Array(n);
    for (let i = 0; i < n; i++) data[i] = float ? rng.uniform(0, 1) : rng.intIn(0, 255);
    const src: ImageView = { data, height, width, channels: c, scale: float ? 1 : 1 / 255 };
    const h = rng.intIn(1, height);
    const w = rng.intIn(1, width);
    const box = { top: rng.intIn(0, height - h), left: rng.intIn(0, width - w), height: h, width: w };
    const outH = rng.intIn(1, 48);
    const outW = rng.intIn(1, 48);
    const hflip = rng.bool(0.5);
    const vflip = rng.bool(0.5);
    const offset = rng.intIn(0, 7);
    const size = offset + outH * outW * c + 3;
    const expected = new Float32Array(size).fill(-1);
    const actual = new Float32Array(size).fill(-1);
    previousSampleBox(src, box, outH, outW, hflip, vflip, expected, offset);
    sampleBox(src, box, outH, outW, hflip, vflip, actual, offset);
    assert.deepEqual(actual, expected, `case ${k}: ${height}x${width}x${c} box ${JSON.stringify(box)} -> ${outH}x${outW} flips ${hflip}/${vflip}`);
  }
});
