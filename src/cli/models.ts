// `pipeline models`: the architectures medpipe knows, with parameter counts (ImageNet head).
import { listModels } from '../ml/models/registry.js';
import { table } from './output.js';

export function modelsTable(): string {
  const rows = [['model', 'family', 'input', 'parameters', 'backbone', 'reference']];
  for (const m of listModels()) {
    rows.push([m.name, m.family, `${m.imageSize}px`, m.parameters.toLocaleString('en-US'), m.backboneParameters.toLocaleString('en-US'), m.reference]);
  }
  return table(rows) + '\n(parameters with a 1000-class head and 3 input channels, counted as torch does: trainable tensors only)\n';
}
