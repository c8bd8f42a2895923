// GEMM family: packing (including the implicit im2col operand), the blocking over
// KC x MC x NC panels, the choice of microkernel, the split over the pool, and the matmul op.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "gemm.h"
#include "gemm_batched.h"
#include "norms.h"
#include "ukr.h"

namespace mp {

void im2col_run(const ConvGeom& g, const float* x, long m, int k0, int len, float* dst, long ds) {
  const int ow = (int)(m % g.OW);
  const long t = m / g.OW;
  const int oh = (int)(t % g.OH);
  const int n = (int)(t / g.OH);
  int c = k0 % g.C;
  int kk = k0 / g.C;
  int kw = kk % g.KW;
  int kh = kk / g.KW;
  int j = 0;
  const int rowlen = g.KW * g.C;  // one filter row's taps, contiguous in x when dw == 1
  while (j < len) {
    const int ih = oh * g.sh - g.pt + kh * g.dh;
    const int iw = ow * g.sw - g.pl + kw * g.dw;
    if (c == 0 && kw == 0 && g.dw == 1 && ds == 1 && len - j >= rowlen && ih >= 0 && ih < g.H && iw >= 0 && iw + g.KW <= g.W) {
      // A whole filter row inside the image: one copy of KW*C floats (the stem: 21, not 7 x 3).
      const float* s = x + (((long)n * g.H + ih) * g.W + iw) * g.C;
      std::memcpy(dst + j, s, sizeof(float) * rowlen);
      j += rowlen;
      kh++;
      continue;
    }
    const int run = std::min(g.C - c, len - j);
    if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) {
      for (int q = 0; q < run; q++) dst[(j + q) * ds] = 0.f;
    } else {
      const float* s = x + (((long)n * g.H + ih) * g.W + iw) * g.C + c;
      if (ds == 1 && run >= 16) std::memcpy(dst + j, s, sizeof(float) * run);
      else if (ds == 1) for (int q = 0; q < run; q++) dst[j + q] = s[q];
      else for (int q = 0; q < run; q++) dst[(j + q) * ds] = s[q];
    }
    j += run;
    c = 0;
    if (++kw == g.KW) { kw = 0; kh++; }
  }
}

namespace {

constexpr int ZEROS = 4096;
const float g_zeros[ZEROS] = {};

// The vectorised 8-row packer, where the chosen microkernel's strips are 8 rows (AVX-512).
PackRows8 pick_rows8() {
#ifdef MP_X86
  const char* force = std::getenv("MEDPIPE_NATIVE_ISA");
  const bool any = force == nullptr || *force == 0;
  __builtin_cpu_init();
  if ((any || !std::strcmp(force, "avx512")) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && MR512 == 8) {
    return pack_rows8_avx2;
  }
#endif
  return nullptr;
}
const PackRows8 g_rows8 = pick_rows8();
// Its strided twin, for B strips from a column-contiguous operand (any x86 with AVX2, unless
// MEDPIPE_NATIVE_ISA=c).
PackRows8Stride pick_rows8_stride() {
#ifdef MP_X86
  const char* force = std::getenv("MEDPIPE_NATIVE_ISA");
  __builtin_cpu_init();
  if ((force == nullptr || std::strcmp(force, "c") != 0) && __builtin_cpu_supports("avx2")) return pack_rows8_stride_avx2;
#endif
  return nullptr;
}
const PackRows8Stride g_rows8_stride = pick_rows8_stride();

// One strip of im2col rows [m0, m0+rows) x cols [p0, p0+kc) into dst[p][r] (r < mr): for
// each filter tap, one source pointer per row (the zero page for padding), then the tap's
// channels with contiguous stores. Row by row (im2col_run) wrote one float every mr, with a
// bounds check per run of C: most of a small-channel convolution's time (the stem's C = 3).
// False (nothing written) for shapes it does not cover.
bool pack_im2col_strip(const ConvGeom& g, const float* x, long m0, int rows, int p0, int kc, int mr, float* dst) {
  constexpr int MAXR = 16;
  if (rows > MAXR || mr > MAXR || g.C > ZEROS) return false;
  int ihb[MAXR], iwb[MAXR];
  long nb[MAXR];
  for (int r = 0; r < rows; r++) {
    const long m = m0 + r;
    const int ow = (int)(m % g.OW);
    const long t = m / g.OW;
    ihb[r] = (int)(t % g.OH) * g.sh - g.pt;
    iwb[r] = ow * g.sw - g.pl;
    nb[r] = (t / g.OH) * g.H;
  }
  const float* src[MAXR];
  int c = p0 % g.C;
  const int kk = p0 / g.C;
  int kw = kk % g.KW, kh = kk / g.KW;
  const int rowlen = g.KW * g.C;
  // Short filter rows (the stem's 21 floats) of pixels at the border are assembled here,
  // zeros included, so that a strip with one border pixel still packs by whole rows: half
  // of the stem's strips touch the border, and tap by tap they cost 2-3 times the others.
  constexpr int SHORT_ROW = 64;
  alignas(32) float edge[MAXR][SHORT_ROW];
  for (int p = 0; p < kc;) {
    if (c == 0 && kw == 0 && g.dw == 1 && kc - p >= rowlen && rowlen > g.C) {
      // A whole filter row, when every row's taps lie inside the image, is KW*C contiguous
      // floats per row: one run (the stem: 21 floats, not 7 runs of 3).
      bool inside = true;
      for (int r = 0; r < rows && inside; r++) {
        const int ih = ihb[r] + kh * g.dh;
        if (ih >= 0 && ih < g.H && iwb[r] >= 0 && iwb[r] + g.KW <= g.W) src[r] = x + ((nb[r] + ih) * g.W + iwb[r]) * g.C;
        else if (rowlen <= SHORT_ROW) {
          float* e = edge[r];
          if (ih < 0 || ih >= g.H) {
            for (int q = 0; q < rowlen; q++) e[q] = 0.f;
          } else {
            const float* row = x + (nb[r] + ih) * g.W * (long)g.C;
            for (int k = 0; k < g.KW; k++) {
              const int iw = iwb[r] + k * g.dw;
              float* d = e + k * g.C;
              if (iw < 0 || iw >= g.W) for (int q = 0; q < g.C; q++) d[q] = 0.f;
              else for (int q = 0; q < g.C; q++) d[q] = row[(long)iw * g.C + q];
            }
          }
          src[r] = e;
        } else inside = false;
      }
      if (inside) {
        if (g_rows8 != nullptr && rows == 8 && mr == 8) g_rows8(src, rowlen, dst + (long)p * mr);
        else {
          for (int q = 0; q < rowlen; q++) {
            float* d = dst + (long)(p + q) * mr;
            for (int r = 0; r < rows; r++) d[r] = src[r][q];
          }
        }
        p += rowlen;
        kh++;
        continue;
      }
    }
    const int run = std::min(g.C - c, kc - p);
    for (int r = 0; r < rows; r++) {
      const int ih = ihb[r] + kh * g.dh, iw = iwb[r] + kw * g.dw;
      src[r] = ih < 0 || ih >= g.H || iw < 0 || iw >= g.W ? g_zeros : x + ((nb[r] + ih) * g.W + iw) * g.C + c;
    }
    if (g_rows8 != nullptr && rows == 8 && mr == 8) g_rows8(src, run, dst + (long)p * mr);
    else {
      for (int q = 0; q < run; q++) {
        float* d = dst + (long)(p + q) * mr;
        for (int r = 0; r < rows; r++) d[r] = src[r][q];
      }
    }
    p += run;
    c = 0;
    if (++kw == g.KW) { kw = 0; kh++; }
  }
  return true;
}

// One strip of the transposed im2col, A(i, p) = im2col(p, i) for rows i in [i0, i0+rows)
// (filter-tap columns) x p in [p0, p0+kc) (output pixels), when the rows lie inside one
// tap: each p is `rows` consecutive channels of one input pixel (or zeros), and the pixel
// walk is incremental. The filter gradient's operand; im2col_run per p redid the index
// arithmetic for every few floats. False (nothing written) when the rows span two taps.
bool pack_im2col_t_strip(const ConvGeom& g, const float* x, int i0, int rows, int p0, int kc, int mr, float* dst) {
  const int c = i0 % g.C;
  if (c + rows > g.C) return false;
  const int tap = i0 / g.C, kw = tap % g.KW, kh = tap / g.KW;
  int ow = p0 % g.OW;
  long t = p0 / g.OW;
  int oh = (int)(t % g.OH);
  long n = t / g.OH;
  const bool full = rows == mr;
  for (int p = 0; p < kc; p++) {
    const int ih = oh * g.sh - g.pt + kh * g.dh, iw = ow * g.sw - g.pl + kw * g.dw;
    float* d = dst + (long)p * mr;
    if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) {
      for (int r = 0; r < mr; r++) d[r] = 0.f;
    } else {
      const float* s = x + ((n * g.H + ih) * g.W + iw) * g.C + c;
      if (full && mr == 8) std::memcpy(d, s, 8 * sizeof(float));
      else {
        for (int r = 0; r < rows; r++) d[r] = s[r];
        for (int r = rows; r < mr; r++) d[r] = 0.f;
      }
    }
    if (++ow == g.OW) {
      ow = 0;
      if (++oh == g.OH) { oh = 0; n++; }
    }
  }
  return true;
}

