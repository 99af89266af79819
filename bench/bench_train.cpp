// bench/bench_train.cpp — dgm's side of the libtorch comparison.
//
// The same workloads, flags and output as ../shared/bench/torch_ref.cpp:
// one row per workload, tab-separated
//   workload threads median p10 p90 steps mflop_per_step gflops unit
// and comment lines starting with '#'. Timing follows the reference exactly:
// a warm-up, then at least 20 steps and 2 s (5 steps and 0.3 s with --quick);
// median, p10 and p90 of the per-step wall time.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "autograd/graph.h"
#include "autograd/ops.h"
#include "autograd/random.h"
#include "autograd/runtime.h"

using namespace dgm;

namespace {

bool g_quick = false;
int g_threads = 1;

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void bench(const std::string& name, double mflop, const std::function<void()>& step, double per_unit = 1.0,
           const char* unit = "ms/step") {
  const double warm_t = g_quick ? 0.1 : 0.5;
  const int warm_n = g_quick ? 2 : 5;
  const int min_steps = g_quick ? 5 : 20;
  const double min_time = g_quick ? 0.3 : 2.0;
  double t0 = now_s();
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
  auto q = [&](double p) { return ts[std::min(ts.size() - 1, static_cast<size_t>(p * ts.size()))]; };
  const double med = q(0.5);
  const double gflops = mflop > 0 ? mflop * 1e6 / med * 1e-9 : 0.0;
  std::printf("%s\t%d\t%.4f\t%.4f\t%.4f\t%zu\t%.2f\t%.2f\t%s\n", name.c_str(), g_threads, med * 1e3 / per_unit,
              q(0.1) * 1e3 / per_unit, q(0.9) * 1e3 / per_unit, ts.size(), mflop, gflops, unit);
  std::fflush(stdout);
}

// f_*: 1000 tiny elementwise ops (add, mul, tanh cycling) on 1x16 tensors:
// the per-op cost of the engine itself, not of arithmetic.
void overhead() {
  const int N = 1000;
  Generator gen(0);
  Tensor x = gen.normal({1, 16}).set_requires_grad(true);
  Tensor c_add = gen.normal({1, 16}) * 0.1;
  Tensor c_mul = gen.uniform({1, 16}) * 0.5 + 0.75;
  auto chain = [&] {
    Tensor y = x;
    for (int i = 0; i < N; ++i) {
      switch (i % 3) {
        case 0: y = y + c_add; break;
        case 1: y = y * c_mul; break;
        default: y = tanh(y); break;
      }
    }
    return y;
  };
  bench("f_overhead_fwd_only", 0, [&] {
    NoGradGuard ng;
    Tensor y = chain();
  }, N / 1000.0, "us/op");
  bench("f_overhead_fwd_graph", 0, [&] { Tensor y = chain(); }, N / 1000.0, "us/op");
  bench("f_overhead_fwd_bwd", 0, [&] {
    x.zero_grad();
    Tensor y = chain();
    sum(y).backward();
  }, N / 1000.0, "us/op");
}

// g_*: one 512x512 matmul, forward (no graph) and forward + backward.
void matmul512() {
  Generator gen(0);
  Tensor A = gen.normal({512, 512}).set_requires_grad(true);
  Tensor B = gen.normal({512, 512}).set_requires_grad(true);
  Tensor G = gen.normal({512, 512});
  bench("g_matmul512_fwd", 268.435456, [&] {
    NoGradGuard ng;
    Tensor C = mm(A, B);
  });
  bench("g_matmul512_fwd_bwd", 805.306368, [&] {
    A.zero_grad();
    B.zero_grad();
    Tensor C = mm(A, B);
    C.backward(G);
  });
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("dgm training-step benchmarks, comparable row by row with ../shared/bench/torch_ref.cpp",
               "bench_train");
  std::string only_list;
  int blas_threads = -1;
  app.add_option("--threads", g_threads, "Threads (OpenBLAS)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--blas-threads", blas_threads, "OpenBLAS threads (default: --threads)");
  app.add_option("--only", only_list, "Comma-separated workloads: vae,made,pixelcnn,realnvp,ddpm,overhead,matmul");
  app.add_flag("--quick", g_quick, "Short timings (a smoke test)");
  CLI11_PARSE(app, argc, argv);

  std::set<std::string> only;
  std::stringstream ss(only_list);
  for (std::string tok; std::getline(ss, tok, ',');)
    if (!tok.empty()) only.insert(tok);
  const std::set<std::string> known = {"vae", "made", "pixelcnn", "realnvp", "ddpm", "overhead", "matmul"};
  for (auto& w : only)
    if (!known.count(w)) {
      std::fprintf(stderr, "bench_train: unknown workload '%s' (known: vae, made, pixelcnn, realnvp, ddpm, overhead, matmul)\n", w.c_str());
      return 2;
    }
  auto want = [&](const std::string& n) { return only.empty() || only.count(n); };

  runtime::set_num_threads(blas_threads > 0 ? blas_threads : g_threads);
  std::printf("# dgm engine; openblas corename=%s (%s) threads=%d\n", runtime::blas_core().c_str(),
              runtime::blas_core_note().c_str(), runtime::blas_threads());
  std::printf("# threads=%d quick=%d\n", g_threads, static_cast<int>(g_quick));
  std::printf("workload\tthreads\tmedian\tp10\tp90\tsteps\tmflop_per_step\tgflops\tunit\n");
  for (const char* w : {"vae", "made", "pixelcnn", "realnvp", "ddpm"})
    if (want(w) && !only.empty()) std::printf("# %s: not implemented yet (the model workloads come with the speed issue)\n", w);
  if (want("overhead")) overhead();
  if (want("matmul")) matmul512();
  return 0;
}
