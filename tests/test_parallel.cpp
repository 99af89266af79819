// runtime::run_chunks and its thread pool: every chunk runs exactly once,
// with its own index, whatever the threads do around it (many calls in a
// row, calls after the pool has gone to sleep, calls from several threads at
// once, a call inside a chunk, an exception, a fork()).
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "helpers.h"

#include "autograd/parallel.h"
#include "autograd/runtime.h"

using namespace dgm;

namespace {
using test::Threads;

// Runs run_chunks over n items in `chunks` pieces and returns how often
// each item was visited and under which chunk index.
struct Visits {
  std::vector<int> count, chunk;
};
Visits visit(int64_t n, int chunks) {
  Visits v{std::vector<int>(static_cast<size_t>(n), 0), std::vector<int>(static_cast<size_t>(n), -1)};
  runtime::run_chunks(n, chunks, [&](int64_t b, int64_t e, int c) {
    for (int64_t i = b; i < e; ++i) {
      ++v.count[static_cast<size_t>(i)];
      v.chunk[static_cast<size_t>(i)] = c;
    }
  });
  return v;
}

// Each item once, chunk c covering [n c / chunks, n (c+1) / chunks).
void require_each_once(const Visits& v, int64_t n, int chunks) {
  for (int64_t i = 0; i < n; ++i) {
    REQUIRE(v.count[static_cast<size_t>(i)] == 1);
    const int c = v.chunk[static_cast<size_t>(i)];
    REQUIRE(n * c / chunks <= i);
    REQUIRE(i < n * (c + 1) / chunks);
  }
}
}  // namespace

TEST_CASE("run_chunks runs every chunk once with its own range, call after call", "[threads][parallel]") {
  Threads two(2);
  for (int round = 0; round < 2000; ++round) {
    const int64_t n = 1 + round % 37;
    const int chunks = 2 + round % 3;  // more chunks than threads too: the pool grows
    require_each_once(visit(n, chunks), n, chunks);
  }
}

TEST_CASE("run_chunks wakes pool threads that went to sleep", "[threads][parallel]") {
  Threads two(2);
  for (int round = 0; round < 20; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // longer than a pool thread spins
    require_each_once(visit(10, 2), 10, 2);
  }
}

TEST_CASE("run_chunks runs a chunk's own run_chunks on that thread", "[threads][parallel]") {
  Threads two(2);
  std::vector<std::atomic<int>> seen(16);
  runtime::run_chunks(4, 2, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i)
      runtime::run_chunks(4, 2, [&](int64_t b2, int64_t e2, int) {
        for (int64_t j = b2; j < e2; ++j) seen[static_cast<size_t>(i * 4 + j)]++;
      });
  });
  for (auto& s : seen) REQUIRE(s.load() == 1);
}

TEST_CASE("run_chunks called from several threads at once gives each caller its own results", "[threads][parallel]") {
  Threads two(2);
  std::atomic<int> failures{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t)
    callers.emplace_back([&, t] {
      for (int round = 0; round < 300; ++round) {
        const int64_t n = 5 + t + round % 11;
        std::vector<int64_t> sums(3, 0);
        runtime::run_chunks(n, 3, [&](int64_t b, int64_t e, int c) {
          for (int64_t i = b; i < e; ++i) sums[static_cast<size_t>(c)] += i + 1;
        });
        if (sums[0] + sums[1] + sums[2] != n * (n + 1) / 2) failures++;
      }
    });
  for (auto& c : callers) c.join();
  REQUIRE(failures.load() == 0);
}

TEST_CASE("run_chunks rethrows an exception thrown on a pool thread, and keeps working", "[threads][parallel]") {
  Threads two(2);
  auto throw_in_chunk_1 = [](int64_t, int64_t, int c) {
    if (c == 1) throw std::runtime_error("chunk 1 failed");
  };
  REQUIRE_THROWS_WITH(runtime::run_chunks(8, 2, throw_in_chunk_1), "chunk 1 failed");
  require_each_once(visit(8, 2), 8, 2);
}

TEST_CASE("run_chunks works in a child process after fork()", "[threads][parallel]") {
  // The child has none of the parent's pool threads; it must start its own
  // (a homework grader forks one child per exercise).
  Threads two(2);
  require_each_once(visit(8, 2), 8, 2);  // the parent's pool exists
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const Visits v = visit(8, 2);
    bool ok = true;
    for (int64_t i = 0; i < 8; ++i) ok = ok && v.count[static_cast<size_t>(i)] == 1 && v.chunk[static_cast<size_t>(i)] == (i < 4 ? 0 : 1);
    ::_exit(ok ? 0 : 1);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
}
