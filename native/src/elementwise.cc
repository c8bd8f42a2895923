// Element-wise family: binary arithmetic with the broadcasts the models use, exp / erf /
// GELU and the ReLU and GELU gradients. Fixed chunks over the pool; each element is
// computed alone, so the chunking never changes a result.
#include <cmath>
#include <cstring>

#include "ops.h"

namespace mp {
namespace {

template <class Op>
void binary_run(int mode, long n, long C, const float* a, const float* b, float* o, Op op) {
  for_chunks(n, [&](long i0, long i1) {
    switch (mode) {
      case BC_SAME: for (long i = i0; i < i1; i++) o[i] = op(a[i], b[i]); return;
      case BC_B_SCALAR: { const float y = b[0]; for (long i = i0; i < i1; i++) o[i] = op(a[i], y); return; }
      case BC_A_SCALAR: { const float x = a[0]; for (long i = i0; i < i1; i++) o[i] = op(x, b[i]); return; }
      default: break;  // BC_B_ROW / BC_A_ROW (the op checked the code)
    }
    // One operand is a row of C values; row segments keep the inner loop contiguous.
    for (long i = i0; i < i1;) {
      const long j = i % C, len = std::min(i1 - i, C - j);
      if (mode == BC_B_ROW) for (long k = 0; k < len; k++) o[i + k] = op(a[i + k], b[j + k]);
      else for (long k = 0; k < len; k++) o[i + k] = op(a[j + k], b[i + k]);
      i += len;
    }
  });
}

// exp and erf as branch-free float32 formulas that the compiler vectorises (glibc's expf /
// erff are scalar calls: the softmax and GELU of a ViT spent more time there than in
// their matmuls). exp: Cephes' expf (range reduction by ln 2, degree-5 polynomial, ~1 ulp);
// erf: Eigen's rational minimax approximation on [-4, 4] (a few ulp; +-1 outside). Each
// loop is compiled for AVX-512, AVX2 and baseline x86-64 (target_clones); no fused
// multiply-adds (-ffp-contract=off), so every variant gives the same bits.

inline float exp_f32(float x) {
  // Above ln(FLT_MAX): inf; below ln of the smallest denormal: 0.
  const float hi = 88.72283935546875f, lo = -103.97207708f;
  const float c = std::min(std::max(x, lo), hi);
  // n = round(c / ln 2) with the 1.5 * 2^23 trick (exact for |n| < 2^22, vectorisable).
  const float n = (c * 1.44269504088896341f + 12582912.f) - 12582912.f;
  const float r = (c - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = (p * (r * r) + r) + 1.f;
  // 2^n in two normal halves (n in [-150, 128]): exact scalings, one final rounding.
  const int32_t ni = (int32_t)n, h = ni >> 1;
  const int32_t b1 = (h + 127) << 23, b2 = (ni - h + 127) << 23;
  float s1, s2;
  std::memcpy(&s1, &b1, sizeof s1);
  std::memcpy(&s2, &b2, sizeof s2);
  const float v = (y * s1) * s2;
  return x > hi ? INFINITY : x < lo ? 0.f : v;  // NaN falls through as NaN
}

inline float erf_f32(float a) {
  const float x = std::min(std::max(a, -4.f), 4.f);
  const float x2 = x * x;
  float p = -2.72614225801306e-10f;
  p = x2 * p + 2.77068142495902e-08f;
  p = x2 * p + -2.10102402082508e-06f;
  p = x2 * p + -5.69250639462346e-05f;
  p = x2 * p + -7.34990630326855e-04f;
  p = x2 * p + -2.95459980854025e-03f;
  p = x2 * p + -1.60960333262415e-02f;
  p = x * p;
  float q = -1.45660718464996e-05f;
  q = x2 * q + -2.13374055278905e-04f;
  q = x2 * q + -1.68282697438203e-03f;
  q = x2 * q + -7.37332916720468e-03f;
  q = x2 * q + -1.42647390514189e-02f;
  return p / q;
}


MP_CLONES void exp_loop(long n, const float* x, float* y) {
  for (long i = 0; i < n; i++) y[i] = exp_f32(x[i]);
}

MP_CLONES void erf_loop(long n, const float* x, float* y) {
  for (long i = 0; i < n; i++) y[i] = erf_f32(x[i]);
}

// Exact GELU, 0.5 x (1 + erf(x / sqrt 2)), and its gradient
// dy * (0.5 (1 + erf(x / sqrt 2)) + x exp(-x^2 / 2) / sqrt(2 pi)).
MP_CLONES void gelu_loop(long n, const float* x, float* y) {
  for (long i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.f + erf_f32(x[i] * 0.70710678118654752f));
}

MP_CLONES void gelu_grad_loop(long n, const float* dy, const float* x, float* dx) {
  for (long i = 0; i < n; i++) {
    const float v = x[i];
    const float cdf = 0.5f * (1.f + erf_f32(v * 0.70710678118654752f));
    const float pdf = exp_f32(-0.5f * (v * v)) * 0.39894228040143268f;
    dx[i] = dy[i] * (cdf + v * pdf);
  }
}

// o = dy * (x > 0), NaN where x is NaN (as the composed ops give).
void relu_grad_loop(long n, const float* dy, const float* x, float* o) {
  for (long i = 0; i < n; i++) o[i] = x[i] != x[i] ? x[i] : dy[i] * (x[i] > 0 ? 1.f : 0.f);
}

}  // namespace

// binary [op, broadcast, n, C, a, b, out]: out = a op b over n elements; C is the row
// length of a BC_*_ROW operand.
void op_binary(const Call& c) {
  const int op = c.code(0, BIN_COUNT, "binary op");
  const int mode = c.code(1, BC_COUNT, "broadcast");
  const double n = c.arg[2], C = c.arg[3];
  if (!(n >= 0) || !(C >= 1)) fail("binary: bad size");
  const double na = mode == BC_A_SCALAR ? 1 : mode == BC_A_ROW ? C : n;
  const double nb = mode == BC_B_SCALAR ? 1 : mode == BC_B_ROW ? C : n;
  const float* a = c.span(c.arg[4], na);
  const float* b = c.span(c.arg[5], nb);
  float* o = c.span(c.arg[6], n);
  switch (op) {
    case BIN_ADD: binary_run(mode, (long)n, (long)C, a, b, o, [](float x, float y) { return x + y; }); return;
    case BIN_SUB: binary_run(mode, (long)n, (long)C, a, b, o, [](float x, float y) { return x - y; }); return;
    case BIN_MUL: binary_run(mode, (long)n, (long)C, a, b, o, [](float x, float y) { return x * y; }); return;
    case BIN_DIV: binary_run(mode, (long)n, (long)C, a, b, o, [](float x, float y) { return x / y; }); return;
    default: fail("binary: unknown binary op");  // unreachable: code() checked the range
  }
}

// unary [op, n, a, b (-1 unless a gradient: then a = dy, b = x), out]
void op_unary(const Call& c) {
  const int op = c.code(0, UN_COUNT, "unary op");
  const double n = c.arg[1];
  if (!(n >= 0)) fail("unary: bad size");
  const bool grad = op == UN_RELU_GRAD || op == UN_GELU_GRAD;
  const float* a = c.span(c.arg[2], n);
  const float* b = grad ? c.span(c.arg[3], n) : nullptr;
  float* o = c.span(c.arg[4], n);
  typedef void (*Loop)(long n, const float* a, const float* b, float* o);
  Loop loop = nullptr;
  switch (op) {
    case UN_EXP: loop = [](long k, const float* x, const float*, float* y) { exp_loop(k, x, y); }; break;
    case UN_ERF: loop = [](long k, const float* x, const float*, float* y) { erf_loop(k, x, y); }; break;
    case UN_RELU_GRAD: loop = relu_grad_loop; break;
    case UN_GELU: loop = [](long k, const float* x, const float*, float* y) { gelu_loop(k, x, y); }; break;
    case UN_GELU_GRAD: loop = gelu_grad_loop; break;
    default: fail("unary: unknown unary op");  // unreachable: code() checked the range
  }
  for_chunks((long)n, [&](long i0, long i1) { loop(i1 - i0, a + i0, b ? b + i0 : nullptr, o + i0); });
}

// heads [B, T, H, hd, cols, off, mat, heads, toHeads, scale]: the attention's heads split
// and merge, torch's reshape(B, T, H, hd).permute(0, 2, 1, 3) and back, as one strided copy.
// mat is [B*T, cols] (rows b*T + t), its column block [off, off + H*hd) the heads;
// heads is [B*H, T, hd]. toHeads 1: heads = mat's block (times scale); 0: mat's block =
// heads (times scale), the rest of mat untouched. A scale of 1 copies; another is one float
// product per element, the bits of a Multiply by that float32 scalar before or after.
void op_heads(const Call& c) {
  const long B = c.i(0), T = c.i(1), H = c.i(2), hd = c.i(3), cols = c.i(4), off = c.i(5);
  if (B < 0 || T < 0 || H < 1 || hd < 1 || off < 0 || cols < off + H * hd) fail("heads: bad size");
  const double n = (double)B * T * H * hd;
  float* mat = c.span(c.arg[6], (double)B * T * cols);
  float* heads = c.span(c.arg[7], n);
  const bool to = c.arg[8] != 0;
  const float scale = (float)c.arg[9];
  const long rows = B * H * T;
  // Chunks of whole hd-rows, ~16k floats each (fixed: the split never changes a value).
  const long RC = std::max(1L, EW_CHUNK / hd);
  const int chunks = (int)((rows + RC - 1) / RC);
  auto run = [&](int k, int) {
    for (long r = (long)k * RC; r < std::min(rows, (long)(k + 1) * RC); r++) {
      const long b = r / (H * T), h = (r / T) % H, t = r % T;
      float* hp = heads + r * hd;
      float* mp = mat + (b * T + t) * cols + off + h * hd;
      const float* src = to ? mp : hp;
      float* dst = to ? hp : mp;
      if (scale == 1.f) std::memcpy(dst, src, sizeof(float) * hd);
      else for (long j = 0; j < hd; j++) dst[j] = src[j] * scale;
    }
  };
  if (chunks <= 1) { if (rows > 0) run(0, 0); }
  else parallel(chunks, run);
}

}  // namespace mp
