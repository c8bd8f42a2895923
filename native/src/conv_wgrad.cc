// Filter gradient of a convolution, dW[tap, c, oc] = sum over output pixels p of
// x(input pixel of p under the tap, c) . dy(p, oc), NHWC, filters [KH, KW, C, OC]. As a
// GEMM, dW = im2col(x)^T . dy is a long-K product (K = the pixel count, 25k at ResNet50's
// 56 px layers) whose C fits in cache, so packing the two long operands is the cost beside
// the FMAs; conv.cc's GEMM split dW's rows or columns over the threads, so every chunk
// packed the whole of the other long operand.
//
// Direct (AVX-512, C a multiple of 8, small channel counts: sw * C + OC <= 320 floats per
// pixel, the 56 px layers): nothing is packed. For one filter tap, the output pixels of one
// output row whose input pixel lies inside the image form a run: x at a fixed stride (sw * C
// floats), dy at stride OC, read where they lie. An 8 x 32 tile of dW (8 channels of one tap
// x 32 output channels) keeps its accumulators in registers over all runs of a block of
// output rows (padding contributes nothing and is skipped), then adds them to dW once per
// block. Wider channel counts lose here (the strided rows alias in L1: 0.3-0.7x on the 14 and
// 7 px layers), so they take:
//
// Image parts (any other fp32 shape conv.cc's transposed-im2col GEMM covers): dW = the sum
// over two halves of the batch of one serial GEMM each over all of dW, so each operand is
// packed once.
//
// Both split the pixels into a fixed number of parts, each into its own copy of dW, summed at
// the end in part order; the parts depend on the shape only, so the bits do not depend on the
// thread count. The direct kernel is AVX-512 only: elsewhere its shapes take the batch
// split when C is a multiple of the microkernel's rows; the rest (the stem's C = 3, bf16,
// batch 1) stay with conv.cc's GEMM.
#include <cstring>
#include <vector>

#include "conv_wgrad.h"
#include "tile8x32.h"