// The same, when A's rows are contiguous for a fixed column, A(i, p) = A.p[p*cs + i] (the 1x1
// filter gradient's x^T, one pixel's channels per column): column by column over the whole
// block, runs of mr floats to each strip, with the pixels AHEAD columns on prefetched; the
// hardware prefetcher did not keep ahead of this stream (the packing stores waited on x).
// Writes what pack_a would, float for float. False (nothing written) for other operands.
// (The same walk for the transposed im2col, one pixel per tap, was slower than its strip
// by strip packer: measured 0.84x on the 56 px 3x3 layer.)
bool pack_a_by_column(const Src& A, int i0, int mc, int p0, int kc, int mr, float* dst) {
  if (A.kind != Src::STRIDED || A.rs != 1 || A.cs == 1) return false;
  const int strips = (mc + mr - 1) / mr;
  const long sstride = (long)kc * mr;
  constexpr int AHEAD = 8;
  for (int p = 0; p < kc; p++) {
    const float* a = A.p + (long)(p0 + p) * A.cs + i0;
    if (p + AHEAD < kc) {
      const char* f = (const char*)(a + (long)AHEAD * A.cs);
      for (long b = 0; b < (long)mc * 4; b += 64) __builtin_prefetch(f + b);
    }
    for (int s = 0; s < strips; s++) {
      const float* src = a + (long)s * mr;
      float* d = dst + s * sstride + (long)p * mr;
      const int rows = std::min(mr, mc - s * mr);
      if (rows == 8 && mr == 8) std::memcpy(d, src, 8 * sizeof(float));
      else {
        for (int r = 0; r < rows; r++) d[r] = src[r];
        for (int r = rows; r < mr; r++) d[r] = 0.f;
      }
    }
  }
  return true;
}

// Pack rows [i0, i0+mc) x cols [p0, p0+kc) of A into strips of mr rows: dst[s][p][r].
void pack_a(const Src& A, int i0, int mc, int p0, int kc, int mr, float* dst) {
  if (pack_a_by_column(A, i0, mc, p0, kc, mr, dst)) return;
  for (int s = 0; s < mc; s += mr) {
    const int rows = std::min(mr, mc - s);
    float* d = dst + (long)s * kc;
    if (A.kind == Src::STRIDED) {
      if (A.cs == 1 && g_rows8 != nullptr && rows == 8 && mr == 8) {
        const float* src[8];
        for (int r = 0; r < 8; r++) src[r] = A.p + (long)(i0 + s + r) * A.rs + p0;
        g_rows8(src, kc, d);
      } else if (A.cs == 1) {
        for (int r = 0; r < rows; r++) {
          const float* a = A.p + (long)(i0 + s + r) * A.rs + p0;
          for (int p = 0; p < kc; p++) d[p * mr + r] = a[p];
        }
      } else {
        for (int p = 0; p < kc; p++) {
          const float* a = A.p + (long)(p0 + p) * A.cs + (long)(i0 + s) * A.rs;
          if (A.rs == 1) for (int r = 0; r < rows; r++) d[p * mr + r] = a[r];
          else for (int r = 0; r < rows; r++) d[p * mr + r] = a[(long)r * A.rs];
        }
      }
    } else if (A.kind == Src::IM2COL) {
      if (!pack_im2col_strip(*A.g, A.p, i0 + s, rows, p0, kc, mr, d)) {
        for (int r = 0; r < rows; r++) im2col_run(*A.g, A.p, i0 + s + r, p0, kc, d + r, mr);
      }
    } else {  // IM2COL_T: A(i, p) = im2col(p, i)
      if (!pack_im2col_t_strip(*A.g, A.p, i0 + s, rows, p0, kc, mr, d)) {
        for (int p = 0; p < kc; p++) im2col_run(*A.g, A.p, p0 + p, i0 + s, rows, d + (long)p * mr, 1);
      }
    }
    if (rows < mr) {
      for (int p = 0; p < kc; p++) for (int r = rows; r < mr; r++) d[p * mr + r] = 0.f;
    }
  }
}

