// torchvision's ResNet (v1.5: the stride sits on the 3x3 conv of a bottleneck), as a list of
// parameters in state_dict order. The same code describes ResNet50 and the narrow demo nets.

import type { ModelFamily } from '../family.js';
import type { FamilyParam, TaskConfig } from '../param-spec.js';

export interface ResNetConfig extends TaskConfig {
  family: 'resnet';
  block: 'basic' | 'bottleneck';
  /** Blocks per stage, e.g. [3, 4, 6, 3] for ResNet50. */
  layers: number[];
  /** Base width of each stage (bottleneck blocks output 4x this). */
  widths: number[];
  stemWidth: number;
  /** torchvision's zero_init_residual: last BN of each block starts at weight 0. */
  zeroInitResidual: boolean;
}

const EXPANSION = { basic: 1, bottleneck: 4 } as const;

export function expansion(cfg: ResNetConfig): number {
  return EXPANSION[cfg.block];
}

function conv(name: string, out: number, inp: number, k: number): FamilyParam {
  return { name, shape: [out, inp, k, k], layout: 'conv', init: { kind: 'kaimingNormalFanOut' }, trainable: true, dtype: 'F32' };
}

function bn(prefix: string, c: number, zero = false): FamilyParam[] {
  const p = (suffix: string, value: number, trainable: boolean): FamilyParam => ({
    name: `${prefix}.${suffix}`, shape: [c], layout: 'plain', init: { kind: 'constant', value }, trainable, dtype: 'F32',
  });
  return [
    p('weight', zero ? 0 : 1, true),
    p('bias', 0, true),
    p('running_mean', 0, false),
    p('running_var', 1, false),
    { name: `${prefix}.num_batches_tracked`, shape: [], layout: 'plain', init: { kind: 'constant', value: 0 }, trainable: false, dtype: 'I64' },
  ];
}

/** One residual block's description: where it reads, its widths and stride. */
export interface BlockShape {
  prefix: string;
  inplanes: number;
  planes: number;
  stride: number;
  downsample: boolean;
}

export function blockShapes(cfg: ResNetConfig): BlockShape[] {
  if (cfg.layers.length !== cfg.widths.length) throw new Error(`resnet: ${cfg.layers.length} stages but ${cfg.widths.length} widths`);
  const e = expansion(cfg);
  const blocks: BlockShape[] = [];
  let inplanes = cfg.stemWidth;
  cfg.layers.forEach((count, s) => {
    const planes = cfg.widths[s];
    for (let b = 0; b < count; b++) {
      const stride = b === 0 && s > 0 ? 2 : 1;
      blocks.push({ prefix: `layer${s + 1}.${b}`, inplanes, planes, stride, downsample: b === 0 && (stride !== 1 || inplanes !== planes * e) });
      inplanes = planes * e;
    }
  });
  return blocks;
}

/** One conv -> BatchNorm unit: the conv's weight, its stride and padding, the BN's prefix. */
export interface ConvBn {
  conv: string;
  stride: number;
  pad: number;
  bn: string;
}

/** The stem's conv7x7/2 + BN (+ ReLU), then a 3x3/2 max pool with padding 1. */
export const STEM: ConvBn = { conv: 'conv1.weight', stride: 2, pad: 3, bn: 'bn1' };
export const STEM_POOL = { size: 3, stride: 2, pad: 1 } as const;

/** A block's main path in order: each unit is followed by a ReLU, the last one's after the
 *  identity (or the downsample's output) is added. The forward and the step graph read this. */
export function blockUnits(cfg: ResNetConfig, b: BlockShape): ConvBn[] {
  const p = b.prefix;
  if (cfg.block === 'basic') {
    return [
      { conv: `${p}.conv1.weight`, stride: b.stride, pad: 1, bn: `${p}.bn1` },
      { conv: `${p}.conv2.weight`, stride: 1, pad: 1, bn: `${p}.bn2` },
    ];
  }
  return [
    { conv: `${p}.conv1.weight`, stride: 1, pad: 0, bn: `${p}.bn1` },
    { conv: `${p}.conv2.weight`, stride: b.stride, pad: 1, bn: `${p}.bn2` },
    { conv: `${p}.conv3.weight`, stride: 1, pad: 0, bn: `${p}.bn3` },
  ];
}

