// Small products (the attention's per-head [T x d] x [d x T] and [T x T] x [T x d]): one
// register-blocked pass straight from the operands, no packing, on the calling thread.
#pragma once

#include "gemm.h"

namespace mp {

// True when small_gemm computes C = op(A) op(B) bit for bit as gemm() would (the fp32
// AVX-512 kernel, one k-block), and is the faster path for the shape.
bool small_gemm_fits(long M, long N, long K);
// C [M x N], leading dimension ldc; A and B strided (Src::STRIDED). Only where small_gemm_fits.
void small_gemm(int M, int N, int K, const Src& A, const Src& B, float* C, long ldc);

}  // namespace mp
