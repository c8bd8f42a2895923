// The model names medpipe knows, their architectures and parameter counts. No tfjs here:
// `pipeline models`, ajv schemas and planning read this cheaply.

import { resnetParams } from './resnet-spec.js';
import type { ModelConfig, ModelSpec, ParamSpec, ResNetConfig, TaskOptions, ViTConfig } from './types.js';
import { vitParams } from './vit-spec.js';

type Base<C> = Omit<C, 'numClasses' | 'channels' | 'imageSize' | 'zeroInitResidual'>;

interface Entry {
  description: string;
  /** Where the architecture comes from (the paper's models are exact copies). */
  reference: string;
  /** Input size the model is built for unless a task says otherwise. */
  imageSize: number;
  base: Base<ResNetConfig> | Base<ViTConfig>;
}

const RESNET50: Base<ResNetConfig> = { family: 'resnet', block: 'bottleneck', layers: [3, 4, 6, 3], widths: [64, 128, 256, 512], stemWidth: 64 };
const DEIT_S: Base<ViTConfig> = { family: 'vit', patchSize: 16, dim: 384, depth: 12, heads: 6, mlpRatio: 4, qkvBias: true, eps: 1e-6 };

const MODELS: Record<string, Entry> = {
  resnet50: { description: 'ResNet50 (bottleneck v1.5), the paper\'s CNN', reference: 'torchvision.models.resnet50', imageSize: 224, base: RESNET50 },
  resnet18: {
    description: 'ResNet18 (basic blocks)', reference: 'torchvision.models.resnet18', imageSize: 224,
    base: { family: 'resnet', block: 'basic', layers: [2, 2, 2, 2], widths: [64, 128, 256, 512], stemWidth: 64 },
  },
  resnet_demo: {
    description: 'narrow ResNet for CPU demos: basic blocks, widths 16/32/64/128, one block per stage', reference: 'torchvision ResNet code path', imageSize: 64,
    base: { family: 'resnet', block: 'basic', layers: [1, 1, 1, 1], widths: [16, 32, 64, 128], stemWidth: 16 },
  },
  deit_small_patch16_224: { description: 'DeiT-S/16, the paper\'s transformer', reference: 'timm deit_small_patch16_224', imageSize: 224, base: DEIT_S },
  vit_demo: {
    description: 'small ViT for CPU demos: dim 192, depth 4, 3 heads, patch 8', reference: 'timm VisionTransformer code path', imageSize: 64,
    base: { family: 'vit', patchSize: 8, dim: 192, depth: 4, heads: 3, mlpRatio: 4, qkvBias: true, eps: 1e-6 },
  },
};

/** Names people write in pipelines (the paper's labels), case-insensitive. */
const ALIASES: Record<string, string> = {
  'resnet-50': 'resnet50',
  'deit-s': 'deit_small_patch16_224',
  'deit-s/16': 'deit_small_patch16_224',
  deit_small: 'deit_small_patch16_224',
  'resnet-demo': 'resnet_demo',
  'vit-demo': 'vit_demo',
};

export const MODEL_NAMES = Object.keys(MODELS);

/** Every name and alias `resolveModelName` accepts (for schemas and messages). */
export function modelNameChoices(): string[] {
  return [...MODEL_NAMES, ...Object.keys(ALIASES)];
}

export function resolveModelName(name: string): string {
  const key = name.toLowerCase();
  if (key in MODELS) return key;
  const alias = ALIASES[key];
  if (alias) return alias;
  throw new Error(`unknown model '${name}': known models are ${MODEL_NAMES.join(', ')} (aliases: ${Object.keys(ALIASES).join(', ')})`);
}

function positiveInt(what: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new Error(`${what} must be a positive integer, got ${v}`);
  return v;
}

export function modelConfig(name: string, opts: TaskOptions = {}): ModelConfig {
  const entry = MODELS[resolveModelName(name)];
  const task = {
    numClasses: positiveInt('num_classes', opts.numClasses ?? 1000),
    channels: positiveInt('channels', opts.channels ?? 3),
    imageSize: positiveInt('image_size', opts.imageSize ?? entry.imageSize),
  };
  if (entry.base.family === 'resnet') return { ...entry.base, ...task, zeroInitResidual: opts.zeroInitResidual ?? false };
  return { ...entry.base, ...task };
}

export function paramsOf(cfg: ModelConfig): ParamSpec[] {
  return cfg.family === 'resnet' ? resnetParams(cfg) : vitParams(cfg);
}

/** A model instance's description: canonical name, config, every parameter and buffer. */
export function modelSpec(name: string, opts: TaskOptions = {}): ModelSpec {
  const config = modelConfig(name, opts);
  return { name: resolveModelName(name), config, params: paramsOf(config) };
}

function count(params: ParamSpec[], keep: (p: ParamSpec) => boolean): number {
  return params.filter(keep).reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
}

export interface ModelInfo {
  name: string;
  family: ModelConfig['family'];
  description: string;
  reference: string;
  imageSize: number;
  numClasses: number;
  channels: number;
  /** Trainable parameters, as torch's sum(p.numel() for p in model.parameters()). */
  parameters: number;
  /** The same without the classifier head. */
  backboneParameters: number;
  /** Non-trained state (BatchNorm running statistics). */
  bufferElements: number;
}

export function modelInfo(name: string, opts: TaskOptions = {}): ModelInfo {
  const spec = modelSpec(name, opts);
  const entry = MODELS[spec.name];
  return {
    name: spec.name,
    family: spec.config.family,
    description: entry.description,
    reference: entry.reference,
    imageSize: spec.config.imageSize,
    numClasses: spec.config.numClasses,
    channels: spec.config.channels,
    parameters: count(spec.params, (p) => p.trainable),
    backboneParameters: count(spec.params, (p) => p.trainable && !p.head),
    bufferElements: count(spec.params, (p) => !p.trainable),
  };
}

/** Every registered model with its parameter count (ImageNet head: 1000 classes, 3 channels). */
export function listModels(opts: TaskOptions = {}): ModelInfo[] {
  return MODEL_NAMES.map((n) => modelInfo(n, opts));
}

/** A spec for an unregistered configuration (tests, experiments); same code paths. */
export function specFromConfig(name: string, config: ModelConfig): ModelSpec {
  return { name, config, params: paramsOf(config) };
}
