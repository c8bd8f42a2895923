// The convolution filter gradient's direct kernel (conv_wgrad.cc).
#pragma once

#include "gemm.h"

namespace mp {

// dW = im2col(x)^T . dy (NHWC; dw [KH, KW, C, OC]) in fp32 where a faster way than conv.cc's
// GEMM split over dW applies; false, nothing written, otherwise.
bool conv2d_backprop_filter_fast(const ConvGeom& g, const float* x, const float* dy, float* dw);

}  // namespace mp
