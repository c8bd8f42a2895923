// One image through both explanations: the eval transform each model was evaluated with,
// Grad-CAM of the CNN, attention of the transformer, and the coloured panels of Figure 1.

import * as tf from '@tensorflow/tfjs';
import type { RecordReader } from '../../contract.js';
import { evalTransform, type EvalAugment, type Normalisation } from '../../data/augment.js';
import { metaNormalisation, recordShape } from '../../data/loader.js';
import type { LoadedModel } from '../train/model-io.js';
import { attentionMaps, type AttentionResult } from './attention.js';
import { colorise, overlay, toRgb, type ColormapName } from './colormap.js';
import { gradCam, type GradCamResult } from './gradcam.js';
import { strip, type RgbImage } from './image.js';

export interface ModelSlot {
  model: LoadedModel;
  eval: EvalAugment;
}

/** Which class Grad-CAM explains: the CNN's prediction, the true label, or a fixed class. */
export type TargetChoice = 'predicted' | 'label' | number;

export interface ExplainOptions {
  threshold: number;
  target: TargetChoice;
  colormap: ColormapName;
  /** Weight of the colour map over the image. */
  alpha: number;
}

export interface ImageSaliency {
  index: number;
  id: string;
  label: number;
  /** The CNN's eval crop (the transformer's when there is no CNN), unnormalised. */
  original: RgbImage;
  gradcam?: { result: GradCamResult; overlay: RgbImage };
  attention?: { result: AttentionResult; overlay: RgbImage; heads: RgbImage };
}

interface Prepared {
  x: Float32Array;
  display: RgbImage;
  size: number;
}

/** The model input (normalised with the data set's statistics) and the same crop for display. */
function prepare(reader: RecordReader, data: Uint8Array, aug: EvalAugment, norm: Normalisation): Prepared {
  const shape = recordShape(reader.meta);
  const c = shape[2];
  const n = aug.crop * aug.crop * c;
  const x = new Float32Array(n);
  evalTransform(data, shape, aug, norm, x, 0);
  const raw = new Float32Array(n);
  evalTransform(data, shape, aug, { mean: Array(c).fill(0), std: Array(c).fill(1) }, raw, 0);
  return { x, display: { data: toRgb(raw, aug.crop * aug.crop, c), width: aug.crop, height: aug.crop }, size: aug.crop };
}

function targetOf(choice: TargetChoice, label: number): (predicted: number) => number {
  if (choice === 'predicted') return (p) => p;
  if (choice === 'label') return () => label;
  return () => choice;
}

export async function explainImage(reader: RecordReader, index: number, cnn: ModelSlot | undefined, vit: ModelSlot | undefined, o: ExplainOptions): Promise<ImageSaliency> {
  if (!cnn && !vit) throw new Error('saliency: give a CNN checkpoint, a ViT checkpoint or both');
  const record = reader.get(index);
  const label = Number(record.meta['label']);
  const norm = metaNormalisation(reader.meta);
  const channels = recordShape(reader.meta)[2];
  const tensorOf = (p: Prepared) => tf.tensor4d(p.x, [1, p.size, p.size, channels]);

  let gradcamOut: ImageSaliency['gradcam'];
  let attentionOut: ImageSaliency['attention'];
  let original: RgbImage | undefined;
  if (cnn) {
    const p = prepare(reader, record.data, cnn.eval, norm);
    const x = tensorOf(p);
    const [result] = await gradCam(cnn.model.spec, cnn.model.params, x, targetOf(o.target, label)).finally(() => x.dispose());
    original = p.display;
    gradcamOut = { result, overlay: { ...p.display, data: overlay(p.display.data, result.map, o.colormap, o.alpha) } };
  }
  if (vit) {
    const p = prepare(reader, record.data, vit.eval, norm);
    const x = tensorOf(p);
    const [result] = await attentionMaps(vit.model.spec, vit.model.params, x, o.threshold).finally(() => x.dispose());
    original ??= p.display;
    const heads = result.heads.map((h): RgbImage => ({ data: colorise(h.map, o.colormap), width: p.size, height: p.size }));
    attentionOut = {
      result,
      overlay: { ...p.display, data: overlay(p.display.data, result.map, o.colormap, o.alpha) },
      heads: strip([...heads, { data: colorise(result.map, o.colormap), width: p.size, height: p.size }], p.size, 2),
    };
  }
  return { index, id: String(record.meta['id'] ?? index), label, original: original as RgbImage, gradcam: gradcamOut, attention: attentionOut };
}
