// The model families medpipe knows: adding one is a module (./<family>/spec.ts and net.ts)
// plus a line here and one in ./forward.ts. No tfjs here.

import { CONVNEXT, type ConvNeXtConfig } from './convnext/spec.js';
import type { ModelFamily } from './family.js';
import { RESNET, type ResNetConfig } from './resnet/spec.js';
import { VIT, type ViTConfig } from './vit/spec.js';

export type ModelConfig = ResNetConfig | ViTConfig | ConvNeXtConfig;
export type FamilyName = ModelConfig['family'];
export type ConfigOf<F extends FamilyName> = Extract<ModelConfig, { family: F }>;

export const FAMILIES = { resnet: RESNET, vit: VIT, convnext: CONVNEXT } satisfies { [F in FamilyName]: { family: F } };

/** A family with its config type erased, as code over all families sees it. */
export type AnyFamily = ModelFamily<ModelConfig>;

export function allFamilies(): AnyFamily[] {
  return Object.values(FAMILIES) as unknown as AnyFamily[];
}

/** The description of `cfg`'s family, typed for that config. */
export function familyOf<C extends ModelConfig>(cfg: C): ModelFamily<C> {
  const f = (FAMILIES as Record<string, unknown>)[cfg.family];
  if (!f) throw new Error(`unknown model family '${cfg.family}': known families are ${Object.keys(FAMILIES).join(', ')}`);
  return f as ModelFamily<C>;
}
