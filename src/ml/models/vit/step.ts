// The ViT's training step (forward, softmax cross-entropy, backward) and its eval forward as
// fixed sequences of kernel calls, built from the module's layer lists (./spec.ts): the same
// kernels, inputs and order of float32 operations as the tfjs path (./net.ts under
// tf.variableGrads with the fused cross-entropy, and tfjs's gradients of each op), so the
// same loss and gradients, bit for bit (tested), without the gradient tape. What tfjs does
// with Reshape, Transpose, SplitV, Concat, Slice, Pad and Tile only moves values; here the
// heads split / merge are native strided copies (MedpipeSplitHeads / MergeHeads, q's scale
// in the copy), the rest index loops over the heap, with the Tile gradient's sum in its
// order; layers.linear's bias add is in the GEMM's epilogue (MedpipeLinear, the same bits). Wasm with the
// native kernels only; undefined (nothing done) elsewhere, and the caller takes the tfjs path.

import * as tf from '@tensorflow/tfjs';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import { DirectKernels, directKernelsAvailable } from '../../../engine/direct-kernels.js';
import { GELU, GELU_GRAD, LINEAR, LN, LN_GRAD, MERGE_HEADS, SOFTMAX_CE, SOFTMAX_CE_GRAD, SPLIT_HEADS } from '../../../engine/wasm-kernels.js';
import type { TrainStepResult } from '../net.js';
import { param, type ParamMap } from '../params.js';
import { attentionScale, blockLayers, EMBED, gridSize, VIT, type BlockLayers, type ViTConfig } from './spec.js';

const INFER_KERNELS = ['Conv2D', 'BatchMatMul', 'Add', 'Softmax', LN, GELU, LINEAR, SPLIT_HEADS, MERGE_HEADS];
const KERNELS = [...INFER_KERNELS, 'Multiply', 'Conv2DBackpropFilter', 'Sum', 'Sub', LN_GRAD, GELU_GRAD, SOFTMAX_CE, SOFTMAX_CE_GRAD];

/** A LayerNorm's input and the statistics its gradient reads. */
interface NormSaved {
  x: TensorInfo;
  y: TensorInfo;
  mean: TensorInfo;
  rstd: TensorInfo;
}

/** What one block's backward pass reads. */
interface BlockSaved {
  l: BlockLayers;
  n1: NormSaved;
  /** Heads of q (scaled), k, v, [B*H, T, hd]; the attention probabilities [B*H, T, T]. */
  q: TensorInfo;
  kh: TensorInfo;
  vh: TensorInfo;
  attn: TensorInfo;
  /** The heads merged back, [B*T, D]: the projection's input. */
  merged: TensorInfo;
  n2: NormSaved;
  /** fc1's output (GELU's input) and GELU's output (fc2's input). */
  f1: TensorInfo;
  hidden: TensorInfo;
}

interface Shape {
  B: number;
  T: number;
  D: number;
  H: number;
  hd: number;
  g: number;
}

/** Where the graph applies: wasm with the native kernels, float32, a square input whose patch
 *  grid is the position embedding's own (another grid resamples it: the tfjs path). */
function shapeOf(cfg: ViTConfig, params: ParamMap, x: tf.Tensor4D, kernels: readonly string[]): Shape | undefined {
  if (!directKernelsAvailable(tf, kernels) || x.dtype !== 'float32' || x.shape[0] === 0) return undefined;
  const [B, h, w] = x.shape;
  if (h !== w || h % cfg.patchSize !== 0) return undefined;
  const g = gridSize(cfg, h);
  const T = g * g + 1;
  if (param(params, EMBED.pos).shape[1] !== T) return undefined;
  return { B, T, D: cfg.dim, H: cfg.heads, hd: cfg.dim / cfg.heads, g };
}

/** The forward as kernel calls; with `saved`, what the backward pass reads is kept there
 *  (and freed by its readers), without it every intermediate is freed as soon as it is read. */
