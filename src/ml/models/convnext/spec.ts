// torchvision's ConvNeXt (Liu et al. 2022; torchvision.models.convnext_tiny): a 4x4/4 patch
// stem with LayerNorm, four stages of CNBlocks (depthwise 7x7 conv, LayerNorm over channels,
// 4x MLP with exact GELU, layer scale, stochastic depth) joined by LayerNorm + 2x2/2 conv
// downsampling, global average pool, LayerNorm, linear. Parameters in state_dict order with
// torchvision's names (`features.0.0.weight`, ...) and init (trunc_normal_(std=0.02) on every
// conv and linear weight, zero biases).

import type { ModelFamily } from '../family.js';
import type { FamilyParam, TaskConfig } from '../param-spec.js';

export interface ConvNeXtConfig extends TaskConfig {
  family: 'convnext';
  /** Blocks per stage, e.g. [3, 3, 9, 3] for ConvNeXt-T. */
  depths: number[];
  /** Channels of each stage. */
  widths: number[];
  /** Initial value of every block's layer_scale. */
  layerScale: number;
  /** torchvision's stochastic_depth_prob: the last block's drop-path rate, linear from 0. */
  stochasticDepth: number;
  eps: number;
}

const KERNEL = 7;

/** Module index of stage `s` (0-based) in `features`: the stem is 0, downsamplers sit between. */
export const stageIndex = (s: number) => 2 * s + 1;

/** Each block's state_dict prefix, channels and drop-path rate, in forward order. */
export interface CNBlockShape {
  prefix: string;
  dim: number;
  dropPath: number;
}

export function blockShapes(cfg: ConvNeXtConfig): CNBlockShape[] {
  if (cfg.depths.length !== cfg.widths.length) throw new Error(`convnext: ${cfg.depths.length} stages but ${cfg.widths.length} widths`);
  const total = cfg.depths.reduce((a, b) => a + b, 0);
  const out: CNBlockShape[] = [];
  let id = 0;
  cfg.depths.forEach((n, s) => {
    for (let b = 0; b < n; b++, id++) {
      // torchvision: stochastic_depth_prob * block_id / (total_blocks - 1.0).
      out.push({ prefix: `features.${stageIndex(s)}.${b}`, dim: cfg.widths[s], dropPath: total > 1 ? (cfg.stochasticDepth * id) / (total - 1) : 0 });
    }
  });
  return out;
}

export function convnextParams(cfg: ConvNeXtConfig): FamilyParam[] {
  const tn = { kind: 'truncNormal', std: 0.02 } as const;
  const zero = { kind: 'constant', value: 0 } as const;
  const p = (name: string, shape: number[], layout: FamilyParam['layout'], init: FamilyParam['init']): FamilyParam => ({
    name, shape, layout, init, trainable: true, dtype: 'F32',
  });
  const conv = (name: string, out: number, inp: number, k: number): FamilyParam[] => [p(`${name}.weight`, [out, inp, k, k], 'conv', tn), p(`${name}.bias`, [out], 'plain', zero)];
  const norm = (name: string, c: number): FamilyParam[] => [p(`${name}.weight`, [c], 'plain', { kind: 'constant', value: 1 }), p(`${name}.bias`, [c], 'plain', zero)];
  const linear = (name: string, out: number, inp: number): FamilyParam[] => [p(`${name}.weight`, [out, inp], 'linear', tn), p(`${name}.bias`, [out], 'plain', zero)];
  const out: FamilyParam[] = [...conv('features.0.0', cfg.widths[0], cfg.channels, 4), ...norm('features.0.1', cfg.widths[0])];
  const blocks = blockShapes(cfg);
  cfg.depths.forEach((n, s) => {
    for (const { prefix, dim } of blocks.filter((b) => b.prefix.startsWith(`features.${stageIndex(s)}.`))) {
      // A module's own parameters precede its submodules' in a state_dict.
      out.push(
        p(`${prefix}.layer_scale`, [dim, 1, 1], 'plain', { kind: 'constant', value: cfg.layerScale }),
        // Depthwise (groups = dim): one input channel per filter.
        p(`${prefix}.block.0.weight`, [dim, 1, KERNEL, KERNEL], 'conv', tn), p(`${prefix}.block.0.bias`, [dim], 'plain', zero),
        ...norm(`${prefix}.block.2`, dim),
        ...linear(`${prefix}.block.3`, 4 * dim, dim),
        ...linear(`${prefix}.block.5`, dim, 4 * dim),
      );
    }
    if (s < cfg.depths.length - 1) out.push(...norm(`features.${stageIndex(s) + 1}.0`, cfg.widths[s]), ...conv(`features.${stageIndex(s) + 1}.1`, cfg.widths[s + 1], cfg.widths[s], 2));
  });
  const last = cfg.widths[cfg.widths.length - 1];
  out.push(...norm('classifier.0', last), ...linear('classifier.2', cfg.numClasses, last));
  return out;
}

export const CONVNEXT: ModelFamily<ConvNeXtConfig> = {
  family: 'convnext',
  models: {
    convnext_tiny: {
      description: 'ConvNeXt-T: depths 3/3/9/3, widths 96-768, stochastic depth 0.1', reference: 'torchvision.models.convnext_tiny', imageSize: 224,
      base: { family: 'convnext', depths: [3, 3, 9, 3], widths: [96, 192, 384, 768], layerScale: 1e-6, stochasticDepth: 0.1, eps: 1e-6 },
      aliases: ['convnext-t', 'convnext_t', 'convnext-tiny'],
    },
    convnext_demo: {
      description: 'narrow ConvNeXt for CPU demos: widths 16/32/64/128, one block per stage', reference: 'torchvision ConvNeXt code path', imageSize: 64,
      base: { family: 'convnext', depths: [1, 1, 1, 1], widths: [16, 32, 64, 128], layerScale: 1e-6, stochasticDepth: 0.1, eps: 1e-6 },
      aliases: ['convnext-demo'],
    },
  },
  configure: (base, task) => ({ ...base, ...task }),
  params: convnextParams,
  featureSize: (cfg) => cfg.widths[cfg.widths.length - 1],
  // Biases, every LayerNorm (the stem's features.0.1, blocks' block.2, the downsamplers'
  // features.N.0, classifier.0) and the layer scales, as timm's and the authors' recipes.
  noDecay: (name) => name.endsWith('.bias') || name.endsWith('.layer_scale') || /^(features\.0\.1|features\.[1-9]\d*\.0|.*\.block\.2|classifier\.0)\.weight$/.test(name),
  stem: 'features.0.0.weight',
  classifier: 'classifier.2',
  // The total stride: smaller inputs leave the last stage empty.
  sizeMultiple: (cfg) => 4 * 2 ** (cfg.depths.length - 1),
  // The last stage (pytorch-grad-cam's model.features[-1]).
  gradCamLayer: (cfg) => `features.${stageIndex(cfg.depths.length - 1)}`,
};
