// medpipe native kernels for the tfjs wasm backend (N-API, C++17, no dependencies).
//
// Operates in place on the wasm heap (an ArrayBuffer passed with element offsets): no copies.
// - Blocked SGEMM with packed panels and a microkernel chosen at run time (AVX-512F,
//   AVX2+FMA, or portable C), each compiled with its own target attribute so one binary
//   runs on any x86-64 (and the portable path elsewhere).
// - Convolutions as GEMMs over an implicit im2col operand (never materialised for the
//   forward and filter gradient); the input gradient is a GEMM then a gather (col2im).
// - A fixed thread pool with static partitioning of the OUTPUT: every output element is
//   computed by one thread with a summation order that does not depend on the partition,
//   so results are bit-identical run to run and for any thread count.
#include <node_api.h>
#include <uv.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define MP_X86 1
#endif

namespace {

// ------------------------------------------------------------------------------------
// Thread pool. A job is n fixed chunks; the caller and the workers claim chunks from a
// shared counter, so a descheduled worker (a busy machine) never stalls the job: the
// caller then runs the remaining chunks itself. Chunk boundaries are fixed by the job, and
// every output element is computed the same way whichever thread claims its chunk, so the
// results do not depend on the claiming order: bit-identical run to run.

typedef void (*ChunkFn)(void*, int chunk, int tid);

class Pool {
 public:
  ~Pool() { resize(1); }
  int size() const { return n_; }
  void resize(int n) {
    if (n < 1) n = 1;
    if (n == n_) return;
    {
      std::lock_guard<std::mutex> lk(m_);
      stop_ = true;
      gen_.fetch_add(1);
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
    stop_ = false;
    n_ = n;
    // The generation a worker starts from is read here, before any job can be issued.
    const uint64_t start = gen_.load();
    for (int i = 1; i < n; i++) workers_.emplace_back([this, i, start] { loop(i, start); });
  }
  void run(int chunks, ChunkFn fn, void* ctx) {
    if (chunks <= 0) return;
    if (n_ <= 1 || chunks == 1) {
      for (int c = 0; c < chunks; c++) fn(ctx, c, 0);
      return;
    }
    uint32_t g;
    {
      std::lock_guard<std::mutex> lk(m_);
      fn_ = fn;
      ctx_ = ctx;
      chunks_ = chunks;
      done_.store(0);
      g = (uint32_t)(gen_.load() + 1);
      claim_.store((uint64_t)g << 32);
      gen_.fetch_add(1);
    }
    cv_.notify_all();
    int mine = work(g, fn, ctx, chunks, 0);
    // Wait for chunks claimed by workers (each is running, not queued).
    while (done_.load(std::memory_order_acquire) + mine < chunks) {
#ifdef MP_X86
      _mm_pause();
#endif
    }
  }

 private:
  // Claims and runs chunks of job g; returns how many it ran.
  int work(uint32_t g, ChunkFn fn, void* ctx, int chunks, int tid) {
    int ran = 0;
    for (;;) {
      uint64_t cur = claim_.load(std::memory_order_acquire);
      if ((uint32_t)(cur >> 32) != g) return ran;
      const int next = (int)(cur & 0xffffffffu);
      if (next >= chunks) return ran;
      if (!claim_.compare_exchange_weak(cur, cur + 1, std::memory_order_acq_rel)) continue;
      fn(ctx, next, tid);
      ran++;
    }
  }
  void loop(int id, uint64_t seen) {
    for (;;) {
      int spins = 0;
      while (gen_.load(std::memory_order_acquire) == seen && spins < 4000) {
#ifdef MP_X86
        _mm_pause();
#endif
        spins++;
      }
      if (gen_.load(std::memory_order_acquire) == seen) {
        std::unique_lock<std::mutex> lk(m_);
        cv_.wait(lk, [&] { return gen_.load() != seen; });
      }
      ChunkFn fn;
      void* ctx;
      int chunks;
      {
        std::lock_guard<std::mutex> lk(m_);
        seen = gen_.load();
        if (stop_) return;
        fn = fn_;
        ctx = ctx_;
        chunks = chunks_;
      }
      const int ran = work((uint32_t)seen, fn, ctx, chunks, id);
      if (ran > 0) done_.fetch_add(ran, std::memory_order_release);
    }
  }
  int n_ = 1;
  std::vector<std::thread> workers_;
  std::mutex m_;
  std::condition_variable cv_;
  std::atomic<uint64_t> gen_{0};
  std::atomic<uint64_t> claim_{0};
  std::atomic<int> done_{0};
  bool stop_ = false;
  ChunkFn fn_ = nullptr;
  void* ctx_ = nullptr;
  int chunks_ = 0;
};

Pool g_pool;

// f(chunk, tid) for chunk in [0, chunks): tid < pool size indexes per-thread scratch.
template <class F>
void parallel(int chunks, F&& f) {
  struct Ctx { std::remove_reference_t<F>* f; };
  Ctx c{&f};
  g_pool.run(chunks, [](void* p, int chunk, int tid) { (*static_cast<Ctx*>(p)->f)(chunk, tid); }, &c);
}

// ------------------------------------------------------------------------------------
// Operands

struct ConvGeom {
  int N, H, W, C, OC, KH, KW, sh, sw, dh, dw, pt, pl, OH, OW;
};

struct Src {
  enum Kind { STRIDED, IM2COL, IM2COL_T } kind = STRIDED;
  const float* p = nullptr;
  long rs = 0, cs = 0;          // STRIDED: (i, k) -> p[i*rs + k*cs]
  const ConvGeom* g = nullptr;  // IM2COL: row m = (n,oh,ow), col k = (kh,kw,c) of image p
};

// Writes im2col(m, k0 .. k0+len) to dst[j*ds].
inline void im2col_run(const ConvGeom& g, const float* x, long m, int k0, int len, float* dst, long ds) {
  const int ow = (int)(m % g.OW);
  const long t = m / g.OW;
  const int oh = (int)(t % g.OH);
  const int n = (int)(t / g.OH);
  int c = k0 % g.C;
  int kk = k0 / g.C;
  int kw = kk % g.KW;
  int kh = kk / g.KW;
  int j = 0;
  while (j < len) {
    const int run = std::min(g.C - c, len - j);
    const int ih = oh * g.sh - g.pt + kh * g.dh;
    const int iw = ow * g.sw - g.pl + kw * g.dw;
    if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) {
      for (int q = 0; q < run; q++) dst[(j + q) * ds] = 0.f;
    } else {
      const float* s = x + (((long)n * g.H + ih) * g.W + iw) * g.C + c;
      if (ds == 1) std::memcpy(dst + j, s, sizeof(float) * run);
      else for (int q = 0; q < run; q++) dst[(j + q) * ds] = s[q];
    }
    j += run;
    c = 0;
    if (++kw == g.KW) { kw = 0; kh++; }
  }
}

constexpr int ZEROS = 4096;
const float g_zeros[ZEROS] = {};

// One strip of im2col rows [m0, m0+rows) x cols [p0, p0+kc) into dst[p][r] (r < mr): for
// each filter tap, one source pointer per row (the zero page for padding), then the tap's
// channels with contiguous stores. Row by row (im2col_run) wrote one float every mr, with a
// bounds check per run of C: most of a small-channel convolution's time (the stem's C = 3).
// False (nothing written) for shapes it does not cover.
bool pack_im2col_strip(const ConvGeom& g, const float* x, long m0, int rows, int p0, int kc, int mr, float* dst) {
  constexpr int MAXR = 16;
  if (rows > MAXR || mr > MAXR || g.C > ZEROS) return false;
  int ihb[MAXR], iwb[MAXR];
  long nb[MAXR];
  for (int r = 0; r < rows; r++) {
    const long m = m0 + r;
    const int ow = (int)(m % g.OW);
    const long t = m / g.OW;
    ihb[r] = (int)(t % g.OH) * g.sh - g.pt;
    iwb[r] = ow * g.sw - g.pl;
    nb[r] = (t / g.OH) * g.H;
  }
  const float* src[MAXR];
  int c = p0 % g.C;
  const int kk = p0 / g.C;
  int kw = kk % g.KW, kh = kk / g.KW;
  for (int p = 0; p < kc;) {
    const int run = std::min(g.C - c, kc - p);
    for (int r = 0; r < rows; r++) {
      const int ih = ihb[r] + kh * g.dh, iw = iwb[r] + kw * g.dw;
      src[r] = ih < 0 || ih >= g.H || iw < 0 || iw >= g.W ? g_zeros : x + ((nb[r] + ih) * g.W + iw) * g.C + c;
    }
    for (int q = 0; q < run; q++) {
      float* d = dst + (long)(p + q) * mr;
      for (int r = 0; r < rows; r++) d[r] = src[r][q];
    }
    p += run;
    c = 0;
    if (++kw == g.KW) { kw = 0; kh++; }
  }
  return true;
}

// Pack rows [i0, i0+mc) x cols [p0, p0+kc) of A into strips of mr rows: dst[s][p][r].
void pack_a(const Src& A, int i0, int mc, int p0, int kc, int mr, float* dst) {
  for (int s = 0; s < mc; s += mr) {
    const int rows = std::min(mr, mc - s);
    float* d = dst + (long)s * kc;
    if (A.kind == Src::STRIDED) {
      if (A.cs == 1) {
        for (int r = 0; r < rows; r++) {
          const float* a = A.p + (long)(i0 + s + r) * A.rs + p0;
          for (int p = 0; p < kc; p++) d[p * mr + r] = a[p];
        }
      } else {
        for (int p = 0; p < kc; p++) {
          const float* a = A.p + (long)(p0 + p) * A.cs + (long)(i0 + s) * A.rs;
          if (A.rs == 1) for (int r = 0; r < rows; r++) d[p * mr + r] = a[r];
          else for (int r = 0; r < rows; r++) d[p * mr + r] = a[(long)r * A.rs];
        }
      }
    } else if (A.kind == Src::IM2COL) {
      if (!pack_im2col_strip(*A.g, A.p, i0 + s, rows, p0, kc, mr, d)) {
        for (int r = 0; r < rows; r++) im2col_run(*A.g, A.p, i0 + s + r, p0, kc, d + r, mr);
      }
    } else {  // IM2COL_T: A(i, p) = im2col(p, i)
      for (int p = 0; p < kc; p++) im2col_run(*A.g, A.p, p0 + p, i0 + s, rows, d + (long)p * mr, 1);
    }
    if (rows < mr) {
      for (int p = 0; p < kc; p++) for (int r = rows; r < mr; r++) d[p * mr + r] = 0.f;
    }
  }
}

// Pack rows [p0, p0+kc) x cols [j0, j0+nc) of B into strips of nr columns: dst[s][p][c].
void pack_b(const Src& B, int p0, int kc, int j0, int nc, int nr, float* dst) {
  for (int s = 0; s < nc; s += nr) {
    const int cols = std::min(nr, nc - s);
    float* d = dst + (long)s * kc;
    if (B.cs == 1) {
      for (int p = 0; p < kc; p++) {
        const float* b = B.p + (long)(p0 + p) * B.rs + j0 + s;
        std::memcpy(d + (long)p * nr, b, sizeof(float) * cols);
        for (int c = cols; c < nr; c++) d[(long)p * nr + c] = 0.f;
      }
    } else {
      for (int c = 0; c < cols; c++) {
        const float* b = B.p + (long)(j0 + s + c) * B.cs + (long)p0 * B.rs;
        for (int p = 0; p < kc; p++) d[(long)p * nr + c] = b[(long)p * B.rs];
      }
      for (int p = 0; p < kc; p++) for (int c = cols; c < nr; c++) d[(long)p * nr + c] = 0.f;
    }
  }
}

// ------------------------------------------------------------------------------------
// Microkernels: C[m x n] (=|+=) Apack[kc x MR] . Bpack[kc x NR] for the valid m, n.

typedef void (*Ukr)(int kc, const float* A, const float* B, float* C, long ldc, bool acc, int m, int n);

inline void store_tile(const float* t, int nr, float* C, long ldc, bool acc, int m, int n) {
  for (int r = 0; r < m; r++) {
    float* c = C + r * ldc;
    const float* s = t + r * nr;
    if (acc) for (int j = 0; j < n; j++) c[j] += s[j];
    else for (int j = 0; j < n; j++) c[j] = s[j];
  }
}

#ifdef MP_X86
constexpr int MR512 = 8, NR512 = 32;
__attribute__((target("avx512f"))) void ukr_avx512(int kc, const float* A, const float* B, float* C, long ldc, bool acc, int m, int n) {
  __m512 c0[MR512], c1[MR512];
  for (int r = 0; r < MR512; r++) { c0[r] = _mm512_setzero_ps(); c1[r] = _mm512_setzero_ps(); }
  for (int p = 0; p < kc; p++) {
    const __m512 b0 = _mm512_loadu_ps(B);
    const __m512 b1 = _mm512_loadu_ps(B + 16);
    for (int r = 0; r < MR512; r++) {
      const __m512 a = _mm512_set1_ps(A[r]);
      c0[r] = _mm512_fmadd_ps(a, b0, c0[r]);
      c1[r] = _mm512_fmadd_ps(a, b1, c1[r]);
    }
    A += MR512;
    B += NR512;
  }
  if (m == MR512 && n == NR512) {
    for (int r = 0; r < MR512; r++) {
      float* c = C + r * ldc;
      if (acc) {
        c0[r] = _mm512_add_ps(_mm512_loadu_ps(c), c0[r]);
        c1[r] = _mm512_add_ps(_mm512_loadu_ps(c + 16), c1[r]);
      }
      _mm512_storeu_ps(c, c0[r]);
      _mm512_storeu_ps(c + 16, c1[r]);
    }
  } else {
    alignas(64) float t[MR512 * NR512];
    for (int r = 0; r < MR512; r++) { _mm512_store_ps(t + r * NR512, c0[r]); _mm512_store_ps(t + r * NR512 + 16, c1[r]); }
    store_tile(t, NR512, C, ldc, acc, m, n);
  }
}

constexpr int MR256 = 6, NR256 = 16;
__attribute__((target("avx2,fma"))) void ukr_avx2(int kc, const float* A, const float* B, float* C, long ldc, bool acc, int m, int n) {
  __m256 c0[MR256], c1[MR256];
  for (int r = 0; r < MR256; r++) { c0[r] = _mm256_setzero_ps(); c1[r] = _mm256_setzero_ps(); }
  for (int p = 0; p < kc; p++) {
    const __m256 b0 = _mm256_loadu_ps(B);
    const __m256 b1 = _mm256_loadu_ps(B + 8);
    for (int r = 0; r < MR256; r++) {
      const __m256 a = _mm256_broadcast_ss(A + r);
      c0[r] = _mm256_fmadd_ps(a, b0, c0[r]);
      c1[r] = _mm256_fmadd_ps(a, b1, c1[r]);
    }
    A += MR256;
    B += NR256;
  }
  alignas(32) float t[MR256 * NR256];
  if (m == MR256 && n == NR256) {
    for (int r = 0; r < MR256; r++) {
      float* c = C + r * ldc;
      if (acc) {
        c0[r] = _mm256_add_ps(_mm256_loadu_ps(c), c0[r]);
        c1[r] = _mm256_add_ps(_mm256_loadu_ps(c + 8), c1[r]);
      }
      _mm256_storeu_ps(c, c0[r]);
      _mm256_storeu_ps(c + 8, c1[r]);
    }
  } else {
    for (int r = 0; r < MR256; r++) { _mm256_store_ps(t + r * NR256, c0[r]); _mm256_store_ps(t + r * NR256 + 8, c1[r]); }
    store_tile(t, NR256, C, ldc, acc, m, n);
  }
}
#endif

constexpr int MRC = 4, NRC = 8;
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

struct Kernel {
  Ukr fn;
  int mr, nr;
  const char* name;
};

Kernel pick_kernel() {
  const char* force = std::getenv("MEDPIPE_NATIVE_ISA");
  const bool any = force == nullptr || *force == 0;
#ifdef MP_X86
  __builtin_cpu_init();
  if ((any || !std::strcmp(force, "avx512")) && __builtin_cpu_supports("avx512f")) return {ukr_avx512, MR512, NR512, "avx512"};
  if ((any || !std::strcmp(force, "avx2")) && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return {ukr_avx2, MR256, NR256, "avx2"};
#else
  (void)any;
#endif
  return {ukr_c, MRC, NRC, "c"};
}

Kernel g_kernel = pick_kernel();

constexpr int KC = 256;
constexpr int MC = 144;   // multiple of 8 and 6... rounded below per kernel
constexpr int NC = 2048;

struct Scratch {
  std::vector<float> a, b;
};
Scratch g_scratch[64];

// One thread's share: C rows [m0, m1) x cols [n0, n1).
void gemm_block(int m0, int m1, int n0, int n1, int K, const Src& A, const Src& B, float* C, long ldc,
                const float* bias, int act, Scratch& s) {
  if (m1 <= m0 || n1 <= n0) return;
  const Kernel k = g_kernel;
  const int mc_max = std::max(k.mr, (MC / k.mr) * k.mr);
  const int nc_max = (NC / k.nr) * k.nr;
  if (K == 0) {
    for (int i = m0; i < m1; i++) for (int j = n0; j < n1; j++) C[(long)i * ldc + j] = 0.f;
  }
  s.a.resize((size_t)mc_max * KC + 64);
  s.b.resize((size_t)nc_max * KC + 64);
  for (int jc = n0; jc < n1; jc += nc_max) {
    const int nc = std::min(nc_max, n1 - jc);
    for (int pc = 0; pc < K; pc += KC) {
      const int kc = std::min(KC, K - pc);
      pack_b(B, pc, kc, jc, nc, k.nr, s.b.data());
      for (int ic = m0; ic < m1; ic += mc_max) {
        const int mc = std::min(mc_max, m1 - ic);
        pack_a(A, ic, mc, pc, kc, k.mr, s.a.data());
        for (int jr = 0; jr < nc; jr += k.nr) {
          const int n = std::min(k.nr, nc - jr);
          for (int ir = 0; ir < mc; ir += k.mr) {
            const int m = std::min(k.mr, mc - ir);
            k.fn(kc, s.a.data() + (long)ir * kc, s.b.data() + (long)jr * kc, C + (long)(ic + ir) * ldc + jc + jr, ldc, pc > 0, m, n);
          }
        }
      }
    }
  }
  if (bias != nullptr || act != 0) {
    for (int i = m0; i < m1; i++) {
      float* c = C + (long)i * ldc;
      if (bias) for (int j = n0; j < n1; j++) c[j] += bias[j];
      if (act == 1) for (int j = n0; j < n1; j++) c[j] = c[j] > 0.f ? c[j] : 0.f;
    }
  }
}

void gemm(int M, int N, int K, const Src& A, const Src& B, float* C, long ldc, const float* bias, int act, bool serial = false) {
  const int T = serial ? 1 : g_pool.size();
  const double flops = 2.0 * M * N * (double)K;
  const Kernel k = g_kernel;
  // Chunks: 2 per thread (a descheduled thread's share is picked up by the others); none
  // below ~2 MFLOP, where waking a worker costs more than it saves.
  int nt = flops < 2e6 ? 1 : 2 * T;
  if (nt <= 1) {
    gemm_block(0, M, 0, N, K, A, B, C, ldc, bias, act, g_scratch[serial ? 63 : 0]);
    return;
  }
  // Split the larger output dimension into equal, kernel-aligned chunks.
  const bool splitM = (long)M * 1 >= (long)N;
  const int unit = splitM ? k.mr : k.nr;
  const int extent = splitM ? M : N;
  const int units = (extent + unit - 1) / unit;
  nt = std::min(nt, units);
  parallel(nt, [&](int t, int tid) {
    const int u0 = (int)((long)units * t / nt), u1 = (int)((long)units * (t + 1) / nt);
    const int e0 = std::min(extent, u0 * unit), e1 = std::min(extent, u1 * unit);
    if (splitM) gemm_block(e0, e1, 0, N, K, A, B, C, ldc, bias, act, g_scratch[tid]);
    else gemm_block(0, M, e0, e1, K, A, B, C, ldc, bias, act, g_scratch[tid]);
  });
}

// ------------------------------------------------------------------------------------
// Convolutions

void conv2d(const ConvGeom& g, const float* x, const float* w, float* y, const float* bias, int act) {
  const int M = g.N * g.OH * g.OW, K = g.KH * g.KW * g.C;
  Src A;
  const bool pointwise = g.KH == 1 && g.KW == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 && g.pl == 0 && g.OH == g.H && g.OW == g.W;
  if (pointwise) { A.p = x; A.rs = g.C; A.cs = 1; }
  else { A.kind = Src::IM2COL; A.p = x; A.g = &g; }
  Src B; B.p = w; B.rs = g.OC; B.cs = 1;
  gemm(M, g.OC, K, A, B, y, g.OC, bias, act);
}

std::vector<float> g_cols;

void conv2d_backprop_filter(const ConvGeom& g, const float* x, const float* dy, float* dw) {
  const int M = g.N * g.OH * g.OW, K = g.KH * g.KW * g.C;
  Src A;  // [K x M] = im2col^T
  const bool pointwise = g.KH == 1 && g.KW == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 && g.pl == 0 && g.OH == g.H && g.OW == g.W;
  if (pointwise) { A.p = x; A.rs = 1; A.cs = g.C; }
  else {
    // im2col materialised row by row (contiguous writes), then read transposed: packing
    // straight from the image in this orientation moves a few floats per call.
    if (g_cols.size() < (size_t)M * K) g_cols.resize((size_t)M * K);
    float* cols = g_cols.data();
    const int nt = (long)M * K < 65536 ? 1 : std::min(2 * g_pool.size(), M);
    parallel(nt, [&](int t, int) {
      const long m0 = (long)M * t / nt, m1 = (long)M * (t + 1) / nt;
      for (long m = m0; m < m1; m++) im2col_run(g, x, m, 0, K, cols + m * K, 1);
    });
    A.p = cols; A.rs = 1; A.cs = K;
  }
  Src B; B.p = dy; B.rs = g.OC; B.cs = 1;
  gemm(K, g.OC, M, A, B, dw, g.OC, nullptr, 0);
}

void conv2d_backprop_input(const ConvGeom& g, const float* dy, const float* w, float* dx) {
  const int M = g.N * g.OH * g.OW, K = g.KH * g.KW * g.C;
  Src A; A.p = dy; A.rs = g.OC; A.cs = 1;
  Src B; B.p = w; B.rs = 1; B.cs = g.OC;  // W^T: (oc, k) -> w[k*OC + oc]
  const bool pointwise = g.KH == 1 && g.KW == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 && g.pl == 0 && g.OH == g.H && g.OW == g.W;
  if (pointwise) {
    gemm(M, K, g.OC, A, B, dx, K, nullptr, 0);
    return;
  }
  if (g_cols.size() < (size_t)M * K) g_cols.resize((size_t)M * K);
  float* cols = g_cols.data();
  gemm(M, K, g.OC, A, B, cols, K, nullptr, 0);
  // col2im as a gather over dx rows (n, ih): a fixed (kh, kw) order per element.
  const int rows = g.N * g.H;
  const int nt = (long)rows * g.W * g.C < 65536 ? 1 : std::min(2 * g_pool.size(), rows);
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

// ------------------------------------------------------------------------------------
// Per-channel reductions over [rows x C] (BatchNorm statistics and their gradients, Sum /
// Mean over every axis but the last, LayerNorm's parameter gradients).

// Per-channel sums over [rows x C] in float64: fixed chunks of rows (partials added in chunk
// order), so the result does not depend on the threads. f(row pointer offset, partial row)
// accumulates one row.
template <class F>
void channel_sums(long rows, long C, int width, std::vector<double>& out, F&& f) {
  const long RC = std::max(1L, 65536 / C);  // rows per chunk
  const long chunks = (rows + RC - 1) / RC;
  std::vector<double> part((size_t)chunks * width * C, 0.0);
  auto run = [&](int k, int) {
    double* acc = part.data() + (size_t)k * width * C;
    for (long r = (long)k * RC; r < std::min(rows, (long)(k + 1) * RC); r++) f(r * C, acc);
  };
  if (chunks == 1) run(0, 0);
  else parallel((int)chunks, run);
  out.assign((size_t)width * C, 0.0);
  for (long k = 0; k < chunks; k++) {
    const double* acc = part.data() + (size_t)k * width * C;
    for (long i = 0; i < width * C; i++) out[i] += acc[i];
  }
}

// BatchNorm gradient sums: [c] = sum dy, [C + c] = sum dy * (x - mean[c]).
std::vector<double> bn_grad_sums(long rows, long C, const float* dy, const float* x, const float* mean) {
  std::vector<double> s;
  channel_sums(rows, C, 2, s, [&](long at, double* acc) {
    for (long c = 0; c < C; c++) {
      const double g = dy[at + c];
      acc[c] += g;
      acc[C + c] += g * ((double)x[at + c] - mean[c]);
    }
  });
  return s;
}

void bn_reduce(int rows, int C, const float* dy, const float* x, const float* mean, float* out) {
  const std::vector<double> s = bn_grad_sums(rows, C, dy, x, mean);
  for (long i = 0; i < 2L * C; i++) out[i] = (float)s[i];
}

// Column sums times `scale`: Sum / Mean over every axis but the last.
void col_reduce(int rows, int C, const float* x, float* out, double scale) {
  std::vector<double> s;
  channel_sums(rows, C, 1, s, [&](long at, double* acc) {
    for (long c = 0; c < C; c++) acc[c] += x[at + c];
  });
  for (long c = 0; c < C; c++) out[c] = (float)(s[c] * scale);
}

// ------------------------------------------------------------------------------------
// Element-wise kernels and BatchNorm / max-pool passes over activations: wasm runs them on
// one thread; here fixed chunks over both cores. Each element is computed alone, so the
// chunking never changes a result.

const long EW_CHUNK = 16384;

// f(i0, i1) over [0, n) in fixed chunks.
template <class F>
void for_chunks(long n, F&& f) {
  const long chunks = (n + EW_CHUNK - 1) / EW_CHUNK;
  if (chunks <= 1) { if (n > 0) f(0L, n); return; }
  parallel((int)chunks, [&](int c, int) { const long i0 = (long)c * EW_CHUNK; f(i0, std::min(n, i0 + EW_CHUNK)); });
}

template <class Op>
void binary_run(int mode, long n, long C, const float* a, const float* b, float* o, Op op) {
  for_chunks(n, [&](long i0, long i1) {
    if (mode == 0) { for (long i = i0; i < i1; i++) o[i] = op(a[i], b[i]); return; }
    if (mode == 3) { const float y = b[0]; for (long i = i0; i < i1; i++) o[i] = op(a[i], y); return; }
    if (mode == 4) { const float x = a[0]; for (long i = i0; i < i1; i++) o[i] = op(x, b[i]); return; }
    // 1: b is one row of C values, 2: a is; row segments keep the inner loop contiguous.
    for (long i = i0; i < i1;) {
      const long j = i % C, len = std::min(i1 - i, C - j);
      if (mode == 1) for (long k = 0; k < len; k++) o[i + k] = op(a[i + k], b[j + k]);
      else for (long k = 0; k < len; k++) o[i + k] = op(a[j + k], b[i + k]);
      i += len;
    }
  });
}

// op 0 add, 1 sub, 2 mul, 3 div; mode 0 same shape, 1 b per column, 2 a per column,
// 3 b scalar, 4 a scalar.
void binary(int op, int mode, long n, long C, const float* a, const float* b, float* o) {
  switch (op) {
    case 0: binary_run(mode, n, C, a, b, o, [](float x, float y) { return x + y; }); break;
    case 1: binary_run(mode, n, C, a, b, o, [](float x, float y) { return x - y; }); break;
    case 2: binary_run(mode, n, C, a, b, o, [](float x, float y) { return x * y; }); break;
    default: binary_run(mode, n, C, a, b, o, [](float x, float y) { return x / y; }); break;
  }
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

#ifdef MP_X86
#define MP_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MP_CLONES
#endif

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

// op 0 exp, 1 erf; 2 relu gradient: o = dy * (x > 0) with b = x (NaN where x is NaN);
// 3 gelu; 4 gelu gradient (a = dy, b = x).
void unary(int op, long n, const float* a, const float* b, float* o) {
  for_chunks(n, [&](long i0, long i1) {
    const long len = i1 - i0;
    if (op == 0) exp_loop(len, a + i0, o + i0);
    else if (op == 1) erf_loop(len, a + i0, o + i0);
    else if (op == 3) gelu_loop(len, a + i0, o + i0);
    else if (op == 4) gelu_grad_loop(len, a + i0, b + i0, o + i0);
    else for (long i = i0; i < i1; i++) o[i] = b[i] != b[i] ? b[i] : a[i] * (b[i] > 0 ? 1.f : 0.f);
  });
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
  for_chunks(rows * C, [&](long i0, long i1) {
    for (long i = i0; i < i1;) {
      const long j = i % C, len = std::min(i1 - i, C - j);
      for (long k = 0; k < len; k++) y[i + k] = (x[i + k] - mean[j + k]) * pm[j + k] + pa[j + k];
      i += len;
    }
  });
}

// BatchNorm in training mode over [rows x C]: batch mean and biased variance (two passes,
// float64), then y = (x - mean) * scale / sqrt(var + eps) + offset.
void bn_train(long rows, long C, const float* x, const float* scale, const float* offset, float eps,
              float* y, float* mean_out, float* var_out) {
  std::vector<double> s;
  channel_sums(rows, C, 1, s, [&](long at, double* acc) {
    for (long c = 0; c < C; c++) acc[c] += x[at + c];
  });
  std::vector<double> mean(C);
  for (long c = 0; c < C; c++) mean[c] = s[c] / rows;
  std::vector<double> q;
  channel_sums(rows, C, 1, q, [&](long at, double* acc) {
    for (long c = 0; c < C; c++) { const double d = x[at + c] - mean[c]; acc[c] += d * d; }
  });
  std::vector<float> var(C), mf(C);
  for (long c = 0; c < C; c++) {
    mf[c] = mean_out[c] = (float)mean[c];
    var[c] = var_out[c] = (float)(q[c] / rows);
  }
  batch_norm(rows, C, x, mf.data(), var.data(), scale, offset, eps, y);
}

// Its gradient through the batch statistics (as autograd of the composed ops gives):
// dx = scale * rstd * (dy - mean(dy) - (x - mean) * rstd^2 * mean(dy * (x - mean))),
// dscale = rstd * sum(dy * (x - mean)), doffset = sum(dy).
void bn_train_grad(long rows, long C, const float* dy, const float* x, const float* mean, const float* var,
                   const float* scale, float eps, float* dx, float* dscale, float* doffset) {
  const std::vector<double> s = bn_grad_sums(rows, C, dy, x, mean);
  std::vector<float> k1(C), k2(C), k3(C);
  for (long c = 0; c < C; c++) {
    const double rstd = 1.0 / std::sqrt((double)var[c] + eps);
    doffset[c] = (float)s[c];
    dscale[c] = (float)(s[C + c] * rstd);
    k1[c] = (float)((scale ? scale[c] : 1.0) * rstd);
    k2[c] = (float)(s[c] / rows);
    k3[c] = (float)(rstd * rstd * s[C + c] / rows);
  }
  const float *p1 = k1.data(), *p2 = k2.data(), *p3 = k3.data();
  for_chunks(rows * C, [&](long i0, long i1) {
    for (long i = i0; i < i1;) {
      const long j = i % C, len = std::min(i1 - i, C - j);
      for (long k = 0; k < len; k++) {
        const long c = j + k;
        dx[i + k] = p1[c] * (dy[i + k] - p2[c] - (x[i + k] - mean[c]) * p3[c]);
      }
      i += len;
    }
  });
}

// LayerNorm over the last axis of [rows x D]: per row mean and 1/sqrt(var + eps) (float64,
// two passes), y = (x - mean) * rstd * scale + offset. Rows are independent.
void ln_forward(long rows, long D, const float* x, const float* scale, const float* offset, float eps,
                float* y, float* mean_out, float* rstd_out) {
  const long RC = std::max(1L, 16384 / D);
  const int chunks = (int)((rows + RC - 1) / RC);
  parallel(chunks, [&](int k, int) {
    for (long r = (long)k * RC; r < std::min(rows, (long)(k + 1) * RC); r++) {
      const float* xr = x + r * D;
      double s = 0;
      for (long j = 0; j < D; j++) s += xr[j];
      const double mean = s / D;
      double q = 0;
      for (long j = 0; j < D; j++) { const double d = xr[j] - mean; q += d * d; }
      const float m = (float)mean, rs = (float)(1.0 / std::sqrt(q / D + eps));
      mean_out[r] = m;
      rstd_out[r] = rs;
      float* yr = y + r * D;
      for (long j = 0; j < D; j++) yr[j] = (xr[j] - m) * rs * scale[j] + offset[j];
    }
  });
}

// Its gradient: with xhat = (x - mean) * rstd and g = dy * scale,
// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) per row; dscale = sum over rows of
// dy * xhat, doffset = sum of dy (fixed row chunks, partials added in order).
void ln_backward(long rows, long D, const float* dy, const float* x, const float* mean, const float* rstd,
                 const float* scale, float* dx, float* dscale, float* doffset) {
  std::vector<double> s;
  channel_sums(rows, D, 2, s, [&](long at, double* acc) {
    const long r = at / D;
    for (long j = 0; j < D; j++) {
      const double g = dy[at + j];
      acc[j] += g * (((double)x[at + j] - mean[r]) * rstd[r]);
      acc[D + j] += g;
    }
  });
  for (long j = 0; j < D; j++) { dscale[j] = (float)s[j]; doffset[j] = (float)s[D + j]; }
  const long RC = std::max(1L, 16384 / D);
  const int chunks = (int)((rows + RC - 1) / RC);
  parallel(chunks, [&](int k, int) {
    for (long r = (long)k * RC; r < std::min(rows, (long)(k + 1) * RC); r++) {
      const float* xr = x + r * D;
      const float* dr = dy + r * D;
      const double m = mean[r], rs = rstd[r];
      double sg = 0, sgx = 0;
      for (long j = 0; j < D; j++) {
        const double g = (double)dr[j] * scale[j];
        sg += g;
        sgx += g * ((xr[j] - m) * rs);
      }
      const float a = (float)(sg / D), b = (float)(sgx / D), rsf = (float)rs, mf = (float)m;
      float* o = dx + r * D;
      for (long j = 0; j < D; j++) o[j] = rsf * (dr[j] * scale[j] - a - (xr[j] - mf) * rsf * b);
    }
  });
}

struct PoolGeom {
  int N, H, W, C, OH, OW, KH, KW, sh, sw, dh, dw, pt, pl;
};

// Max-pool gradient: each window's first maximum (row-major, strict >) receives dy, as the
// cpu backend and PyTorch do; padding never wins. One image per chunk: images own disjoint
// parts of dx, and a chunk adds in a fixed order.
void max_pool_grad(const PoolGeom& g, const float* x, const float* dy, float* dx) {
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
            for (int c = 0; c < g.C; c++) {
              if (xp[c] > best[c]) { best[c] = xp[c]; where[c] = base + c; }
            }
          }
        }
        const float* d = dy + (((long)n * g.OH + oh) * g.OW + ow) * g.C;
        for (int c = 0; c < g.C; c++) if (where[c] >= 0) dxn[where[c]] += d[c];
      }
    }
  });
}

