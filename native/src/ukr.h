// Microkernels: C[m x n] (=|+=) Apack[kc x MR] . Bpack[kc x NR] for the valid m <= MR,
// n <= NR (acc: add to C). One file per ISA, each compiled with its own target attribute,
// so one binary runs on any x86-64 and picks the widest its CPU has (gemm.cc).
#pragma once

#include <cstdint>

namespace mp {

typedef void (*Ukr)(int kc, const float* A, const float* B, float* C, long ldc, bool acc, int m, int n);
// bf16 operands packed as pairs along k: A[p][r], B[p][j] each hold (k = 2p, k = 2p + 1) as
// two bf16 in one 32-bit word (low half first); kp = ceil(kc / 2) pairs.
typedef void (*UkrBf16)(int kp, const uint32_t* A, const uint32_t* B, float* C, long ldc, bool acc, int m, int n);

void store_tile(const float* t, int nr, float* C, long ldc, bool acc, int m, int n);

// dst[q * 8 + r] = src[r][q] for r < 8, q < len: one k-range of an 8-row A strip.
typedef void (*PackRows8)(const float* const* src, int len, float* dst);
// The same with dst[q * ds + r]: 8 columns of a B strip from 8 column-contiguous sources.
typedef void (*PackRows8Stride)(const float* const* src, int len, float* dst, long ds);

constexpr int MR512 = 8, NR512 = 32;
constexpr int MR256 = 6, NR256 = 16;
constexpr int MRC = 4, NRC = 8;

#ifdef MP_X86
void ukr_avx512(int kc, const float* A, const float* B, float* C, long ldc, bool acc, int m, int n);
// 16 x 16: rows 0-7 from strip A0, 8-15 from A1 (each [kc][MR512]), the first 16 columns
// of a [kc][NR512] B strip; m <= 16, n <= 16.
void ukr_avx512_16x16(int kc, const float* A0, const float* A1, const float* B, float* C, long ldc, bool acc, int m, int n);
void pack_rows8_avx2(const float* const* src, int len, float* dst);
void pack_rows8_stride_avx2(const float* const* src, int len, float* dst, long ds);
void ukr_avx2(int kc, const float* A, const float* B, float* C, long ldc, bool acc, int m, int n);
// AVX512_BF16 vdpbf16ps, MR512 x NR512 tiles, fp32 accumulation.
void ukr_avx512bf16(int kp, const uint32_t* A, const uint32_t* B, float* C, long ldc, bool acc, int m, int n);

// AMX-BF16 TDPBF16PS (ukr_amx.cc), AMX_MR x AMX_NR blocks of 16 x 16 fp32 tiles. A is row
// major, AMX_MR rows of kt * 16 k-pairs (the A tiles' layout: row r holds its pairs along k);
// B is the pair layout above with kt * 16 pairs (zero pairs past k: the tiles' 16-pair steps).
constexpr int AMX_MR = 32, AMX_NR = 32;
void ukr_amx(int kt, const uint32_t* A, const uint32_t* B, float* C, long ldc, bool acc, int m, int n);
// The CPU has AMX-BF16 and AMX-TILE, the OS saves the tile state and granted this process
// its use (Linux arch_prctl ARCH_REQ_XCOMP_PERM); false elsewhere.
bool amx_supported();
// Before a thread's first ukr_amx of a GEMM: its tile permission (once per thread) and tile
// configuration; amx_end releases the tiles (a context switch then saves no tile data).
bool amx_begin();
void amx_end();
// Whether this build holds the kernel (build.mjs leaves one out, as a stub, where the
// compiler lacks its target: MEDPIPE_NO_AMX, MEDPIPE_NO_AVX512BF16).
bool amx_built();
bool avx512bf16_built();
// fp32 -> bf16 nearest even (NaN stays quiet NaN), vectorised: `len` floats of src as one row
// of bf16 pairs, zero-filled to `pairs` pairs; and dst[j] = (lo[j], hi[j]) pairs for j < w
// (hi null: zero products).
void bf16_row_avx512(const float* src, int len, int pairs, uint32_t* dst);
void bf16_pairs_avx512(const float* lo, const float* hi, int w, uint32_t* dst);
// src[p][r] (kc rows of 16 floats) -> rows of pairs dst[r * stride + q] for r < rows, q < pairs
// (zero pairs past kc): a column-contiguous 16-row strip into the A tiles' layout.
void bf16_pairs_t_avx512(const float* src, int kc, int pairs, int rows, uint32_t* dst, long stride);
#endif
void ukr_c(int kc, const float* A, const float* B, float* C, long ldc, bool acc, int m, int n);

}  // namespace mp
