/* The fp32 FMA peak of this machine's cores, the yardstick of the engine bench's "% of
 * peak": independent fused multiply-adds on 12 vector registers (enough in flight to
 * cover the FMA latency on the cores measured), one thread per core asked for, no memory
 * traffic. Built by bench/peak.ts with -O3 -march=native. Prints GFLOP/s (multiply and add
 * counted apart) over all threads. Usage: fma-peak <threads> */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#if defined(__AVX512F__)
typedef __m512 vec;
#define LANES 16
#define SET1 _mm512_set1_ps
#define FMA _mm512_fmadd_ps
#define SUM _mm512_reduce_add_ps
static const char* ISA = "avx512";
#elif defined(__FMA__)
typedef __m256 vec;
#define LANES 8
#define SET1 _mm256_set1_ps
#define FMA _mm256_fmadd_ps
static float SUM(__m256 v) {
  float t[8];
  _mm256_storeu_ps(t, v);
  return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
}
static const char* ISA = "avx2-fma";
#else
#error "no FMA vector extension"
#endif

#define ACC 12
/* ~0.5 s per thread at 5 GHz-class cores: thread start and clock ramp-up stay out of it. */
static const long ITERS = 300000000;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static void* run(void* out) {
  vec a[ACC];
  const vec b = SET1(0.999f), c = SET1(0.001f);
  for (int i = 0; i < ACC; i++) a[i] = SET1((float)i);
  for (long k = 0; k < ITERS; k++)
    for (int i = 0; i < ACC; i++) a[i] = FMA(a[i], b, c);
  float s = 0;
  for (int i = 0; i < ACC; i++) s += SUM(a[i]);
  *(volatile float*)out = s; /* keeps the loop from being optimised away */
  return NULL;
}

int main(int argc, char** argv) {
  const int threads = argc > 1 ? atoi(argv[1]) : 1;
  if (threads < 1 || threads > 256) return 2;
  pthread_t* th = malloc(sizeof(pthread_t) * threads);
  float* sink = malloc(sizeof(float) * threads);
  const double t0 = now();
  for (int i = 0; i < threads; i++) pthread_create(&th[i], NULL, run, &sink[i]);
  for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
  const double s = now() - t0;
  const double flop = (double)threads * ITERS * ACC * LANES * 2;
  printf("{\"gflops\": %.1f, \"threads\": %d, \"isa\": \"%s\"}\n", flop / s / 1e9, threads, ISA);
  return 0;
}
