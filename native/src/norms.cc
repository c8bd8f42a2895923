// Norms family: per-channel reductions over [rows x C] (BatchNorm statistics and their
// gradients, Sum / Mean over every axis but the last), BatchNorm (inference and training,
// with its gradient), LayerNorm and its gradient. Sums in float64 over fixed chunks of rows,
// partials added in chunk order: results do not depend on the threads.
#include <cmath>
#include <vector>

#include "norms.h"
#include "ops.h"

namespace mp {

// norms.h. No __restrict on x and y (the GEMM epilogue runs in place); `ivdep` says what
// makes the loops safe to vectorise without run-time overlap checks: element j is read
// before it is written and no other element is touched. The branches are outside the row
// loops, the row pointers stepped and the rows counted down (one register fewer: the
// residual's loop spilled its bound every row): with the branches inside, or the rows
// counted up, the residual's rows of 256 measured 3-9% slower in cache than norms.cc's own
// loop before; this form measured 0.97-1.00 of it out of place and 0.72-0.99 of gemm.cc's
// old copy in place (standalone copies of the loops, same flags, interleaved).
MP_CLONES void bn_rows(long r0, long r1, long c0, long c1, long ld, const float* x, float* y, const float* __restrict mean,
                       const float* __restrict mul, const float* __restrict add, const float* res, long ldr, bool relu) {
  const long n = c1 - c0;
  x += r0 * ld + c0;
  y += r0 * ld + c0;
  mean += c0;
  mul += c0;
  add += c0;
  if (!res && !relu) {
    for (long i = r1 - r0; i > 0; i--, x += ld, y += ld) {
#pragma GCC ivdep
      for (long j = 0; j < n; j++) y[j] = (x[j] - mean[j]) * mul[j] + add[j];
    }
  } else if (!res) {
    for (long i = r1 - r0; i > 0; i--, x += ld, y += ld) {
#pragma GCC ivdep
      for (long j = 0; j < n; j++) {
        const float v = (x[j] - mean[j]) * mul[j] + add[j];
        y[j] = v > 0.f ? v : 0.f;
      }
    }
  } else {  // relu too (norms.h)
    res += r0 * ldr + c0;
    for (long i = r1 - r0; i > 0; i--, x += ld, y += ld, res += ldr) {
#pragma GCC ivdep
      for (long j = 0; j < n; j++) {
        const float v = (x[j] - mean[j]) * mul[j] + add[j] + res[j];
        y[j] = v > 0.f ? v : 0.f;
      }
    }
  }
}

namespace {

// The loops over a range of rows of [rows x C], compiled for AVX-512, AVX2 and baseline
// (MP_CLONES): one call per chunk of rows, not per row (a call and a ragged vector tail per
// 16-channel row cost more than its arithmetic). Each is element-wise along the channels
// and adds rows in order (no reassociation, -ffp-contract=off): every ISA, and any chunking
// of the element-wise passes, gives the same bits.

// y > 0 ? d : +0, as a bit mask: GCC does not if-convert the select in these loops.
inline float relu_mask(float y, float d) {
  const uint32_t m = 0u - (uint32_t)(y > 0.f);
  return __builtin_bit_cast(float, __builtin_bit_cast(uint32_t, d) & m);
}

MP_CLONES void rows_sum(long r0, long r1, long C, const float* __restrict x, double* __restrict acc) {
  for (long r = r0; r < r1; r++) {
    const float* xr = x + r * C;
    for (long k = 0; k < C; k++) acc[k] += xr[k];
  }
}
// acc[c] += d, acc[C + c] += d * d with d = x - shift[c] (float64): a channel's sum and sum
// of squares in one read of x. The shift (one value of the channel) keeps the variance from
// cancelling when the mean is far from zero: var = E[d^2] - E[d]^2 with |E[d]| ~ one std.
MP_CLONES void rows_sum_sq(long r0, long r1, long C, const float* __restrict x, const double* __restrict shift,
                           double* __restrict acc) {
  double* acc2 = acc + C;
  for (long r = r0; r < r1; r++) {
    const float* xr = x + r * C;
    for (long k = 0; k < C; k++) { const double d = xr[k] - shift[k]; acc[k] += d; acc2[k] += d * d; }
  }
}
// acc[c] += g, acc[C + c] += g (x - mean), g = dy (+ dy2, in float32: the Add of a block
// input's two gradients, fused) masked by y > 0 when y is given (and then written to gout
// when given: the residual's gradient, read again by the dx pass).
MP_CLONES void rows_grad_sums(long r0, long r1, long C, const float* __restrict dy, const float* __restrict dy2,
                              const float* __restrict y, const float* __restrict x, const float* __restrict mean,
                              double* __restrict acc, float* __restrict gout) {
  double* acc2 = acc + C;
  for (long r = r0; r < r1; r++) {
    const long at = r * C;
    if (y && gout && dy2) {
      for (long c = 0; c < C; c++) {
        const float gf = relu_mask(y[at + c], dy[at + c] + dy2[at + c]);
        gout[at + c] = gf;
        const double g = gf;
        acc[c] += g;
        acc2[c] += g * ((double)x[at + c] - mean[c]);
      }
    } else if (y && gout) {
      for (long c = 0; c < C; c++) {
        const float gf = relu_mask(y[at + c], dy[at + c]);
        gout[at + c] = gf;
        const double g = gf;
        acc[c] += g;
        acc2[c] += g * ((double)x[at + c] - mean[c]);
      }
    } else if (y && dy2) {
      for (long c = 0; c < C; c++) {
        const double g = relu_mask(y[at + c], dy[at + c] + dy2[at + c]);
        acc[c] += g;
        acc2[c] += g * ((double)x[at + c] - mean[c]);
      }
    } else if (y) {
      for (long c = 0; c < C; c++) {
        const double g = relu_mask(y[at + c], dy[at + c]);
        acc[c] += g;
        acc2[c] += g * ((double)x[at + c] - mean[c]);
      }
    } else {
      for (long c = 0; c < C; c++) {
        const double g = dy[at + c];
        acc[c] += g;
        acc2[c] += g * ((double)x[at + c] - mean[c]);
      }
    }
  }
}
// dx = k1 (g - k2 - (x - mean) k3), g = dy (+ dy2) masked by y > 0 when y is given, rows [r0, r1).
MP_CLONES void rows_bn_dx(long r0, long r1, long C, const float* __restrict dy, const float* __restrict dy2,
                          const float* __restrict y, const float* __restrict x, const float* __restrict mean,
                          const float* __restrict k1, const float* __restrict k2, const float* __restrict k3,
                          float* __restrict dx) {
  for (long r = r0; r < r1; r++) {
    const long at = r * C;
    if (y && dy2) {
      for (long k = 0; k < C; k++) {
        const float g = relu_mask(y[at + k], dy[at + k] + dy2[at + k]);
        dx[at + k] = k1[k] * (g - k2[k] - (x[at + k] - mean[k]) * k3[k]);
      }
    } else if (y) {
      for (long k = 0; k < C; k++) {
        const float g = relu_mask(y[at + k], dy[at + k]);
        dx[at + k] = k1[k] * (g - k2[k] - (x[at + k] - mean[k]) * k3[k]);
      }
    } else {
      for (long k = 0; k < C; k++) dx[at + k] = k1[k] * (dy[at + k] - k2[k] - (x[at + k] - mean[k]) * k3[k]);
    }
  }
}

// f(r0, r1, acc) accumulates rows [r0, r1) into a partial of width * C doubles; partials
// are per fixed chunk of rows and added in chunk order.
template <class F>
void channel_sums(long rows, long C, int width, std::vector<double>& out, F&& f) {
  const long RC = std::max(1L, 65536 / C);  // rows per chunk
  const long chunks = (rows + RC - 1) / RC;
  std::vector<double> part((size_t)chunks * width * C, 0.0);
  auto run = [&](int k, int) { f((long)k * RC, std::min(rows, (long)(k + 1) * RC), part.data() + (size_t)k * width * C); };
  if (chunks == 1) run(0, 0);
  else parallel((int)chunks, run);
  out.assign((size_t)width * C, 0.0);
  for (long k = 0; k < chunks; k++) {
    const double* acc = part.data() + (size_t)k * width * C;
    for (long i = 0; i < width * C; i++) out[i] += acc[i];
  }
}

// f(r0, r1) over the rows of [rows x C] in chunks of about EW_CHUNK elements (element-wise).
template <class F>
void for_rows(long rows, long C, F&& f) {
  const long RC = std::max(1L, EW_CHUNK / C);
  const long chunks = (rows + RC - 1) / RC;
  if (chunks <= 1) { if (rows > 0) f(0L, rows); return; }
  parallel((int)chunks, [&](int k, int) { f((long)k * RC, std::min(rows, (long)(k + 1) * RC)); });
}

// BatchNorm gradient sums: [c] = sum dy, [C + c] = sum dy * (x - mean[c]).
std::vector<double> bn_grad_sums(long rows, long C, const float* dy, const float* x, const float* mean) {
  std::vector<double> s;
  channel_sums(rows, C, 2, s, [&](long r0, long r1, double* acc) { rows_grad_sums(r0, r1, C, dy, nullptr, nullptr, x, mean, acc, nullptr); });
  return s;
}

// y = (x - mean) * (scale / sqrt(var + eps)) + offset over [rows x C]; scale / offset may be
// null (1 / 0).
void batch_norm(long rows, long C, const float* x, const float* mean, const float* var, const float* scale,
                const float* offset, float eps, float* y) {
  std::vector<float> mul(C), add(C);
  for (long c = 0; c < C; c++) {
    mul[c] = (scale ? scale[c] : 1.f) / std::sqrt(var[c] + eps);
    add[c] = offset ? offset[c] : 0.f;
  }
  const float* pm = mul.data();
  const float* pa = add.data();
  for_rows(rows, C, [&](long r0, long r1) { bn_rows(r0, r1, 0, C, C, x, y, mean, pm, pa, nullptr, C, false); });
}

// Rows and channels of a [rows x C] op at args 0, 1: whole numbers, rows >= min_rows, C >= 1.
void sizes(const Call& c, long min_rows, long& rows, long& C) {
  const double r = c.arg[0], k = c.arg[1];
  if (!(r >= (double)min_rows && k >= 1 && r == (double)(long)r && k == (double)(long)k)) fail(std::string(c.op) + ": bad size");
  rows = (long)r;
  C = (long)k;
}

}  // namespace

// colReduce [rows, C, x, out, scale]: out[c] = scale * sum over rows of x[rows x C].
void op_col_reduce(const Call& c) {
  long rows, C;
  sizes(c, 0, rows, C);
  const float* x = c.span(c.arg[2], (double)rows * C);
  float* out = c.span(c.arg[3], C);
  const double scale = c.arg[4];
  std::vector<double> s;
  channel_sums(rows, C, 1, s, [&](long r0, long r1, double* acc) { rows_sum(r0, r1, C, x, acc); });
  for (long k = 0; k < C; k++) out[k] = (float)(s[k] * scale);
}

// bnReduce [rows, C, dy, x, mean, out]: out[c] = sum dy, out[C + c] = sum dy (x - mean[c]).
void op_bn_reduce(const Call& c) {
  long rows, C;
  sizes(c, 0, rows, C);
  const float* dy = c.span(c.arg[2], (double)rows * C);
  const float* x = c.span(c.arg[3], (double)rows * C);
  const float* mean = c.span(c.arg[4], C);
  float* out = c.span(c.arg[5], 2.0 * C);
  const std::vector<double> s = bn_grad_sums(rows, C, dy, x, mean);
  for (long i = 0; i < 2 * C; i++) out[i] = (float)s[i];
}

// batchNorm [rows, C, x, mean, variance, scale (-1), offset (-1), eps, y]
void op_batch_norm(const Call& c) {
  long rows, C;
  sizes(c, 0, rows, C);
  const float* x = c.span(c.arg[2], (double)rows * C);
  const float* m = c.span(c.arg[3], C);
  const float* v = c.span(c.arg[4], C);
  const float* sc = c.optional(c.arg[5], C);
  const float* of = c.optional(c.arg[6], C);
  float* y = c.span(c.arg[8], (double)rows * C);
  batch_norm(rows, C, x, m, v, sc, of, (float)c.arg[7], y);
}

// bnRelu [rows, C, x, mean, variance, scale (-1), offset (-1), residual (-1), eps, y]:
// max(0, batchNorm(x) + residual) with given statistics (inference), in one pass; the
// rounding of FusedBatchNorm, Add, Relu in that order.
void op_bn_relu(const Call& c) {
  long rows, C;
  sizes(c, 0, rows, C);
  const double n = (double)rows * C;
  const float* x = c.span(c.arg[2], n);
  const float* m = c.span(c.arg[3], C);
  const float* v = c.span(c.arg[4], C);
  const float* sc = c.optional(c.arg[5], C);
  const float* of = c.optional(c.arg[6], C);
  const float* res = c.optional(c.arg[7], n);
  const float eps = (float)c.arg[8];
  float* y = c.span(c.arg[9], n);
  std::vector<float> mul(C), add(C);
  for (long k = 0; k < C; k++) {
    mul[k] = (sc ? sc[k] : 1.f) / std::sqrt(v[k] + eps);
    add[k] = of ? of[k] : 0.f;
  }
  const float *pm = mul.data(), *pa = add.data();
  for_rows(rows, C, [&](long r0, long r1) { bn_rows(r0, r1, 0, C, C, x, y, m, pm, pa, res, C, true); });
}

namespace {

// Batch mean and biased variance (one pass: shifted sums and sums of squares, float64),
// then y = bn(x) (+ residual), ReLU'd when `relu`: the whole ResNet "BN (+ identity) -> ReLU"
// tail in two passes over x.
void bn_train(long rows, long C, const float* x, const float* scale, const float* offset, const float* residual,
              bool relu, float eps, float* y, float* mean_out, float* var_out) {
  std::vector<double> shift(C);
  for (long k = 0; k < C; k++) shift[k] = x[k];
  std::vector<double> s;
  channel_sums(rows, C, 2, s, [&](long r0, long r1, double* acc) { rows_sum_sq(r0, r1, C, x, shift.data(), acc); });
  std::vector<float> var(C), mf(C);
  for (long k = 0; k < C; k++) {
    const double d = s[k] / rows;
    mf[k] = mean_out[k] = (float)(shift[k] + d);
    const double v = s[C + k] / rows - d * d;  // < 0 only by rounding; NaN stays
    var[k] = var_out[k] = (float)(v < 0 ? 0.0 : v);
  }
  if (!residual && !relu) return batch_norm(rows, C, x, mf.data(), var.data(), scale, offset, eps, y);
  std::vector<float> mul(C), add(C);
  for (long k = 0; k < C; k++) {
    mul[k] = (scale ? scale[k] : 1.f) / std::sqrt(var[k] + eps);
    add[k] = offset ? offset[k] : 0.f;
  }
  const float *pm = mul.data(), *pa = add.data(), *pmean = mf.data();
  // Same rounding as the composed ops: the normalised value, + residual, then max(0, .).
  for_rows(rows, C, [&](long r0, long r1) { bn_rows(r0, r1, 0, C, C, x, y, pmean, pm, pa, residual, C, relu); });
}

// The gradient through the batch statistics (as autograd of the composed ops gives) of
// dy, masked by y > 0 where `y` is given (the ReLU after the BatchNorm):
// dx = scale * rstd * (g - mean(g) - (x - mean) * rstd^2 * mean(g * (x - mean))),
// dscale = rstd * sum(g * (x - mean)), doffset = sum(g); g itself into `dres` when given
// (the gradient of a residual added before the ReLU).
void bn_train_grad(long rows, long C, const float* dy, const float* dy2, const float* x, const float* y,
                   const float* mean, const float* var, const float* scale, float eps, float* dx, float* dscale,
                   float* doffset, float* dres) {
  // With a residual, the masked gradient is written once by the sums' pass (it is the
  // residual's gradient) and the dx pass reads it unmasked.
  float* gout = y ? dres : nullptr;
  std::vector<double> s;
  channel_sums(rows, C, 2, s, [&](long r0, long r1, double* acc) { rows_grad_sums(r0, r1, C, dy, dy2, y, x, mean, acc, gout); });
  const float* g = gout ? gout : dy;
  if (gout) { y = nullptr; dy2 = nullptr; }
  std::vector<float> k1(C), k2(C), k3(C);
  for (long k = 0; k < C; k++) {
    const double rstd = 1.0 / std::sqrt((double)var[k] + eps);
    doffset[k] = (float)s[k];
    dscale[k] = (float)(s[C + k] * rstd);
    k1[k] = (float)((scale ? scale[k] : 1.0) * rstd);
    k2[k] = (float)(s[k] / rows);
    k3[k] = (float)(rstd * rstd * s[C + k] / rows);
  }
  const float *p1 = k1.data(), *p2 = k2.data(), *p3 = k3.data();
  for_rows(rows, C, [&](long r0, long r1) { rows_bn_dx(r0, r1, C, g, dy2, y, x, mean, p1, p2, p3, dx); });
}

}  // namespace

// bnTrain [rows, C, x, scale (-1), offset (-1), eps, y, mean, variance]
void op_bn_train(const Call& c) {
  long rows, C;
  sizes(c, 1, rows, C);
  const double n = (double)rows * C;
  bn_train(rows, C, c.span(c.arg[2], n), c.optional(c.arg[3], C), c.optional(c.arg[4], C), nullptr, false,
           (float)c.arg[5], c.span(c.arg[6], n), c.span(c.arg[7], C), c.span(c.arg[8], C));
}

// bnTrainGrad [rows, C, dy, x, mean, variance, scale (-1), eps, dx, dscale, doffset]
void op_bn_train_grad(const Call& c) {
  long rows, C;
  sizes(c, 1, rows, C);
  const double n = (double)rows * C;
  bn_train_grad(rows, C, c.span(c.arg[2], n), nullptr, c.span(c.arg[3], n), nullptr, c.span(c.arg[4], C), c.span(c.arg[5], C),
                c.optional(c.arg[6], C), (float)c.arg[7], c.span(c.arg[8], n), c.span(c.arg[9], C),
                c.span(c.arg[10], C), nullptr);
}

// bnReluTrain [rows, C, x, scale (-1), offset (-1), residual (-1), eps, y, mean, variance]:
// y = max(0, bn(x) + residual), batch statistics.
void op_bn_relu_train(const Call& c) {
  long rows, C;
  sizes(c, 1, rows, C);
  const double n = (double)rows * C;
  bn_train(rows, C, c.span(c.arg[2], n), c.optional(c.arg[3], C), c.optional(c.arg[4], C), c.optional(c.arg[5], n),
           true, (float)c.arg[6], c.span(c.arg[7], n), c.span(c.arg[8], C), c.span(c.arg[9], C));
}

// bnReluTrainGrad [rows, C, dy, x, y, mean, variance, scale (-1), eps, dx, dscale, doffset,
// dresidual (-1), dy2 (-1)]: the gradients of bnReluTrain, y its output (the ReLU's mask);
// the incoming gradient is dy + dy2 (added in float32, as an Add before it) when dy2 is given.
void op_bn_relu_train_grad(const Call& c) {
  long rows, C;
  sizes(c, 1, rows, C);
  const double n = (double)rows * C;
  bn_train_grad(rows, C, c.span(c.arg[2], n), c.optional(c.arg[13], n), c.span(c.arg[3], n), c.span(c.arg[4], n),
                c.span(c.arg[5], C), c.span(c.arg[6], C), c.optional(c.arg[7], C), (float)c.arg[8], c.span(c.arg[9], n),
                c.span(c.arg[10], C), c.span(c.arg[11], C), c.optional(c.arg[12], n));
}

// layerNorm's row statistics for up to LN_ROWS rows of x at once: mean[u] = (sum of row u in
// float64, in column order) / D and q[u] = the sum of (x - mean)^2 the same way. Each row's
// sums keep their sequential order (the bits of one row at a time); the rows interleaved
// give independent add chains instead of one latency-bound chain per row.
namespace {
constexpr int LN_ROWS = 8;
void ln_row_stats(int nr, long D, const float* x, double* mean, double* q) {
  if (nr == LN_ROWS) {
    double s[LN_ROWS] = {0}, v[LN_ROWS] = {0};
    for (long j = 0; j < D; j++) for (int u = 0; u < LN_ROWS; u++) s[u] += x[u * D + j];
    for (int u = 0; u < LN_ROWS; u++) mean[u] = s[u] / D;
    for (long j = 0; j < D; j++) for (int u = 0; u < LN_ROWS; u++) { const double d = x[u * D + j] - mean[u]; v[u] += d * d; }
    for (int u = 0; u < LN_ROWS; u++) q[u] = v[u];
    return;
  }
  for (int u = 0; u < nr; u++) {
    const float* xr = x + u * D;
    double s = 0;
    for (long j = 0; j < D; j++) s += xr[j];
    mean[u] = s / D;
    double v = 0;
    for (long j = 0; j < D; j++) { const double d = xr[j] - mean[u]; v += d * d; }
    q[u] = v;
  }
}

// layerNormGrad's row sums for up to LN_ROWS rows at once, each in its column order (the
// bits of one row at a time), interleaved as in ln_row_stats: with g = dy * scale (float64),
// sg[u] = sum of g and sgx[u] = sum of g * (x - mean) * rstd.
void ln_grad_row_sums(int nr, long D, const float* x, const float* dy, const float* mean, const float* rstd,
                      const float* scale, double* sg, double* sgx) {
  if (nr == LN_ROWS) {
    double m[LN_ROWS], rs[LN_ROWS], a[LN_ROWS] = {0}, b[LN_ROWS] = {0};
    for (int u = 0; u < LN_ROWS; u++) { m[u] = mean[u]; rs[u] = rstd[u]; }
    for (long j = 0; j < D; j++) {
      for (int u = 0; u < LN_ROWS; u++) {
        const double g = (double)dy[u * D + j] * scale[j];
        a[u] += g;
        b[u] += g * ((x[u * D + j] - m[u]) * rs[u]);
      }
    }
    for (int u = 0; u < LN_ROWS; u++) { sg[u] = a[u]; sgx[u] = b[u]; }
    return;
  }
  for (int u = 0; u < nr; u++) {
    const double m = mean[u], rs = rstd[u];
    double a = 0, b = 0;
    for (long j = 0; j < D; j++) {
      const double g = (double)dy[u * D + j] * scale[j];
      a += g;
      b += g * ((x[u * D + j] - m) * rs);
    }
    sg[u] = a;
    sgx[u] = b;
  }
}
}  // namespace

// layerNorm [rows, D, x, scale, offset, eps, y, mean, rstd]: over the last axis, per row
// mean and 1/sqrt(var + eps) (float64, two passes), y = (x - mean) * rstd * scale + offset.
void op_layer_norm(const Call& c) {
  long rows, D;
  sizes(c, 1, rows, D);
  const float* x = c.span(c.arg[2], (double)rows * D);
  const float* scale = c.span(c.arg[3], D);
  const float* offset = c.span(c.arg[4], D);
  const float eps = (float)c.arg[5];
  float* y = c.span(c.arg[6], (double)rows * D);
  float* mean_out = c.span(c.arg[7], rows);
  float* rstd_out = c.span(c.arg[8], rows);
  const long RC = std::max(1L, 16384 / D);
  const int chunks = (int)((rows + RC - 1) / RC);
  parallel(chunks, [&](int k, int) {
    const long r1 = std::min(rows, (long)(k + 1) * RC);
    for (long r = (long)k * RC; r < r1; r += LN_ROWS) {
      const int nr = (int)std::min((long)LN_ROWS, r1 - r);
      double mean[LN_ROWS], q[LN_ROWS];
      ln_row_stats(nr, D, x + r * D, mean, q);
      for (int u = 0; u < nr; u++) {
        const float m = (float)mean[u], rs = (float)(1.0 / std::sqrt(q[u] / D + eps));
        mean_out[r + u] = m;
        rstd_out[r + u] = rs;
        const float* xr = x + (r + u) * D;
        float* yr = y + (r + u) * D;
        for (long j = 0; j < D; j++) yr[j] = (xr[j] - m) * rs * scale[j] + offset[j];
      }
    }
  });
}

// layerNormGrad [rows, D, dy, x, mean, rstd, scale, dx, dscale, doffset]: with
// xhat = (x - mean) * rstd and g = dy * scale, dx = rstd * (g - mean(g) - xhat * mean(g * xhat))
// per row; dscale = sum over rows of dy * xhat, doffset = sum of dy.
void op_layer_norm_grad(const Call& c) {
  long rows, D;
  sizes(c, 1, rows, D);
  const float* dy = c.span(c.arg[2], (double)rows * D);
  const float* x = c.span(c.arg[3], (double)rows * D);
  const float* mean = c.span(c.arg[4], rows);
  const float* rstd = c.span(c.arg[5], rows);
  const float* scale = c.span(c.arg[6], D);
  float* dx = c.span(c.arg[7], (double)rows * D);
  float* dscale = c.span(c.arg[8], D);
  float* doffset = c.span(c.arg[9], D);
  std::vector<double> s;
  channel_sums(rows, D, 2, s, [&](long r0, long r1, double* acc) {
    for (long r = r0; r < r1; r++) {
      const long at = r * D;
      for (long j = 0; j < D; j++) {
        const double g = dy[at + j];
        acc[j] += g * (((double)x[at + j] - mean[r]) * rstd[r]);
        acc[D + j] += g;
      }
    }
  });
  for (long j = 0; j < D; j++) { dscale[j] = (float)s[j]; doffset[j] = (float)s[D + j]; }
  const long RC = std::max(1L, 16384 / D);
  const int chunks = (int)((rows + RC - 1) / RC);
  parallel(chunks, [&](int k, int) {
    const long r1 = std::min(rows, (long)(k + 1) * RC);
    for (long r = (long)k * RC; r < r1; r += LN_ROWS) {
      const int nr = (int)std::min((long)LN_ROWS, r1 - r);
      double sg[LN_ROWS], sgx[LN_ROWS];
      ln_grad_row_sums(nr, D, x + r * D, dy + r * D, mean + r, rstd + r, scale, sg, sgx);
      for (int u = 0; u < nr; u++) {
        const float* xr = x + (r + u) * D;
        const float* dr = dy + (r + u) * D;
        const float a = (float)(sg[u] / D), b = (float)(sgx[u] / D), rsf = rstd[r + u], mf = mean[r + u];
        float* o = dx + (r + u) * D;
        for (long j = 0; j < D; j++) o[j] = rsf * (dr[j] * scale[j] - a - (xr[j] - mf) * rsf * b);
      }
    }
  });
}

}  // namespace mp
