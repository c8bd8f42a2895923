// AMX-BF16 microkernel (TDPBF16PS) and the conversions that pack its tiles.
//
// Tiles: every tile is 16 rows x 64 bytes. An A tile is 16 rows of 32 bf16 (16 k-pairs), a B
// tile 16 k-pairs x 16 columns in VNNI pairs (two bf16 of one column, k = 2p and 2p + 1, in one
// 32-bit word: the pair layout of ukr.h), a C tile 16 x 16 fp32. The kernel's block is
// AMX_MR x AMX_NR = 32 x 32: tiles 0-3 accumulate C, 4-5 hold A, 6-7 hold B.
//
// Numerics are those of the vdpbf16ps kernel: bf16 operands (rounded to nearest even when
// packed), products summed in fp32. Two differences, both below the tests' tolerances: the
// k-block's products are added onto C loaded into the accumulator (not summed from zero and
// then added), and TDPBF16PS treats denormal inputs as zero and flushes denormal results.
//
// Built with -DMEDPIPE_NO_AMX (build.mjs, when the compiler lacks the amx-tile / amx-bf16
// targets: g++ < 11) the tile code is left out and the same symbols report "no AMX", so the
// runtime takes the vdpbf16ps kernel instead of the whole build failing.
#include <cstring>

#include "common.h"
#include "ukr.h"

#ifdef MP_X86
#include <cpuid.h>
#ifdef __linux__
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace mp {

#ifndef MEDPIPE_NO_AMX
bool amx_built() { return true; }

namespace {

constexpr int ARCH_REQ_XCOMP_PERM = 0x1023;
constexpr int XFEATURE_XTILEDATA = 18;

// The LDTILECFG operand (palette 1).
struct alignas(64) TileConfig {
  uint8_t palette, start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

TileConfig make_config() {
  TileConfig c;
  std::memset(&c, 0, sizeof c);
  c.palette = 1;
  for (int t = 0; t < 8; t++) {
    c.colsb[t] = 64;
    c.rows[t] = 16;
  }
  return c;
}
const TileConfig g_config = make_config();

// Linux hands out the tile data state (8 KiB of XSAVE area) only on request; without it the
// first tile instruction is SIGILL. The permission is the process's (kernel docs:
// Documentation/arch/x86/xstate.rst), asked for again by each thread that computes so that no
// thread depends on another having asked first.
// Elsewhere there is no such request here: no AMX.
#ifdef __linux__
bool request_tiles() { return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0; }
#else
bool request_tiles() { return false; }
#endif

thread_local bool t_permitted = false;

}  // namespace

bool amx_supported() {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const bool amx_bf16 = (d >> 22) & 1, amx_tile = (d >> 24) & 1;
  if (!amx_bf16 || !amx_tile) return false;
  // The OS saves the tile state (XCR0 bits 17 TILECFG and 18 TILEDATA) ...
  if (!__get_cpuid(1, &a, &b, &c, &d) || !((c >> 27) & 1)) return false;  // OSXSAVE
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  if ((lo & (3u << 17)) != (3u << 17)) return false;
  // ... and lets this process use it.
  return request_tiles();
}

__attribute__((target("amx-tile"))) bool amx_begin() {
  if (!t_permitted) {
    if (!request_tiles()) return false;
    t_permitted = true;
  }
  _tile_loadconfig(&g_config);
  return true;
}

__attribute__((target("amx-tile"))) void amx_end() { _tile_release(); }

// C[m x n] (=|+=) A . B: A AMX_MR rows of `kt` * 16 pairs each (row stride kt * 16 words), B
// kt * 16 pairs x AMX_NR columns (row stride AMX_NR words); rows of A past m are zeros.
__attribute__((target("amx-tile,amx-bf16"))) void ukr_amx(int kt, const uint32_t* A, const uint32_t* B, float* C, long ldc, bool acc, int m, int n) {
  const long lda = (long)kt * 16;
  const bool full = m == AMX_MR && n == AMX_NR;
  alignas(64) float t[AMX_MR * AMX_NR];
  float* c = full ? C : t;
  const long ld = full ? ldc : AMX_NR;
  if (!full && acc) {
    for (int r = 0; r < m; r++) std::memcpy(t + r * AMX_NR, C + r * ldc, sizeof(float) * n);
  }
  const bool two = m > 16;  // the second 16 rows of A (and C tiles 2, 3) hold something
  if (acc) {
    _tile_loadd(0, c, ld * 4);
    _tile_loadd(1, c + 16, ld * 4);
    if (two) {
      _tile_loadd(2, c + 16 * ld, ld * 4);
      _tile_loadd(3, c + 16 * ld + 16, ld * 4);
    }
  } else {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
  }
  if (two) {
    for (int q = 0; q < kt; q++) {
      _tile_loadd(4, A + q * 16, lda * 4);
      _tile_loadd(6, B + (long)q * 16 * AMX_NR, AMX_NR * 4);
      _tile_loadd(7, B + (long)q * 16 * AMX_NR + 16, AMX_NR * 4);
      _tile_loadd(5, A + 16 * lda + q * 16, lda * 4);
      _tile_dpbf16ps(0, 4, 6);
      _tile_dpbf16ps(1, 4, 7);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
  } else {
    for (int q = 0; q < kt; q++) {
      _tile_loadd(4, A + q * 16, lda * 4);
      _tile_loadd(6, B + (long)q * 16 * AMX_NR, AMX_NR * 4);
      _tile_loadd(7, B + (long)q * 16 * AMX_NR + 16, AMX_NR * 4);
      _tile_dpbf16ps(0, 4, 6);
      _tile_dpbf16ps(1, 4, 7);
    }
  }
  _tile_stored(0, c, ld * 4);
  _tile_stored(1, c + 16, ld * 4);
  if (two) {
    _tile_stored(2, c + 16 * ld, ld * 4);
    _tile_stored(3, c + 16 * ld + 16, ld * 4);
  }
  if (!full) {
    for (int r = 0; r < m; r++) std::memcpy(C + r * ldc, t + r * AMX_NR, sizeof(float) * n);
  }
}
#else
// No tile code in this build: amx_supported() is false, so gemm.cc never reaches the others.
bool amx_built() { return false; }
bool amx_supported() { return false; }
bool amx_begin() { return false; }
void amx_end() {}
void ukr_amx(int, const uint32_t*, const uint32_t*, float*, long, bool, int, int) { __builtin_trap(); }
#endif

namespace {
// 16 fp32 -> 16 bf16 bit patterns in 32-bit lanes, nearest even; a NaN stays a quiet NaN
// (the scalar bf16_bits of gemm.cc, lane by lane: the same bits).
__attribute__((target("avx512f"))) inline __m512i bf16_lanes(__m512i u) {
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  const __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
  return _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40)));
}
}  // namespace