// ------------------------------------------------------------------------------------
// Adam / AdamW, in place: the float32 operations of the composed tfjs ops (src/ml/train/
// adam.ts), one rounding per op, in the same order, so both paths agree bit for bit (the
// build passes -ffp-contract=off: no fused multiply-adds). Element-wise, so any chunking
// gives the same result.

struct AdamScalars {
  float b1, omb1, b2, omb2, bc2, eps, step, wd, keep;  // step = lr / bc1, keep = 1 - lr * wd
};

// mode 0: plain; 1: L2 (g += p * wd); 2: decoupled (p *= keep first).
void adam_range(const AdamScalars& s, int mode, float* p, float* m, float* v, const float* g, long i0, long i1) {
  for (long i = i0; i < i1; i++) {
    float pi = p[i];
    float gi = g[i];
    if (mode == 1) gi = gi + pi * s.wd;
    else if (mode == 2) pi = pi * s.keep;
    const float mi = m[i] * s.b1 + gi * s.omb1;
    const float vi = v[i] * s.b2 + (gi * gi) * s.omb2;
    m[i] = mi;
    v[i] = vi;
    const float denom = std::sqrt(vi / s.bc2) + s.eps;
    p[i] = pi - (mi / denom) * s.step;
  }
}

// ------------------------------------------------------------------------------------
// N-API glue

