// Model descriptions that need no tensor library (see ./param-spec.ts for parameters and
// ./families.ts for the families' configs).

import type { ModelConfig } from './families.js';
import type { ParamSpec } from './param-spec.js';

export type { Layout, InitRule, ParamSpec, TaskOptions } from './param-spec.js';
export type { ModelConfig } from './families.js';
export type { ResNetConfig } from './resnet/spec.js';
export type { ViTConfig } from './vit/spec.js';
export type { ConvNeXtConfig } from './convnext/spec.js';

/** A model instance's description: its registered name, config and parameter list. */
export interface ModelSpec {
  name: string;
  config: ModelConfig;
  params: ParamSpec[];
}