class Graph {
  /** tf.mul(q, number)'s factor: a float32 scalar. */
  readonly scale: number;

  constructor(readonly k: DirectKernels, readonly cfg: ViTConfig, readonly params: ParamMap, readonly s: Shape) {
    this.scale = Math.fround(attentionScale(cfg));
  }

  p(name: string): tf.Variable {
    return param(this.params, name);
  }

  mm(a: TensorInfo, b: TensorInfo, transposeA = false, transposeB = false): TensorInfo {
    return this.k.run('BatchMatMul', { a, b }, { transposeA, transposeB })[0]!;
  }

  /** layers.linear: matMul, then the bias added (a broadcast Add), the add in the GEMM's
   *  epilogue (the same bits). */
  linear(x: TensorInfo, prefix: string, bias = true): TensorInfo {
    const W = this.p(`${prefix}.weight`);
    if (!bias) return this.mm(x, W);
    return this.k.run(LINEAR, { a: x, b: W, bias: this.p(`${prefix}.bias`) })[0]!;
  }

  /** [B*T, P*D] as P heads tensors [B*H, T, hd], the first times `scale`. */
  split(x: TensorInfo, parts: number, scale = 1): TensorInfo[] {
    return this.k.run(SPLIT_HEADS, { x }, { batch: this.s.B, heads: this.s.H, parts, scale });
  }

  /** Heads tensors [B*H, T, hd] side by side as [B*T, P*D], the first times `scale`. */
  merge(parts: TensorInfo[], scale = 1): TensorInfo {
    const inputs: Record<string, TensorInfo> = {};
    parts.forEach((t, i) => { inputs[`x${i}`] = t; });
    return this.k.run(MERGE_HEADS, inputs, { batch: this.s.B, scale })[0]!;
  }

  norm(x: TensorInfo, prefix: string): NormSaved {
    const [y, mean, rstd] = this.k.run(LN, { x, scale: this.p(`${prefix}.weight`), offset: this.p(`${prefix}.bias`) }, { epsilon: this.cfg.eps });
    return { x, y: y!, mean: mean!, rstd: rstd! };
  }

  /** Tokens [B*T, D]: the patch conv plus its bias, the CLS in front, the position embedding added. */
  embed(x: TensorInfo): TensorInfo {
    const { k, s } = this;
    const { B, T, D, g } = s;
    const p = this.cfg.patchSize;
    const [conv] = k.run('Conv2D', { x, filter: this.p(EMBED.patchWeight) }, { strides: p, pad: 'valid', dataFormat: 'NHWC', dilations: [1, 1] });
    const [patches] = k.run('Add', { a: conv!, b: this.p(EMBED.patchBias) });
    k.free(conv!);
    const tokens = k.output([B, T, D]);
    const dst = k.f32(tokens);
    const src = k.f32(patches!);
    const cls = k.f32(this.p(EMBED.cls));
    for (let b = 0; b < B; b++) {
      dst.set(cls, b * T * D);
      dst.set(src.subarray(b * g * g * D, (b + 1) * g * g * D), (b * T + 1) * D);
    }
    k.free(patches!);
    const [t] = k.run('Add', { a: tokens, b: k.reshaped(this.p(EMBED.pos), [T, D]) });
    k.free(tokens);
    return k.reshapedOwned(t!, [B * T, D]);
  }