#define CHECK(call) \
  if ((call) != napi_ok) { napi_throw_error(env, nullptr, "medpipe native: bad argument in " #call); return nullptr; }

float* heap_f32(napi_env env, napi_value v, double off) {
  void* data = nullptr;
  size_t len = 0;
  if (napi_get_arraybuffer_info(env, v, &data, &len) != napi_ok) return nullptr;
  if (off < 0 || (size_t)off * 4 > len) return nullptr;
  return static_cast<float*>(data) + (size_t)off;
}

bool get_geom(napi_env env, napi_value v, ConvGeom& g) {
  napi_typedarray_type type;
  size_t len;
  void* data;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &type, &len, &data, &ab, &off) != napi_ok) return false;
  if (type != napi_int32_array || len != 15) return false;
  std::memcpy(&g, data, sizeof(ConvGeom));
  return true;
}

// conv(kind, heap, aOff, bOff, outOff, biasOff (-1: none), act, geom Int32Array(15))
napi_value Conv(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc < 8) { napi_throw_error(env, nullptr, "conv: 8 arguments"); return nullptr; }
  int32_t kind, act;
  double a, b, o, bias;
  CHECK(napi_get_value_int32(env, argv[0], &kind));
  CHECK(napi_get_value_double(env, argv[2], &a));
  CHECK(napi_get_value_double(env, argv[3], &b));
  CHECK(napi_get_value_double(env, argv[4], &o));
  CHECK(napi_get_value_double(env, argv[5], &bias));
  CHECK(napi_get_value_int32(env, argv[6], &act));
  ConvGeom g;
  if (!get_geom(env, argv[7], g)) { napi_throw_error(env, nullptr, "conv: geometry must be an Int32Array(15)"); return nullptr; }
  // Extents of x, filter, y (dy) in floats; every operand must lie inside the heap.
  const double nx = (double)g.N * g.H * g.W * g.C, nw = (double)g.KH * g.KW * g.C * g.OC, ny = (double)g.N * g.OH * g.OW * g.OC;
  const double ea = kind == 1 ? ny : nx, eb = kind == 2 ? ny : nw, eo = kind == 0 ? ny : kind == 1 ? nx : nw;
  if (g.N <= 0 || g.C <= 0 || g.OC <= 0 || g.KH <= 0 || g.KW <= 0 || g.sh <= 0 || g.sw <= 0 || g.dh <= 0 || g.dw <= 0 || g.OH <= 0 || g.OW <= 0) {
    napi_throw_error(env, nullptr, "conv: bad geometry");
    return nullptr;
  }
  float* pa = heap_f32(env, argv[1], a + ea) ? heap_f32(env, argv[1], a) : nullptr;
  float* pb = heap_f32(env, argv[1], b + eb) ? heap_f32(env, argv[1], b) : nullptr;
  float* po = heap_f32(env, argv[1], o + eo) ? heap_f32(env, argv[1], o) : nullptr;
  float* pbias = bias >= 0 && heap_f32(env, argv[1], bias + g.OC) ? heap_f32(env, argv[1], bias) : nullptr;
  if (!pa || !pb || !po || (bias >= 0 && !pbias)) { napi_throw_error(env, nullptr, "conv: offsets outside the heap"); return nullptr; }
  if (kind == 0) conv2d(g, pa, pb, po, pbias, act);
  else if (kind == 1) conv2d_backprop_input(g, pa, pb, po);
  else conv2d_backprop_filter(g, pa, pb, po);
  return nullptr;
}