// B = im2col of an NHWC image, B(p, j) = im2col(pixel p, tap column j): the stem's filter
// gradient dW^T = dy^T . im2col (C = 3, which the transposed im2col's 8-channel strips do
// not fit). Pixel by pixel, incrementally: one filter row's columns are one copy from x
// when the pixel's window lies inside the image along w, zeros for a row above or below it,
// tap by tap otherwise (the border). Replaces an M x K im2col written out and copied again.
void pack_b_im2col(const ConvGeom& g, const float* x, int p0, int kc, int j0, int nc, int nr, float* dst) {
  const long ss = (long)kc * nr;
  const int rowlen = g.KW * g.C, j1 = j0 + nc;
  // The columns' pieces (one filter row, inside one strip) are the same for every pixel.
  struct Piece { long dst; int kh, q0, len; };
  std::vector<Piece> piece;
  for (int j = j0; j < j1;) {
    const int kh = j / rowlen, strip = (j - j0) / nr;
    const int e = std::min(std::min(j1, (kh + 1) * rowlen), j0 + (strip + 1) * nr);
    piece.push_back({strip * ss + (j - j0) % nr, kh, j - kh * rowlen, e - j});
    j = e;
  }
  const int np = (int)piece.size();
  int ow = p0 % g.OW;
  long t = p0 / g.OW;
  int oh = (int)(t % g.OH);
  long n = t / g.OH;
  for (int p = 0; p < kc; p++) {
    const int ih0 = oh * g.sh - g.pt, iw0 = ow * g.sw - g.pl;
    const bool rowin = g.dw == 1 && iw0 >= 0 && iw0 + g.KW <= g.W;
    float* dp = dst + (long)p * nr;
    for (int k = 0; k < np; k++) {
      const Piece& pc = piece[k];
      const int ih = ih0 + pc.kh * g.dh;
      float* d = dp + pc.dst;
      if (ih < 0 || ih >= g.H) {
        for (int i = 0; i < pc.len; i++) d[i] = 0.f;
      } else if (rowin) {
        const float* src = x + ((n * g.H + ih) * g.W + iw0) * g.C + pc.q0;
        for (int i = 0; i < pc.len; i++) d[i] = src[i];
      } else {
        const float* row = x + (n * g.H + ih) * g.W * (long)g.C;
        for (int i = 0; i < pc.len; i++) {
          const int q = pc.q0 + i, iw = iw0 + (q / g.C) * g.dw;
          d[i] = iw >= 0 && iw < g.W ? row[(long)iw * g.C + q % g.C] : 0.f;
        }
      }
    }
    if (nc % nr != 0) {
      float* d = dp + (long)(nc / nr) * ss;
      for (int c = nc % nr; c < nr; c++) d[c] = 0.f;
    }
    if (++ow == g.OW) {
      ow = 0;
      if (++oh == g.OH) { oh = 0; n++; }
    }
  }
}

// Pack rows [p0, p0+kc) x cols [j0, j0+nc) of B into strips of nr columns: dst[s][p][c].
void pack_b(const Src& B, int p0, int kc, int j0, int nc, int nr, float* dst) {
  if (B.kind == Src::IM2COL) {
    pack_b_im2col(*B.g, B.p, p0, kc, j0, nc, nr, dst);
    return;
  }
  for (int s = 0; s < nc; s += nr) {
    const int cols = std::min(nr, nc - s);
    float* d = dst + (long)s * kc;
    if (B.cs == 1 && cols == NR512 && nr == NR512) {
      // A copy of constant size is inlined (a memcpy call per 128 bytes was ~4% of the
      // 14 and 7 px layers in `perf`).
      for (int p = 0; p < kc; p++) std::memcpy(d + (long)p * nr, B.p + (long)(p0 + p) * B.rs + j0 + s, sizeof(float) * NR512);
    } else if (B.cs == 1) {
      for (int p = 0; p < kc; p++) {
        const float* b = B.p + (long)(p0 + p) * B.rs + j0 + s;
        std::memcpy(d + (long)p * nr, b, sizeof(float) * cols);
        for (int c = cols; c < nr; c++) d[(long)p * nr + c] = 0.f;
      }
    } else {
      int c = 0;
      if (B.rs == 1 && g_rows8_stride != nullptr) {
        // Column-contiguous (a transposed filter, W^T of the 1x1 input gradient): 8 columns
        // at a time through AVX 8 x 8 transposes; one float at a time, the stores every nr
        // floats were ~3% of the 14 and 7 px input gradients in `perf`.
        for (; c + 8 <= cols; c += 8) {
          const float* src[8];
          for (int r = 0; r < 8; r++) src[r] = B.p + (long)(j0 + s + c + r) * B.cs + p0;
          g_rows8_stride(src, kc, d + c, nr);
        }
      }
      for (; c < cols; c++) {
        const float* b = B.p + (long)(j0 + s + c) * B.cs + (long)p0 * B.rs;
        for (int p = 0; p < kc; p++) d[(long)p * nr + c] = b[(long)p * B.rs];
      }
      for (int p = 0; p < kc; p++) for (int c = cols; c < nr; c++) d[(long)p * nr + c] = 0.f;
    }
  }
}

// fp32 -> bf16, round to nearest even (as torch's .to(bfloat16)); NaN stays a quiet NaN.
inline uint32_t bf16_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (u >> 16) | 0x40u;
  return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}