  /** x + attention(norm1(x)), then + mlp(norm2(.)); frees x unless it is saved. */
  block(t: TensorInfo, i: number, saved?: BlockSaved[]): TensorInfo {
    const { k, cfg } = this;
    const l = blockLayers(i);
    const n1 = this.norm(t, l.norm1);
    const qkv = this.linear(n1.y, l.qkv, cfg.qkvBias);
    // q scaled in the split: the same product per element as tf.mul after the permutation.
    const [q, kh, vh] = this.split(qkv, 3, this.scale) as [TensorInfo, TensorInfo, TensorInfo];
    k.free(qkv);
    const scores = this.mm(q, kh, false, true);
    const [attn] = k.run('Softmax', { logits: scores }, { dim: 2 });
    k.free(scores);
    const o = this.mm(attn!, vh);
    const merged = this.merge([o]);
    k.free(o);
    const proj = this.linear(merged, l.proj);
    const [t1] = k.run('Add', { a: t, b: proj });
    k.free(proj);
    const n2 = this.norm(t1!, l.norm2);
    const f1 = this.linear(n2.y, l.fc1);
    const [hidden] = k.run(GELU, { x: f1 });
    const f2 = this.linear(hidden!, l.fc2);
    const [t2] = k.run('Add', { a: t1!, b: f2 });
    k.free(f2);
    if (saved) saved.push({ l, n1, q, kh, vh, attn: attn!, merged, n2, f1, hidden: hidden! });
    else k.free(t, n1.y, n1.mean, n1.rstd, q, kh, vh, attn!, merged, t1!, n2.y, n2.mean, n2.rstd, f1, hidden!);
    return t2!;
  }

  /** The CLS rows of the last tokens, [B, D]. */
  cls(t: TensorInfo): TensorInfo {
    const { B, T, D } = this.s;
    const out = this.k.output([B, D]);
    const dst = this.k.f32(out);
    const src = this.k.f32(t);
    for (let b = 0; b < B; b++) dst.set(src.subarray(b * T * D, b * T * D + D), b * D);
    return out;
  }
}

/** Takes a parameter's gradient (by parameter name), or frees it for a frozen parameter. */
type Keep = (name: string, g: TensorInfo, shape?: number[]) => void;

/** The LayerNorm's backward: d input; its weight and bias gradients go to `keep`; frees its saved values but x. */
function normBack(g: Graph, n: NormSaved, prefix: string, dy: TensorInfo, keep: Keep): TensorInfo {
  const [dx, dscale, doffset] = g.k.run(LN_GRAD, { dy, x: n.x, mean: n.mean, rstd: n.rstd, scale: g.p(`${prefix}.weight`) });
  keep(`${prefix}.weight`, dscale!);
  keep(`${prefix}.bias`, doffset!);
  g.k.free(n.y, n.mean, n.rstd);
  return dx!;
}

/** layers.linear's backward (tfjs's BatchMatMul and Add gradients): d input; frees x. */
function linearBack(g: Graph, x: TensorInfo, prefix: string, dy: TensorInfo, keep: Keep, bias = true): TensorInfo {
  if (bias) keep(`${prefix}.bias`, g.k.run('Sum', { x: dy }, { axis: [0], keepDims: false })[0]!);
  const W = g.p(`${prefix}.weight`);
  const dx = g.mm(dy, W, false, true);
  keep(`${prefix}.weight`, g.mm(x, dy, true, false));
  g.k.free(x);
  return dx;
}