// matmul(heap, M, N, K, transA, transB, offsets Float64Array [a0, b0, c0, a1, b1, c1, ...])
// A is [M x K] (or [K x M] when transA), B [K x N] (or [N x K]), C [M x N], row-major.
napi_value MatMul(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc < 7) { napi_throw_error(env, nullptr, "matmul: 7 arguments"); return nullptr; }
  int32_t M, N, K;
  bool tA, tB;
  CHECK(napi_get_value_int32(env, argv[1], &M));
  CHECK(napi_get_value_int32(env, argv[2], &N));
  CHECK(napi_get_value_int32(env, argv[3], &K));
  CHECK(napi_get_value_bool(env, argv[4], &tA));
  CHECK(napi_get_value_bool(env, argv[5], &tB));
  napi_typedarray_type type;
  size_t len;
  void* data;
  napi_value ab;
  size_t boff;
  CHECK(napi_get_typedarray_info(env, argv[6], &type, &len, &data, &ab, &boff));
  if (type != napi_float64_array || len % 3 != 0) { napi_throw_error(env, nullptr, "matmul: offsets must be a Float64Array of triples"); return nullptr; }
  void* heap = nullptr;
  size_t heapLen = 0;
  CHECK(napi_get_arraybuffer_info(env, argv[0], &heap, &heapLen));
  const double* offs = static_cast<const double*>(data);
  const int count = (int)(len / 3);
  float* base = static_cast<float*>(heap);
  const size_t limit = heapLen / 4;
  for (int i = 0; i < count; i++) {
    if (offs[3 * i] + (double)M * K > limit || offs[3 * i + 1] + (double)K * N > limit || offs[3 * i + 2] + (double)M * N > limit) {
      napi_throw_error(env, nullptr, "matmul: offsets outside the heap");
      return nullptr;
    }
  }
  auto one = [&](int i, bool serial) {
    Src A; A.p = base + (size_t)offs[3 * i];
    if (tA) { A.rs = 1; A.cs = M; } else { A.rs = K; A.cs = 1; }
    Src B; B.p = base + (size_t)offs[3 * i + 1];
    if (tB) { B.rs = 1; B.cs = K; } else { B.rs = N; B.cs = 1; }
    gemm(M, N, K, A, B, base + (size_t)offs[3 * i + 2], N, nullptr, 0, serial);
  };
  const int T = g_pool.size();
  if (count >= 2 * T && T > 1 && 2.0 * M * N * K * count >= 2e6) {
    // Many products: whole products per chunk (each computed exactly as alone).
    const int nc = std::min(count, 4 * T);
    parallel(nc, [&](int t, int tid) {
      const int b0 = (int)((long)count * t / nc), b1 = (int)((long)count * (t + 1) / nc);
      for (int i = b0; i < b1; i++) {
        Src A; A.p = base + (size_t)offs[3 * i];
        if (tA) { A.rs = 1; A.cs = M; } else { A.rs = K; A.cs = 1; }
        Src B; B.p = base + (size_t)offs[3 * i + 1];
        if (tB) { B.rs = 1; B.cs = K; } else { B.rs = N; B.cs = 1; }
        gemm_block(0, M, 0, N, K, A, B, base + (size_t)offs[3 * i + 2], N, nullptr, 0, g_scratch[tid]);
      }
    });
  } else {
    for (int i = 0; i < count; i++) one(i, false);
  }
  return nullptr;
}