// Packed fp32 strips [strips][kc][w] -> bf16 pair strips [strips][ceil(kc/2)][w] (an odd
// kc is padded with a zero product).
void pairs_bf16(const float* src, int kc, int w, int strips, uint32_t* dst) {
  const int kp = (kc + 1) / 2;
  for (int s = 0; s < strips; s++) {
    const float* a = src + (long)s * kc * w;
    uint32_t* d = dst + (long)s * kp * w;
    for (int p = 0; p < kp; p++) {
      const float* lo = a + (long)(2 * p) * w;
      const float* hi = 2 * p + 1 < kc ? lo + w : nullptr;
      for (int j = 0; j < w; j++) d[(long)p * w + j] = bf16_bits(lo[j]) | (hi ? bf16_bits(hi[j]) << 16 : 0u);
    }
  }
}

struct Kernel {
  Ukr fn;
  int mr, nr;
  const char* name;
  UkrBf16 bf16;  // same mr x nr tile, or null where the CPU has no AVX512_BF16
  // 2mr x nr/2 over two A strips and the first nr/2 columns of a B strip (null: none), for
  // strips with at most nr/2 columns (16 output channels), where the mr x nr tile is half zeros.
  void (*half)(int kc, const float* A0, const float* A1, const float* B, float* C, long ldc, bool acc, int m, int n);
};

Kernel pick_kernel() {
  const char* force = std::getenv("MEDPIPE_NATIVE_ISA");
  const bool any = force == nullptr || *force == 0;
#ifdef MP_X86
  __builtin_cpu_init();
  if ((any || !std::strcmp(force, "avx512")) && __builtin_cpu_supports("avx512f")) {
#ifdef MEDPIPE_NO_AVX512BF16
    const bool bf = false;  // the compiler lacks the target (older than the feature string too)
#else
    const bool bf = __builtin_cpu_supports("avx512bf16");
#endif
    return {ukr_avx512, MR512, NR512, "avx512", bf ? ukr_avx512bf16 : nullptr, ukr_avx512_16x16};
  }
  if ((any || !std::strcmp(force, "avx2")) && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return {ukr_avx2, MR256, NR256, "avx2", nullptr, nullptr};
#else
  (void)any;
#endif
  return {ukr_c, MRC, NRC, "c", nullptr, nullptr};
}

const Kernel g_kernel = pick_kernel();
Precision g_precision = PREC_FP32;

// The bf16 products: AMX tiles where the CPU and OS allow them, else the AVX-512 kernel's
// vdpbf16ps twin. MEDPIPE_NATIVE_BF16=amx|avx512bf16 forces one (none when it is absent).
enum Bf16Kind { BF16_NONE, BF16_AVX512, BF16_AMX };
Bf16Kind pick_bf16() {
  const char* force = std::getenv("MEDPIPE_NATIVE_BF16");
  const bool any = force == nullptr || *force == 0;
  if (g_kernel.mr != MR512) return BF16_NONE;  // both need AVX-512 (the AMX packing's conversions too)
  if ((any || !std::strcmp(force, "amx")) && amx_supported()) return BF16_AMX;
  if ((any || !std::strcmp(force, "avx512bf16")) && g_kernel.bf16 != nullptr) return BF16_AVX512;
  return BF16_NONE;
}
const Bf16Kind g_bf16 = pick_bf16();

constexpr int KC = 256;
constexpr int MC = 144;   // rounded down to a multiple of the kernel's mr
constexpr int NC = 2048;
// An operand is packed once for all threads up to 2.5 M floats (10 MB: the largest ResNet50
// filter is 2.36 M) and K <= 4608: beyond, the shared copy leaves the caches before it is
// read (the filter gradient's dy, 25 MB at 56 px, packed block by block stays in L2).
constexpr long SHARED_MAX = 2500000;
constexpr int SHARED_K_MAX = 4608;

struct Scratch {
  std::vector<float> a, b;
  std::vector<uint32_t> a16, b16;
};

// bf16 on AMX. A is packed row-major in k-pairs (the A tiles' layout), each row kpad pairs (kc
// rounded up to whole 16-pair tiles, zeros past kc), rows past mc zero up to a multiple of 16;
// contiguous rows convert straight from the operand (an im2col row is built once in fp32),
// column-contiguous ones (a transposed A, the filter gradient's im2col^T) pack as 16-row fp32
// strips first and are transposed while converted.
void pack_a_amx(const Src& A, int i0, int mc, int p0, int kc, int kpad, float* tmp, uint32_t* dst);
// B as pair strips of AMX_NR columns, kpad pairs each (zero pairs past kc, zero columns
// past nc), converted straight from a row- or column-contiguous operand.
void pack_b_amx(const Src& B, int p0, int kc, int j0, int nc, int kpad, float* tmp, uint32_t* dst);
Scratch g_scratch[64];

}  // namespace

bool bf16_supported() { return g_bf16 != BF16_NONE; }
const char* bf16_kernel() { return g_bf16 == BF16_AMX ? "amx" : g_bf16 == BF16_AVX512 ? "avx512bf16" : ""; }
#ifdef MP_X86
bool gemm_amx_built() { return amx_built(); }
bool gemm_avx512bf16_built() { return avx512bf16_built(); }
#else
bool gemm_amx_built() { return false; }
bool gemm_avx512bf16_built() { return false; }
#endif
const char* gemm_isa() { return g_kernel.name; }
int gemm_mr() { return g_kernel.mr; }
Precision gemm_precision() { return g_precision; }
bool set_gemm_precision(Precision p) {
  if (p == PREC_BF16 && !bf16_supported()) return false;
  g_precision = p;
  return true;
}

