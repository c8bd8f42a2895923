// Each custom wasm kernel against the reference cpu backend, on randomised shapes, for
// values (the kernel run directly) and gradients (through tf.grad). This file tests the
// pure-wasm path (native kernels switched off); engine-native.test.ts the native one.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { initBackend } from '../src/engine/backend.js';
import { setNativeKernels } from '../src/engine/wasm-kernels.js';
import { on, Random, same, z4, type Pad, type T } from './support/backend-compare.js';

const rng = new Random(12345);
const { rand, int, pick, values, F } = rng;
const randomPad = (kh: number, kw: number): Pad => rng.pad(kh, kw, 0.35, 0.35);

before(async () => {
  const info = await initBackend({ prefer: 'wasm' });
  assert.equal(info.backend, 'wasm');
  setNativeKernels(false);
  await tf.setBackend('cpu'); // both backends stay registered; `on` switches between them
});

test('Conv2DBackpropFilter and Conv2DBackpropInput match cpu (strides, paddings, odd sizes)', () => {
  for (let i = 0; i < 24; i++) {
    const kh = int(1, 4);
    const kw = int(1, 4);
    const strides: [number, number] = [pick([1, 2]), pick([1, 2])];
    const pad = randomPad(kh, kw);
    const xShape = [int(1, 3), int(kh + 1, 11), int(kw + 1, 11), int(1, 5)];
    const fShape = [kh, kw, xShape[3], int(1, 6)];
    const yShape = tf.conv2d(z4(xShape), z4(fShape), strides, pad).shape;
    const what = `x ${xShape} f ${fShape} s ${strides} pad ${JSON.stringify(pad)}`;
    const attrs = { strides, pad, dataFormat: 'NHWC' };
    same(`${what} bpFilter`, [F(xShape), F(yShape)], (x, dy) =>
      tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { ...attrs, filterShape: fShape }) as T);
    same(`${what} bpInput`, [F(yShape), F(fShape)], (dy, f) =>
      tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: f }, { ...attrs, inputShape: xShape }) as T);
    same(`${what} grads`, [F(xShape), F(fShape), F(yShape)], (x, f, w) =>
      tf.grads((a: T, b: T) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, strides, pad), w)))([x, f]));
  }
});

test('forward conv with dilation, and its adjoint identities for our backprop kernels', () => {
  for (let i = 0; i < 6; i++) {
    const dil: [number, number] = [int(1, 3), int(1, 3)];
    const k = int(2, 3);
    const xShape = [int(1, 2), int(9, 13), int(9, 13), int(1, 3)];
    const mul = int(1, 3);
    const fShape = [k, k, xShape[3], mul];
    const pad = pick(['same', 'valid'] as const);
    same(`dilated conv ${dil}`, [F(xShape), F([k, k, xShape[3], 4])], (x, f) =>
      tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, 1, pad, 'NHWC', dil));
    // tfjs gradients refuse dilation > 1, so check <dy, D(x, W)> = <W, dW(x, dy)> = <x, dX(dy, W)>.
    const x = F(xShape);
    const w = F(fShape);
    const y = on('cpu', [x, w], (a, b) => tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, pad, 'NHWC', dil))[0];
    const yShape = tf.depthwiseConv2d(z4(xShape), z4(fShape), 1, pad, 'NHWC', dil).shape;
    const dy = F(yShape);
    const attrs = { strides: [1, 1], dilations: dil, pad };
    const [dW] = on('wasm', [x, dy], (a, b) =>
      tf.engine().runKernel('DepthwiseConv2dNativeBackpropFilter', { x: a, dy: b }, { ...attrs, filterShape: fShape }) as T);
    const [dX] = on('wasm', [dy, w], (a, b) =>
      tf.engine().runKernel('DepthwiseConv2dNativeBackpropInput', { dy: a, filter: b }, { ...attrs, inputShape: xShape }) as T);
    const dot = (p: Float32Array, q: Float32Array): [number, number] => {
      let s = 0;
      let m = 0;
      for (let j = 0; j < p.length; j++) {
        s += p[j] * q[j];
        m += Math.abs(p[j] * q[j]);
      }
      return [s, m];
    };
    const [ref, scale] = dot(dy.data, y);
    assert.ok(Math.abs(dot(w.data, dW)[0] - ref) <= 1e-4 * scale, `depthwise filter adjoint, dilation ${dil}`);
    assert.ok(Math.abs(dot(x.data, dX)[0] - ref) <= 1e-4 * scale, `depthwise input adjoint, dilation ${dil}`);
  }
});

