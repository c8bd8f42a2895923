// pretrain: supervised pre-training on a labelled source data set, whose output initialises
// finetune through `init` with `source: node`. The demo uses it on the synthetic "natural
// images" set as its stand-in for ImageNet (labelled as a proxy wherever it shows). Same
// recipe and parameters as finetune, with accuracy as the default metric.
import { defineStage, type JSONSchema } from '../src/contract.js';
import finetune, { type FinetuneParams } from './finetune.js';

const properties = (finetune.params['properties'] ?? {}) as Record<string, JSONSchema>;

export default defineStage<FinetuneParams>({
  ...finetune,
  kind: 'pretrain',
  description: 'Supervised pre-training on a labelled source set (the demo: a proxy for ImageNet); output: the best-validation checkpoint',
  params: {
    ...finetune.params,
    required: [],
    properties: { ...properties, metric: { ...properties['metric'], default: 'accuracy' } },
  },
});