namespace {

void epilogue(int m0, int m1, int n0, int n1, float* C, long ldc, const float* bias, int act) {
  if (bias == nullptr && act == ACT_NONE) return;
  for (int i = m0; i < m1; i++) {
    float* c = C + (long)i * ldc;
    if (bias) for (int j = n0; j < n1; j++) c[j] += bias[j];
    if (act == ACT_RELU) for (int j = n0; j < n1; j++) c[j] = c[j] > 0.f ? c[j] : 0.f;
  }
}

// The BnEpi on rows [m0, m1) x cols [n0, n1) of C, in place: the norms ops' own function
// (norms.h), so conv2dBn gives the bits of conv2d then bnRelu / batchNorm.
void bn_epilogue(int m0, int m1, int n0, int n1, float* C, long ldc, const BnEpi* bn) {
  if (bn != nullptr && m1 > m0 && n1 > n0) bn_rows(m0, m1, n0, n1, ldc, C, C, bn->mean, bn->mul, bn->add, bn->res, bn->ldr, bn->relu);
}

#ifdef MP_X86
void pack_a_amx(const Src& A, int i0, int mc, int p0, int kc, int kpad, float* tmp, uint32_t* dst) {
  if (A.kind == Src::STRIDED && A.cs == 1) {
    for (int r = 0; r < mc; r++) bf16_row_avx512(A.p + (long)(i0 + r) * A.rs + p0, kc, kpad, dst + (long)r * kpad);
  } else if (A.kind == Src::IM2COL) {
    for (int r = 0; r < mc; r++) {
      im2col_run(*A.g, A.p, i0 + r, p0, kc, tmp, 1);
      bf16_row_avx512(tmp, kc, kpad, dst + (long)r * kpad);
    }
  } else {
    for (int s0 = 0; s0 < mc; s0 += 16) {
      const int rows = std::min(16, mc - s0);
      pack_a(A, i0 + s0, rows, p0, kc, 16, tmp);  // tmp[p][r], rows past `rows` zero
      bf16_pairs_t_avx512(tmp, kc, kpad, rows, dst + (long)s0 * kpad, kpad);
    }
  }
  const int padded = (mc + 15) / 16 * 16;
  if (padded > mc) std::memset(dst + (long)mc * kpad, 0, sizeof(uint32_t) * (size_t)(padded - mc) * kpad);
}

void pack_b_amx(const Src& B, int p0, int kc, int j0, int nc, int kpad, float* tmp, uint32_t* dst) {
  const int strips = (nc + AMX_NR - 1) / AMX_NR;
  for (int s = 0; s < strips; s++) {
    const int cols = std::min(AMX_NR, nc - s * AMX_NR);
    uint32_t* d = dst + (long)s * kpad * AMX_NR;
    if (B.cs == 1) {
      // Two rows of B (k = 2q, 2q + 1) into one row of pairs, straight from the operand.
      const float* b = B.p + (long)p0 * B.rs + j0 + (long)s * AMX_NR;
      for (int q = 0; q < kpad; q++) {
        uint32_t* row = d + (long)q * AMX_NR;
        if (2 * q < kc) bf16_pairs_avx512(b + (long)(2 * q) * B.rs, 2 * q + 1 < kc ? b + (long)(2 * q + 1) * B.rs : nullptr, cols, row);
        else std::memset(row, 0, sizeof(uint32_t) * cols);
        if (cols < AMX_NR) std::memset(row + cols, 0, sizeof(uint32_t) * (AMX_NR - cols));
      }
    } else if (B.rs == 1) {
      // A column of B is contiguous along k: one row of pairs per column, then its words
      // down the strip.
      uint32_t* col = reinterpret_cast<uint32_t*>(tmp);
      for (int c = 0; c < cols; c++) {
        bf16_row_avx512(B.p + (long)(j0 + s * AMX_NR + c) * B.cs + p0, kc, kpad, col);
        for (int q = 0; q < kpad; q++) d[(long)q * AMX_NR + c] = col[q];
      }
      for (int q = 0; q < kpad; q++) for (int c = cols; c < AMX_NR; c++) d[(long)q * AMX_NR + c] = 0u;
    } else {
      pack_b(B, p0, kc, j0 + s * AMX_NR, cols, AMX_NR, tmp);
      for (int q = 0; q < kpad; q++) {
        uint32_t* row = d + (long)q * AMX_NR;
        if (2 * q < kc) bf16_pairs_avx512(tmp + (long)(2 * q) * AMX_NR, 2 * q + 1 < kc ? tmp + (long)(2 * q + 1) * AMX_NR : nullptr, AMX_NR, row);
        else std::memset(row, 0, sizeof(uint32_t) * AMX_NR);
      }
    }
  }
}

// gemm_block's loops for the AMX kernel: AMX_MR x AMX_NR blocks, whole 16-pair k tiles. A
// deeper k-block than fp32's (fewer passes of C through the accumulator tiles), and each A
// strip (32 rows x 256 pairs, 32 KiB) kept in L1 across the B strips; both measured faster
// than KC 256 and B-strip-outer (GEMMs of the bench shapes, 1 thread, CPU time).
constexpr int KCA = 512;
void gemm_block_amx(int m0, int m1, int n0, int n1, int K, const Src& A, const Src& B, float* C, long ldc, Scratch& s) {
  constexpr int MCA = (MC / AMX_MR) * AMX_MR, KPA = (KCA + 31) / 32 * 16;
  const int nc_max = (NC / AMX_NR) * AMX_NR;
  s.a.resize((size_t)std::max(16 * KCA, std::max(KCA, MCA)) + 64);
  s.b.resize((size_t)AMX_NR * KCA + 64);  // one strip: pack_b_amx converts B straight from the operand
  s.a16.resize((size_t)MCA * KPA + 64);
  s.b16.resize((size_t)nc_max * KPA + 64);
  if (!amx_begin()) fail("bf16: this thread was refused the AMX tile state");
  for (int jc = n0; jc < n1; jc += nc_max) {
    const int nc = std::min(nc_max, n1 - jc);
    for (int pc = 0; pc < K; pc += KCA) {
      const int kc = std::min(KCA, K - pc);
      const int kt = (kc + 31) / 32;
      const int kpad = kt * 16;
      pack_b_amx(B, pc, kc, jc, nc, kpad, s.b.data(), s.b16.data());
      for (int ic = m0; ic < m1; ic += MCA) {
        const int mc = std::min(MCA, m1 - ic);
        pack_a_amx(A, ic, mc, pc, kc, kpad, s.a.data(), s.a16.data());
        for (int ir = 0; ir < mc; ir += AMX_MR) {
          const int m = std::min(AMX_MR, mc - ir);
          for (int jr = 0; jr < nc; jr += AMX_NR) {
            const int n = std::min(AMX_NR, nc - jr);
            ukr_amx(kt, s.a16.data() + (long)ir * kpad, s.b16.data() + (long)jr * kpad, C + (long)(ic + ir) * ldc + jc + jr, ldc, pc > 0, m, n);
          }
        }
      }
    }
  }
  amx_end();
}
#endif

}  // namespace