// bnReduce(heap, rows, C, dyOff, xOff, meanOff, outOff)
napi_value BnReduce(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc < 7) { napi_throw_error(env, nullptr, "bnReduce: 7 arguments"); return nullptr; }
  int32_t rows, C;
  double d, x, m, o;
  CHECK(napi_get_value_int32(env, argv[1], &rows));
  CHECK(napi_get_value_int32(env, argv[2], &C));
  CHECK(napi_get_value_double(env, argv[3], &d));
  CHECK(napi_get_value_double(env, argv[4], &x));
  CHECK(napi_get_value_double(env, argv[5], &m));
  CHECK(napi_get_value_double(env, argv[6], &o));
  const double n = (double)rows * C;
  float* pd = heap_f32(env, argv[0], d + n);
  float* px = heap_f32(env, argv[0], x + n);
  float* pm = heap_f32(env, argv[0], m + C);
  float* po = heap_f32(env, argv[0], o + 2.0 * C);
  if (!pd || !px || !pm || !po) { napi_throw_error(env, nullptr, "bnReduce: offsets outside the heap"); return nullptr; }
  bn_reduce(rows, C, pd - (size_t)n, px - (size_t)n, pm - C, po - 2 * C);
  return nullptr;
}

// colReduce(heap, rows, C, xOff, outOff, scale)
napi_value ColReduce(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc < 6) { napi_throw_error(env, nullptr, "colReduce: 6 arguments"); return nullptr; }
  int32_t rows, C;
  double x, o, scale;
  CHECK(napi_get_value_int32(env, argv[1], &rows));
  CHECK(napi_get_value_int32(env, argv[2], &C));
  CHECK(napi_get_value_double(env, argv[3], &x));
  CHECK(napi_get_value_double(env, argv[4], &o));
  CHECK(napi_get_value_double(env, argv[5], &scale));
  if (rows < 0 || C < 0 || !heap_f32(env, argv[0], x + (double)rows * C) || !heap_f32(env, argv[0], o + C)) {
    napi_throw_error(env, nullptr, "colReduce: offsets outside the heap");
    return nullptr;
  }
  col_reduce(rows, C, heap_f32(env, argv[0], x), heap_f32(env, argv[0], o), scale);
  return nullptr;
}