__attribute__((target("avx512f"))) void bf16_row_avx512(const float* src, int len, int pairs, uint32_t* dst) {
  uint16_t* d = reinterpret_cast<uint16_t*>(dst);
  for (int j = 0; j < len; j += 16) {
    const __mmask16 k = len - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (len - j)) - 1);
    _mm512_mask_cvtepi32_storeu_epi16(d + j, k, bf16_lanes(_mm512_maskz_loadu_epi32(k, src + j)));
  }
  for (int q = len; q < 2 * pairs; q++) d[q] = 0;
}

__attribute__((target("avx512f"))) void bf16_pairs_avx512(const float* lo, const float* hi, int w, uint32_t* dst) {
  for (int j = 0; j < w; j += 16) {
    const __mmask16 k = w - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (w - j)) - 1);
    const __m512i l = bf16_lanes(_mm512_maskz_loadu_epi32(k, lo + j));
    const __m512i h = hi ? _mm512_slli_epi32(bf16_lanes(_mm512_maskz_loadu_epi32(k, hi + j)), 16) : _mm512_setzero_si512();
    _mm512_mask_storeu_epi32(dst + j, k, _mm512_or_si512(l, h));
  }
}

__attribute__((target("avx512f"))) void bf16_pairs_t_avx512(const float* src, int kc, int pairs, int rows, uint32_t* dst, long stride) {
  const __mmask16 k = (__mmask16)((1u << rows) - 1);
  const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32((int)stride));
  for (int q = 0; q < pairs; q++) {
    __m512i w = _mm512_setzero_si512();
    if (2 * q < kc) w = bf16_lanes(_mm512_loadu_si512(src + (long)(2 * q) * 16));
    if (2 * q + 1 < kc) w = _mm512_or_si512(w, _mm512_slli_epi32(bf16_lanes(_mm512_loadu_si512(src + (long)(2 * q + 1) * 16)), 16));
    _mm512_mask_i32scatter_epi32(dst + q, k, idx, w, 4);
  }
}

}  // namespace mp
#endif
