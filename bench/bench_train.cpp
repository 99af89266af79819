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
#include "autograd/kernels.h"
#include "autograd/nn.h"
#include "autograd/ops.h"
#include "autograd/optim.h"
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

// One training step = zero_grad + forward + backward + Adam step, as the reference.
template <class Loss>
void train_bench(const std::string& name, double mflop, nn::Module& model, Loss loss) {
  optim::Adam opt(model.parameters(), 1e-3);
  bench(name, mflop, [&] {
    opt.zero_grad();
    Tensor l = loss();
    l.backward();
    opt.step();
  });
}

// a. MLP VAE on 784-d binary data: 784-400-(20, 20), 20-400-784, Bernoulli decoder.
struct VAE : nn::Module {
  std::shared_ptr<nn::Linear> fc1, fc21, fc22, fc3, fc4;
  explicit VAE(Generator& g) {
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(784, 400, g));
    fc21 = register_module("fc21", std::make_shared<nn::Linear>(400, 20, g));
    fc22 = register_module("fc22", std::make_shared<nn::Linear>(400, 20, g));
    fc3 = register_module("fc3", std::make_shared<nn::Linear>(20, 400, g));
    fc4 = register_module("fc4", std::make_shared<nn::Linear>(400, 784, g));
  }
  Tensor loss(const Tensor& x, Generator& g) {
    Tensor h = relu(fc1->forward(x));
    Tensor mu = fc21->forward(h), logvar = fc22->forward(h);
    Tensor z = mu + g.normal(mu.shape()) * exp(logvar * 0.5);
    Tensor logits = fc4->forward(relu(fc3->forward(z)));
    Tensor bce = binary_cross_entropy_with_logits(logits, x, Reduction::Sum);
    Tensor kl = sum(1.0 + logvar - square(mu) - exp(logvar)) * -0.5;
    return (bce + kl) / static_cast<double>(x.size(0));
  }
};

// b. MADE: masked 784-500-500-784 with random hidden degrees.
struct MADE : nn::Module {
  std::shared_ptr<nn::MaskedLinear> l1, l2, l3;
  explicit MADE(Generator& g) {
    const int64_t D = 784, H = 500;
    std::vector<int64_t> m_in(D), m1(H), m2(H);
    for (int64_t i = 0; i < D; ++i) m_in[i] = i + 1;
    for (auto& m : m1) m = g.randint(1, D);
    for (auto& m : m2) m = g.randint(1, D);
    auto mask = [](const std::vector<int64_t>& out, const std::vector<int64_t>& in, bool strict) {
      Tensor t = Tensor::empty({int64_t(out.size()), int64_t(in.size())});
      float* p = t.data<float>();
      for (size_t o = 0; o < out.size(); ++o)
        for (size_t i = 0; i < in.size(); ++i) p[o * in.size() + i] = strict ? out[o] > in[i] : out[o] >= in[i];
      return t;
    };
    l1 = register_module("l1", std::make_shared<nn::MaskedLinear>(D, H, mask(m1, m_in, false), g));
    l2 = register_module("l2", std::make_shared<nn::MaskedLinear>(H, H, mask(m2, m1, false), g));
    l3 = register_module("l3", std::make_shared<nn::MaskedLinear>(H, D, mask(m_in, m2, true), g));
  }
  Tensor loss(const Tensor& x) {
    Tensor logits = l3->forward(relu(l2->forward(relu(l1->forward(x)))));
    return binary_cross_entropy_with_logits(logits, x, Reduction::Sum) / static_cast<double>(x.size(0));
  }
};

// c. PixelCNN: type-A 7x7 masked conv to 64 channels, five residual type-B 3x3 blocks, 1x1 conv.
struct PixelCNN : nn::Module {
  std::shared_ptr<nn::MaskedConv2d> in_a;
  std::vector<std::shared_ptr<nn::MaskedConv2d>> blocks;
  std::shared_ptr<nn::Conv2d> out;
  explicit PixelCNN(Generator& g, int64_t C = 64, int nblocks = 5) {
    in_a = register_module("inA", std::make_shared<nn::MaskedConv2d>(1, C, 7, nn::MaskType::A, g));
    for (int i = 0; i < nblocks; ++i)
      blocks.push_back(register_module("b" + std::to_string(i), std::make_shared<nn::MaskedConv2d>(C, C, 3, nn::MaskType::B, g)));
    out = register_module("out", std::make_shared<nn::Conv2d>(C, 1, 1, g));
  }
  Tensor loss(const Tensor& x) {
    Tensor h = in_a->forward(x);
    for (auto& b : blocks) h = h + b->forward(relu(h));
    Tensor logits = out->forward(relu(h));
    return binary_cross_entropy_with_logits(logits, x, Reduction::Sum) / static_cast<double>(x.size(0));
  }
};

