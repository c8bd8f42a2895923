// Small products without packing. gemm_block packs both operands into kernel strips and
// pads the edge tiles (a 17 x 17 product computes 24 x 32 in three 8-row strips): for the
// attention's 17-50 token products that was most of the time (1.3-6 GFLOP/s). Here each
// row block reads A in place (one broadcast per element) and B's rows in place, or from a
// copy when B is transposed, with masked 16-lane loads and stores at the right edge.
// Every element is the fused multiply-add chain over k in order from zero that the AVX-512
// microkernel computes within one k-block, so the bits are gemm()'s.
#include <cstring>

#include "gemm_batched.h"

namespace mp {

namespace {

// Must not exceed gemm.cc's KC: within one k-block the microkernel's sum is one chain from
// zero; past it, block sums are added to C (another rounding order).
constexpr int SMALL_K = 128;
constexpr int SMALL_MN = 64;  // 4 row x 4 vector accumulators cover a whole row block


#ifdef MP_X86
// Rows [i, i+MB) x all N (NV 16-lane vectors, the last masked) of C.
template <int MB, int NV>
__attribute__((target("avx512f"))) inline void rows(int i, int K, const float* a, long ars, long acs, const float* b, long ldb,
                                                    const __mmask16* mask, float* C, long ldc) {
  __m512 c[MB][NV];
#pragma GCC unroll 4
  for (int r = 0; r < MB; r++)
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) c[r][v] = _mm512_setzero_ps();
  const float* ap = a + (long)i * ars;
  for (int p = 0; p < K; p++) {
    __m512 bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) bv[v] = _mm512_maskz_loadu_ps(mask[v], b + (long)p * ldb + 16 * v);
#pragma GCC unroll 4
    for (int r = 0; r < MB; r++) {
      const __m512 av = _mm512_set1_ps(ap[(long)r * ars + (long)p * acs]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) c[r][v] = _mm512_fmadd_ps(av, bv[v], c[r][v]);
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < MB; r++)
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) _mm512_mask_storeu_ps(C + (long)(i + r) * ldc + 16 * v, mask[v], c[r][v]);
}

// Transposed B (B(p, j) = B.p[p*rs + j*cs]) as its K x N row-major copy, one 16-column
// gather per row: element by element, the copy cost as much as the product (17 x 17 x 64).
__attribute__((target("avx512f"))) void transpose_b(int N, int K, const Src& B, float* dst) {
  const __m512i lane = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), _mm512_set1_epi32((int)B.cs));
  for (int j = 0; j < N; j += 16) {
    const int left = N - j;
    const __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
    const float* col = B.p + (long)j * B.cs;
    for (int p = 0; p < K; p++) {
      const __m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, lane, col + (long)p * B.rs, 4);
      _mm512_mask_storeu_ps(dst + (long)p * N + j, m, v);
    }
  }
}

template <int NV>
__attribute__((target("avx512f"))) void product(int M, int N, int K, const float* a, long ars, long acs, const float* b, long ldb,
                                                float* C, long ldc) {
  __mmask16 mask[NV];
  for (int v = 0; v < NV; v++) {
    const int left = N - 16 * v;
    mask[v] = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
  }
  int i = 0;
  for (; i + 4 <= M; i += 4) rows<4, NV>(i, K, a, ars, acs, b, ldb, mask, C, ldc);
  for (; i < M; i++) rows<1, NV>(i, K, a, ars, acs, b, ldb, mask, C, ldc);
}
#endif

}  // namespace

bool small_gemm_fits(long M, long N, long K) {
  // At first use, not at load: gemm.cc's kernel choice is another file's static initialiser.
  static const bool avx512 = !std::strcmp(gemm_isa(), "avx512");
  return avx512 && gemm_precision() == PREC_FP32 && M <= SMALL_MN && N <= SMALL_MN && K <= SMALL_K;
}

void small_gemm(int M, int N, int K, const Src& A, const Src& B, float* C, long ldc) {
#ifdef MP_X86
  if (M <= 0 || N <= 0) return;
  const float* b = B.p;
  long ldb = B.rs;
  alignas(64) float bt[SMALL_K * SMALL_MN];
  if (B.cs != 1) {
    transpose_b(N, K, B, bt);
    b = bt;
    ldb = N;
  }
  switch ((N + 15) / 16) {
    case 1: product<1>(M, N, K, A.p, A.rs, A.cs, b, ldb, C, ldc); break;
    case 2: product<2>(M, N, K, A.p, A.rs, A.cs, b, ldb, C, ldc); break;
    case 3: product<3>(M, N, K, A.p, A.rs, A.cs, b, ldb, C, ldc); break;
    default: product<4>(M, N, K, A.p, A.rs, A.cs, b, ldb, C, ldc); break;
  }
#else
  (void)M; (void)N; (void)K; (void)A; (void)B; (void)C; (void)ldc;
  fail("matmul: small_gemm without AVX-512");
#endif
}

}  // namespace mp
