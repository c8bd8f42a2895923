// Floating-point operations of one forward kernel call, read off its inputs and outputs
// (multiply and add counted apart, as GFLOP/s figures are quoted). Only the kernels that
// carry a model's arithmetic count: convolutions (inputs x and filter) and matrix products
// (inputs a and b: BatchMatMul, _FusedMatMul, MedpipeLinear), told by name, since Add and
// Multiply have inputs a and b too. Element-wise and normalisation kernels are a few FLOPs
// per value and memory-bound, and counting them would flatter a GFLOP/s figure.

interface Shaped {
  shape: readonly number[];
}

const prod = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);

export function kernelFlops(
  name: string,
  inputs: Readonly<Record<string, Shaped | undefined>>,
  attrs: Readonly<Record<string, unknown>> | undefined,
  outputs: readonly Shaped[],
): number {
  const out = outputs[0];
  if (out === undefined) return 0;
  const { x, filter, a, b } = inputs;
  if (/conv/i.test(name) && x !== undefined && filter !== undefined && filter.shape.length === 4 && out.shape.length === 4) {
    // NHWC output; filter [kh, kw, in, out] (depthwise: [kh, kw, in, multiplier], one input
    // channel per output).
    const [kh, kw, cin] = filter.shape;
    const perOutput = /depthwise/i.test(name) ? kh * kw : kh * kw * cin;
    return 2 * prod(out.shape) * perOutput;
  }
  if (/matmul|linear/i.test(name) && a !== undefined && b !== undefined && a.shape.length >= 2 && out.shape.length >= 2) {
    const transposeA = attrs?.transposeA === true;
    const k = a.shape[a.shape.length - (transposeA ? 2 : 1)];
    return 2 * prod(out.shape) * k;
  }
  return 0;
}