// d. RealNVP in 2-D: 8 affine couplings, each an MLP 2-64-64-2 on the masked input.
struct RealNVP2D : nn::Module {
  std::vector<std::shared_ptr<nn::Sequential>> nets;
  std::vector<Tensor> masks;
  explicit RealNVP2D(Generator& g, int L = 8) {
    for (int i = 0; i < L; ++i) {
      nets.push_back(register_module("c" + std::to_string(i), nn::mlp({2, 64, 64, 2}, g)));
      Tensor m = Tensor::zeros({1, 2});
      m.data<float>()[i % 2] = 1;
      masks.push_back(m);
    }
  }
  Tensor loss(const Tensor& x0) {
    Tensor x = x0;
    Tensor logdet = Tensor::zeros({x.size(0)});
    for (size_t i = 0; i < nets.size(); ++i) {
      const int64_t keep = static_cast<int64_t>(i % 2), tr = 1 - keep;
      Tensor st = nets[i]->forward(x * masks[i]);
      Tensor s = tanh(select(st, 1, 0));
      Tensor t = select(st, 1, 1);
      Tensor ytr = select(x, 1, tr) * exp(s) + t;
      Tensor xk = select(x, 1, keep);
      x = keep == 0 ? stack({xk, ytr}, 1) : stack({ytr, xk}, 1);
      logdet = logdet + s;
    }
    Tensor nll = sum(square(x), {1}) * 0.5 + std::log(2 * M_PI) - logdet;
    return mean(nll);
  }
};

// e. DDPM in 2-D: eps-prediction MLP 3-128-128-128-2, T = 1000, linear betas 1e-4..0.02.
struct DDPM2D : nn::Module {
  std::shared_ptr<nn::Sequential> net;
  Tensor sqrt_ab, sqrt_1mab;
  int64_t T = 1000;
  explicit DDPM2D(Generator& g) {
    net = register_module("net", nn::mlp({3, 128, 128, 128, 2}, g));
    std::vector<float> a(T), b(T);
    double ab = 1;
    for (int64_t t = 0; t < T; ++t) {
      ab *= 1 - (1e-4 + (0.02 - 1e-4) * static_cast<double>(t) / static_cast<double>(T - 1));
      a[t] = static_cast<float>(std::sqrt(ab));
      b[t] = static_cast<float>(std::sqrt(1 - ab));
    }
    sqrt_ab = Tensor::from_vector(a, {T});
    sqrt_1mab = Tensor::from_vector(b, {T});
  }
  Tensor loss(const Tensor& x0, Generator& g) {
    const int64_t B = x0.size(0);
    Tensor t = g.randint({B}, 0, T);
    Tensor eps = g.normal(x0.shape());
    Tensor xt = unsqueeze(index_select(sqrt_ab, 0, t), 1) * x0 + unsqueeze(index_select(sqrt_1mab, 0, t), 1) * eps;
    Tensor inp = concat({xt, unsqueeze(t.to(DType::Float32) / static_cast<double>(T), 1)}, 1);
    return mse_loss(net->forward(inp), eps);
  }
};

