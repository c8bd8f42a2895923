// AVX-512F microkernels: the 8 x 32 fp32 tile in 16 zmm accumulators, and a 16 x 16 tile
// (two 8-row A strips, the first 16 columns of a 32-wide B strip) for 16-column products,
// where the 8 x 32 tile would compute half zeros (the demo nets' 16-channel layers). Both
// add each element's products in k order from zero, then to C: the same bits either way.
#include "common.h"
#include "tile8x32.h"
#include "ukr.h"

#ifdef MP_X86
namespace mp {


__attribute__((target("avx512f"))) void ukr_avx512(int kc, const float* A, const float* B, float* C, long ldc, bool acc, int m, int n) {
  MP_ROWS8(MP_TILE_DECL)
  for (int p = 0; p < kc; p++) {
    const __m512 b0 = _mm512_loadu_ps(B);
    const __m512 b1 = _mm512_loadu_ps(B + 16);
#define MP_FMA(r) MP_TILE_FMA(r, A)
    MP_ROWS8(MP_FMA)
#undef MP_FMA
    A += MR512;
    B += NR512;
  }
  if (m == MR512 && n == NR512) {
#define MP_STORE(r)                                                         \
  {                                                                         \
    float* c = C + r * ldc;                                                 \
    if (acc) {                                                              \
      c0_##r = _mm512_add_ps(_mm512_loadu_ps(c), c0_##r);                   \
      c1_##r = _mm512_add_ps(_mm512_loadu_ps(c + 16), c1_##r);              \
    }                                                                       \
    _mm512_storeu_ps(c, c0_##r);                                            \
    _mm512_storeu_ps(c + 16, c1_##r);                                       \
  }
    MP_ROWS8(MP_STORE)
#undef MP_STORE
  } else {
    alignas(64) float t[MR512 * NR512];
#define MP_SPILL(r) _mm512_store_ps(t + r * NR512, c0_##r); _mm512_store_ps(t + r * NR512 + 16, c1_##r);
    MP_ROWS8(MP_SPILL)
#undef MP_SPILL
    store_tile(t, NR512, C, ldc, acc, m, n);
  }
}

__attribute__((target("avx512f"))) void ukr_avx512_16x16(int kc, const float* A0, const float* A1, const float* B, float* C, long ldc, bool acc, int m, int n) {
#define MP_DECL(r) __m512 c0_##r = _mm512_setzero_ps(), c1_##r = _mm512_setzero_ps();
  MP_ROWS8(MP_DECL)
#undef MP_DECL
  for (int p = 0; p < kc; p++) {
    const __m512 b = _mm512_loadu_ps(B);
#define MP_FMA(r)                                                          \
  c0_##r = _mm512_fmadd_ps(_mm512_set1_ps(A0[r]), b, c0_##r);              \
  c1_##r = _mm512_fmadd_ps(_mm512_set1_ps(A1[r]), b, c1_##r);
    MP_ROWS8(MP_FMA)
#undef MP_FMA
    A0 += MR512;
    A1 += MR512;
    B += NR512;
  }
  if (m == 2 * MR512 && n == 16) {
#define MP_STORE(r)                                                         \
  {                                                                         \
    float* c = C + r * ldc;                                                 \
    float* d = C + (r + MR512) * ldc;                                       \
    if (acc) {                                                              \
      c0_##r = _mm512_add_ps(_mm512_loadu_ps(c), c0_##r);                   \
      c1_##r = _mm512_add_ps(_mm512_loadu_ps(d), c1_##r);                   \
    }                                                                       \
    _mm512_storeu_ps(c, c0_##r);                                            \
    _mm512_storeu_ps(d, c1_##r);                                            \
  }
    MP_ROWS8(MP_STORE)
#undef MP_STORE
  } else {
    alignas(64) float t[2 * MR512 * 16];
#define MP_SPILL(r) _mm512_store_ps(t + r * 16, c0_##r); _mm512_store_ps(t + (r + MR512) * 16, c1_##r);
    MP_ROWS8(MP_SPILL)
#undef MP_SPILL
    store_tile(t, 16, C, ldc, acc, m, n);
  }
}


}  // namespace mp
#endif