namespace mp {
namespace {

// One run of output pixels: x and dy offsets (floats) of its first pixel, its length.
struct Run {
  long x, dy;
  int len;
};

#ifdef MP_X86
// The pixels AHEAD on are prefetched (x and dy are read at strides of 256 B and more, which
// alias in L1; 4 and 8 measured 1.1x over none on the ResNet50 shapes, 8 marginally ahead).
constexpr int AHEAD = 8;

// dW tile (8 rows at c0 .. c0+8 of x's channels, n <= 32 columns of dy) (=|+=) the sum over
// the runs' pixels, in pixel order from zero. x points at channel c0, dy at column j0.
template <bool FULL>
__attribute__((target("avx512f"))) void tile8x32(const Run* run, int nrun, const float* x, long xs, const float* dy, long ys,
                                                 float* C, long ldc, bool acc, int n) {
  MP_ROWS8(MP_TILE_DECL)
  const __mmask16 k0 = FULL ? (__mmask16)0xFFFF : (__mmask16)(n >= 16 ? 0xFFFF : (1u << n) - 1);
  const __mmask16 k1 = FULL ? (__mmask16)0xFFFF : (__mmask16)(n >= 32 ? 0xFFFF : n <= 16 ? 0 : (1u << (n - 16)) - 1);
  for (int s = 0; s < nrun; s++) {
    const float* a = x + run[s].x;
    const float* b = dy + run[s].dy;
    for (int i = run[s].len; i > 0; i--, a += xs, b += ys) {
      _mm_prefetch((const char*)(a + AHEAD * xs), _MM_HINT_T0);
      _mm_prefetch((const char*)(b + AHEAD * ys), _MM_HINT_T0);
      _mm_prefetch((const char*)(b + AHEAD * ys + 16), _MM_HINT_T0);
      const __m512 b0 = FULL ? _mm512_loadu_ps(b) : _mm512_maskz_loadu_ps(k0, b);
      const __m512 b1 = FULL ? _mm512_loadu_ps(b + 16) : _mm512_maskz_loadu_ps(k1, b + 16);
#define MP_FMA(r) MP_TILE_FMA(r, a)
      MP_ROWS8(MP_FMA)
#undef MP_FMA
    }
  }
#define MP_STORE(r)                                                                  \
  {                                                                                  \
    float* c = C + r * ldc;                                                          \
    if (FULL) {                                                                      \
      if (acc) {                                                                     \
        c0_##r = _mm512_add_ps(_mm512_loadu_ps(c), c0_##r);                          \
        c1_##r = _mm512_add_ps(_mm512_loadu_ps(c + 16), c1_##r);                     \
      }                                                                              \
      _mm512_storeu_ps(c, c0_##r);                                                   \
      _mm512_storeu_ps(c + 16, c1_##r);                                              \
    } else {                                                                         \
      if (acc) {                                                                     \
        c0_##r = _mm512_add_ps(_mm512_maskz_loadu_ps(k0, c), c0_##r);                \
        c1_##r = _mm512_add_ps(_mm512_maskz_loadu_ps(k1, c + 16), c1_##r);           \
      }                                                                              \
      _mm512_mask_storeu_ps(c, k0, c0_##r);                                          \
      _mm512_mask_storeu_ps(c + 16, k1, c1_##r);                                     \
    }                                                                                \
  }
  MP_ROWS8(MP_STORE)
#undef MP_STORE
}
#endif

int ceil_div(int a, int b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

std::vector<float> g_parts;  // dW copies of parts 1 .. P-1

// dW += part 1, += part 2, ... per element, in fixed chunks of elements: the order of the
// sum is the parts', whatever the thread count.
void sum_parts(float* dw, long mn, int parts) {
  const int nt = mn < 65536 ? 1 : 2 * pool_size();
  parallel(nt, [&](int t, int) {
    const long e0 = mn * t / nt, e1 = mn * (t + 1) / nt;
    for (int p = 1; p < parts; p++) {
      const float* s = g_parts.data() + (size_t)(p - 1) * mn;
      for (long e = e0; e < e1; e++) dw[e] += s[e];
    }
  });
}

bool direct(const ConvGeom& g, const float* x, const float* dy, float* dw) {
#ifdef MP_X86
  constexpr int TR = 8, TC = 32;
  const int taps = g.KH * g.KW, cs = g.C / TR, js = (g.OC + TC - 1) / TC;
  const int tiles = js * taps * cs;
  const long rows = (long)g.N * g.OH;  // output rows
  const long pixels = rows * g.OW;
  const long mn = (long)taps * g.C * g.OC;
  // Blocks of whole output rows, about 128 pixels: a tile's 32 dy columns of a block (16 KiB)
  // can stay in L1 across the taps and channel strips that follow it.
  const long rb = std::max(1l, std::min(rows, (long)ceil_div(128, g.OW)));
  const long blocks = (rows + rb - 1) / rb;
  // Parts of the pixels, each its own dW copy: where dW is at most 256 KiB and every part has
  // at least 4 blocks (otherwise tile groups alone).
  int parts = 1;
  if (mn * 4 <= (256l << 10)) parts = (int)std::max(1l, std::min(4l, blocks / 4));
  const int threads = pool_size();
  const double flops = 2.0 * (double)mn * (double)pixels;
  const int want = flops < 2e6 ? 1 : 2 * threads;
  const int groups = std::max(1, std::min(tiles, (want + parts - 1) / parts));
  if (parts > 1 && g_parts.size() < (size_t)(parts - 1) * mn) g_parts.resize((size_t)(parts - 1) * mn);
  const long xs = (long)g.sw * g.C;
  parallel(parts * groups, [&](int chunk, int) {
    const int part = chunk / groups, grp = chunk % groups;
    float* out = part == 0 ? dw : g_parts.data() + (size_t)(part - 1) * mn;
    const long b0 = blocks * part / parts, b1 = blocks * (part + 1) / parts;
    const int t0 = (int)((long)tiles * grp / groups), t1 = (int)((long)tiles * (grp + 1) / groups);
    std::vector<Run> run((size_t)rb);
    for (long b = b0; b < b1; b++) {
      const long r0 = b * rb, r1 = std::min(rows, r0 + rb);
      int tap = -1, nrun = 0;
      for (int t = t0; t < t1; t++) {
        const int j = t / (taps * cs), tt = (t / cs) % taps, c = t % cs;
        if (tt != tap) {
          tap = tt;
          const int kh = tap / g.KW, kw = tap % g.KW;
          const int off = kw * g.dw - g.pl;  // iw = ow * sw + off
          const int lo = std::max(0, ceil_div(-off, g.sw)), hi = std::min(g.OW, ceil_div(g.W - off, g.sw));
          nrun = 0;
          if (hi > lo) {
            for (long r = r0; r < r1; r++) {
              const long n = r / g.OH;
              const int ih = (int)(r % g.OH) * g.sh - g.pt + kh * g.dh;
              if (ih < 0 || ih >= g.H) continue;
              run[nrun++] = {((n * g.H + ih) * g.W + (long)lo * g.sw + off) * g.C, (r * g.OW + lo) * g.OC, hi - lo};
            }
          }
        }
        const int n = std::min(TC, g.OC - j * TC);
        float* C = out + ((long)tap * g.C + (long)c * TR) * g.OC + (long)j * TC;
        const float* xa = x + (long)c * TR;
        const float* ya = dy + (long)j * TC;
        if (n == TC) tile8x32<true>(run.data(), nrun, xa, xs, ya, g.OC, C, g.OC, b > b0, n);
        else tile8x32<false>(run.data(), nrun, xa, xs, ya, g.OC, C, g.OC, b > b0, n);
      }
    }
  });
  if (parts > 1) sum_parts(dw, mn, parts);
  return true;
#else
  (void)g; (void)x; (void)dy; (void)dw;
  return false;
#endif
}

// dW = sum over parts of images of im2col(x_part)^T . dy_part: each part one serial GEMM
// over all of dW, so each long operand is packed once (split over dW's rows or columns,
// every chunk packed the whole of the other operand); parts fixed by the shape.
bool ksplit(const ConvGeom& g, const float* x, const float* dy, float* dw, int parts) {
  const int M = g.KH * g.KW * g.C;
  const long mn = (long)M * g.OC;
  parts = std::min(parts, g.N);
  if (parts < 2) return false;
  const bool pw = g.KH == 1 && g.KW == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 && g.pl == 0 && g.OH == g.H && g.OW == g.W;
  if (!pw && g.C % gemm_mr() != 0) return false;
  if (g_parts.size() < (size_t)(parts - 1) * mn) g_parts.resize((size_t)(parts - 1) * mn);
  // More threads than parts: each part's GEMM is split over dW's rows too (in whole strips
  // of the microkernel's rows), which leaves every element's sum, and so the bits, as on
  // two threads.
  const int mr = gemm_mr();
  const int strips = (M + mr - 1) / mr;
  const int sub = std::max(1, std::min(strips, pool_size() / parts));
  parallel(parts * sub, [&](int chunk, int tid) {
    const int part = chunk / sub, s = chunk % sub;
    const int m0 = std::min(M, (int)((long)strips * s / sub) * mr);
    const int m1 = std::min(M, (int)((long)strips * (s + 1) / sub) * mr);
    if (m0 >= m1) return;
    const int n0 = (int)((long)g.N * part / parts), n1 = (int)((long)g.N * (part + 1) / parts);
    ConvGeom q = g;
    q.N = n1 - n0;
    const float* xp = x + (long)n0 * g.H * g.W * g.C;
    const float* yp = dy + (long)n0 * g.OH * g.OW * g.OC;
    float* out = part == 0 ? dw : g_parts.data() + (size_t)(part - 1) * mn;
    Src A;
    if (pw) { A.p = xp; A.rs = 1; A.cs = g.C; }
    else { A.kind = Src::IM2COL_T; A.p = xp; A.g = &q; }
    Src B; B.p = yp; B.rs = g.OC; B.cs = 1;
    gemm_block(m0, m1, 0, g.OC, q.N * g.OH * g.OW, A, B, out, g.OC, nullptr, ACT_NONE, tid);
  });
  sum_parts(dw, mn, parts);
  return true;
}

}  // namespace

bool conv2d_backprop_filter_fast(const ConvGeom& g, const float* x, const float* dy, float* dw) {
  if (gemm_precision() != PREC_FP32) return false;
  if (std::strcmp(gemm_isa(), "avx512") == 0 && g.C % 8 == 0 && g.OC >= 32 && g.sw * g.C + g.OC <= 320) return direct(g, x, dy, dw);
  return ksplit(g, x, dy, dw, 2);
}

}  // namespace mp
