// The 8 x 32 fp32 accumulator tile shared by the AVX-512 GEMM microkernel (ukr_avx512.cc) and
// the direct filter gradient (conv_wgrad.cc): rows r = 0..7 as named registers c0_r (columns
// 0-15) and c1_r (16-31). Named registers, not arrays: GCC kept `__m512 c[8]` arrays in memory
// too and cleared them with `rep stos` (1 KiB) on every call, a fifth of a 64-deep call.
// Use inside a function compiled for avx512f, with b0 / b1 the row of B (or dy) in registers.
#pragma once

#define MP_ROWS8(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#define MP_TILE_DECL(r) __m512 c0_##r = _mm512_setzero_ps(), c1_##r = _mm512_setzero_ps();
// c_r += a[r] * (b0, b1)
#define MP_TILE_FMA(r, a)                         \
  {                                               \
    const __m512 v_ = _mm512_set1_ps((a)[r]);     \
    c0_##r = _mm512_fmadd_ps(v_, b0, c0_##r);     \
    c1_##r = _mm512_fmadd_ps(v_, b1, c1_##r);     \
  }
