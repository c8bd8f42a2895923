// The teacher backbone as a medpipe checkpoint. The classifier head is left out: DINO replaces
// it by nn.Identity and never trains it, so what the file could hold there is only the input
// checkpoint's head; mapWeights initialises an absent head fresh for the task.
import { readState, type ParamMap } from '../models/params.js';
import type { ModelSpec } from '../models/types.js';
import { metaFor, writeCheckpoint } from '../weights/checkpoint.js';
import type { LoadedModel } from '../train/model-io.js';

export function backboneSpec(spec: ModelSpec): ModelSpec {
  return { ...spec, params: spec.params.filter((p) => !p.head) };
}

export async function exportTeacher(path: string, model: LoadedModel, teacherBackbone: ParamMap, extra: Record<string, string>): Promise<void> {
  const spec = backboneSpec(model.spec);
  await writeCheckpoint(path, spec, await readState(spec, teacherBackbone), metaFor(model.spec, `dino(${model.meta.source})`, extra));
}
