// Pooling family: the max-pool gradient (wasm's drops windows whose maximum is negative).
#include <cmath>
#include <cstring>
#include <vector>

#include "ops.h"

namespace mp {

// maxPoolGrad [x, dy, dx, geometry(14): N H W C OH OW KH KW (effective) sh sw dh dw padTop
// padLeft]. Each window's first maximum (row-major, strict >) receives dy, as the cpu
// backend and PyTorch do; padding never wins. One image per chunk: images own disjoint
// parts of dx, and a chunk adds in a fixed order.
void op_max_pool_grad(const Call& c) {
  int v[14];
  for (int k = 0; k < 14; k++) {
    const double d = c.arg[3 + k];
    if (!(d >= 0 && d <= INT32_MAX && d == (double)(int)d)) fail("maxPoolGrad: bad geometry");
    v[k] = (int)d;
  }
  struct { int N, H, W, C, OH, OW, KH, KW, sh, sw, dh, dw, pt, pl; } g;
  std::memcpy(&g, v, sizeof g);
  if (g.N <= 0 || g.H <= 0 || g.W <= 0 || g.C <= 0 || g.OH <= 0 || g.OW <= 0 || g.KH <= 0 || g.KW <= 0 || g.sh <= 0 || g.sw <= 0 || g.dh <= 0 || g.dw <= 0) {
    fail("maxPoolGrad: bad geometry");
  }
  const double nx = (double)g.N * g.H * g.W * g.C, ny = (double)g.N * g.OH * g.OW * g.C;
  const float* x = c.span(c.arg[0], nx);
  const float* dy = c.span(c.arg[1], ny);
  float* dx = c.span(c.arg[2], nx);
  parallel(g.N, [&](int n, int) {
    float* dxn = dx + (long)n * g.H * g.W * g.C;
    std::fill(dxn, dxn + (long)g.H * g.W * g.C, 0.f);
    std::vector<float> best(g.C);
    std::vector<long> where(g.C);
    for (int oh = 0; oh < g.OH; oh++) {
      for (int ow = 0; ow < g.OW; ow++) {
        std::fill(best.begin(), best.end(), -INFINITY);
        std::fill(where.begin(), where.end(), -1L);
        for (int kh = 0, ih = oh * g.sh - g.pt; kh < g.KH; kh += g.dh, ih += g.dh) {
          if (ih < 0 || ih >= g.H) continue;
          for (int kw = 0, iw = ow * g.sw - g.pl; kw < g.KW; kw += g.dw, iw += g.dw) {
            if (iw < 0 || iw >= g.W) continue;
            const long base = ((long)ih * g.W + iw) * g.C;
            const float* xp = x + (long)n * g.H * g.W * g.C + base;
            for (int ch = 0; ch < g.C; ch++) {
              if (xp[ch] > best[ch]) { best[ch] = xp[ch]; where[ch] = base + ch; }
            }
          }
        }
        const float* d = dy + (((long)n * g.OH + oh) * g.OW + ow) * g.C;
        for (int ch = 0; ch < g.C; ch++) if (where[ch] >= 0) dxn[where[ch]] += d[ch];
      }
    }
  });
}

}  // namespace mp
