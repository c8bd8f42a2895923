// Pooling family: the max-pool gradient (wasm's drops windows whose maximum is negative).
#include <cmath>
#include <cstring>
#include <vector>

#include "ops.h"

namespace mp {

namespace {

struct PoolGeom { int N, H, W, C, OH, OW, KH, KW, sh, sw, dh, dw, pt, pl; };

// One image: each window's first maximum per channel (strict >, row-major taps), the
// channels as vector lanes (compare and select, int32 positions), then dy added at the
// winners in window order. best / where hold C entries.
MP_CLONES void max_pool_grad_image(const PoolGeom& g, const float* __restrict x, const float* __restrict dy,
                                   float* __restrict dx, float* __restrict best, int* __restrict where) {
  const long C = g.C;
  std::fill(dx, dx + (long)g.H * g.W * C, 0.f);
  for (int oh = 0; oh < g.OH; oh++) {
    for (int ow = 0; ow < g.OW; ow++) {
      for (long ch = 0; ch < C; ch++) { best[ch] = -INFINITY; where[ch] = -1; }
      for (int kh = 0, ih = oh * g.sh - g.pt; kh < g.KH; kh += g.dh, ih += g.dh) {
        if (ih < 0 || ih >= g.H) continue;
        for (int kw = 0, iw = ow * g.sw - g.pl; kw < g.KW; kw += g.dw, iw += g.dw) {
          if (iw < 0 || iw >= g.W) continue;
          const int base = (ih * g.W + iw) * g.C;
          const float* xp = x + base;
          for (long ch = 0; ch < C; ch++) {
            const float v = xp[ch];
            const bool gt = v > best[ch];
            best[ch] = gt ? v : best[ch];
            where[ch] = gt ? base + (int)ch : where[ch];
          }
        }
      }
      const float* d = dy + ((long)oh * g.OW + ow) * C;
      for (long ch = 0; ch < C; ch++) if (where[ch] >= 0) dx[where[ch]] += d[ch];
    }
  }
}

}  // namespace

// maxPoolGrad [x, dy, dx, geometry(14): N H W C OH OW KH KW (effective) sh sw dh dw padTop
// padLeft]. Each window's first maximum (row-major, strict >) receives dy, as the cpu
// backend and PyTorch do; padding never wins (NaN never does either). One image per chunk:
// images own disjoint parts of dx, and a chunk adds in a fixed order.
void op_max_pool_grad(const Call& c) {
  int v[14];
  for (int k = 0; k < 14; k++) {
    const double d = c.arg[3 + k];
    if (!(d >= 0 && d <= INT32_MAX && d == (double)(int)d)) fail("maxPoolGrad: bad geometry");
    v[k] = (int)d;
  }
  PoolGeom g;
  std::memcpy(&g, v, sizeof g);
  if (g.N <= 0 || g.H <= 0 || g.W <= 0 || g.C <= 0 || g.OH <= 0 || g.OW <= 0 || g.KH <= 0 || g.KW <= 0 || g.sh <= 0 || g.sw <= 0 || g.dh <= 0 || g.dw <= 0) {
    fail("maxPoolGrad: bad geometry");
  }
  // Positions inside one image are int32.
  if ((double)g.H * g.W * g.C > INT32_MAX) fail("maxPoolGrad: an image of more than 2^31 values");
  const long img = (long)g.H * g.W * g.C, oimg = (long)g.OH * g.OW * g.C;
  const float* x = c.span(c.arg[0], (double)g.N * img);
  const float* dy = c.span(c.arg[1], (double)g.N * oimg);
  float* dx = c.span(c.arg[2], (double)g.N * img);
  std::vector<float> best((size_t)pool_size() * g.C);
  std::vector<int> where((size_t)pool_size() * g.C);
  parallel(g.N, [&](int n, int tid) {
    max_pool_grad_image(g, x + n * img, dy + n * oimg, dx + n * img, best.data() + (size_t)tid * g.C, where.data() + (size_t)tid * g.C);
  });
}

}  // namespace mp
