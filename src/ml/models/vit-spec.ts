// timm's VisionTransformer (as deit_small_patch16_224: pre-norm blocks, CLS token, learned
// absolute position embedding, qkv bias, exact GELU), as a list of parameters in
// state_dict order, with timm's default ('') initialisation.

import type { ParamSpec, ViTConfig } from './types.js';

export function gridSize(cfg: ViTConfig, imageSize = cfg.imageSize): number {
  if (imageSize % cfg.patchSize !== 0) throw new Error(`vit: image size ${imageSize} is not a multiple of the patch size ${cfg.patchSize}`);
  return imageSize / cfg.patchSize;
}

export function vitParams(cfg: ViTConfig): ParamSpec[] {
  if (cfg.dim % cfg.heads !== 0) throw new Error(`vit: dim ${cfg.dim} is not divisible by ${cfg.heads} heads`);
  const D = cfg.dim;
  const H = Math.floor(D * cfg.mlpRatio);
  const g = gridSize(cfg);
  const p = (name: string, shape: number[], layout: ParamSpec['layout'], init: ParamSpec['init'], head = false): ParamSpec => ({
    name, shape, layout, init, trainable: true, dtype: 'F32', head,
  });
  const tn = { kind: 'truncNormal', std: 0.02 } as const;
  const zero = { kind: 'constant', value: 0 } as const;
  const one = { kind: 'constant', value: 1 } as const;
  const linear = (name: string, out: number, inp: number, bias = true): ParamSpec[] => [
    p(`${name}.weight`, [out, inp], 'linear', tn),
    ...(bias ? [p(`${name}.bias`, [out], 'plain', zero)] : []),
  ];
  const norm = (name: string): ParamSpec[] => [p(`${name}.weight`, [D], 'plain', one), p(`${name}.bias`, [D], 'plain', zero)];
  const fanIn = cfg.channels * cfg.patchSize * cfg.patchSize;
  const out: ParamSpec[] = [
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
  out.push(p('head.weight', [cfg.numClasses, D], 'linear', tn, true), p('head.bias', [cfg.numClasses], 'plain', zero, true));
  return out;
}
