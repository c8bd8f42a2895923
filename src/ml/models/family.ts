// What a model family says about itself without a tensor library (one module per family,
// timm style: ./resnet, ./vit, ./convnext). Its tfjs half is ./net.ts's FamilyNet. Both are
// registered once: descriptions in ./families.ts, nets in ./forward.ts. Nothing else in
// medpipe branches on a family: the registry, the weight mapper, finetune, DINO and the
// saliency stage read these fields.

import type { FamilyParam, StateTensor, TaskConfig, TaskOptions } from './param-spec.js';

/** A config without its per-task fields (those a task sets, including family-specific ones
 *  such as ResNet's zeroInitResidual, named by `T`). */
export type BaseConfig<C, T extends keyof C = never> = Omit<C, keyof TaskConfig | T>;

/** A registered model name of the family (e.g. `resnet50`) and its fixed architecture. */
export interface NamedModel<B> {
  description: string;
  /** Where the architecture comes from (the paper's models are exact copies). */
  reference: string;
  /** Input size the model is built for unless a task says otherwise. */
  imageSize: number;
  base: B;
  /** Other spellings people write in pipelines, lower case. */
  aliases?: string[];
}

/** What ViT-style attention maps need to know: which block, how many heads, patch size. */
export interface AttentionLayout {
  block: number;
  heads: number;
  patch: number;
}

export interface ModelFamily<C extends { family: string } & TaskConfig, T extends keyof C = never> {
  family: C['family'];
  models: Record<string, NamedModel<BaseConfig<C, T>>>;
  /** The config of a registered model for a task; family-specific task options apply here. */
  configure(base: BaseConfig<C, T>, task: TaskConfig, opts: TaskOptions): C;
  /** Every parameter and buffer, PyTorch names and shapes, in state_dict order, with init. */
  params(cfg: C): FamilyParam[];
  /** Width of `features` (what DINO's head and a linear probe take). */
  featureSize(cfg: C): number;
  /** Parameters finetune's AdamW leaves undecayed (norms, biases, embeddings, layer scales). */
  noDecay(name: string): boolean;
  /** The first conv's weight: a 1-channel model takes its first input-channel slice. */
  stem: string;
  /** The classifier's module name: its tensors are the head, replaced per task. */
  classifier: string;
  /** Input sizes the family wants (a ViT's patch); 1 when any size works. */
  sizeMultiple(cfg: C): number;
  /** The module Grad-CAM explains (its output is the net's `gradCam.activations`), if a CNN. */
  gradCamLayer?(cfg: C): string;
  /** The attention the saliency maps read, if a transformer. */
  attention?(cfg: C): AttentionLayout;
  /** A file tensor of another shape this family can still use (a ViT's position embedding
   *  for another grid), with a note for the user; undefined when it cannot. */
  adaptWeight?(cfg: C, name: string, t: StateTensor): { tensor: StateTensor; note: string } | undefined;
}