// Bounds-checked pointer to `count` floats at float offset `off` of the heap, or null.
float* heap_span(napi_env env, napi_value heap, double off, double count) {
  return off >= 0 && count >= 0 && heap_f32(env, heap, off + count) ? heap_f32(env, heap, off) : nullptr;
}

bool get_doubles(napi_env env, napi_value v, size_t want, double* out) {
  napi_typedarray_type type;
  size_t len, boff;
  void* data;
  napi_value ab;
  if (napi_get_typedarray_info(env, v, &type, &len, &data, &ab, &boff) != napi_ok) return false;
  if (type != napi_float64_array || len != want) return false;
  std::memcpy(out, data, want * sizeof(double));
  return true;
}

// The (heap, args Float64Array(want)) calling convention: false, with a JS error thrown,
// when the call does not fit it.
bool heap_and_args(napi_env env, napi_callback_info info, const char* name, size_t want, napi_value* heap, double* p) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < 2 || !get_doubles(env, argv[1], want, p)) {
    const std::string msg = std::string(name) + ": arguments must be (heap, Float64Array(" + std::to_string(want) + "))";
    napi_throw_error(env, nullptr, msg.c_str());
    return false;
  }
  *heap = argv[0];
  return true;
}

// elementwise(heap, args Float64Array(8)): [kind, op, mode, n, C, a, b, out]; kind 0 binary
// (op/mode as binary()), 1 unary (op as unary(); b is used by the relu gradient only).
napi_value Elementwise(napi_env env, napi_callback_info info) {
  double p[8];
  napi_value heap;
  if (!heap_and_args(env, info, "elementwise", 8, &heap, p)) return nullptr;
  const int kind = (int)p[0], op = (int)p[1], mode = (int)p[2];
  const double n = p[3], C = p[4];
  if (n < 0 || C < 1) { napi_throw_error(env, nullptr, "elementwise: bad size"); return nullptr; }
  const double na = kind == 0 && mode == 4 ? 1 : kind == 0 && mode == 2 ? C : n;
  const double nb = kind == 1 ? (op == 2 || op == 4 ? n : 0) : mode == 3 ? 1 : mode == 1 ? C : n;
  float* a = heap_span(env, heap, p[5], na);
  float* b = nb > 0 ? heap_span(env, heap, p[6], nb) : nullptr;
  float* o = heap_span(env, heap, p[7], n);
  if (!a || (nb > 0 && !b) || !o) { napi_throw_error(env, nullptr, "elementwise: offsets outside the heap"); return nullptr; }
  if (kind == 0) binary(op, mode, (long)n, (long)C, a, b, o);
  else unary(op, (long)n, a, b, o);
  return nullptr;
}