/** The 1x1 conv + BN on the identity path of a block that changes shape (no ReLU). */
export function downsampleUnit(b: BlockShape): ConvBn | undefined {
  return b.downsample ? { conv: `${b.prefix}.downsample.0.weight`, stride: b.stride, pad: 0, bn: `${b.prefix}.downsample.1` } : undefined;
}

function featureSize(cfg: ResNetConfig): number {
  return cfg.widths[cfg.widths.length - 1] * expansion(cfg);
}

export function resnetParams(cfg: ResNetConfig): FamilyParam[] {
  const out: FamilyParam[] = [conv('conv1.weight', cfg.stemWidth, cfg.channels, 7), ...bn('bn1', cfg.stemWidth)];
  const z = cfg.zeroInitResidual;
  for (const b of blockShapes(cfg)) {
    const { prefix: p, inplanes, planes } = b;
    if (cfg.block === 'basic') {
      out.push(conv(`${p}.conv1.weight`, planes, inplanes, 3), ...bn(`${p}.bn1`, planes));
      out.push(conv(`${p}.conv2.weight`, planes, planes, 3), ...bn(`${p}.bn2`, planes, z));
    } else {
      out.push(conv(`${p}.conv1.weight`, planes, inplanes, 1), ...bn(`${p}.bn1`, planes));
      out.push(conv(`${p}.conv2.weight`, planes, planes, 3), ...bn(`${p}.bn2`, planes));
      out.push(conv(`${p}.conv3.weight`, planes * 4, planes, 1), ...bn(`${p}.bn3`, planes * 4, z));
    }
    if (b.downsample) {
      out.push(conv(`${p}.downsample.0.weight`, planes * expansion(cfg), inplanes, 1), ...bn(`${p}.downsample.1`, planes * expansion(cfg)));
    }
  }
  const features = featureSize(cfg);
  out.push(
    { name: 'fc.weight', shape: [cfg.numClasses, features], layout: 'linear', init: { kind: 'torchDefaultWeight' }, trainable: true, dtype: 'F32' },
    { name: 'fc.bias', shape: [cfg.numClasses], layout: 'plain', init: { kind: 'torchDefaultBias', fanIn: features }, trainable: true, dtype: 'F32' },
  );
  return out;
}

const RESNET50 = { family: 'resnet', block: 'bottleneck', layers: [3, 4, 6, 3], widths: [64, 128, 256, 512], stemWidth: 64 } as const;

export const RESNET: ModelFamily<ResNetConfig, 'zeroInitResidual'> = {
  family: 'resnet',
  models: {
    resnet50: {
      description: 'ResNet50 (bottleneck v1.5), the paper\'s CNN', reference: 'torchvision.models.resnet50', imageSize: 224,
      base: { ...RESNET50, layers: [...RESNET50.layers], widths: [...RESNET50.widths] }, aliases: ['resnet-50'],
    },
    resnet18: {
      description: 'ResNet18 (basic blocks)', reference: 'torchvision.models.resnet18', imageSize: 224,
      base: { family: 'resnet', block: 'basic', layers: [2, 2, 2, 2], widths: [64, 128, 256, 512], stemWidth: 64 },
    },
    resnet_demo: {
      description: 'narrow ResNet for CPU demos: basic blocks, widths 16/32/64/128, one block per stage', reference: 'torchvision ResNet code path', imageSize: 64,
      base: { family: 'resnet', block: 'basic', layers: [1, 1, 1, 1], widths: [16, 32, 64, 128], stemWidth: 16 }, aliases: ['resnet-demo'],
    },
  },
  configure: (base, task, opts) => ({ ...base, ...task, zeroInitResidual: opts.zeroInitResidual ?? false }),
  params: resnetParams,
  featureSize,
  // BatchNorm affine parameters (bn1, bn2, ..., the downsample's BN) and biases.
  noDecay: (name) => name.endsWith('.bias') || /(^|\.)(bn\d*|downsample\.1)\./.test(name),
  stem: 'conv1.weight',
  classifier: 'fc',
  sizeMultiple: () => 1,
  // torchvision's layer4[-1]: the last residual block.
  gradCamLayer: (cfg) => blockShapes(cfg).at(-1)!.prefix,
};