/** One block's backward from the gradient of its output; frees the block's saved values. */
function blockBack(g: Graph, b: BlockSaved, dt2: TensorInfo, keep: Keep): TensorInfo {
  const { k, cfg } = g;
  const { l } = b;
  // t2 = t1 + fc2(gelu(fc1(norm2(t1)))).
  const dHidden = linearBack(g, b.hidden, l.fc2, dt2, keep);
  const [df1] = k.run(GELU_GRAD, { dy: dHidden, x: b.f1 });
  k.free(dHidden, b.f1);
  const dn2 = linearBack(g, b.n2.y, l.fc1, df1!, keep);
  k.free(df1!);
  const dNorm2 = normBack(g, b.n2, l.norm2, dn2, keep);
  k.free(dn2, b.n2.x);
  const [dt1] = k.run('Add', { a: dNorm2, b: dt2 });
  k.free(dNorm2);
  // t1 = t + proj(attention(norm1(t))).
  const dMerged = linearBack(g, b.merged, l.proj, dt1!, keep);
  const [dO] = g.split(dMerged, 1) as [TensorInfo];
  k.free(dMerged);
  const dAttn = g.mm(dO, b.vh, false, true);
  const dV = g.mm(b.attn, dO, true, false);
  k.free(dO, b.vh);
  // Softmax's gradient as tfjs composes it: dy*y - sum(dy*y, last, keepDims) * y.
  const [dyY] = k.run('Multiply', { a: dAttn, b: b.attn });
  k.free(dAttn);
  const [rowSum] = k.run('Sum', { x: dyY! }, { axis: [2], keepDims: true });
  const [back] = k.run('Multiply', { a: rowSum!, b: b.attn });
  k.free(rowSum!, b.attn);
  const [dScores] = k.run('Sub', { a: dyY!, b: back! });
  k.free(dyY!, back!);
  const dQ = g.mm(dScores!, b.kh);
  const dK = g.mm(dScores!, b.q, true, false);
  k.free(dScores!, b.kh, b.q);
  // The split's gradient: the three concatenated along the columns, dq times the scale
  // (tf.mul's gradient) in the merge.
  const dQkv = g.merge([dQ, dK, dV], g.scale);
  k.free(dQ, dK, dV);
  const dn1 = linearBack(g, b.n1.y, l.qkv, dQkv, keep, cfg.qkvBias);
  k.free(dQkv);
  const dNorm1 = normBack(g, b.n1, l.norm1, dn1, keep);
  k.free(dn1);
  const [dt] = k.run('Add', { a: dNorm1, b: dt1! });
  k.free(dNorm1, dt1!, b.n1.x);
  return dt!;
}

/**
 * Loss (scale * cross-entropy summed over the batch; scale 1 / N is the mean) and the
 * gradients of every trainable parameter for one batch, or undefined where the step graph
 * does not apply (another backend, no native kernels, a single-logit head, a resampled
 * position embedding).
 */