// batchNorm(heap, args Float64Array(9)): [rows, C, x, mean, var, scale (-1), offset (-1), eps, out]
napi_value BatchNorm(napi_env env, napi_callback_info info) {
  double p[9];
  napi_value heap;
  if (!heap_and_args(env, info, "batchNorm", 9, &heap, p)) return nullptr;
  const double rows = p[0], C = p[1];
  float* x = heap_span(env, heap, p[2], rows * C);
  float* m = heap_span(env, heap, p[3], C);
  float* v = heap_span(env, heap, p[4], C);
  float* sc = p[5] >= 0 ? heap_span(env, heap, p[5], C) : nullptr;
  float* of = p[6] >= 0 ? heap_span(env, heap, p[6], C) : nullptr;
  float* y = heap_span(env, heap, p[8], rows * C);
  if (rows < 0 || C < 1 || !x || !m || !v || (p[5] >= 0 && !sc) || (p[6] >= 0 && !of) || !y) {
    napi_throw_error(env, nullptr, "batchNorm: offsets outside the heap");
    return nullptr;
  }
  batch_norm((long)rows, (long)C, x, m, v, sc, of, (float)p[7], y);
  return nullptr;
}

// bnTrain(heap, args Float64Array(9)): [rows, C, x, scale (-1), offset (-1), eps, y, mean, var]
napi_value BnTrain(napi_env env, napi_callback_info info) {
  double p[9];
  napi_value heap;
  if (!heap_and_args(env, info, "bnTrain", 9, &heap, p)) return nullptr;
  const double rows = p[0], C = p[1];
  float* x = heap_span(env, heap, p[2], rows * C);
  float* sc = p[3] >= 0 ? heap_span(env, heap, p[3], C) : nullptr;
  float* of = p[4] >= 0 ? heap_span(env, heap, p[4], C) : nullptr;
  float* y = heap_span(env, heap, p[6], rows * C);
  float* m = heap_span(env, heap, p[7], C);
  float* v = heap_span(env, heap, p[8], C);
  if (rows < 1 || C < 1 || !x || (p[3] >= 0 && !sc) || (p[4] >= 0 && !of) || !y || !m || !v) {
    napi_throw_error(env, nullptr, "bnTrain: bad size or offsets outside the heap");
    return nullptr;
  }
  bn_train((long)rows, (long)C, x, sc, of, (float)p[5], y, m, v);
  return nullptr;
}

// bnTrainGrad(heap, args Float64Array(11)): [rows, C, dy, x, mean, var, scale (-1), eps, dx, dscale, doffset]
napi_value BnTrainGrad(napi_env env, napi_callback_info info) {
  double p[11];
  napi_value heap;
  if (!heap_and_args(env, info, "bnTrainGrad", 11, &heap, p)) return nullptr;
  const double rows = p[0], C = p[1];
  float* dy = heap_span(env, heap, p[2], rows * C);
  float* x = heap_span(env, heap, p[3], rows * C);
  float* m = heap_span(env, heap, p[4], C);
  float* v = heap_span(env, heap, p[5], C);
  float* sc = p[6] >= 0 ? heap_span(env, heap, p[6], C) : nullptr;
  float* dx = heap_span(env, heap, p[8], rows * C);
  float* ds = heap_span(env, heap, p[9], C);
  float* dof = heap_span(env, heap, p[10], C);
  if (rows < 1 || C < 1 || !dy || !x || !m || !v || (p[6] >= 0 && !sc) || !dx || !ds || !dof) {
    napi_throw_error(env, nullptr, "bnTrainGrad: bad size or offsets outside the heap");
    return nullptr;
  }
  bn_train_grad((long)rows, (long)C, dy, x, m, v, sc, (float)p[7], dx, ds, dof);
  return nullptr;
}

// layerNorm(heap, args Float64Array(9)): [rows, D, x, scale, offset, eps, y, mean, rstd]
napi_value LayerNorm(napi_env env, napi_callback_info info) {
  double p[9];
  napi_value heap;
  if (!heap_and_args(env, info, "layerNorm", 9, &heap, p)) return nullptr;
  const double rows = p[0], D = p[1];
  float* x = heap_span(env, heap, p[2], rows * D);
  float* sc = heap_span(env, heap, p[3], D);
  float* of = heap_span(env, heap, p[4], D);
  float* y = heap_span(env, heap, p[6], rows * D);
  float* m = heap_span(env, heap, p[7], rows);
  float* rs = heap_span(env, heap, p[8], rows);
  if (rows < 1 || D < 1 || !x || !sc || !of || !y || !m || !rs) { napi_throw_error(env, nullptr, "layerNorm: bad size or offsets outside the heap"); return nullptr; }
  ln_forward((long)rows, (long)D, x, sc, of, (float)p[5], y, m, rs);
  return nullptr;
}

