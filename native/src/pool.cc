// The fixed thread pool behind mp::parallel (see common.h).
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "common.h"

namespace mp {
namespace {

inline void spin_pause() {
#ifdef MP_X86
  _mm_pause();
#endif
}

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
    while (done_.load(std::memory_order_acquire) + mine < chunks) spin_pause();
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
        spin_pause();
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

}  // namespace

int pool_size() { return g_pool.size(); }
void pool_resize(int n) { g_pool.resize(std::max(1, std::min(n, 64))); }
void pool_run(int chunks, ChunkFn fn, void* ctx) { g_pool.run(chunks, fn, ctx); }

}  // namespace mp
