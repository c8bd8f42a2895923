// timm's VisionTransformer (as deit_small_patch16_224: pre-norm blocks, CLS token, learned
// absolute position embedding, qkv bias, exact GELU), as a list of parameters in
// state_dict order, with timm's default ('') initialisation.

import type { ModelFamily } from '../family.js';
import type { FamilyParam, TaskConfig } from '../param-spec.js';
import { resamplePosEmbed } from './pos-embed.js';

export interface ViTConfig extends TaskConfig {
  family: 'vit';
  patchSize: number;
  dim: number;
  depth: number;
  heads: number;
  mlpRatio: number;
  qkvBias: boolean;
  eps: number;
}

export function gridSize(cfg: ViTConfig, imageSize = cfg.imageSize): number {
  if (imageSize % cfg.patchSize !== 0) throw new Error(`vit: image size ${imageSize} is not a multiple of the patch size ${cfg.patchSize}`);
  return imageSize / cfg.patchSize;
}

/** One pre-norm block's layers by parameter prefix: x + proj(attn(qkv(norm1(x)))), then
 *  x + fc2(gelu(fc1(norm2(x)))). The tfjs forward and the step graph both read this. */
export interface BlockLayers {
  norm1: string;
  qkv: string;
  proj: string;
  norm2: string;
  fc1: string;
  fc2: string;
}

export function blockLayers(i: number): BlockLayers {
  const b = `blocks.${i}`;
  return { norm1: `${b}.norm1`, qkv: `${b}.attn.qkv`, proj: `${b}.attn.proj`, norm2: `${b}.norm2`, fc1: `${b}.mlp.fc1`, fc2: `${b}.mlp.fc2` };
}

/** The embedding's and the final norm's parameters. */
export const EMBED = { patchWeight: 'patch_embed.proj.weight', patchBias: 'patch_embed.proj.bias', cls: 'cls_token', pos: 'pos_embed', norm: 'norm' } as const;

/** timm's attention scale, head_dim ** -0.5, applied to q before q.k^T. */
export function attentionScale(cfg: ViTConfig): number {
  return (cfg.dim / cfg.heads) ** -0.5;
}

export function vitParams(cfg: ViTConfig): FamilyParam[] {
  if (cfg.dim % cfg.heads !== 0) throw new Error(`vit: dim ${cfg.dim} is not divisible by ${cfg.heads} heads`);
  const D = cfg.dim;
  const H = Math.floor(D * cfg.mlpRatio);
  const g = gridSize(cfg);
  const p = (name: string, shape: number[], layout: FamilyParam['layout'], init: FamilyParam['init']): FamilyParam => ({
    name, shape, layout, init, trainable: true, dtype: 'F32',
  });
  const tn = { kind: 'truncNormal', std: 0.02 } as const;
  const zero = { kind: 'constant', value: 0 } as const;
  const one = { kind: 'constant', value: 1 } as const;
  const linear = (name: string, out: number, inp: number, bias = true): FamilyParam[] => [
    p(`${name}.weight`, [out, inp], 'linear', tn),
    ...(bias ? [p(`${name}.bias`, [out], 'plain', zero)] : []),
  ];
  const norm = (name: string): FamilyParam[] => [p(`${name}.weight`, [D], 'plain', one), p(`${name}.bias`, [D], 'plain', zero)];
  const fanIn = cfg.channels * cfg.patchSize * cfg.patchSize;
  const out: FamilyParam[] = [
    // timm: normal_(cls_token, std=1e-6), trunc_normal_(pos_embed, std=.02).
    p(EMBED.cls, [1, 1, D], 'plain', { kind: 'normal', std: 1e-6 }),
    p(EMBED.pos, [1, g * g + 1, D], 'plain', tn),
    // The patch conv is not an nn.Linear, so timm leaves it at PyTorch's Conv2d default.
    p(EMBED.patchWeight, [D, cfg.channels, cfg.patchSize, cfg.patchSize], 'conv', { kind: 'torchDefaultWeight' }),
    p(EMBED.patchBias, [D], 'plain', { kind: 'torchDefaultBias', fanIn }),
  ];
  for (let i = 0; i < cfg.depth; i++) {
    const l = blockLayers(i);
    out.push(
      ...norm(l.norm1),
      ...linear(l.qkv, 3 * D, D, cfg.qkvBias),
      ...linear(l.proj, D, D),
      ...norm(l.norm2),
      ...linear(l.fc1, H, D),
      ...linear(l.fc2, D, H),
    );
  }
  out.push(...norm(EMBED.norm));
  out.push(p('head.weight', [cfg.numClasses, D], 'linear', tn), p('head.bias', [cfg.numClasses], 'plain', zero));
  return out;
}

export const VIT: ModelFamily<ViTConfig> = {
  family: 'vit',
  models: {
    deit_small_patch16_224: {
      description: 'DeiT-S/16, the paper\'s transformer', reference: 'timm deit_small_patch16_224', imageSize: 224,
      base: { family: 'vit', patchSize: 16, dim: 384, depth: 12, heads: 6, mlpRatio: 4, qkvBias: true, eps: 1e-6 },
      aliases: ['deit-s', 'deit-s/16', 'deit_small'],
    },
    vit_demo: {
      description: 'small ViT for CPU demos: dim 192, depth 4, 3 heads, patch 8', reference: 'timm VisionTransformer code path', imageSize: 64,
      base: { family: 'vit', patchSize: 8, dim: 192, depth: 4, heads: 3, mlpRatio: 4, qkvBias: true, eps: 1e-6 },
      aliases: ['vit-demo'],
    },
  },
  configure: (base, task) => ({ ...base, ...task }),
  params: vitParams,
  featureSize: (cfg) => cfg.dim,
  noDecay: (name) => name.endsWith('.bias') || /(^|\.)norm\d*\./.test(name) || name === 'cls_token' || name === 'pos_embed',
  stem: 'patch_embed.proj.weight',
  classifier: 'head',
  sizeMultiple: (cfg) => cfg.patchSize,
  attention: (cfg) => ({ block: cfg.depth - 1, heads: cfg.heads, patch: cfg.patchSize }),
  adaptWeight(cfg, name, t) {
    if (name !== 'pos_embed' || t.shape.length !== 3 || t.shape[2] !== cfg.dim) return undefined;
    const g0 = Math.round(Math.sqrt(t.shape[1] - 1));
    if (g0 * g0 !== t.shape[1] - 1) return undefined;
    const g = gridSize(cfg);
    return { tensor: resamplePosEmbed(t.data, t.shape, g), note: `pos_embed: resampled from a ${g0}x${g0} to a ${g}x${g} patch grid (bicubic, antialiased, as timm)` };
  },
};
