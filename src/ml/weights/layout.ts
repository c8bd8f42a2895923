// PyTorch <-> tfjs tensor layouts. Files hold PyTorch layouts (conv OIHW, linear [out, in])
// so they load in torchvision/timm unchanged; tfjs variables hold HWIO / [in, out], the
// layouts its conv2d and matMul take without a transpose on every step.

import type { Layout } from '../models/types.js';

export function tfShape(layout: Layout, torchShape: readonly number[]): number[] {
  if (layout === 'conv') {
    const [o, i, h, w] = torchShape;
    return [h, w, i, o];
  }
  if (layout === 'linear') return [torchShape[1], torchShape[0]];
  return [...torchShape];
}

/** OIHW -> HWIO, or [out, in] -> [in, out]; plain tensors are returned as they are. */
export function torchToTf(layout: Layout, shape: readonly number[], data: Float32Array): Float32Array {
  if (layout === 'plain') return data;
  if (layout === 'linear') return transpose2(data, shape[0], shape[1]);
  const [O, I, H, W] = shape;
  const out = new Float32Array(data.length);
  for (let o = 0; o < O; o++)
    for (let i = 0; i < I; i++)
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++) out[((y * W + x) * I + i) * O + o] = data[((o * I + i) * H + y) * W + x];
  return out;
}

/** Inverse of torchToTf; `shape` is the PyTorch shape. */
export function tfToTorch(layout: Layout, shape: readonly number[], data: Float32Array): Float32Array {
  if (layout === 'plain') return data;
  if (layout === 'linear') return transpose2(data, shape[1], shape[0]);
  const [O, I, H, W] = shape;
  const out = new Float32Array(data.length);
  for (let o = 0; o < O; o++)
    for (let i = 0; i < I; i++)
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++) out[((o * I + i) * H + y) * W + x] = data[((y * W + x) * I + i) * O + o];
  return out;
}

function transpose2(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}
