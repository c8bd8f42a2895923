// timm VisionTransformer forward (as deit_small_patch16_224) over NHWC input: patch conv,
// CLS token, absolute position embedding, pre-norm blocks, final norm (the registry's head
// reads the CLS).
// Token tensors are kept as [B*T, D] so that every linear layer is a 2-D matMul.
// No dropout or drop-path: timm.create_model('deit_small_patch16_224') defaults both to 0,
// so `training` changes nothing here (it matters for ResNet's BatchNorm).

import * as tf from '@tensorflow/tfjs';
import { gelu, layerNorm, linear, type ForwardOptions } from '../layers.js';
import type { FamilyNet } from '../net.js';
import { param, type ParamMap } from '../params.js';
import { resampleMatrix } from './pos-embed.js';
import { vitInferFeatures, vitInferLogits, vitTrainStep } from './step.js';
import { attentionScale, blockLayers, EMBED, gridSize, type ViTConfig } from './spec.js';

/** The position embedding for a g x g grid: the parameter itself, or (another input size)
 *  resampled as timm does, differentiably, through the same bicubic matrices. */
function posEmbed(cfg: ViTConfig, params: ParamMap, g: number): tf.Tensor2D {
  const pos = param(params, EMBED.pos);
  const [, n, D] = pos.shape;
  const flat = tf.reshape(pos, [n, D]) as tf.Tensor2D;
  const g0 = gridSize(cfg);
  if (g === g0) return flat;
  const cls = tf.slice(flat, [0, 0], [1, D]);
  const grid = tf.slice(flat, [1, 0], [g0 * g0, D]);
  const W = tf.tensor2d(resampleMatrix(g0, g), [g, g0]);
  // Rows: [g, g0*D]; then columns through the transpose.
  const rows = tf.reshape(tf.matMul(W, tf.reshape(grid, [g0, g0 * D])), [g, g0, D]);
  const cols = tf.matMul(W, tf.reshape(tf.transpose(rows, [1, 0, 2]), [g0, g * D]));
  const out = tf.reshape(tf.transpose(tf.reshape(cols, [g, g, D]), [1, 0, 2]), [g * g, D]);
  return tf.concat([cls, out], 0) as tf.Tensor2D;
}

/** Receives a block's attention probabilities, [B*H, T, T], while the forward runs. */
type AttentionSink = (probs: tf.Tensor3D) => void;

function attention(cfg: ViTConfig, params: ParamMap, qkvName: string, projName: string, x: tf.Tensor2D, B: number, T: number, sink?: AttentionSink): tf.Tensor2D {
  const D = cfg.dim;
  const H = cfg.heads;
  const hd = D / H;
  const qkv = linear(params, qkvName, x, cfg.qkvBias);
  // torch reshapes qkv to (B, T, 3, H, hd): columns are [q | k | v], heads contiguous.
  const [q, k, v] = tf.split(qkv, 3, 1);
  const heads = (z: tf.Tensor) => tf.reshape(tf.transpose(tf.reshape(z, [B, T, H, hd]), [0, 2, 1, 3]), [B * H, T, hd]) as tf.Tensor3D;
  const scores = tf.matMul(heads(tf.mul(q, attentionScale(cfg))), heads(k), false, true);
  const attn = tf.softmax(scores, -1) as tf.Tensor3D;
  sink?.(attn);
  const o = tf.matMul(attn, heads(v));
  const merged = tf.reshape(tf.transpose(tf.reshape(o, [B, H, T, hd]), [0, 2, 1, 3]), [B * T, D]) as tf.Tensor2D;
  return linear(params, projName, merged);
}

/** Token states after every block, [B*T, D]; `lastSink` sees the last block's attention.
 *  No tidy here: callers wrap it, so a sunk tensor lives until their tidy ends. */
function encode(cfg: ViTConfig, params: ParamMap, x: tf.Tensor4D, lastSink?: AttentionSink): { t: tf.Tensor2D; B: number; T: number } {
  const [B, h, w] = x.shape;
  if (h !== w) throw new Error(`vit: square inputs only, got ${h}x${w}`);
  const g = gridSize(cfg, h);
  const D = cfg.dim;
  const T = g * g + 1;
  const patches = tf.add(
    tf.conv2d(x, param(params, EMBED.patchWeight) as tf.Tensor4D, cfg.patchSize, 'valid'),
    param(params, EMBED.patchBias),
  );
  const cls = tf.broadcastTo(param(params, EMBED.cls), [B, 1, D]);
  const tokens = tf.concat([cls, tf.reshape(patches, [B, g * g, D])], 1);
  let t = tf.reshape(tf.add(tokens, posEmbed(cfg, params, g)), [B * T, D]) as tf.Tensor2D;
  for (let i = 0; i < cfg.depth; i++) {
    const l = blockLayers(i);
    const sink = i === cfg.depth - 1 ? lastSink : undefined;
    t = tf.add(t, attention(cfg, params, l.qkv, l.proj, layerNorm(params, l.norm1, t, cfg.eps), B, T, sink));
    const hidden = gelu(linear(params, l.fc1, layerNorm(params, l.norm2, t, cfg.eps)));
    t = tf.add(t, linear(params, l.fc2, hidden));
  }
  return { t, B, T };
}

/** The final-normed CLS token, [B, D]. */
function features(cfg: ViTConfig, params: ParamMap, x: tf.Tensor4D, _opts: ForwardOptions): tf.Tensor2D {
  return tf.tidy(() => {
    const { t, B, T } = encode(cfg, params, x);
    const D = cfg.dim;
    // LayerNorm is per token, so normalising only the CLS equals timm's norm-then-pick.
    const clsOut = tf.reshape(tf.slice(tf.reshape(t, [B, T, D]), [0, 0, 0], [B, 1, D]), [B, D]) as tf.Tensor2D;
    return layerNorm(params, EMBED.norm, clsOut, cfg.eps);
  });
}

/**
 * The last block's attention from the CLS token to every token, [B, heads, T] with the CLS
 * itself at index 0: DINO's `get_last_selfattention(x)[:, :, 0, :]`, what its
 * visualize_attention draws.
 */
function clsAttention(cfg: ViTConfig, params: ParamMap, x: tf.Tensor4D): tf.Tensor3D {
  return tf.tidy(() => {
    const seen: { probs?: tf.Tensor3D } = {};
    const { B, T } = encode(cfg, params, x, (p) => (seen.probs = p));
    if (!seen.probs) throw new Error('vit: the model has no blocks, so no attention to show');
    // [B*H, T, T] -> the CLS query's row of each head: [B, H, T].
    return tf.reshape(tf.slice(seen.probs, [0, 0, 0], [B * cfg.heads, 1, T]), [B, cfg.heads, T]) as tf.Tensor3D;
  });
}

export const VIT_NET: FamilyNet<ViTConfig> = { features, clsAttention, trainStep: vitTrainStep, inferLogits: vitInferLogits, inferFeatures: vitInferFeatures };
