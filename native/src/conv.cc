// Convolution family (NHWC, filters [KH, KW, C, OC]): GEMMs over an implicit im2col packed
// straight from the image. Forward: im2col(x) . W. Input gradient: stride 1, a forward
// convolution of dy over the taps walked backwards; otherwise a GEMM into a column buffer
// then a gather (col2im). Filter gradient: conv_wgrad.cc where it applies (fp32: a direct
// kernel, or a GEMM per half of the batch), else im2col(x)^T . dy, the transposed im2col
// packed from the image, or (channel counts that do not fill the kernel's strips, the stem)
// dW^T = dy^T . im2col(x), im2col the B operand packed from the image.
#include <cmath>
#include <cstring>
#include <vector>

#include "conv_wgrad.h"
#include "gemm.h"
#include "ops.h"

namespace mp {
namespace {

std::vector<float> g_cols;
std::vector<float> g_wt;  // the input gradient's transposed filter

bool pointwise(const ConvGeom& g) {
  return g.KH == 1 && g.KW == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 && g.pl == 0 && g.OH == g.H && g.OW == g.W;
}

void conv2d(const ConvGeom& g, const float* x, const float* w, float* y, const float* bias, int act, const BnEpi* bn = nullptr) {
  const int M = g.N * g.OH * g.OW, K = g.KH * g.KW * g.C;
  Src A;
  if (pointwise(g)) { A.p = x; A.rs = g.C; A.cs = 1; }
  else { A.kind = Src::IM2COL; A.p = x; A.g = &g; }
  Src B; B.p = w; B.rs = g.OC; B.cs = 1;
  gemm(M, g.OC, K, A, B, y, g.OC, bias, act, false, bn);
}

void conv2d_backprop_filter(const ConvGeom& g, const float* x, const float* dy, float* dw) {
  if (conv2d_backprop_filter_fast(g, x, dy, dw)) return;
  const int M = g.N * g.OH * g.OW, K = g.KH * g.KW * g.C;
  Src A;  // [K x M] = im2col^T
  if (pointwise(g)) { A.p = x; A.rs = 1; A.cs = g.C; }
  else if (g.C % gemm_mr() == 0) {
    // Packed straight from the image: each strip is mr channels of one tap.
    A.kind = Src::IM2COL_T; A.p = x; A.g = &g;
  } else {
    // Strips spanning taps (the stem's C = 3) would redo the index arithmetic every few
    // floats: dW^T = dy^T . im2col instead, transposed into dw, with im2col as the B operand
    // packed from the image pixel by pixel (whole filter rows per copy). The long side
    // (K = 147 for the stem) is the microkernel's 32-wide side, not OC (16 in the demo nets).
    if (g_wt.size() < (size_t)K * g.OC) g_wt.resize((size_t)K * g.OC);
    float* dwt = g_wt.data();  // [OC x K]
    Src T; T.p = dy; T.rs = 1; T.cs = g.OC;
    Src Cl; Cl.kind = Src::IM2COL; Cl.p = x; Cl.g = &g;
    gemm(g.OC, K, M, T, Cl, dwt, K, nullptr, ACT_NONE);
    for (int k = 0; k < K; k++) for (int o = 0; o < g.OC; o++) dw[(size_t)k * g.OC + o] = dwt[(size_t)o * K + k];
    return;
  }
  Src B; B.p = dy; B.rs = g.OC; B.cs = 1;
  gemm(K, g.OC, M, A, B, dw, g.OC, nullptr, ACT_NONE);
}

// Stride 1: dx(ih, iw, c) = sum over taps and oc of dy(ih + pt - kh*dh, iw + pl - kw*dw, oc)
// w(kh, kw, c, oc), i.e. a forward convolution of dy (OC channels) whose im2col walks the
// taps backwards: padding -pt and dilation -dh in the geometry, with each tap's C x OC
// block of the filter transposed. One GEMM over an implicit im2col of dy; the column buffer
// (KH*KW times the size of dx) and the col2im pass are gone.
void conv2d_backprop_input_s1(const ConvGeom& g, const float* dy, const float* w, float* dx) {
  const int taps = g.KH * g.KW, K = taps * g.OC;
  const size_t wsize = (size_t)taps * g.C * g.OC;
  if (g_wt.size() < wsize) g_wt.resize(wsize);
  float* wt = g_wt.data();  // [tap][oc][c]
  for (int t = 0; t < taps; t++) {
    const float* s = w + (size_t)t * g.C * g.OC;
    float* d = wt + (size_t)t * g.C * g.OC;
    for (int c0 = 0; c0 < g.C; c0 += 32) {
      const int c1 = std::min(g.C, c0 + 32);
      for (int o = 0; o < g.OC; o++) for (int c = c0; c < c1; c++) d[(size_t)o * g.C + c] = s[(size_t)c * g.OC + o];
    }
  }
  ConvGeom f;
  f.N = g.N; f.H = g.OH; f.W = g.OW; f.C = g.OC; f.OC = g.C; f.KH = g.KH; f.KW = g.KW;
  f.sh = 1; f.sw = 1; f.dh = -g.dh; f.dw = -g.dw; f.pt = -g.pt; f.pl = -g.pl; f.OH = g.H; f.OW = g.W;
  Src A; A.kind = Src::IM2COL; A.p = dy; A.g = &f;
  Src B; B.p = wt; B.rs = g.C; B.cs = 1;
  gemm(g.N * g.H * g.W, g.C, K, A, B, dx, g.C, nullptr, ACT_NONE);
}

void conv2d_backprop_input(const ConvGeom& g, const float* dy, const float* w, float* dx) {
  const int M = g.N * g.OH * g.OW, K = g.KH * g.KW * g.C;
  Src A; A.p = dy; A.rs = g.OC; A.cs = 1;
  Src B; B.p = w; B.rs = 1; B.cs = g.OC;  // W^T: (oc, k) -> w[k*OC + oc]
  if (pointwise(g)) {
    gemm(M, K, g.OC, A, B, dx, K, nullptr, ACT_NONE);
    return;
  }
  if (g.sh == 1 && g.sw == 1) {
    conv2d_backprop_input_s1(g, dy, w, dx);
    return;
  }
  if (g_cols.size() < (size_t)M * K) g_cols.resize((size_t)M * K);
  float* cols = g_cols.data();
  gemm(M, K, g.OC, A, B, cols, K, nullptr, ACT_NONE);
  // col2im as a gather over dx rows (n, ih): a fixed (kh, kw) order per element.
  const int rows = g.N * g.H;
  const int nt = (long)rows * g.W * g.C < 65536 ? 1 : std::min(2 * pool_size(), rows);
  parallel(nt, [&](int t, int) {
    const int r0 = (int)((long)rows * t / nt), r1 = (int)((long)rows * (t + 1) / nt);
    for (int r = r0; r < r1; r++) {
      const int n = r / g.H, ih = r % g.H;
      float* out = dx + (long)r * g.W * g.C;
      std::memset(out, 0, sizeof(float) * (size_t)g.W * g.C);
      for (int kh = 0; kh < g.KH; kh++) {
        const int v = ih + g.pt - kh * g.dh;
        if (v < 0 || v % g.sh != 0) continue;
        const int oh = v / g.sh;
        if (oh >= g.OH) continue;
        for (int kw = 0; kw < g.KW; kw++) {
          const float* base = cols + ((long)(n * g.OH + oh) * g.OW) * K + (long)(kh * g.KW + kw) * g.C;
          for (int ow = 0; ow < g.OW; ow++) {
            const int iw = ow * g.sw - g.pl + kw * g.dw;
            if (iw < 0 || iw >= g.W) continue;
            const float* s = base + (long)ow * K;
            float* d = out + (long)iw * g.C;
            for (int c = 0; c < g.C; c++) d[c] += s[c];
          }
        }
      }
    }
  });
}

// The geometry at args[at .. at+15): N H W C OC KH KW sh sw dh dw padTop padLeft OH OW.
ConvGeom geometry(const Call& c, int at) {
  int v[15];
  for (int k = 0; k < 15; k++) {
    const double d = c.arg[at + k];
    if (!(d >= 0 && d <= INT32_MAX && d == (double)(int)d)) fail(std::string(c.op) + ": bad geometry");
    v[k] = (int)d;
  }
  ConvGeom g;
  std::memcpy(&g, v, sizeof g);
  if (g.N <= 0 || g.C <= 0 || g.OC <= 0 || g.KH <= 0 || g.KW <= 0 || g.sh <= 0 || g.sw <= 0 || g.dh <= 0 || g.dw <= 0 || g.OH <= 0 || g.OW <= 0 || g.H <= 0 || g.W <= 0) {
    fail(std::string(c.op) + ": bad geometry");
  }
  return g;
}

double image(const ConvGeom& g) { return (double)g.N * g.H * g.W * g.C; }
double filter(const ConvGeom& g) { return (double)g.KH * g.KW * g.C * g.OC; }
double output(const ConvGeom& g) { return (double)g.N * g.OH * g.OW * g.OC; }

}  // namespace

// conv2d [x, filter, y, bias (-1), activation, geometry(15)]
void op_conv2d(const Call& c) {
  const ConvGeom g = geometry(c, 5);
  const int act = c.code(4, ACT_COUNT, "activation");
  float* x = c.span(c.arg[0], image(g));
  float* w = c.span(c.arg[1], filter(g));
  float* y = c.span(c.arg[2], output(g));
  float* bias = c.optional(c.arg[3], g.OC);
  conv2d(g, x, w, y, bias, act);
}

// conv2dBn [x, filter, y, mean, variance, scale (-1), offset (-1), residual (-1), eps, relu,
// geometry(15)]: y = bn(conv2d(x)) (+ residual), max(0, .) when relu (0 / 1; a residual only
// with relu), with given statistics (inference), applied to each output block while it is
// in cache. The bits of conv2d then bnRelu (relu) or batchNorm (neither relu nor residual):
// the same per-channel mul (computed as norms.cc does) and the same function (norms.h) on
// the same conv values.
void op_conv2d_bn(const Call& c) {
  const ConvGeom g = geometry(c, 10);
  const double relu = c.arg[9];
  if (relu != 0 && relu != 1) fail("conv2dBn: relu is 0 or 1");
  // Only ResNet's block tail, max(0, bn(conv) + residual), has a residual (norms.h).
  if (c.arg[7] != -1 && relu == 0) fail("conv2dBn: a residual (arg 7) needs relu = 1 (arg 9): bn(conv) + residual without the ReLU is not implemented");
  float* x = c.span(c.arg[0], image(g));
  float* w = c.span(c.arg[1], filter(g));
  float* y = c.span(c.arg[2], output(g));
  const float* m = c.span(c.arg[3], g.OC);
  const float* v = c.span(c.arg[4], g.OC);
  const float* sc = c.optional(c.arg[5], g.OC);
  const float* of = c.optional(c.arg[6], g.OC);
  const float* res = c.optional(c.arg[7], output(g));
  const float eps = (float)c.arg[8];
  std::vector<float> mul(g.OC), add(g.OC);
  for (int k = 0; k < g.OC; k++) {
    mul[k] = (sc ? sc[k] : 1.f) / std::sqrt(v[k] + eps);
    add[k] = of ? of[k] : 0.f;
  }
  BnEpi bn;
  bn.mean = m; bn.mul = mul.data(); bn.add = add.data(); bn.res = res; bn.ldr = g.OC; bn.relu = relu == 1;
  conv2d(g, x, w, y, nullptr, ACT_NONE, &bn);
}

// conv2dGradInput [dy, filter, dx, geometry(15)]
void op_conv2d_grad_input(const Call& c) {
  const ConvGeom g = geometry(c, 3);
  float* dy = c.span(c.arg[0], output(g));
  float* w = c.span(c.arg[1], filter(g));
  float* dx = c.span(c.arg[2], image(g));
  conv2d_backprop_input(g, dy, w, dx);
}

// conv2dGradFilter [x, dy, dfilter, geometry(15)]
void op_conv2d_grad_filter(const Call& c) {
  const ConvGeom g = geometry(c, 3);
  float* x = c.span(c.arg[0], image(g));
  float* dy = c.span(c.arg[1], output(g));
  float* dw = c.span(c.arg[2], filter(g));
  conv2d_backprop_filter(g, x, dy, dw);
}

}  // namespace mp
