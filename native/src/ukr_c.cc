// Portable microkernel (4 x 8) and the edge-tile store every microkernel shares.
#include "common.h"
#include "ukr.h"

namespace mp {

void store_tile(const float* t, int nr, float* C, long ldc, bool acc, int m, int n) {
  for (int r = 0; r < m; r++) {
    float* c = C + r * ldc;
    const float* s = t + r * nr;
    if (acc) for (int j = 0; j < n; j++) c[j] += s[j];
    else for (int j = 0; j < n; j++) c[j] = s[j];
  }
}

void ukr_c(int kc, const float* A, const float* B, float* C, long ldc, bool acc, int m, int n) {
  float t[MRC * NRC] = {0};
  for (int p = 0; p < kc; p++) {
    for (int r = 0; r < MRC; r++) {
      const float a = A[r];
      for (int j = 0; j < NRC; j++) t[r * NRC + j] += a * B[j];
    }
    A += MRC;
    B += NRC;
  }
  store_tile(t, NRC, C, ldc, acc, m, n);
}

}  // namespace mp
