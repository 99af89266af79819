// bench/timing.h — the one timing rule of bench_train and of the project's
// libtorch twins (bench/torch_*_ref.cpp), the same as the shared reference
// ../shared/bench/torch_ref.cpp: a warm-up (at least 5 steps and 0.5 s), then
// at least 20 steps and 2 s (--quick: 2, 0.1 s, 5, 0.3 s); one TSV row
//   workload threads median p10 p90 steps mflop_per_step gflops unit
// Also the twins' shared command line (--threads, --quick, --only) and the
// column header. Header-only and free of dgm, so a libtorch program can include it.
#pragma once

#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace bench {

inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

inline void time_and_print(const std::string& name, int threads, bool quick, double mflop, const std::function<void()>& step,
                           double per_unit = 1.0, const char* unit = "ms/step") {
  const double warm_t = quick ? 0.1 : 0.5, min_time = quick ? 0.3 : 2.0;
  const int warm_n = quick ? 2 : 5, min_steps = quick ? 5 : 20;
  const double t0 = now_s();
  for (int i = 0; i < warm_n || now_s() - t0 < warm_t; ++i) step();
  std::vector<double> ts;
  const double start = now_s();
  while (static_cast<int>(ts.size()) < min_steps || now_s() - start < min_time) {
    const double a = now_s();
    step();
    ts.push_back(now_s() - a);
    if (ts.size() >= 5000) break;
  }
  std::sort(ts.begin(), ts.end());
  auto q = [&](double p) { return ts[std::min(ts.size() - 1, static_cast<size_t>(p * static_cast<double>(ts.size())))]; };
  const double med = q(0.5);
  const double gflops = mflop > 0 ? mflop * 1e6 / med * 1e-9 : 0.0;
  std::printf("%s\t%d\t%.4f\t%.4f\t%.4f\t%zu\t%.2f\t%.2f\t%s\n", name.c_str(), threads, med * 1e3 / per_unit,
              q(0.1) * 1e3 / per_unit, q(0.9) * 1e3 / per_unit, ts.size(), mflop, gflops, unit);
  std::fflush(stdout);
}

// The column header of every benchmark's output.
inline void print_columns() { std::printf("workload\tthreads\tmedian\tp10\tp90\tsteps\tmflop_per_step\tgflops\tunit\n"); }

// The command line of the project's libtorch twins: --threads T, --quick, --only a,b
// (the shared reference's flags).
struct TwinArgs {
  int threads = 1;
  bool quick = false;
  std::set<std::string> only;
  bool wants(const std::string& workload) const { return only.empty() || only.count(workload) > 0; }
};
inline TwinArgs parse_twin_args(int argc, char** argv) {
  TwinArgs t;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) t.threads = std::atoi(argv[++i]);
    else if (a == "--quick") t.quick = true;
    else if (a == "--only" && i + 1 < argc) {
      std::stringstream ss(argv[++i]);
      for (std::string tok; std::getline(ss, tok, ',');) t.only.insert(tok);
    }
  }
  return t;
}
// OpenBLAS's thread count, through the symbol the process has loaded (libtorch's BLAS), if any.
inline void set_openblas_threads(int n) {
  using set_fn = void (*)(int);
  if (auto f = reinterpret_cast<set_fn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) f(n);
}

}  // namespace bench
