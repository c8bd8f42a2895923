// saliency: the paper's Figure 1 for one data set. N test images; for each, the original,
// Grad-CAM of a finetuned CNN (ResNet, ConvNeXt: any family with a Grad-CAM layer) and the
// last-block CLS attention of a finetuned DeiT (any family with attention maps; top
// `threshold` of the mass per head, mean over heads). Outputs the grid (rows original /
// Grad-CAM / attention, one column per image) for the aggregate report, every image's
// panels as PNGs in a tar, and a json summary of what each map shows.
import { BACKEND_PARAM } from '../src/engine/activate.js';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { defineStage, type JSONObject, type JSONValue, type StageContext } from '../src/contract.js';
import { allFamilies, familyOf } from '../src/ml/models/families.js';
import type { ModelConfig } from '../src/ml/models/types.js';

interface SaliencyParams {
  count: number;
  ids?: string[];
  seed: number;
  subset: 'test' | 'val' | 'train';
  threshold: number;
  class: 'predicted' | 'label' | number;
  colormap: 'jet' | 'viridis' | 'inferno' | 'gray';
  alpha: number;
  cell?: number;
  gap: number;
  eval?: { resize?: number; crop?: number };
  backend: string;
}

export default defineStage<SaliencyParams>({
  kind: 'saliency',
  version: 1,
  description: 'Figure 1: Grad-CAM of a CNN (ResNet, ConvNeXt) and self-attention of a DeiT on N test images, as PNG grid + overlays',
  params: {
    type: 'object',
    properties: {
      count: { type: 'integer', minimum: 1, maximum: 64, default: 3, description: 'images drawn by `seed` from the subset (ignored when `ids` lists them)' },
      ids: { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 64, description: 'record ids to explain, in column order' },
      seed: { type: 'integer', minimum: 0, default: 0 },
      subset: { enum: ['test', 'val', 'train'], default: 'test' },
      threshold: { type: 'number', exclusiveMinimum: 0, maximum: 1, default: 0.5, description: "share of each head's attention mass kept (DINO's --threshold)" },
      class: {
        oneOf: [{ enum: ['predicted', 'label'] }, { type: 'integer', minimum: 0 }],
        default: 'predicted',
        description: "the class Grad-CAM explains: the CNN's prediction, the true label, or a class index",
      },
      colormap: { enum: ['jet', 'viridis', 'inferno', 'gray'], default: 'jet' },
      alpha: { type: 'number', minimum: 0, maximum: 1, default: 0.5, description: 'weight of the colour map over the image' },
      cell: { type: 'integer', minimum: 16, maximum: 1024, description: 'side of each panel in the grid (default: the larger model input)' },
      gap: { type: 'integer', minimum: 0, maximum: 64, default: 4, description: 'white pixels between panels' },
      eval: {
        type: 'object',
        additionalProperties: false,
        properties: { resize: { type: 'integer', minimum: 8 }, crop: { type: 'integer', minimum: 8 } },
        description: "overrides both models' eval transform (default: each checkpoint's recorded one)",
      },
      backend: BACKEND_PARAM,
    },
    additionalProperties: false,
  },
  unkeyed: ['backend'],
  inputs: {
    data: { type: 'records' },
    split: { type: 'json' },
    cnn: { type: 'file', optional: true, description: 'a finetuned CNN checkpoint, ResNet or ConvNeXt (Grad-CAM row)' },
    vit: { type: 'file', optional: true, description: 'a finetuned ViT/DeiT checkpoint (attention row)' },
  },
  outputs: { figure: 'file', overlays: 'file', summary: 'json' },
  resources: { cpus: 1 },

  async run(ctx: StageContext<SaliencyParams>) {
    const p = ctx.params;
    if (!ctx.inputs.has('cnn') && !ctx.inputs.has('vit')) throw new Error('saliency: wire a `cnn` checkpoint, a `vit` checkpoint, or both');
    const [{ activateEngine }, { loadModel }, { augmentFor }, sel, { explainImage }, fig] = await Promise.all([
      import('../src/engine/activate.js'),
      import('../src/ml/train/model-io.js'),
      import('./finetune.js'),
      import('../src/ml/saliency/select.js'),
      import('../src/ml/saliency/explain.js'),
      import('../src/ml/saliency/figure.js'),
    ]);
    const { engine } = await activateEngine(p.backend, ctx.provenance);

    const reader = ctx.inputs.records('data');
    const split = ctx.inputs.json<Record<string, number[]>>('split');
    const subset = split[p.subset] ?? [];
    const indices = p.ids ? sel.indicesOfIds(reader, p.ids) : sel.pickBySeed(subset, p.count, p.seed);

    const slot = async (name: 'cnn' | 'vit', fits: (c: ModelConfig) => boolean, what: string) => {
      if (!ctx.inputs.has(name)) return undefined;
      const model = await loadModel(await ctx.inputs.file(name), {}, 0);
      if (!fits(model.spec.config)) throw new Error(`saliency: input ${name} is a ${model.spec.name} (${model.spec.config.family}); it takes ${what}`);
      // The transform the model was evaluated with: recorded in finetune's checkpoints,
      // else finetune's rule for the model's size; `eval` overrides either.
      const recorded = fig.recordedEval(model.meta.extra);
      return { model, eval: { ...augmentFor(model.meta.image_size, {}).eval, ...recorded, ...p.eval } };
    };
    const cnns = allFamilies().filter((f) => f.gradCamLayer).map((f) => f.family);
    const transformers = allFamilies().filter((f) => f.attention).map((f) => f.family);
    const cnn = await slot('cnn', (c) => cnns.includes(c.family), `a convolutional checkpoint (Grad-CAM: ${cnns.join(', ')})`);
    const vit = await slot('vit', (c) => transformers.includes(c.family), `a transformer checkpoint (attention maps: ${transformers.join(', ')})`);
    ctx.log(`${p.subset}: ${indices.length} image(s); cnn ${cnn?.model.spec.name ?? 'none'}, vit ${vit?.model.spec.name ?? 'none'}; backend ${engine.backend}`);

    const images = [];
    for (const [k, index] of indices.entries()) {
      if (ctx.signal.aborted) throw new Error('saliency: aborted');
      ctx.progress(`image ${k + 1}/${indices.length}`);
      images.push(await explainImage(reader, index, cnn, vit, { threshold: p.threshold, target: p.class, colormap: p.colormap, alpha: p.alpha }));
    }
    const cell = p.cell ?? Math.max(cnn?.eval.crop ?? 0, vit?.eval.crop ?? 0);
    const rowNames = {
      gradcam: `${cnn?.model.spec.name ?? 'CNN'} Grad-CAM (${typeof p.class === 'number' ? `class ${p.class}` : `${p.class} class`})`,
      attention: `${vit?.model.spec.name ?? 'ViT'} attention (top ${Math.round(p.threshold * 100)}% per head, mean of ${vit ? familyOf(vit.model.spec.config).attention?.(vit.model.spec.config).heads ?? 0 : 0} heads)`,
    };
    const out = await fig.renderFigure(images, { cell, gap: p.gap, rowNames });
    await writeFile(join(ctx.workdir, 'figure.png'), out.figure);
    await writeFile(join(ctx.workdir, 'overlays.tar'), out.overlays);
    await ctx.outputs.file('figure', 'figure.png');
    await ctx.outputs.file('overlays', 'overlays.tar');

    const inSubset = new Set(subset);
    const summary: JSONObject = {
      subset: p.subset,
      selection: p.ids ? { ids: p.ids } : { seed: p.seed, count: p.count },
      threshold: p.threshold,
      class: p.class,
      colormap: p.colormap,
      layout: out.layout,
      cnn: cnn ? fig.cnnInfo(cnn.model.spec, cnn.eval, images[0]?.gradcam?.result.grid) : null,
      vit: vit ? fig.vitInfo(vit.model.spec, vit.eval) : null,
      images: images.map((im): JSONValue => ({ ...fig.imageSummary(im), in_subset: inSubset.has(im.index) })),
    };
    ctx.outputs.json('summary', summary);
  },
});
