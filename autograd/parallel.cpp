// dgm/autograd/parallel.cpp — see parallel.h.
#include "autograd/parallel.h"

#include <algorithm>
#include <exception>
#include <thread>
#include <vector>

#include "autograd/runtime.h"

namespace dgm::runtime {

namespace {
// Starting a thread costs tens of microseconds; a chunk should be worth
// milliseconds of work (at ~100 GFLOP/s, 20 MFLOP is 0.2 ms).
constexpr double kMinFlopsPerChunk = 20e6;
// An elementwise pass reads and writes ~12 bytes a value: 256k values are
// ~0.1-0.3 ms of memory traffic, against ~30 us to start a thread.
constexpr int64_t kMinValuesPerChunk = int64_t(1) << 18;
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
  OneBlasThread one;  // each chunk's GEMMs run single-threaded, side by side
  std::vector<std::exception_ptr> errors(static_cast<size_t>(chunks));
  auto body = [&](int c) {
    try {
      auto [b, e] = range(c);
      f(b, e, c);
    } catch (...) {
      errors[static_cast<size_t>(c)] = std::current_exception();
    }
  };
  std::vector<std::thread> workers;
  for (int c = 1; c < chunks; ++c) workers.emplace_back(body, c);
  body(0);
  for (auto& t : workers) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

int range_pieces(int64_t n, int64_t values) {
  if (n * values < 2 * kMinValuesPerChunk) return 1;
  const int64_t by_size = n * values / kMinValuesPerChunk;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>({blas_threads(), by_size, n})));
}

}  // namespace dgm::runtime
