// A state dict: PyTorch names, PyTorch layouts, float32 values (int64 buffers such as
// num_batches_tracked held as floats, exact below 2^24). The form weights take between
// files and models, independent of any tensor library.

import { initialValues } from './init.js';
import type { StateTensor } from './param-spec.js';
import type { ModelSpec, ParamSpec } from './types.js';

export type { StateTensor } from './param-spec.js';

export type StateDict = Map<string, StateTensor>;

/** Fresh values for every parameter and buffer of a model (or those `which` selects). */
export function initState(spec: ModelSpec, seed: number, which: (p: ParamSpec) => boolean = () => true): StateDict {
  const state: StateDict = new Map();
  for (const p of spec.params) if (which(p)) state.set(p.name, { shape: [...p.shape], data: initialValues(p, seed) });
  return state;
}

export function stateElements(state: StateDict): number {
  let n = 0;
  for (const t of state.values()) n += t.data.length;
  return n;
}
