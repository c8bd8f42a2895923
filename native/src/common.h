// Shared by every op family: the thread pool, the one calling convention (Call) and errors.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define MP_X86 1
#endif

// A loop compiled for AVX-512, AVX2 and baseline x86-64, picked at load (target_clones): the
// rest of the sources compile for baseline (SSE2). Only element-wise loops get it, with no
// reassociation and no fused multiply-adds (-ffp-contract=off), so every ISA gives the
// same bits.
#ifdef MP_X86
#define MP_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MP_CLONES
#endif

namespace mp {

// A kernel's refusal (bad sizes, an offset outside the heap, an unknown code): the N-API
// glue turns it into a JS Error naming the op. Nothing has been written when it is thrown.
struct OpError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
[[noreturn]] inline void fail(const std::string& msg) { throw OpError(msg); }

// ---------------------------------------------------------------------------------------
// Thread pool (pool.cc). A job is n fixed chunks claimed from a shared counter: a
// descheduled worker never stalls a job (the caller runs the rest). Chunk boundaries are
// fixed by the job, so results never depend on which thread ran which chunk.

typedef void (*ChunkFn)(void*, int chunk, int tid);
int pool_size();
void pool_resize(int n);
void pool_run(int chunks, ChunkFn fn, void* ctx);

// f(chunk, tid) for chunk in [0, chunks): tid < pool_size() indexes per-thread scratch.
template <class F>
void parallel(int chunks, F&& f) {
  struct Ctx { std::remove_reference_t<F>* f; };
  Ctx c{&f};
  pool_run(chunks, [](void* p, int chunk, int tid) { (*static_cast<Ctx*>(p)->f)(chunk, tid); }, &c);
}

// f(i0, i1) over [0, n) in fixed chunks of elements (element-wise passes).
constexpr long EW_CHUNK = 16384;
template <class F>
void for_chunks(long n, F&& f) {
  const long chunks = (n + EW_CHUNK - 1) / EW_CHUNK;
  if (chunks <= 1) { if (n > 0) f(0L, n); return; }
  parallel((int)chunks, [&](int c, int) { const long i0 = (long)c * EW_CHUNK; f(i0, std::min(n, i0 + EW_CHUNK)); });
}

// ---------------------------------------------------------------------------------------
// The calling convention of every op: call(code, heap, args Float64Array). `arg` holds the
// op's fixed arguments (its arity, from the op table), `tail` any variable-length part in
// groups of the table's `group` (matmul's offset triples, Adam's per-tensor entries).
// Offsets and sizes are in floats; -1 is "no operand" where an operand is optional.

struct Call {
  const char* op;
  float* heap;
  size_t heap_floats;
  const double* arg;
  const double* tail;
  size_t tail_len;

  long i(int k) const { return (long)arg[k]; }
  // `count` floats at float offset `off`, all inside the heap; throws otherwise.
  float* span(double off, double count) const {
    if (!(off >= 0) || !(count >= 0) || off + count > (double)heap_floats) fail(std::string(op) + ": operand outside the heap");
    return heap + (size_t)off;
  }
  // As span, or null when off is -1 (an absent optional operand).
  float* optional(double off, double count) const { return off == -1 ? nullptr : span(off, count); }
  // A code of an enum with `count` members (the addon's `enums`), or a clear refusal.
  int code(int k, int count, const char* what) const {
    const double v = arg[k];
    if (!(v >= 0 && v < count && v == (double)(int)v)) {
      fail(std::string(op) + ": unknown " + what + " code " + (v == (double)(long long)v ? std::to_string((long long)v) : std::to_string(v)));
    }
    return (int)v;
  }
};

typedef void (*OpFn)(const Call&);

}  // namespace mp
