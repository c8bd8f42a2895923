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
    p('cls_token', [1, 1, D], 'plain', { kind: 'normal', std: 1e-6 }),
    p('pos_embed', [1, g * g + 1, D], 'plain', tn),
    // The patch conv is not an nn.Linear, so timm leaves it at PyTorch's Conv2d default.
    p('patch_embed.proj.weight', [D, cfg.channels, cfg.patchSize, cfg.patchSize], 'conv', { kind: 'torchDefaultWeight' }),
    p('patch_embed.proj.bias', [D], 'plain', { kind: 'torchDefaultBias', fanIn }),
  ];
  for (let i = 0; i < cfg.depth; i++) {
    const b = `blocks.${i}`;
    out.push(
      ...norm(`${b}.norm1`),
      ...linear(`${b}.attn.qkv`, 3 * D, D, cfg.qkvBias),
      ...linear(`${b}.attn.proj`, D, D),
      ...norm(`${b}.norm2`),
      ...linear(`${b}.mlp.fc1`, H, D),
      ...linear(`${b}.mlp.fc2`, D, H),
    );
  }
  out.push(...norm('norm'));
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