void models(const std::function<bool(const std::string&)>& want) {
  Generator g(0);
  Tensor bin784 = g.bernoulli({128, 784}, 0.5);
  if (want("vae")) {
    VAE m(g);
    train_bench("a_vae_b128", 419.84, m, [&] { return m.loss(bin784, g); });
  }
  if (want("made")) {
    MADE m(g);
    train_bench("b_made_b128", 693.76, m, [&] { return m.loss(bin784); });
  }
  if (want("pixelcnn")) {
    PixelCNN m(g);
    Tensor x = g.bernoulli({32, 1, 28, 28}, 0.5);
    train_bench("c_pixelcnn_b32", 28069.658624, m, [&] { return m.loss(x); });
  }
  if (want("realnvp")) {
    RealNVP2D m(g);
    Tensor x = g.normal({512, 2});
    train_bench("d_realnvp2d_b512", 106.82368, m, [&] { return m.loss(x); });
  }
  if (want("ddpm")) {
    DDPM2D m(g);
    Tensor x = g.normal({512, 2});
    train_bench("e_ddpm2d_b512", 102.23616, m, [&] { return m.loss(x, g); });
  }
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

// h_*_gemm_floor: only the BLAS products of one training step, with the
// shapes and count the step makes (through kernels::gemm, as the engine calls
// them), nothing else: no engine, no elementwise work, no optimizer. A step
// cannot be faster than its floor; `bars`-style ratios below floor/libtorch
// are out of reach for any engine on the same BLAS kernel.
struct Gemm {
  bool ta, tb;
  int64_t m, n, k;
  int repeat = 1;
};
void gemm_floor(const char* name, const std::vector<Gemm>& calls) {
  double mflop = 0;
  size_t a_size = 0, b_size = 0, c_size = 0;
  for (const Gemm& c : calls) {
    mflop += 2e-6 * static_cast<double>(c.m * c.n * c.k) * c.repeat;
    a_size = std::max(a_size, static_cast<size_t>(c.m * c.k));
    b_size = std::max(b_size, static_cast<size_t>(c.k * c.n));
    c_size = std::max(c_size, static_cast<size_t>(c.m * c.n));
  }
  Generator gen(0);
  Tensor a = gen.normal({static_cast<int64_t>(a_size)}), b = gen.normal({static_cast<int64_t>(b_size)});
  Tensor c = Tensor::zeros({static_cast<int64_t>(c_size)});
  bench(name, mflop, [&] {
    for (const Gemm& g : calls)
      for (int r = 0; r < g.repeat; ++r)
        kernels::gemm(g.ta, g.tb, g.m, g.n, g.k, 1.0, a.data<float>(), g.ta ? g.m : g.k, b.data<float>(),
                      g.tb ? g.k : g.n, 0.0, c.data<float>(), g.n, DType::Float32);
  });
}

// A Linear layer y = x W^T (W [out, in]) on a batch of B: forward, input
// gradient (unless it is the first layer), weight gradient.
void add_linear(std::vector<Gemm>& calls, int64_t B, int64_t in, int64_t out, bool first) {
  calls.push_back({false, true, B, out, in});
  if (!first) calls.push_back({false, false, B, in, out});
  calls.push_back({true, false, out, in, B});
}

void floors() {
  std::vector<Gemm> ddpm;  // 3-128-128-128-2 on 512 points
  add_linear(ddpm, 512, 3, 128, true);
  add_linear(ddpm, 512, 128, 128, false);
  add_linear(ddpm, 512, 128, 128, false);
  add_linear(ddpm, 512, 128, 2, false);
  gemm_floor("h_ddpm2d_b512_gemm_floor", ddpm);
  // PixelCNN b32 on 28x28 (L = 784 pixels), per image, as conv2d runs it:
  // forward W[o, cT] @ cols[cT, L], input gradient W^T @ g, weight gradient
  // cols @ g^T; type-A 7x7 (24 taps, 1 channel, no input gradient), five
  // type-B 3x3 (5 taps x 64 channels), the 1x1 output (64 -> 1).
  const int N = 32;
  const int64_t L = 784;
  std::vector<Gemm> px = {{false, false, 64, L, 24, N}, {false, true, 24, 64, L, N}};
  for (int blk = 0; blk < 5; ++blk) {
    px.push_back({false, false, 64, L, 320, N});
    px.push_back({true, false, 320, L, 64, N});
    px.push_back({false, true, 320, 64, L, N});
  }
  px.push_back({false, false, 1, L, 64, N});
  px.push_back({true, false, 64, L, 1, N});
  px.push_back({false, true, 64, 1, L, N});
  gemm_floor("h_pixelcnn_b32_gemm_floor", px);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("dgm training-step benchmarks, comparable row by row with ../shared/bench/torch_ref.cpp",
               "bench_train");
  std::string only_list;
  int blas_threads = -1;
  app.add_option("--threads", g_threads, "Threads (OpenBLAS)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--blas-threads", blas_threads, "OpenBLAS threads (default: --threads)");
  app.add_option("--only", only_list, "Comma-separated workloads: vae,made,pixelcnn,realnvp,ddpm,overhead,matmul,floor");
  app.add_flag("--quick", g_quick, "Short timings (a smoke test)");
  CLI11_PARSE(app, argc, argv);

  std::set<std::string> only;
  std::stringstream ss(only_list);
  for (std::string tok; std::getline(ss, tok, ',');)
    if (!tok.empty()) only.insert(tok);
  const std::set<std::string> known = {"vae", "made", "pixelcnn", "realnvp", "ddpm", "overhead", "matmul", "floor"};
  for (auto& w : only)
    if (!known.count(w)) {
      std::fprintf(stderr, "bench_train: unknown workload '%s' (known: vae, made, pixelcnn, realnvp, ddpm, overhead, matmul, floor)\n", w.c_str());
      return 2;
    }
  auto want = [&](const std::string& n) { return only.empty() || only.count(n); };

  runtime::set_num_threads(blas_threads > 0 ? blas_threads : g_threads);
  std::printf("# dgm engine; openblas corename=%s (%s) threads=%d\n", runtime::blas_core().c_str(),
              runtime::blas_core_note().c_str(), runtime::blas_threads());
  std::printf("# threads=%d quick=%d\n", g_threads, static_cast<int>(g_quick));
  std::printf("workload\tthreads\tmedian\tp10\tp90\tsteps\tmflop_per_step\tgflops\tunit\n");
  models(want);
  if (want("overhead")) overhead();
  if (want("matmul")) matmul512();
  if (want("floor")) floors();
  return 0;
}
