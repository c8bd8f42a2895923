// GEMM family: row-major C[M x N] (=) op(A)[M x K] . op(B)[K x N] with packed panels and a
// microkernel per ISA (ukr_*.cc), chosen at load time. Also the operands convolutions use:
// A may be an implicit im2col of an NHWC image, never materialised.
#pragma once

#include "common.h"

namespace mp {

struct ConvGeom {
  int N, H, W, C, OC, KH, KW, sh, sw, dh, dw, pt, pl, OH, OW;
};

struct Src {
  enum Kind { STRIDED, IM2COL, IM2COL_T } kind = STRIDED;
  const float* p = nullptr;
  long rs = 0, cs = 0;          // STRIDED: (i, k) -> p[i*rs + k*cs]
  const ConvGeom* g = nullptr;  // IM2COL: row m = (n,oh,ow), col k = (kh,kw,c) of image p (as A or B)
};

// Writes im2col(m, k0 .. k0+len) to dst[j*ds].
void im2col_run(const ConvGeom& g, const float* x, long m, int k0, int len, float* dst, long ds);

// Activation applied after the bias (the `activation` enum of the op table).
enum Activation { ACT_NONE, ACT_RELU, ACT_COUNT };

// Arithmetic of the products: fp32 (the default; exact to the tests' tolerances) or bf16
// operands (rounded to nearest even at packing) with fp32 accumulation, as PyTorch's CPU
// autocast runs convolutions and matmuls. The `precision` enum of the op table.
enum Precision { PREC_FP32, PREC_BF16, PREC_COUNT };
// False (and nothing changed) when this CPU has no bf16 dot-product instruction.
bool set_gemm_precision(Precision p);
Precision gemm_precision();
bool bf16_supported();
// Whether the AMX / vdpbf16ps kernels are in this build (build.mjs leaves one out where the
// compiler lacks its target; false off x86).
bool gemm_amx_built();
bool gemm_avx512bf16_built();
// The bf16 kernel in use: "amx" (TDPBF16PS tiles), "avx512bf16" (vdpbf16ps) or "" (none).
const char* bf16_kernel();
const char* gemm_isa();
// Rows per A strip of the chosen microkernel (operands whose strips align with it pack faster).
int gemm_mr();

// Whether a product split over the pool packs the operand its chunks share (B for a split
// by rows, a row-wise A for one by columns) once for all threads (fp32);
// MEDPIPE_NATIVE_SHARE_PACKING=0 has each chunk pack it (A/B measurements).
extern bool g_gemm_share_packing;

// An inference BatchNorm applied to C's final values: C = (C - mean) * mul + add (+ res),
// then max(0, .) when relu (res only with relu), per column j (mean[j] ...) and
// res[i * ldr + j]; by the bnRelu / batchNorm ops' own function (norms.h, bn_rows), so a
// conv with it gives the bits of the conv then that op. Applied per block while it is in
// cache (fp32: after each MC x NC block's last k-block), saving the op's own pass over the
// output.
struct BnEpi {
  const float* mean = nullptr;
  const float* mul = nullptr;
  const float* add = nullptr;
  const float* res = nullptr;
  long ldr = 0;
  bool relu = false;
};

// C = op(A) op(B) (+ bias per column, then act; then bn when given), C with leading
// dimension ldc. `serial` keeps it on the calling thread (the caller already splits work
// over the pool).
void gemm(int M, int N, int K, const Src& A, const Src& B, float* C, long ldc, const float* bias, int act,
          bool serial = false, const BnEpi* bn = nullptr);
// One thread's share, C rows [m0, m1) x cols [n0, n1), with scratch of thread `tid`.
void gemm_block(int m0, int m1, int n0, int n1, int K, const Src& A, const Src& B, float* C, long ldc,
                const float* bias, int act, int tid, const BnEpi* bn = nullptr);


}  // namespace mp
