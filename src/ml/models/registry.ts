// The model names medpipe knows, their architectures and parameter counts. No tfjs here:
// `pipeline models`, ajv schemas and planning read this cheaply.

import { allFamilies, familyOf, type AnyFamily } from './families.js';
import type { BaseConfig, NamedModel } from './family.js';
import type { ModelConfig, ModelSpec, ParamSpec, TaskOptions } from './types.js';

interface Entry {
  family: AnyFamily;
  model: NamedModel<BaseConfig<ModelConfig>>;
}

/** Every family's registered models, by name. */
const MODELS: Record<string, Entry> = Object.fromEntries(
  allFamilies().flatMap((family) => Object.entries(family.models).map(([name, model]) => [name, { family, model }])),
);

/** Names people write in pipelines (the paper's labels), case-insensitive. */
const ALIASES: Record<string, string> = Object.fromEntries(
  Object.entries(MODELS).flatMap(([name, e]) => (e.model.aliases ?? []).map((a) => [a, name])),
);

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
  const { family, model } = MODELS[resolveModelName(name)];
  const task = {
    numClasses: positiveInt('num_classes', opts.numClasses ?? 1000),
    channels: positiveInt('channels', opts.channels ?? 3),
    imageSize: positiveInt('image_size', opts.imageSize ?? model.imageSize),
  };
  return family.configure(model.base, task, opts);
}

/** The family's parameters; the head is whatever sits under its classifier's name. */
export function paramsOf(cfg: ModelConfig): ParamSpec[] {
  const f = familyOf(cfg);
  return f.params(cfg).map((p) => ({ ...p, head: p.name.startsWith(`${f.classifier}.`) }));
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
  const { model } = MODELS[spec.name];
  return {
    name: spec.name,
    family: spec.config.family,
    description: model.description,
    reference: model.reference,
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
