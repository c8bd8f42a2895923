// Optimizer family: Adam / AdamW over every parameter in one call, in place. The float32
// operations of the composed tfjs ops (src/ml/train/adam.ts), one rounding per op, in the
// same order, so both paths agree bit for bit (built with -ffp-contract=off: no fused
// multiply-adds). Element-wise, so any chunking gives the same result.
#include <cmath>
#include <vector>

#include "ops.h"

namespace mp {
namespace {

struct AdamScalars {
  float b1, omb1, b2, omb2, bc2, eps, step, wd, keep;  // step = lr / bc1, keep = 1 - lr * wd
};

void adam_range(const AdamScalars& s, int mode, float* p, float* m, float* v, const float* g, long i0, long i1) {
  for (long i = i0; i < i1; i++) {
    float pi = p[i];
    float gi = g[i];
    if (mode == ADAM_L2) gi = gi + pi * s.wd;
    else if (mode == ADAM_DECOUPLED) pi = pi * s.keep;
    const float mi = m[i] * s.b1 + gi * s.omb1;
    const float vi = v[i] * s.b2 + (gi * gi) * s.omb2;
    m[i] = mi;
    v[i] = vi;
    const float denom = std::sqrt(vi / s.bc2) + s.eps;
    p[i] = pi - (mi / denom) * s.step;
  }
}

}  // namespace

// adam [b1, 1-b1, b2, 1-b2, 1-b2^t, eps, lr/(1-b1^t), wd, 1-lr*wd] + tail of
// (p, m, v, g, n, adamMode) per tensor.
void op_adam(const Call& c) {
  const double* a = c.arg;
  const AdamScalars s{(float)a[0], (float)a[1], (float)a[2], (float)a[3], (float)a[4], (float)a[5], (float)a[6], (float)a[7], (float)a[8]};
  const int count = (int)(c.tail_len / 6);
  struct Tensor { float *p, *m, *v, *g; long n; int mode; };
  std::vector<Tensor> ts(count);
  for (int t = 0; t < count; t++) {
    const double* e = c.tail + 6 * t;
    const double n = e[4];
    if (!(n >= 0 && n == (double)(long)n)) fail("adam: bad size");
    const int mode = (int)e[5];
    if (!(e[5] >= 0 && e[5] < ADAM_COUNT && e[5] == (double)mode)) fail("adam: unknown adamMode code");
    ts[t] = {c.span(e[0], n), c.span(e[1], n), c.span(e[2], n), c.span(e[3], n), (long)n, mode};
  }
  // Fixed chunks of at most 32K elements over all tensors: small tensors share a chunk's
  // worth of work with no per-tensor thread hand-off.
  struct Piece { int t; long i0, i1; };
  std::vector<Piece> pieces;
  const long CH = 32768;
  double total = 0;
  for (int t = 0; t < count; t++) {
    total += ts[t].n;
    for (long i = 0; i < ts[t].n; i += CH) pieces.push_back({t, i, std::min(ts[t].n, i + CH)});
  }
  const int per = 4;  // pieces per chunk
  const int chunks = (int)((pieces.size() + per - 1) / per);
  auto run = [&](int k, int) {
    for (size_t q = (size_t)k * per; q < std::min(pieces.size(), (size_t)(k + 1) * per); q++) {
      const Piece& pc = pieces[q];
      const Tensor& t = ts[pc.t];
      adam_range(s, t.mode, t.p, t.m, t.v, t.g, pc.i0, pc.i1);
    }
  };
  if (total < 65536) for (int k = 0; k < chunks; k++) run(k, 0);
  else parallel(chunks, run);
}

}  // namespace mp