namespace {

// B packed once for the whole product, shared by the threads that split M: block (jc, pc)
// of gemm_block's loop at bp + jc * K + pc * ncp (ncp: its nc rounded up to whole strips),
// laid out as pack_b writes it. Each thread packed all of B itself before: at 14 and 7 px
// (392 or 98 rows a chunk) that was K x N floats copied per ~100-400 rows of products.
std::vector<float> g_bshared;

// Column strip [j, j + nr) of rows [pc, pc + kc) into its place in the shared packing.
void pack_b_shared_strip(const Src& B, int K, int N, int nr, int nc_max, int pc, int kc, int j, float* bp) {
  const int jc = j / nc_max * nc_max;
  const int ncp = (std::min(nc_max, N - jc) + nr - 1) / nr * nr;
  pack_b(B, pc, kc, j, std::min(nr, N - j), nr, bp + (long)jc * K + (long)pc * ncp + (long)(j - jc) * kc);
}

// The same for A, where the product is split by columns (N > M, the 7 px layers: every
// chunk packed all of A, an im2col there): block (ic, pc) at ap + ic * K + pc * mcp.
std::vector<float> g_ashared;

void pack_a_shared_strip(const Src& A, int K, int M, int mr, int mc_max, int pc, int kc, int i, float* ap) {
  const int ic = i / mc_max * mc_max;
  const int mcp = (std::min(mc_max, M - ic) + mr - 1) / mr * mr;
  pack_a(A, i, std::min(mr, M - i), pc, kc, mr, ap + (long)ic * K + (long)pc * mcp + (long)(i - ic) * kc);
}

// gemm_block's fp32 loops; B from the shared packing `bp` (then n0 = 0, n1 = N) or packed
// here, A from `ap` (then m0 = 0, m1 = M) or packed here.
void gemm_block_fp32(int m0, int m1, int n0, int n1, int K, const Src& A, const Src& B, float* C, long ldc, const float* bp, const float* ap, Scratch& s, const BnEpi* bn);
void gemm_block_bf16(int m0, int m1, int n0, int n1, int K, const Src& A, const Src& B, float* C, long ldc, Scratch& s);

// gemm_block_fp32, then bias / act, then bn: every fp32 share of a product (gemm_block and
// both shared-packing splits of gemm) goes through here, so where bn is applied is decided
// in one place. Inside the loops (each MC x NC block right after its last k-block, while it
// is in cache) only without bias / act: those run after the loops, over the whole share,
// and bn must see their result. Otherwise after them: the same bits, without the cache gain.
void gemm_block_fp32_epilogues(int m0, int m1, int n0, int n1, int K, const Src& A, const Src& B, float* C, long ldc,
                               const float* bp, const float* ap, Scratch& s, const float* bias, int act, const BnEpi* bn) {
  const bool in_blocks = bias == nullptr && act == ACT_NONE;
  gemm_block_fp32(m0, m1, n0, n1, K, A, B, C, ldc, bp, ap, s, in_blocks ? bn : nullptr);
  epilogue(m0, m1, n0, n1, C, ldc, bias, act);
  if (!in_blocks) bn_epilogue(m0, m1, n0, n1, C, ldc, bn);
}

}  // namespace

bool g_gemm_share_packing = [] { const char* e = std::getenv("MEDPIPE_NATIVE_SHARE_PACKING"); return e == nullptr || std::strcmp(e, "0") != 0; }();

void gemm_block(int m0, int m1, int n0, int n1, int K, const Src& A, const Src& B, float* C, long ldc,
                const float* bias, int act, int tid, const BnEpi* bn) {
  if (m1 <= m0 || n1 <= n0) return;
  Scratch& s = g_scratch[tid];
#ifdef MP_X86
  if (g_precision == PREC_BF16 && g_bf16 == BF16_AMX && K > 0) {
    gemm_block_amx(m0, m1, n0, n1, K, A, B, C, ldc, s);
    epilogue(m0, m1, n0, n1, C, ldc, bias, act);
    bn_epilogue(m0, m1, n0, n1, C, ldc, bn);
    return;
  }
#endif
  if (g_precision == PREC_BF16 && g_bf16 == BF16_AVX512) {
    // Its loops have no per-block hook: bn after them.
    gemm_block_bf16(m0, m1, n0, n1, K, A, B, C, ldc, s);
    epilogue(m0, m1, n0, n1, C, ldc, bias, act);
    bn_epilogue(m0, m1, n0, n1, C, ldc, bn);
    return;
  }
  gemm_block_fp32_epilogues(m0, m1, n0, n1, K, A, B, C, ldc, nullptr, nullptr, s, bias, act, bn);
}

