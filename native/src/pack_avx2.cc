// Packing of 8-row strips with AVX (8 x 8 transposes in registers). The AVX-512 kernel's A
// strips are 8 rows wide; packing them one float at a time cost about as much as the
// products of a 64-channel convolution (each packed float feeds only OC multiply-adds).
#include "common.h"
#include "ukr.h"

#ifdef MP_X86
namespace mp {

__attribute__((target("avx2"))) void pack_rows8_avx2(const float* const* src, int len, float* dst) { pack_rows8_stride_avx2(src, len, dst, 8); }

__attribute__((target("avx2"))) void pack_rows8_stride_avx2(const float* const* src, int len, float* dst, long ds) {
  int q = 0;
  for (; q + 8 <= len; q += 8) {
    const __m256 r0 = _mm256_loadu_ps(src[0] + q), r1 = _mm256_loadu_ps(src[1] + q);
    const __m256 r2 = _mm256_loadu_ps(src[2] + q), r3 = _mm256_loadu_ps(src[3] + q);
    const __m256 r4 = _mm256_loadu_ps(src[4] + q), r5 = _mm256_loadu_ps(src[5] + q);
    const __m256 r6 = _mm256_loadu_ps(src[6] + q), r7 = _mm256_loadu_ps(src[7] + q);
    const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    float* d = dst + (long)q * ds;
    _mm256_storeu_ps(d + 0 * ds, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(d + 1 * ds, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(d + 2 * ds, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(d + 3 * ds, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(d + 4 * ds, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(d + 5 * ds, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(d + 6 * ds, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(d + 7 * ds, _mm256_permute2f128_ps(u3, u7, 0x31));
  }
  for (; q < len; q++) for (int r = 0; r < 8; r++) dst[(long)q * ds + r] = src[r][q];
}

}  // namespace mp
#endif