export function vitTrainStep(cfg: ViTConfig, params: ParamMap, x: tf.Tensor4D, onehot: tf.Tensor2D, scale: number): TrainStepResult | undefined {
  const s = shapeOf(cfg, params, x, KERNELS);
  if (s === undefined || onehot.dtype !== 'float32') return undefined;
  if (cfg.numClasses < 2 || onehot.shape[0] !== s.B || onehot.shape[1] !== cfg.numClasses) return undefined;
  const { B, T, D, g: grid } = s;
  const k = new DirectKernels(tf);
  const grads: tf.NamedTensorMap = {};
  // As tf.variableGrads over the trainable variables: a frozen one gets no gradient.
  const keep: Keep = (name, gi, shape) => {
    const v = param(params, name);
    if (v.trainable) grads[v.name] = k.tensor(gi, shape ?? v.shape);
    else k.free(gi);
  };
  try {
    const g = new Graph(k, cfg, params, s);
    // Forward.
    const t0 = g.embed(x);
    const blocks: BlockSaved[] = [];
    let t = t0;
    for (let i = 0; i < cfg.depth; i++) t = g.block(t, i, blocks);
    const clsOut = g.cls(t);
    k.free(t);
    const nN = g.norm(clsOut, EMBED.norm);
    const logits = g.linear(nN.y, VIT.classifier);
    const [loss, logp] = k.run(SOFTMAX_CE, { logits, labels: onehot }, { scale });
    k.free(logits);

    // Backward: the loss's seed, the head, the final norm, the blocks in reverse, the embedding.
    const one = k.output([]);
    k.f32(one)[0] = 1;
    const [dz, dlabels] = k.run(SOFTMAX_CE_GRAD, { dy: one, logp: logp!, labels: onehot }, { scale });
    k.free(one, logp!, dlabels!);
    const dyN = linearBack(g, nN.y, VIT.classifier, dz!, keep);
    k.free(dz!);
    const dCls = normBack(g, nN, EMBED.norm, dyN, keep);
    k.free(dyN, clsOut);
    // The CLS slice's gradient: zeros but at each image's first token.
    let dt = k.output([B * T, D]);
    {
      const dst = k.f32(dt);
      const src = k.f32(dCls);
      dst.fill(0);
      for (let b = 0; b < B; b++) dst.set(src.subarray(b * D, (b + 1) * D), b * T * D);
    }
    k.free(dCls);
    for (let i = blocks.length - 1; i >= 0; i--) {
      const next = blockBack(g, blocks[i]!, dt, keep);
      k.free(dt);
      dt = next;
    }
    // tokens + pos_embed: the embedding's gradient is the sum over the batch.
    const [dPos] = k.run('Sum', { x: k.reshaped(dt, [B, T, D]) }, { axis: [0], keepDims: false });
    keep(EMBED.pos, dPos!);
    const dPatches = k.output([B, grid, grid, D]);
    const dClsTok = k.output([1, 1, D]);
    {
      const src = k.f32(dt);
      const dst = k.f32(dPatches);
      const acc = k.f32(dClsTok);
      // broadcastTo's (Tile's) gradient: zeros plus each image's slice, in batch order
      // (a batch of one is a clone: no add).
      if (B === 1) acc.set(src.subarray(0, D));
      else {
        acc.fill(0);
        for (let b = 0; b < B; b++) for (let d = 0; d < D; d++) acc[d] = Math.fround(acc[d]! + src[b * T * D + d]!);
      }
      for (let b = 0; b < B; b++) dst.set(src.subarray((b * T + 1) * D, (b + 1) * T * D), b * grid * grid * D);
    }
    k.free(dt);
    keep(EMBED.cls, dClsTok);
    keep(EMBED.patchBias, k.run('Sum', { x: dPatches }, { axis: [0, 1, 2], keepDims: false })[0]!);
    const W = param(params, EMBED.patchWeight);
    const p = cfg.patchSize;
    const [dW] = k.run('Conv2DBackpropFilter', { x, dy: dPatches }, { strides: p, pad: 'valid', dataFormat: 'NHWC', filterShape: W.shape });
    keep(EMBED.patchWeight, dW!);
    return { value: k.tensor<tf.Scalar>(loss!), grads };
  } catch (e) {
    tf.dispose(Object.values(grads));
    throw e;
  } finally {
    k.dispose();
  }
}

/** The forward without the tape: the final-normed CLS [B, D], then (with `head`) the logits. */
function inferGraph(cfg: ViTConfig, params: ParamMap, x: tf.Tensor4D, head: boolean): tf.Tensor2D | undefined {
  if (tf.engine().isTapeOn()) return undefined;
  const s = shapeOf(cfg, params, x, INFER_KERNELS);
  if (s === undefined) return undefined;
  const k = new DirectKernels(tf);
  try {
    const g = new Graph(k, cfg, params, s);
    let t = g.embed(x);
    for (let i = 0; i < cfg.depth; i++) t = g.block(t, i);
    const n = g.norm(g.cls(t), EMBED.norm);
    return k.tensor<tf.Tensor2D>(head ? g.linear(n.y, VIT.classifier) : n.y);
  } finally {
    k.dispose();
  }
}

/**
 * Eval logits [B, numClasses], the same kernels as forward() (ViT has no train/eval
 * difference), or undefined where that does not apply, or while a gradient tape records
 * (attention maps and gradient checks differentiate the forward; these calls are not taped).
 */
export function vitInferLogits(cfg: ViTConfig, params: ParamMap, x: tf.Tensor4D): tf.Tensor2D | undefined {
  return inferGraph(cfg, params, x, true);
}

/** features() the same way (DINO's teacher, the k-NN monitor), under the same conditions. */
export function vitInferFeatures(cfg: ViTConfig, params: ParamMap, x: tf.Tensor4D): tf.Tensor2D | undefined {
  return inferGraph(cfg, params, x, false);
}
