// AVX512_BF16 microkernel: 8 x 32 tile, vdpbf16ps (two bf16 products per fp32 lane added to
// an fp32 accumulator). Operands come packed in k-pairs (see ukr.h); the accumulation over k
// and across k-blocks (acc) is fp32 throughout.
//
// Built with -DMEDPIPE_NO_AVX512BF16 (build.mjs, when the compiler lacks the avx512bf16
// target) the kernel is a stub that gemm.cc never picks: bf16 is then off, fp32 unchanged.
#include "common.h"
#include "ukr.h"

#ifdef MP_X86
namespace mp {

#ifdef MEDPIPE_NO_AVX512BF16
bool avx512bf16_built() { return false; }
void ukr_avx512bf16(int, const uint32_t*, const uint32_t*, float*, long, bool, int, int) { __builtin_trap(); }
#else
bool avx512bf16_built() { return true; }

__attribute__((target("avx512f,avx512bf16"))) void ukr_avx512bf16(int kp, const uint32_t* A, const uint32_t* B, float* C, long ldc, bool acc, int m, int n) {
  __m512 c0[MR512], c1[MR512];
  for (int r = 0; r < MR512; r++) { c0[r] = _mm512_setzero_ps(); c1[r] = _mm512_setzero_ps(); }
  for (int p = 0; p < kp; p++) {
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(B);
    const __m512bh b1 = (__m512bh)_mm512_loadu_si512(B + 16);
    for (int r = 0; r < MR512; r++) {
      const __m512bh a = (__m512bh)_mm512_set1_epi32((int)A[r]);
      c0[r] = _mm512_dpbf16_ps(c0[r], a, b0);
      c1[r] = _mm512_dpbf16_ps(c1[r], a, b1);
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
#endif

}  // namespace mp
#endif