test('depthwise conv backprop kernels match cpu (channel multipliers, strides, paddings)', () => {
  for (let i = 0; i < 12; i++) {
    const k = int(1, 4);
    const s = pick([1, 2]);
    const pad = pick(['same', 'valid'] as const);
    const xShape = [int(1, 3), int(k, 9), int(k, 9), int(1, 4)];
    const fShape = [k, k, xShape[3], int(1, 3)];
    const yShape = tf.depthwiseConv2d(z4(xShape), z4(fShape), s, pad).shape;
    same(`depthwise x ${xShape} f ${fShape} s ${s} ${pad}`, [F(xShape), F(fShape), F(yShape)], (x, f, w) =>
      tf.grads((a: T, b: T) => tf.sum(tf.mul(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, s, pad), w)))([x, f]));
  }
});

test('MaxPoolGrad matches cpu, including all-negative windows and ties', () => {
  const kinds: [string, () => number][] = [
    ['normal', () => rand() * 2 - 1],
    ['all negative', () => -1 - rand()],
    ['ties', () => Math.round(rand() * 3) - 3], // values in {-3..0}: many equal maxima
  ];
  for (const [kind, gen] of kinds) {
    for (let i = 0; i < 6; i++) {
      const k = int(2, 3);
      const s = pick([1, 2]);
      const pad = pick(['same', 'valid'] as const);
      const xShape = [int(1, 2), int(k, 9), int(k, 9), int(1, 4)];
      const yShape = tf.maxPool(z4(xShape), k, s, pad).shape;
      same(`maxPool ${kind} x ${xShape} k ${k} s ${s} ${pad}`, [F(xShape, gen), F(yShape)], (x, w) =>
        tf.grad((a: T) => tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, k, s, pad), w)))(x));
    }
  }
  // The case the stock wasm kernel gets wrong: every window entirely negative.
  const [g] = on('wasm', [F([1, 4, 4, 1], () => -1 - rand())], (x) =>
    tf.grad((a: T) => tf.sum(tf.maxPool(a as tf.Tensor4D, 2, 2, 'valid')))(x));
  assert.equal(g.reduce((a, b) => a + b, 0), 4);
});

test('UnsortedSegmentSum (gather gradient) matches cpu, incl. repeats and dropped ids', () => {
  for (let i = 0; i < 6; i++) {
    const rows = int(3, 9);
    const cols = int(1, 7);
    const n = int(1, 12);
    const idx = Int32Array.from({ length: n }, () => int(0, rows - 1));
    same(`gather grad ${rows}x${cols} by ${n}`, [F([rows, cols]), { shape: [n], data: idx }, F([n, cols])], (t, ids, w) =>
      tf.grad((a: T) => tf.sum(tf.mul(tf.gather(a, ids as tf.Tensor1D), w)))(t));
    same(`gather axis 1 grad`, [F([2, rows, cols]), { shape: [n], data: idx }, F([2, n, cols])], (t, ids, w) =>
      tf.grad((a: T) => tf.sum(tf.mul(tf.gather(a, ids as tf.Tensor1D, 1), w)))(t));
  }
  const ids = { shape: [5], data: Int32Array.from([0, 2, -1, 2, 7]) };
  for (const dtype of ['float32', 'int32'] as const) {
    const x = { shape: [5, 2], data: dtype === 'int32' ? Int32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]) : values(10) };
    same(`segment sum ${dtype}`, [x, ids], (a, b) => tf.unsortedSegmentSum(a, b as tf.Tensor1D, 3));
  }
});

test('BatchMatMul and fused matMul match cpu for every transpose and batch layout', () => {
  const layouts: [number[], number[]][] = [[[], []], [[3], []], [[], [3]], [[4], [4]], [[2, 3], [2, 3]], [[1], [5]]];
  for (const [ba, bb] of layouts) {
    for (const tA of [false, true]) {
      for (const tB of [false, true]) {
        const [m, k, n] = [int(1, 9), int(1, 9), int(1, 9)];
        const aShape = [...ba, ...(tA ? [k, m] : [m, k])];
        const bShape = [...bb, ...(tB ? [n, k] : [k, n])];
        if (aShape.length < 2 || bShape.length < 2) continue;
        const what = `matMul [${aShape}] x [${bShape}] tA ${tA} tB ${tB}`;
        same(what, [F(aShape), F(bShape)], (a, b) => tf.matMul(a, b, tA, tB));
        if (ba.join() === bb.join()) { // tfjs gradients do not reduce broadcast batches
          same(`${what} grads`, [F(aShape), F(bShape)], (a, b) =>
            tf.grads((p: T, q: T) => tf.sum(tf.square(tf.matMul(p, q, tA, tB))))([a, b]));
        }
        if (ba.length <= 1 && bb.length <= 1 && (bb.length === 0 || bb[0] === 1 || ba[0] === bb[0])) {
          same(`${what} fused`, [F(aShape), F(bShape), F([n])], (a, b, bias) =>
            tf.fused.matMul({ a, b, transposeA: tA, transposeB: tB, bias, activation: 'relu' }));
        }
      }
    }
  }
});

