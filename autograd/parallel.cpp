// dgm/autograd/parallel.cpp — see parallel.h.
#include "autograd/parallel.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "autograd/runtime.h"

namespace dgm::runtime {

namespace {
// Handing a chunk to a pool thread costs a few microseconds; a chunk should
// be worth a few hundred (at ~50 GFLOP/s, 2 MFLOP is 40 us; the convolutions
// near this size are dominated by their im2col copies, ~1 ms).
constexpr double kMinFlopsPerChunk = 2e6;
// An elementwise pass reads and writes ~12 bytes a value: 256k values are
// ~0.1-0.3 ms of memory traffic.
constexpr int64_t kMinValuesPerChunk = int64_t(1) << 18;
// One chunk per thread. Measured 2026-12-02 (docs/performance.md): four smaller chunks per thread,
// handed out the same way, made the 2-thread image steps 7-20% slower on a quiet machine and
// bought nothing more on a busy one.

using Clock = std::chrono::steady_clock;
// How long a pool thread spins for its next chunk before it sleeps, and how
// long the caller spins for the others to finish (they started together and
// got equal shares, so usually not long).
constexpr auto kWorkerSpin = std::chrono::microseconds(200);
constexpr auto kCallerSpin = std::chrono::microseconds(2000);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Waits until `value` differs from `old`: spinning for `spin`, then asleep in
// the kernel (std::atomic::wait, a futex on Linux).
template <class T>
T wait_change(const std::atomic<T>& value, T old, Clock::duration spin) {
  const auto until = Clock::now() + spin;
  for (int i = 1;; ++i) {
    const T v = value.load(std::memory_order_acquire);
    if (v != old) return v;
    cpu_relax();
    if (i % 64 == 0 && Clock::now() > until) break;
  }
  for (;;) {
    value.wait(old, std::memory_order_acquire);
    const T v = value.load(std::memory_order_acquire);
    if (v != old) return v;
  }
}

// Threads started once and kept, each waiting for its turn. run(chunks, body)
// hands out the chunk indices 0..chunks-1 one at a time: the caller and the
// pool threads each take the next index that nobody has taken (an atomic
// counter) until none is left, and run() returns when every chunk has run.
// So a chunk never waits for a thread that has not started: on a busy
// machine, where another process holds a core and a pool thread is not
// scheduled for a few milliseconds, the caller runs that thread's chunks
// itself. Which thread runs chunk c does not change what it computes (its
// range and index are fixed), so the results do not either.
//
// A pool thread that finished spins a little while before it sleeps, because
// the next call usually comes within microseconds (the next layer's
// convolution).
class Pool {
 public:
  // `threads` threads (the caller and threads - 1 pool threads) share `chunks` chunks.
  void run(int chunks, int threads, const std::function<void(int)>& body) {
    if (chunks > 0xffff) throw std::logic_error("run_chunks: at most 65535 chunks");
    const int helpers = std::min(chunks, threads) - 1;
    grow(helpers);
    body_ = &body;
    done_.store(0, std::memory_order_relaxed);
    generation_ = (generation_ + 1) & 0xffffffffu;
    work_.store(pack(generation_, chunks, 0), std::memory_order_release);
    for (int c = 0; c < helpers; ++c) {
      Worker& w = workers_[static_cast<size_t>(c)];
      w.turn.fetch_add(1, std::memory_order_release);
      w.turn.notify_one();
    }
    work(generation_);
    for (int finished = done_.load(std::memory_order_acquire); finished != chunks;)
      finished = wait_change(done_, finished, kCallerSpin);
  }

 private:
  struct Worker {
    std::atomic<uint32_t> turn{0};  // raised by one for each run this thread is asked to help with
  };

  // The run's state in one word, so that a claim (a compare-and-swap) sees the
  // generation, the chunk count and the next free chunk together: a thread that
  // wakes late, after its run ended, cannot claim a chunk of the next one.
  static uint64_t pack(uint64_t generation, uint64_t chunks, uint64_t next) { return generation << 32 | chunks << 16 | next; }

  // Takes and runs chunks of `generation` until none is left.
  void work(uint64_t generation) {
    for (uint64_t state = work_.load(std::memory_order_acquire);;) {
      const uint64_t chunks = state >> 16 & 0xffff, next = state & 0xffff;
      if (state >> 32 != generation || next >= chunks) return;
      if (!work_.compare_exchange_weak(state, state + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
      (*body_)(static_cast<int>(next));
      if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == static_cast<int>(chunks)) done_.notify_one();
      state = work_.load(std::memory_order_acquire);
    }
  }

  void grow(int n) {
    while (static_cast<int>(workers_.size()) < n) {
      Worker& w = workers_.emplace_back();  // a deque: earlier workers stay where they are
      std::thread([this, &w] { serve(w); }).detach();  // the pool lives as long as the process
    }
  }

  void serve(Worker& w) {
    for (uint32_t seen = 0;;) {
      seen = wait_change(w.turn, seen, kWorkerSpin);
      work(work_.load(std::memory_order_acquire) >> 32);
    }
  }

  std::deque<Worker> workers_;
  const std::function<void(int)>* body_ = nullptr;
  uint64_t generation_ = 0;          // the caller's own count of runs (one run at a time: pool_mutex)
  std::atomic<uint64_t> work_{0};    // pack(generation, chunks, next free chunk)
  std::atomic<int> done_{0};         // chunks of this run finished
};

std::mutex pool_mutex;          // one run at a time
thread_local bool in_chunk = false;

// The process's pool, started on first use. After fork() the child has none
// of the parent's threads: it starts its own (the parent's is left alone).
Pool& pool() {
  static Pool* p = nullptr;
  static pid_t owner = 0;
  if (!p || owner != ::getpid()) {
    p = new Pool;  // never deleted: its threads sleep until the process ends
    owner = ::getpid();
  }
  return *p;
}
}  // namespace

int parallel_chunks(int64_t n, double flops) {
  const int threads = num_threads();
  if (threads <= 1 || n <= 1) return 1;
  const int64_t by_work = static_cast<int64_t>(flops / kMinFlopsPerChunk);
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>({threads, n, by_work})));
}

void run_chunks(int64_t n, int chunks, const std::function<void(int64_t, int64_t, int)>& f) {
  if (chunks <= 1) {
    f(0, n, 0);
    return;
  }
  auto range = [&](int c) { return std::pair<int64_t, int64_t>{n * c / chunks, n * (c + 1) / chunks}; };
  std::vector<std::exception_ptr> errors(static_cast<size_t>(chunks));
  const std::function<void(int)> body = [&](int c) {
    const bool outer = in_chunk;
    in_chunk = true;
    try {
      auto [b, e] = range(c);
      f(b, e, c);
    } catch (...) {
      errors[static_cast<size_t>(c)] = std::current_exception();
    }
    in_chunk = outer;
  };
  // Inside a chunk, or while another thread's chunks run: the chunks in
  // order on this thread (each still with its own index, so its own scratch
  // and partial sums: the same result).
  std::unique_lock<std::mutex> lock(pool_mutex, std::defer_lock);
  if (in_chunk || !lock.try_lock()) {
    for (int c = 0; c < chunks; ++c) body(c);
  } else {
    const int threads = num_threads();
    OneThread one;  // a chunk's own products and passes are not cut again
    pool().run(chunks, threads, body);
  }
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

int range_pieces(int64_t n, int64_t values) {
  if (n * values < 2 * kMinValuesPerChunk) return 1;
  const int64_t by_size = n * values / kMinValuesPerChunk;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>({num_threads(), by_size, n})));
}

}  // namespace dgm::runtime
