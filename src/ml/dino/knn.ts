// DINO's k-NN monitor (eval_knn.py's knn_classifier): L2-normalised features, cosine
// similarity of each query to the whole bank, the k most similar vote for their class with
// weight exp(similarity / T); top-1 accuracy. DINO: k = 20, T = 0.07.
// Plain float64 loops: the banks here are a training split (hundreds to thousands of images).

export interface KnnOptions {
  k: number;
  temperature: number;
  classes: number;
}

export const DINO_KNN: Omit<KnnOptions, 'classes'> = { k: 20, temperature: 0.07 };

function normalised(features: Float32Array, dim: number): Float64Array {
  const out = new Float64Array(features.length);
  for (let r = 0; r < features.length / dim; r++) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += features[r * dim + j]! * features[r * dim + j]!;
    // nn.functional.normalize: x / max(||x||, 1e-12)
    const inv = 1 / Math.max(Math.sqrt(s), 1e-12);
    for (let j = 0; j < dim; j++) out[r * dim + j] = features[r * dim + j]! * inv;
  }
  return out;
}

/** Top-1 accuracy of the weighted k-NN vote of `bank` for each query (rows of `dim`). */
export function knnAccuracy(bank: Float32Array, bankLabels: ArrayLike<number>, queries: Float32Array, queryLabels: ArrayLike<number>, dim: number, o: KnnOptions): number {
  const nb = bank.length / dim;
  const nq = queries.length / dim;
  if (!Number.isInteger(nb) || nb !== bankLabels.length) throw new Error(`knn: ${bank.length} bank values are not ${bankLabels.length} rows of ${dim}`);
  if (!Number.isInteger(nq) || nq !== queryLabels.length) throw new Error(`knn: ${queries.length} query values are not ${queryLabels.length} rows of ${dim}`);
  if (nq === 0) throw new Error('knn: no queries');
  const b = normalised(bank, dim);
  const q = normalised(queries, dim);
  const k = Math.min(o.k, nb);
  const sims = new Float64Array(nb);
  const order = new Int32Array(nb);
  const votes = new Float64Array(o.classes);
  let correct = 0;
  for (let i = 0; i < nq; i++) {
    for (let r = 0; r < nb; r++) {
      let s = 0;
      for (let j = 0; j < dim; j++) s += q[i * dim + j]! * b[r * dim + j]!;
      sims[r] = s;
      order[r] = r;
    }
    // Most similar first; ties by bank order, so the vote is deterministic.
    order.sort((x, y) => sims[y]! - sims[x]! || x - y);
    votes.fill(0);
    for (let n = 0; n < k; n++) votes[bankLabels[order[n]!]!]! += Math.exp(sims[order[n]!]! / o.temperature);
    let best = 0;
    for (let c = 1; c < o.classes; c++) if (votes[c]! > votes[best]!) best = c;
    if (best === queryLabels[i]) correct++;
  }
  return correct / nq;
}
