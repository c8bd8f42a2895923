// The inference BatchNorm's element formula, one function for the norms ops (norms.cc:
// batchNorm, bnRelu, the output pass of bnTrain / bnReluTrain) and the conv's GEMM epilogue
// (gemm.cc, BnEpi: conv2dBn). One definition is what makes conv2dBn give the bits of conv2d
// then bnRelu / batchNorm: two copies of the formula could drift apart (an operand order, a
// fused step) and only a bit-for-bit test would notice.
#pragma once

#include "common.h"

namespace mp {

// Rows [r0, r1), columns [c0, c1) of row-major x (row i at x + i * ld):
//   y = (x - mean[j]) * mul[j] + add[j]            (no residual)
//   y = (x - mean[j]) * mul[j] + add[j] + res[i * ldr + j]
// in that order, then max(0, .) when relu; y has x's layout and may be x (in place: the
// GEMM epilogue). A residual is always followed by the ReLU, relu or not: ResNet's block
// tail is the only form any caller has (bnRelu and bnReluTrain are ReLU ops; conv2dBn
// refuses a residual without relu). Element-wise, compiled per ISA (MP_CLONES) with
// -ffp-contract=off: every clone, and any split of the rows or columns, gives the same bits.
void bn_rows(long r0, long r1, long c0, long c1, long ld, const float* x, float* y, const float* mean,
             const float* mul, const float* add, const float* res, long ldr, bool relu);

}  // namespace mp
