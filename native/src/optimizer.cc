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

// One body for the three modes: the mode is a template argument, so each instance is a loop
// without a per-element branch. Always inlined into adam_range's clones, so each is compiled
// (and vectorised) for that clone's ISA. sqrt and division are correctly rounded in every
// width, so the lanes give the scalar loop's bits.
template <int mode>
inline __attribute__((always_inline)) void adam_loop(const AdamScalars& s, float* __restrict p, float* __restrict m,
                                                     float* __restrict v, const float* __restrict g, long n) {
  const float b1 = s.b1, omb1 = s.omb1, b2 = s.b2, omb2 = s.omb2, bc2 = s.bc2, eps = s.eps, step = s.step;
  const float wd = s.wd, keep = s.keep;
  for (long i = 0; i < n; i++) {
    const float gi = mode == ADAM_L2 ? g[i] + p[i] * wd : g[i];  // L2: the penalty in the gradient
    const float mi = m[i] * b1 + gi * omb1;
    const float vi = v[i] * b2 + (gi * gi) * omb2;
    m[i] = mi;
    v[i] = vi;
    const float pi = mode == ADAM_DECOUPLED ? p[i] * keep : p[i];  // AdamW: decay apart from the gradient
    p[i] = pi - (mi / (std::sqrt(vi / bc2) + eps)) * step;
  }
}

// MP_CLONES: AVX-512 on this CPU, AVX2, baseline; the mode is picked once per range.
MP_CLONES void adam_range(const AdamScalars& s, int mode, float* __restrict p, float* __restrict m, float* __restrict v,
                          const float* __restrict g, long n) {
  if (mode == ADAM_L2) adam_loop<ADAM_L2>(s, p, m, v, g, n);
  else if (mode == ADAM_DECOUPLED) adam_loop<ADAM_DECOUPLED>(s, p, m, v, g, n);
  else adam_loop<ADAM_PLAIN>(s, p, m, v, g, n);
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
      adam_range(s, t.mode, t.p + pc.i0, t.m + pc.i0, t.v + pc.i0, t.g + pc.i0, pc.i1 - pc.i0);
    }
  };
  if (total < 65536) for (int k = 0; k < chunks; k++) run(k, 0);
  else parallel(chunks, run);
}

}  // namespace mp