test('Tile matches cpu for every rank and repetition pattern', () => {
  for (let i = 0; i < 16; i++) {
    const r = int(1, 5);
    const shape = Array.from({ length: r }, () => int(1, 4));
    const reps = Array.from({ length: r }, () => int(1, 3));
    same(`tile [${shape}] x [${reps}]`, [F(shape)], (x) => tf.tile(x, reps));
  }
  same('tile int32', [{ shape: [2, 3], data: Int32Array.from([1, 2, 3, 4, 5, 6]) }], (x) => tf.tile(x, [2, 2]));
});

test('Slice and SplitV match cpu for every rank, partial axis and dtype, with their gradients', () => {
  for (let i = 0; i < 24; i++) {
    const r = int(1, 5);
    const shape = Array.from({ length: r }, () => int(1, 5));
    const begin = shape.map((d) => int(0, d - 1));
    const sz = shape.map((d, j) => (rand() < 0.3 ? -1 : int(0, d - begin[j]!)));
    same(`slice [${shape}] at [${begin}] size [${sz}]`, [F(shape)], (x) => tf.slice(x, begin, sz));
    const axis = int(0, r - 1);
    const cut = int(0, shape[axis]!);
    const sizes = [cut, shape[axis]! - cut];
    same(`split [${shape}] axis ${axis} into [${sizes}]`, [F(shape), F(shape)], (x, w) => [
      ...tf.split(x, sizes, axis),
      tf.grad((v: T) => tf.sum(tf.mul(tf.concat(tf.split(v, sizes, axis).reverse(), axis), w)))(x),
    ]);
  }
  same('slice int32', [{ shape: [3, 4], data: Int32Array.from({ length: 12 }, (_, j) => j - 5) }], (x) => tf.slice(x, [1, 1], [2, 2]));
  same('qkv-like split', [F([37, 3 * 24])], (x) => tf.split(x, 3, 1));
});

test('BatchNorm over moments: values and every gradient match cpu (fused gradient, Mean gradient)', () => {
  for (let i = 0; i < 6; i++) {
    const shape = [int(1, 3), int(1, 6), int(1, 6), int(1, 9)];
    const C = shape[3];
    same(`batchNorm ${shape}`, [F(shape), F([C]), F([C]), F(shape)], (x, g, b, w) =>
      tf.grads((a: T, gamma: T, beta: T) => {
        const m = tf.moments(a, [0, 1, 2]);
        return tf.sum(tf.mul(tf.batchNorm(a, m.mean, m.variance, beta as tf.Tensor1D, gamma as tf.Tensor1D, 1e-5), w));
      })([x, g, b]));
    // (tf.batchNorm without a scale cannot be differentiated on the cpu backend itself.)
    same(`mean grad ${shape}`, [F(shape)], (x) => tf.grad((a: T) => tf.sum(tf.square(tf.mean(a, [1, 2]))))(x));
  }
});