namespace {

void gemm_block_fp32(int m0, int m1, int n0, int n1, int K, const Src& A, const Src& B, float* C, long ldc, const float* bp, const float* ap, Scratch& s, const BnEpi* bn) {
  const Kernel& k = g_kernel;
  const int mc_max = std::max(k.mr, (MC / k.mr) * k.mr);
  const int nc_max = (NC / k.nr) * k.nr;
  if (K == 0) {
    for (int i = m0; i < m1; i++) for (int j = n0; j < n1; j++) C[(long)i * ldc + j] = 0.f;
    bn_epilogue(m0, m1, n0, n1, C, ldc, bn);
  }
  if (ap == nullptr) s.a.resize((size_t)mc_max * KC + 64);
  if (bp == nullptr) s.b.resize((size_t)nc_max * KC + 64);
  for (int jc = n0; jc < n1; jc += nc_max) {
    const int nc = std::min(nc_max, n1 - jc);
    const int ncp = (nc + k.nr - 1) / k.nr * k.nr;
    for (int pc = 0; pc < K; pc += KC) {
      const int kc = std::min(KC, K - pc);
      const float* b;
      if (bp != nullptr) b = bp + (long)jc * K + (long)pc * ncp;
      else {
        pack_b(B, pc, kc, jc, nc, k.nr, s.b.data());
        b = s.b.data();
      }
      for (int ic = m0; ic < m1; ic += mc_max) {
        const int mc = std::min(mc_max, m1 - ic);
        const float* a0;
        if (ap != nullptr) a0 = ap + (long)ic * K + (long)pc * ((mc + k.mr - 1) / k.mr * k.mr);
        else {
          pack_a(A, ic, mc, pc, kc, k.mr, s.a.data());
          a0 = s.a.data();
        }
        for (int jr = 0; jr < nc; jr += k.nr) {
          const int n = std::min(k.nr, nc - jr);
          if (k.half != nullptr && 2 * n <= k.nr) {
            int ir = 0;
            for (; ir + k.mr < mc; ir += 2 * k.mr) {
              const float* a = a0 + (long)ir * kc;
              k.half(kc, a, a + (long)k.mr * kc, b + (long)jr * kc, C + (long)(ic + ir) * ldc + jc + jr, ldc, pc > 0,
                     std::min(2 * k.mr, mc - ir), n);
            }
            if (ir < mc) k.fn(kc, a0 + (long)ir * kc, b + (long)jr * kc, C + (long)(ic + ir) * ldc + jc + jr, ldc, pc > 0, mc - ir, n);
            continue;
          }
          for (int ir = 0; ir < mc; ir += k.mr) {
            k.fn(kc, a0 + (long)ir * kc, b + (long)jr * kc, C + (long)(ic + ir) * ldc + jc + jr, ldc, pc > 0, std::min(k.mr, mc - ir), n);
          }
        }
        // This block's final values (its last k-block), still in cache.
        if (pc + kc == K) bn_epilogue(ic, ic + mc, jc, jc + nc, C, ldc, bn);
      }
    }
  }
}


// gemm_block's loops for the vdpbf16ps kernel: fp32 packing, then converted to bf16 pairs.
void gemm_block_bf16(int m0, int m1, int n0, int n1, int K, const Src& A, const Src& B, float* C, long ldc, Scratch& s) {
  const Kernel& k = g_kernel;
  const int mc_max = std::max(k.mr, (MC / k.mr) * k.mr);
  const int nc_max = (NC / k.nr) * k.nr;
  if (K == 0) {
    for (int i = m0; i < m1; i++) for (int j = n0; j < n1; j++) C[(long)i * ldc + j] = 0.f;
  }
  s.a.resize((size_t)mc_max * KC + 64);
  s.b.resize((size_t)nc_max * KC + 64);
  s.a16.resize((size_t)mc_max * (KC / 2) + 64);
  s.b16.resize((size_t)nc_max * (KC / 2) + 64);
  for (int jc = n0; jc < n1; jc += nc_max) {
    const int nc = std::min(nc_max, n1 - jc);
    for (int pc = 0; pc < K; pc += KC) {
      const int kc = std::min(KC, K - pc);
      const int kp = (kc + 1) / 2;
      pack_b(B, pc, kc, jc, nc, k.nr, s.b.data());
      pairs_bf16(s.b.data(), kc, k.nr, (nc + k.nr - 1) / k.nr, s.b16.data());
      for (int ic = m0; ic < m1; ic += mc_max) {
        const int mc = std::min(mc_max, m1 - ic);
        pack_a(A, ic, mc, pc, kc, k.mr, s.a.data());
        pairs_bf16(s.a.data(), kc, k.mr, (mc + k.mr - 1) / k.mr, s.a16.data());
        for (int jr = 0; jr < nc; jr += k.nr) {
          for (int ir = 0; ir < mc; ir += k.mr) {
            k.bf16(kp, s.a16.data() + (long)ir * kp, s.b16.data() + (long)jr * kp, C + (long)(ic + ir) * ldc + jc + jr, ldc, pc > 0,
                   std::min(k.mr, mc - ir), std::min(k.nr, nc - jr));
          }
        }
      }
    }
  }
}

// A shared operand's strips, KC-deep k-blocks x `strips` strips, packed over the pool (up to
// 4 chunks per thread): pack(pc, kc, strip) for each.
template <class F>
void pack_shared(int K, int strips, int T, F&& pack) {
  const int kb = (K + KC - 1) / KC, total = kb * strips, n = std::min(total, 4 * T);
  parallel(n, [&](int t, int) {
    for (int i = (int)((long)total * t / n); i < (int)((long)total * (t + 1) / n); i++) {
      const int pc = i / strips * KC;
      pack(pc, std::min(KC, K - pc), i % strips);
    }
  });
}

}  // namespace

void gemm(int M, int N, int K, const Src& A, const Src& B, float* C, long ldc, const float* bias, int act, bool serial, const BnEpi* bn) {
  const int T = serial ? 1 : pool_size();
  const double flops = 2.0 * M * N * (double)K;
  const Kernel& k = g_kernel;
  // Chunks: 2 per thread (a descheduled thread's share is picked up by the others); none
  // below ~2 MFLOP, where waking a worker costs more than it saves.
  int nt = flops < 2e6 ? 1 : 2 * T;
  if (nt <= 1) {
    gemm_block(0, M, 0, N, K, A, B, C, ldc, bias, act, serial ? 63 : 0, bn);
    return;
  }
  // Split the larger output dimension into equal, kernel-aligned chunks, the other operand
  // packed once for all of them. (Splitting rows with B shared where N > M, the 7 px layers,
  // measured slower: each chunk then streams all of B, 9 MB there, through its core.)
  const bool splitM = (long)M >= (long)N;
  const bool amx = g_precision == PREC_BF16 && g_bf16 == BF16_AMX;
  const int npad = (N + k.nr - 1) / k.nr * k.nr;
  const bool share = !amx && g_precision == PREC_FP32 && g_gemm_share_packing && K > 0 && K <= SHARED_K_MAX && (long)K * npad <= SHARED_MAX;
  const int unit = splitM ? (amx ? AMX_MR : k.mr) : (amx ? AMX_NR : k.nr);
  const int extent = splitM ? M : N;
  const int units = (extent + unit - 1) / unit;
  nt = std::min(nt, units);
  if (splitM && share) {
    // B packed once (its strips split over the pool), then the row chunks read it.
    if (g_bshared.size() < (size_t)K * npad) g_bshared.resize((size_t)K * npad);
    float* bp = g_bshared.data();
    const int nc_max = (NC / k.nr) * k.nr;
    pack_shared(K, npad / k.nr, T, [&](int pc, int kc, int strip) {
      pack_b_shared_strip(B, K, N, k.nr, nc_max, pc, kc, strip * k.nr, bp);
    });
    parallel(nt, [&](int t, int tid) {
      const int e0 = std::min(M, (int)((long)units * t / nt) * unit), e1 = std::min(M, (int)((long)units * (t + 1) / nt) * unit);
      if (e1 <= e0) return;
      gemm_block_fp32_epilogues(e0, e1, 0, N, K, A, B, C, ldc, bp, nullptr, g_scratch[tid], bias, act, bn);
    });
    return;
  }
  const int mpad = (M + k.mr - 1) / k.mr * k.mr;
  // (Not the filter gradient's column-contiguous operands: their packers work on whole blocks.)
  const bool rowwise = (A.kind == Src::STRIDED && A.cs == 1) || A.kind == Src::IM2COL;
  if (!splitM && rowwise && !amx && g_precision == PREC_FP32 && g_gemm_share_packing && K > 0 && K <= SHARED_K_MAX && (long)K * mpad <= SHARED_MAX) {
    // A packed once (its strips split over the pool), then the column chunks read it.
    if (g_ashared.size() < (size_t)K * mpad) g_ashared.resize((size_t)K * mpad);
    float* ap = g_ashared.data();
    const int mc_max = std::max(k.mr, (MC / k.mr) * k.mr);
    pack_shared(K, mpad / k.mr, T, [&](int pc, int kc, int strip) {
      pack_a_shared_strip(A, K, M, k.mr, mc_max, pc, kc, strip * k.mr, ap);
    });
    parallel(nt, [&](int t, int tid) {
      const int e0 = std::min(N, (int)((long)units * t / nt) * unit), e1 = std::min(N, (int)((long)units * (t + 1) / nt) * unit);
      if (e1 <= e0) return;
      gemm_block_fp32_epilogues(0, M, e0, e1, K, A, B, C, ldc, nullptr, ap, g_scratch[tid], bias, act, bn);
    });
    return;
  }
  parallel(nt, [&](int t, int tid) {
    const int u0 = (int)((long)units * t / nt), u1 = (int)((long)units * (t + 1) / nt);
    const int e0 = std::min(extent, u0 * unit), e1 = std::min(extent, u1 * unit);
    if (splitM) gemm_block(e0, e1, 0, N, K, A, B, C, ldc, bias, act, tid, bn);
    else gemm_block(0, M, e0, e1, K, A, B, C, ldc, bias, act, tid, bn);
  });
}