// layerNormGrad(heap, args Float64Array(10)): [rows, D, dy, x, mean, rstd, scale, dx, dscale, doffset]
napi_value LayerNormGrad(napi_env env, napi_callback_info info) {
  double p[10];
  napi_value heap;
  if (!heap_and_args(env, info, "layerNormGrad", 10, &heap, p)) return nullptr;
  const double rows = p[0], D = p[1];
  float* dy = heap_span(env, heap, p[2], rows * D);
  float* x = heap_span(env, heap, p[3], rows * D);
  float* m = heap_span(env, heap, p[4], rows);
  float* rs = heap_span(env, heap, p[5], rows);
  float* sc = heap_span(env, heap, p[6], D);
  float* dx = heap_span(env, heap, p[7], rows * D);
  float* ds = heap_span(env, heap, p[8], D);
  float* dof = heap_span(env, heap, p[9], D);
  if (rows < 1 || D < 1 || !dy || !x || !m || !rs || !sc || !dx || !ds || !dof) { napi_throw_error(env, nullptr, "layerNormGrad: bad size or offsets outside the heap"); return nullptr; }
  ln_backward((long)rows, (long)D, dy, x, m, rs, sc, dx, ds, dof);
  return nullptr;
}

// maxPoolGrad(heap, x, dy, dx, geom Int32Array(14): N H W C OH OW KH KW sh sw dh dw pt pl)
napi_value MaxPoolGrad(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc < 5) { napi_throw_error(env, nullptr, "maxPoolGrad: 5 arguments"); return nullptr; }
  double x, dy, dx;
  CHECK(napi_get_value_double(env, argv[1], &x));
  CHECK(napi_get_value_double(env, argv[2], &dy));
  CHECK(napi_get_value_double(env, argv[3], &dx));
  napi_typedarray_type type;
  size_t len, boff;
  void* data;
  napi_value ab;
  CHECK(napi_get_typedarray_info(env, argv[4], &type, &len, &data, &ab, &boff));
  if (type != napi_int32_array || len != 14) { napi_throw_error(env, nullptr, "maxPoolGrad: geometry must be an Int32Array(14)"); return nullptr; }
  PoolGeom g;
  std::memcpy(&g, data, sizeof g);
  if (g.N <= 0 || g.H <= 0 || g.W <= 0 || g.C <= 0 || g.OH <= 0 || g.OW <= 0 || g.KH <= 0 || g.KW <= 0 || g.sh <= 0 || g.sw <= 0 || g.dh <= 0 || g.dw <= 0) {
    napi_throw_error(env, nullptr, "maxPoolGrad: bad geometry");
    return nullptr;
  }
  const double nx = (double)g.N * g.H * g.W * g.C, ny = (double)g.N * g.OH * g.OW * g.C;
  float* px = heap_span(env, argv[0], x, nx);
  float* pdy = heap_span(env, argv[0], dy, ny);
  float* pdx = heap_span(env, argv[0], dx, nx);
  if (!px || !pdy || !pdx) { napi_throw_error(env, nullptr, "maxPoolGrad: offsets outside the heap"); return nullptr; }
  max_pool_grad(g, px, pdy, pdx);
  return nullptr;
}

// adam(heap, entries Float64Array [p, m, v, g, n, mode] per tensor, scalars Float64Array(9))
napi_value Adam(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc < 3) { napi_throw_error(env, nullptr, "adam: 3 arguments"); return nullptr; }
  napi_typedarray_type type;
  size_t len, slen, boff;
  void* data;
  void* sdata;
  napi_value ab;
  CHECK(napi_get_typedarray_info(env, argv[1], &type, &len, &data, &ab, &boff));
  if (type != napi_float64_array || len % 6 != 0) { napi_throw_error(env, nullptr, "adam: entries must be a Float64Array of sextuples"); return nullptr; }
  CHECK(napi_get_typedarray_info(env, argv[2], &type, &slen, &sdata, &ab, &boff));
  if (type != napi_float64_array || slen != 9) { napi_throw_error(env, nullptr, "adam: scalars must be a Float64Array(9)"); return nullptr; }
  const double* sc = static_cast<const double*>(sdata);
  const AdamScalars s{(float)sc[0], (float)sc[1], (float)sc[2], (float)sc[3], (float)sc[4], (float)sc[5], (float)sc[6], (float)sc[7], (float)sc[8]};
  void* heap = nullptr;
  size_t heapLen = 0;
  CHECK(napi_get_arraybuffer_info(env, argv[0], &heap, &heapLen));
  float* base = static_cast<float*>(heap);
  const double limit = (double)(heapLen / 4);
  const double* e = static_cast<const double*>(data);
  const int count = (int)(len / 6);
  // Fixed chunks of at most 32K elements over all tensors: small tensors share a chunk's
  // worth of work with no per-tensor thread hand-off.
  struct Piece { int t; long i0, i1; };
  std::vector<Piece> pieces;
  const long CH = 32768;
  double total = 0;
  for (int t = 0; t < count; t++) {
    const double n = e[6 * t + 4];
    total += n;
    for (int k = 0; k < 4; k++) {
      if (e[6 * t + k] < 0 || e[6 * t + k] + n > limit) { napi_throw_error(env, nullptr, "adam: offsets outside the heap"); return nullptr; }
    }
    for (long i = 0; i < (long)n; i += CH) pieces.push_back({t, i, std::min((long)n, i + CH)});
  }
  const int per = 4;  // pieces per chunk
  const int chunks = (int)((pieces.size() + per - 1) / per);
  auto run = [&](int c, int) {
    for (size_t q = (size_t)c * per; q < std::min(pieces.size(), (size_t)(c + 1) * per); q++) {
      const Piece& pc = pieces[q];
      const double* r = e + 6 * pc.t;
      adam_range(s, (int)r[5], base + (size_t)r[0], base + (size_t)r[1], base + (size_t)r[2], base + (size_t)r[3], pc.i0, pc.i1);
    }
  };
  if (total < 65536) for (int c = 0; c < chunks; c++) run(c, 0);
  else parallel(chunks, run);
  return nullptr;
}

napi_value SetThreads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  int32_t n = 1;
  CHECK(napi_get_value_int32(env, argv[0], &n));
  g_pool.resize(std::max(1, std::min(n, 64)));
  return nullptr;
}

napi_value Info(napi_env env, napi_callback_info) {
  napi_value obj, isa, th;
  napi_create_object(env, &obj);
  napi_create_string_utf8(env, g_kernel.name, NAPI_AUTO_LENGTH, &isa);
  napi_create_int32(env, g_pool.size(), &th);
  napi_set_named_property(env, obj, "isa", isa);
  napi_set_named_property(env, obj, "threads", th);
  return obj;
}

// One non-blocking turn of Node's event loop, so that a synchronous read on the WebGPU
// backend (tfjs dataSync) can wait for Dawn's buffer mapping, which completes only through
// callbacks the loop runs. Returns whether the loop has more work.
napi_value PumpEvents(napi_env env, napi_callback_info) {
  uv_loop_t* loop = nullptr;
  napi_value out;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    napi_throw_error(env, nullptr, "pumpEvents: no event loop");
    return nullptr;
  }
  napi_get_boolean(env, uv_run(loop, UV_RUN_NOWAIT) != 0, &out);
  return out;
}

napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"conv", nullptr, Conv, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"matmul", nullptr, MatMul, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"bnReduce", nullptr, BnReduce, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"colReduce", nullptr, ColReduce, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"elementwise", nullptr, Elementwise, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"batchNorm", nullptr, BatchNorm, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"bnTrain", nullptr, BnTrain, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"bnTrainGrad", nullptr, BnTrainGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"layerNorm", nullptr, LayerNorm, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"layerNormGrad", nullptr, LayerNormGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"maxPoolGrad", nullptr, MaxPoolGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"adam", nullptr, Adam, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setThreads", nullptr, SetThreads, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"info", nullptr, Info, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"pumpEvents", nullptr, PumpEvents, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