test('a small conv net and a ViT block: every gradient matches cpu', () => {
  const xs = F([2, 9, 9, 3]);
  const convParams = [F([3, 3, 3, 4]), F([4]), F([4]), F([3, 3, 4, 4]), F([1, 1, 4, 6]), F([6, 5])];
  same('conv net', [xs, ...convParams], (x, c1, g, b, c2, c3, fc) =>
    tf.grads((...p: T[]) => {
      let h = tf.conv2d(x as tf.Tensor4D, p[0] as tf.Tensor4D, 2, 'same');
      const m = tf.moments(h, [0, 1, 2]);
      h = tf.relu(tf.batchNorm(h, m.mean, m.variance, p[2], p[1], 1e-5)) as tf.Tensor4D;
      h = tf.maxPool(h as tf.Tensor4D, 3, 2, 'same');
      h = tf.relu(tf.conv2d(h as tf.Tensor4D, p[3] as tf.Tensor4D, 1, 'same'));
      h = tf.conv2d(h as tf.Tensor4D, p[4] as tf.Tensor4D, 1, 'valid');
      const logits = tf.matMul(tf.mean(h, [1, 2]), p[5]);
      return tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d([1, 3], 'int32'), 5), logits);
    })([c1, g, b, c2, c3, fc]));

  const B = 2, T = 5, D = 8, H = 2;
  const vitParams = [F([4, 4, 3, D]), F([1, 1, D]), F([1, T, D]), F([D, 3 * D]), F([3 * D]), F([D, D]), F([D, 2 * D]), F([2 * D, D]), F([D, 3])];
  same('vit block', [F([B, 8, 8, 3]), ...vitParams], (img, ...ps) =>
    tf.grads((pe: T, cls: T, pos: T, qkvW: T, qkvB: T, oW: T, f1: T, f2: T, head: T) => {
      const patches = tf.reshape(tf.conv2d(img as tf.Tensor4D, pe as tf.Tensor4D, 4, 'valid'), [B, 4, D]);
      let h = tf.concat([tf.tile(cls, [B, 1, 1]), patches], 1);
      h = tf.add(h, tf.gather(pos, tf.tensor1d([0, 1, 2, 3, 4], 'int32'), 1));
      const mv = tf.moments(h, -1, true);
      const y = tf.div(tf.sub(h, mv.mean), tf.sqrt(tf.add(mv.variance, 1e-6)));
      // 2-D matmuls for the token-wise layers: tfjs's BatchMatMul gradient does not sum over
      // a broadcast batch (it fails with a shape error), so models must flatten tokens.
      const lin = (a: T, w: T): T => tf.reshape(tf.matMul(tf.reshape(a, [B * T, -1]), w), [B, T, -1]);
      const qkv = tf.transpose(tf.reshape(tf.add(lin(y, qkvW), qkvB), [B, T, 3, H, D / H]), [2, 0, 3, 1, 4]);
      const [q, k, v] = tf.unstack(qkv);
      const att = tf.softmax(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(D / H)));
      const o = tf.reshape(tf.transpose(tf.matMul(att, v), [0, 2, 1, 3]), [B, T, D]);
      h = tf.add(h, lin(o, oW));
      const m1 = lin(h, f1);
      const gelu = tf.mul(tf.mul(m1, 0.5), tf.add(1, tf.erf(tf.mul(m1, Math.SQRT1_2))));
      h = tf.add(h, lin(gelu, f2));
      const logits = tf.matMul(tf.squeeze(tf.slice(h, [0, 0, 0], [B, 1, D]), [1]), head);
      return tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d([0, 2], 'int32'), 3), logits);
    })(ps));
});

test('fused softmax cross-entropy (one kernel each way) matches the composed ops on cpu: loss, gradients of logits and labels', async () => {
  const { softmaxCrossEntropy } = await import('../src/engine/fused-ops.js');
  const loss = (z: T, y: T, scale: number): T =>
    softmaxCrossEntropy(tf, z, y, scale) ?? tf.mul(tf.neg(tf.sum(tf.mul(y, tf.logSoftmax(z)))), scale);
  const oneHot = (n: number, k: number) => {
    const v = new Float32Array(n * k);
    for (let i = 0; i < n; i++) v[i * k + int(0, k - 1)] = 1;
    return { shape: [n, k], data: v };
  };
  for (const [n, k, kind] of [[8, 10, 'one-hot'], [1, 2, 'one-hot'], [5, 1, 'one-hot'], [3, 7, 'soft'], [13, 1000, 'one-hot'], [4, 33, 'large']] as const) {
    const scale = kind === 'soft' ? 0.37 : 1 / n;
    // 'large': logits around +-80, where exp overflows without the max shift.
    const z = kind === 'large' ? F([n, k], () => rand() * 160 - 80) : F([n, k], () => rand() * 8 - 4);
    const y = kind === 'soft' ? F([n, k], () => rand()) : oneHot(n, k);
    same(`CE ${n}x${k} ${kind} loss`, [z, y], (a, b) => loss(a, b, scale));
    same(`CE ${n}x${k} ${kind} grads`, [z, y], (a, b) => tf.grads((p: T, q: T) => loss(p, q, scale))([a, b]));
  }
  // The fused kernels ran on wasm (not the composed fallback).
  tf.setBackend('wasm');
  const { kernelNames } = await tf.profile(() => tf.tidy(() => tf.grads((p: T, q: T) => loss(p, q, 0.5))([tf.ones([2, 3]), tf.ones([2, 3])])));
  assert.ok(kernelNames.includes('MedpipeSoftmaxCrossEntropy') && kernelNames.includes('MedpipeSoftmaxCrossEntropyGrad'), kernelNames.join(','));
  assert.ok(!kernelNames.includes('Exp'), kernelNames.join(','));
  tf.setBackend('cpu');
});