// matmul [M, N, K, transA, transB] + tail of (a, b, c) offset triples: C = op(A) op(B) for
// each triple, A [M x K] (or [K x M] when transA), B [K x N] (or [N x K]), C [M x N].
void op_matmul(const Call& c) {
  const long M = c.i(0), N = c.i(1), K = c.i(2);
  const bool tA = c.arg[3] != 0, tB = c.arg[4] != 0;
  if (M < 0 || N < 0 || K < 0 || M > INT32_MAX || N > INT32_MAX || K > INT32_MAX) fail("matmul: bad size");
  const int count = (int)(c.tail_len / 3);
  std::vector<float*> ptr(3 * (size_t)count);
  for (int i = 0; i < count; i++) {
    ptr[3 * i] = c.span(c.tail[3 * i], (double)M * K);
    ptr[3 * i + 1] = c.span(c.tail[3 * i + 1], (double)K * N);
    ptr[3 * i + 2] = c.span(c.tail[3 * i + 2], (double)M * N);
  }
  auto operands = [&](int i, Src& A, Src& B) {
    A.p = ptr[3 * i];
    if (tA) { A.rs = 1; A.cs = M; } else { A.rs = K; A.cs = 1; }
    B.p = ptr[3 * i + 1];
    if (tB) { B.rs = 1; B.cs = K; } else { B.rs = N; B.cs = 1; }
  };
  const int T = pool_size();
  if (small_gemm_fits(M, N, K)) {
    // Small products (attention heads): whole products per chunk, unpacked (gemm_batched.cc),
    // on the pool once the list is worth a wake-up (~0.4 MFLOP, 10-20 us of work).
    const int nc = T > 1 && 2.0 * M * N * K * count >= 4e5 ? std::min(count, 4 * T) : 1;
    auto chunk = [&](int t, int) {
      const int b0 = (int)((long)count * t / nc), b1 = (int)((long)count * (t + 1) / nc);
      for (int i = b0; i < b1; i++) {
        Src A, B;
        operands(i, A, B);
        small_gemm((int)M, (int)N, (int)K, A, B, ptr[3 * i + 2], N);
      }
    };
    if (nc == 1) chunk(0, 0);
    else parallel(nc, chunk);
  } else if (count >= 2 * T && T > 1 && 2.0 * M * N * K * count >= 2e6) {
    // Many products: whole products per chunk (each computed exactly as alone).
    const int nc = std::min(count, 4 * T);
    parallel(nc, [&](int t, int tid) {
      const int b0 = (int)((long)count * t / nc), b1 = (int)((long)count * (t + 1) / nc);
      for (int i = b0; i < b1; i++) {
        Src A, B;
        operands(i, A, B);
        gemm_block(0, (int)M, 0, (int)N, (int)K, A, B, ptr[3 * i + 2], N, nullptr, ACT_NONE, tid);
      }
    });
  } else {
    for (int i = 0; i < count; i++) {
      Src A, B;
      operands(i, A, B);
      gemm((int)M, (int)N, (int)K, A, B, ptr[3 * i + 2], N, nullptr, ACT_NONE);
    }
  }
}

// linear [M, N, K, a, b, bias, c]: C = A B + bias, A [M x K], B [K x N], bias [N] added per
// column: the bits of matmul then a row-broadcast add (each C element is its full dot
// product, then + bias[j] once), without the add's own pass over C.
void op_linear(const Call& c) {
  const long M = c.i(0), N = c.i(1), K = c.i(2);
  if (M < 0 || N < 0 || K < 0 || M > INT32_MAX || N > INT32_MAX || K > INT32_MAX) fail("linear: bad size");
  Src A, B;
  A.p = c.span(c.arg[3], (double)M * K);
  A.rs = K;
  A.cs = 1;
  B.p = c.span(c.arg[4], (double)K * N);
  B.rs = N;
  B.cs = 1;
  const float* bias = c.span(c.arg[5], (double)N);
  float* C = c.span(c.arg[6], (double)M * N);
  if (small_gemm_fits(M, N, K)) {
    small_gemm((int)M, (int)N, (int)K, A, B, C, N);
    for (long i = 0; i < M; i++) for (long j = 0; j < N; j++) C[i * N + j] += bias[j];
  } else {
    gemm((int)M, (int)N, (int)K, A, B, C, N, bias, ACT_NONE);
  }
}

}  // namespace mp
