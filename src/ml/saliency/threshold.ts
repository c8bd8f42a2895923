// DINO's attention threshold (visualize_attention.py): per head, sort the CLS->patch
// attention, normalise it to a distribution, and keep the patches whose ascending cumulative
// mass exceeds 1 - threshold. That is the smallest set of the strongest patches holding at
// least `threshold` of the mass ("top 50% of the attention" for threshold 0.5).

export interface MassMask {
  /** 1 where a patch is kept, 0 elsewhere, in the input's order. */
  mask: Uint8Array;
  /** The share of the (patch-normalised) attention mass the kept patches hold. */
  kept: number;
}

export function topMassMask(values: ArrayLike<number>, threshold: number): MassMask {
  if (!(threshold > 0 && threshold <= 1)) throw new Error(`attention threshold must be in (0, 1], got ${threshold}`);
  const n = values.length;
  let total = 0;
  for (let i = 0; i < n; i++) {
    if (!(values[i] >= 0) || !Number.isFinite(values[i])) throw new Error(`attention value ${values[i]} at ${i} is not a finite non-negative number`);
    total += values[i];
  }
  const mask = new Uint8Array(n);
  if (n === 0 || total === 0) return { mask, kept: 0 };
  // Ascending by value; ties by index, so the choice among equal patches is deterministic
  // (torch.sort leaves it to the implementation; the kept mass is the same either way).
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => values[a] - values[b] || a - b);
  let cum = 0;
  let kept = 0;
  for (const i of order) {
    cum += values[i] / total;
    if (cum > 1 - threshold) {
      mask[i] = 1;
      kept += values[i] / total;
    }
  }
  return { mask, kept };
}
