// dgm/autograd/parallel.cpp — see parallel.h.
#include "autograd/parallel.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <exception>
#include <mutex>
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
// runs body(0) on the caller and body(c) on pool thread c, 1 <= c < chunks,
// and returns when all have. A pool thread that finished spins a little
// while before it sleeps, because the next call usually comes within
// microseconds (the next layer's convolution).
class Pool {
 public:
  void run(int chunks, const std::function<void(int)>& body) {
    grow(chunks - 1);
    body_ = &body;
    remaining_.store(chunks - 1, std::memory_order_relaxed);
    for (int c = 1; c < chunks; ++c) {
      Worker& w = workers_[static_cast<size_t>(c - 1)];
      w.turn.fetch_add(1, std::memory_order_release);
      w.turn.notify_one();
    }
    body(0);
    for (int left = remaining_.load(std::memory_order_acquire); left != 0;)
      left = wait_change(remaining_, left, kCallerSpin);
  }

 private:
  struct Worker {
    std::atomic<uint32_t> turn{0};  // raised by one for each chunk handed to this thread
  };

  void grow(int n) {
    while (static_cast<int>(workers_.size()) < n) {
      Worker& w = workers_.emplace_back();  // a deque: earlier workers stay where they are
      const int c = static_cast<int>(workers_.size());
      std::thread([this, &w, c] { serve(w, c); }).detach();  // the pool lives as long as the process
    }
  }

  void serve(Worker& w, int c) {
    for (uint32_t seen = 0;;) {
      seen = wait_change(w.turn, seen, kWorkerSpin);
      (*body_)(c);
      if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) remaining_.notify_one();
    }
  }

  std::deque<Worker> workers_;
  const std::function<void(int)>* body_ = nullptr;
  std::atomic<int> remaining_{0};
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
  const int threads = blas_threads();
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
    OneBlasThread one;  // each chunk's GEMMs run single-threaded, side by side
    pool().run(chunks, body);
  }
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

int range_pieces(int64_t n, int64_t values) {
  if (n * values < 2 * kMinValuesPerChunk) return 1;
  const int64_t by_size = n * values / kMinValuesPerChunk;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>({blas_threads(), by_size, n})));
}

}  // namespace dgm::runtime
