// AVX2 + FMA microkernel: 6 x 16 fp32 tile in 12 ymm accumulators.
#include "common.h"
#include "ukr.h"

#ifdef MP_X86
namespace mp {

__attribute__((target("avx2,fma"))) void ukr_avx2(int kc, const float* A, const float* B, float* C, long ldc, bool acc, int m, int n) {
  __m256 c0[MR256], c1[MR256];
  for (int r = 0; r < MR256; r++) { c0[r] = _mm256_setzero_ps(); c1[r] = _mm256_setzero_ps(); }
  for (int p = 0; p < kc; p++) {
    const __m256 b0 = _mm256_loadu_ps(B);
    const __m256 b1 = _mm256_loadu_ps(B + 8);
    for (int r = 0; r < MR256; r++) {
      const __m256 a = _mm256_broadcast_ss(A + r);
      c0[r] = _mm256_fmadd_ps(a, b0, c0[r]);
      c1[r] = _mm256_fmadd_ps(a, b1, c1[r]);
    }
    A += MR256;
    B += NR256;
  }
  alignas(32) float t[MR256 * NR256];
  if (m == MR256 && n == NR256) {
    for (int r = 0; r < MR256; r++) {
      float* c = C + r * ldc;
      if (acc) {
        c0[r] = _mm256_add_ps(_mm256_loadu_ps(c), c0[r]);
        c1[r] = _mm256_add_ps(_mm256_loadu_ps(c + 8), c1[r]);
      }
      _mm256_storeu_ps(c, c0[r]);
      _mm256_storeu_ps(c + 8, c1[r]);
    }
  } else {
    for (int r = 0; r < MR256; r++) { _mm256_store_ps(t + r * NR256, c0[r]); _mm256_store_ps(t + r * NR256 + 8, c1[r]); }
    store_tile(t, NR256, C, ldc, acc, m, n);
  }
}

}  // namespace mp
#endif
