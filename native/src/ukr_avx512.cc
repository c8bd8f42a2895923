// AVX-512F microkernel: 8 x 32 fp32 tile in 16 zmm accumulators.
#include "common.h"
#include "ukr.h"

#ifdef MP_X86
namespace mp {

__attribute__((target("avx512f"))) void ukr_avx512(int kc, const float* A, const float* B, float* C, long ldc, bool acc, int m, int n) {
  __m512 c0[MR512], c1[MR512];
  for (int r = 0; r < MR512; r++) { c0[r] = _mm512_setzero_ps(); c1[r] = _mm512_setzero_ps(); }
  for (int p = 0; p < kc; p++) {
    const __m512 b0 = _mm512_loadu_ps(B);
    const __m512 b1 = _mm512_loadu_ps(B + 16);
    for (int r = 0; r < MR512; r++) {
      const __m512 a = _mm512_set1_ps(A[r]);
      c0[r] = _mm512_fmadd_ps(a, b0, c0[r]);
      c1[r] = _mm512_fmadd_ps(a, b1, c1[r]);
    }
    A += MR512;
    B += NR512;
  }
  if (m == MR512 && n == NR512) {
    for (int r = 0; r < MR512; r++) {
      float* c = C + r * ldc;
      if (acc) {
        c0[r] = _mm512_add_ps(_mm512_loadu_ps(c), c0[r]);
        c1[r] = _mm512_add_ps(_mm512_loadu_ps(c + 16), c1[r]);
      }
      _mm512_storeu_ps(c, c0[r]);
      _mm512_storeu_ps(c + 16, c1[r]);
    }
  } else {
    alignas(64) float t[MR512 * NR512];
    for (int r = 0; r < MR512; r++) { _mm512_store_ps(t + r * NR512, c0[r]); _mm512_store_ps(t + r * NR512 + 16, c1[r]); }
    store_tile(t, NR512, C, ldc, acc, m, n);
  }
}

}  // namespace mp
#endif
