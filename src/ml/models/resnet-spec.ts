// torchvision's ResNet (v1.5: the stride sits on the 3x3 conv of a bottleneck), as a list of
// parameters in state_dict order. The same code describes ResNet50 and the narrow demo nets.

import type { ParamSpec, ResNetConfig } from './types.js';

const EXPANSION = { basic: 1, bottleneck: 4 } as const;

export function expansion(cfg: ResNetConfig): number {
  return EXPANSION[cfg.block];
}

function conv(name: string, out: number, inp: number, k: number): ParamSpec {
  return { name, shape: [out, inp, k, k], layout: 'conv', init: { kind: 'kaimingNormalFanOut' }, trainable: true, dtype: 'F32', head: false };
}

function bn(prefix: string, c: number, zero = false): ParamSpec[] {
  const p = (suffix: string, value: number, trainable: boolean): ParamSpec => ({
    name: `${prefix}.${suffix}`, shape: [c], layout: 'plain', init: { kind: 'constant', value }, trainable, dtype: 'F32', head: false,
  });
  return [
    p('weight', zero ? 0 : 1, true),
    p('bias', 0, true),
    p('running_mean', 0, false),
    p('running_var', 1, false),
    { name: `${prefix}.num_batches_tracked`, shape: [], layout: 'plain', init: { kind: 'constant', value: 0 }, trainable: false, dtype: 'I64', head: false },
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

export function resnetParams(cfg: ResNetConfig): ParamSpec[] {
  const out: ParamSpec[] = [conv('conv1.weight', cfg.stemWidth, cfg.channels, 7), ...bn('bn1', cfg.stemWidth)];
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
  const features = cfg.widths[cfg.widths.length - 1] * expansion(cfg);
  out.push(
    { name: 'fc.weight', shape: [cfg.numClasses, features], layout: 'linear', init: { kind: 'torchDefaultWeight' }, trainable: true, dtype: 'F32', head: true },
    { name: 'fc.bias', shape: [cfg.numClasses], layout: 'plain', init: { kind: 'torchDefaultBias', fanIn: features }, trainable: true, dtype: 'F32', head: true },
  );
  return out;
}
