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
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "bench/timing.h"
#include "autograd/graph.h"
#include "autograd/kernels.h"
#include "autograd/nn.h"
#include "autograd/ops.h"
#include "autograd/optim.h"
#include "autograd/random.h"
#include "autograd/runtime.h"
#include "models/diffusion.h"
#include "models/flows.h"
#include "models/gan.h"
#include "models/made.h"
#include "models/recipes.h"
#include "models/sequence.h"
#include "models/registry.h"
#include "models/unet.h"
#include "models/pixelcnn.h"
#include "models/toolkit/distributions.h"
#include "models/vae.h"

using namespace dgm;

namespace {

bool g_quick = false;
int g_threads = 1;

void bench(const std::string& name, double mflop, const std::function<void()>& step, double per_unit = 1.0,
           const char* unit = "ms/step") {
  bench::time_and_print(name, g_threads, g_quick, mflop, step, per_unit, unit);
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

// The model workloads, each built from models/ exactly as lessons use them,
// with the sizes of the reference (../shared/bench/torch_ref.cpp):
//   a. VAE 784-400-(20, 20), decoder 20-400-784, Bernoulli, -ELBO
//   b. MADE masked 784-500-500-784, natural order, random hidden degrees
//   c. PixelCNN: type-A 7x7 to 64 channels, five residual type-B 3x3 blocks, 1x1 to logits
//   d. RealNVP in 2-D: 8 affine couplings, MLPs 2-64-64-2
//   e. DDPM in 2-D: eps-MLP 3-128-128-128-2, T = 1000, linear betas 1e-4..0.02, L_simple
//   i. RealNVP multi-scale image flow, lesson_flows's Fashion-MNIST architecture
//      (models::ImageFlowOptions defaults), batch 64 of dequantized 28x28 images;
//      its libtorch twin is bench/torch_flow_ref.cpp
//   j. DCGAN, lesson_gan's Fashion-MNIST networks (width 32, z 64, non-saturating
//      loss, Adam 2e-4 (0.5, 0.999)): one discriminator step on 64 real + 64
//      fake images, then one generator step; twin bench/torch_gan_ref.cpp
//   k. DDPM U-Net, lesson_diffusion's Fashion-MNIST architecture (widths 16, 32, 32,
//      GroupNorm(4), attention at 7x7, T = 1000, L_simple), batch 64 of 28x28;
//      its libtorch twin is bench/torch_diffusion_ref.cpp
//   o. the same U-Net evaluated once on a batch of 64 without a graph (NoGradGuard):
//      one step of DDPM or DDIM sampling; the same twin, under torch::NoGradGuard
//   p. the digits' PixelCNN (recipe digits_pixelcnn: 17 levels, 64 channels, 5 blocks,
//      8x8) drawing 64 digits pixel by pixel: 64 passes of the network without a graph
//      and a categorical draw per pixel; twin bench/torch_pixelcnn_ref.cpp
// Multiply-adds of the coupling ResNets' convolutions (3x3, stride 1) for one
// training step of make_image_flow(o) on `batch` images, times 2 (FLOP) times 3
// (forward, and backward to inputs and weights); elementwise work not counted.
double image_flow_mflop(const models::ImageFlowOptions& o, int64_t batch) {
  double macs = 0;
  int64_t c = o.channels, px = o.height * o.width;
  auto coupling = [&](int64_t ch) { return 9.0 * static_cast<double>(px) * (ch * o.hidden + 2.0 * o.blocks * o.hidden * o.hidden + o.hidden * 2 * ch); };
  for (int s = 0; s < o.scales; ++s) {
    const bool last = s + 1 == o.scales;
    macs += (last ? o.steps + 1 : o.steps) * coupling(c);
    if (!last) {
      c *= 4, px /= 4;
      macs += o.steps * coupling(c);
      c -= c / 2;
    }
  }
  return macs * 2 * 3 * static_cast<double>(batch) / 1e6;
}

// Multiply-adds of the U-Net's convolutions and attention products for one
// training step on `batch` HxW images, times 2 (FLOP) times 3; elementwise work
// (GroupNorm, SiLU) not counted. Walks the same structure as models::UNet.
double unet_mflop(const models::UNetOptions& o, int64_t H, int64_t W, int64_t batch) {
  double macs = 0;
  auto px = [&](size_t level) { return static_cast<double>(H * W) / std::pow(4.0, static_cast<double>(level)); };
  auto width = [&](size_t level) { return static_cast<double>(o.base * o.multipliers[level]); };
  auto res = [&](double in, double out, double p) { return p * (9 * in * out + 9 * out * out + (in != out ? in * out : 0)); };
  const size_t levels = o.multipliers.size();
  double ch = static_cast<double>(o.base);
  macs += 9 * static_cast<double>(o.channels) * ch * px(0);  // conv_in
  for (size_t l = 0; l < levels; ++l) {
    for (int64_t b = 0; b < o.blocks; ++b) macs += res(ch, width(l), px(l)), ch = width(l);
    if (l + 1 < levels) macs += 9 * ch * ch * px(l + 1);  // stride-2 conv
  }
  const double p_low = px(levels - 1);
  macs += 2 * res(ch, ch, p_low);
  if (o.attention) macs += 4 * ch * ch * p_low + 2 * p_low * p_low * ch;  // qkv + proj, q^T k and v a^T
  for (size_t l = levels; l-- > 0;) {
    for (int64_t b = 0; b < o.blocks; ++b) macs += res(b == 0 ? ch + width(l) : ch, width(l), px(l)), ch = width(l);
    if (l > 0) macs += 9 * ch * ch * px(l - 1);  // the conv after nearest-neighbour upsampling
  }
  macs += 9 * ch * static_cast<double>(o.channels) * px(0);  // conv_out
  return macs * 2 * 3 * static_cast<double>(batch) / 1e6;
}

// Multiply-adds of one DCGAN step (models::gan::ConvGenerator / ConvDiscriminator
// of width w, z of `latent`): per image, G = fc + two transposed convolutions,
// D = two convolutions + fc. The discriminator step runs D with backward on
// the real and the fake batch (3x forward) and G without a graph (1x); the
// generator step runs G and D with backward (3x). Times 2 FLOP, times batch.
double dcgan_mflop(int64_t w, int64_t latent, int64_t batch) {
  const double W = static_cast<double>(w);
  const double g = static_cast<double>(latent) * 2 * W * 49 + 49 * 2 * W * W * 16 + 196 * W * 16;
  const double d = 196 * W * 16 + 49 * W * 2 * W * 16 + 2 * W * 49;
  return (2 * 3 * d + g + 3 * (g + d)) * 2 * static_cast<double>(batch) / 1e6;
}

void model_workloads(const std::function<bool(const std::string&)>& want) {
  Generator g(0);
  Tensor bin784 = g.bernoulli({128, 784}, 0.5);
  // every model from its recipe (models/recipes.cpp): bench_* are the reference's sizes,
  // fashion_flow and fashion_unet the lessons' own setups
  auto build = [&](const char* tag) { return models::build(models::recipe(tag), false, g); };
  if (want("vae")) {
    auto m = build("bench_vae");
    auto& vae = dynamic_cast<models::VAE&>(*m);
    train_bench("a_vae_b128", 419.84, vae, [&] { return vae.loss(bin784, g); });
  }
  if (want("made")) {
    auto m = build("bench_made");
    train_bench("b_made_b128", 693.76, *m, [&] { return m->loss(bin784); });
  }
  if (want("pixelcnn")) {
    auto m = build("bench_pixelcnn");
    Tensor x = g.bernoulli({32, 1, 28, 28}, 0.5);
    train_bench("c_pixelcnn_b32", 28069.658624, *m, [&] { return m->loss(x); });
    // sampling: 64 passes over [64, 1, 8, 8]; multiply-adds per pixel and pass: the 7x7 type-A
    // convolution 1 -> 64, five 3x3 type-B 64 -> 64, the 1x1 64 -> 17 (masks not discounted)
    auto digits = build("digits_pixelcnn");
    const double macs_per_pass = 64.0 * 64 * (49 * 64 + 5 * 9 * 64 * 64 + 64 * 17);
    bench("p_pixelcnn_sample_8x8", 64 * 2 * macs_per_pass / 1e6, [&] { digits->sample(64, g); });
  }
  if (want("realnvp")) {
    auto m = build("bench_realnvp2d");
    Tensor x = g.normal({512, 2});
    train_bench("d_realnvp2d_b512", 106.82368, *m, [&] { return m->loss(x); });
  }
  if (want("ddpm")) {
    auto m = models::build_ddpm2d(models::recipe("bench_ddpm2d"), g);
    Tensor x = g.normal({512, 2});
    train_bench("e_ddpm2d_b512", 102.23616, *m, [&] { return m->loss(x, g); });
  }
  if (want("realnvp_img")) {
    auto m = build("fashion_flow");  // lesson_flows's Fashion-MNIST flow
    Tensor x = dist::index_to_levels(g.randint({64, 1, 28, 28}, 0, 256), 256);
    train_bench("i_realnvp_img_b64", image_flow_mflop(models::image_flow_options(m->config_json()), 64), *m, [&] { return m->loss(x); });
  }
  if (want("dcgan")) {
    namespace gan = models::gan;
    const models::Recipe& r = models::recipe("fashion_dcgan");  // lesson_gan's Fashion-MNIST networks and Adam
    gan::GAN game = models::build_gan(r, false, g);
    const gan::Options go = models::gan_options(r, false);
    Tensor real = dist::index_to_levels(g.randint({64, 1, 28, 28}, 0, 256), 256);
    optim::Adam opt_d(game.discriminator->parameters(), go.lr, go.beta1, go.beta2), opt_g(game.generator->parameters(), go.lr, go.beta1, go.beta2);
    bench("j_dcgan_b64", dcgan_mflop(dynamic_cast<const gan::ConvGenerator&>(*game.generator).width(), game.latent(), 64), [&] {
      Tensor fake;
      {
        NoGradGuard ng;
        fake = game.generator->forward(game.noise(64, g));
      }
      opt_d.zero_grad();
      gan::discriminator_loss(game.discriminator->forward(real), game.discriminator->forward(fake)).backward();
      opt_d.step();
      opt_g.zero_grad();
      gan::generator_loss_non_saturating(game.discriminator->forward(game.generator->forward(game.noise(64, g)))).backward();
      opt_g.step();
    });
  }
  if (want("transformer") || want("lstm")) {
    // lesson_sequence's families: batch 64 of 64 tokens (17 levels); one training step (forward, backward, Adam)
    // forward FLOPs per token: 2 x the weights a token meets (+ attention: q k^T and A v, 4 L C a layer); x 3 for training
    Tensor tokens = dist::index_to_levels(g.randint({64, 64}, 0, 17), 17);
    if (want("transformer")) {
      auto m = build("bench_transformer");
      const double C = 128, Lc = 64, layers = 4, V = 17;
      const double per_token = 2 * (layers * 12 * C * C + C * V) + layers * 4 * Lc * C;
      train_bench("l_transformer_b64", 3 * per_token * 64 * 64 / 1e6, *m, [&] { return m->loss(tokens); });
      // sampling 64 sequences of 64 tokens through the KV cache (no graph), in ms per 1,000 tokens
      auto& seq = dynamic_cast<models::SequenceModel&>(*m);
      bench("n_transformer_sample_b64", 0, [&] { seq.sample_token_ids(64, g, {}); }, 64 * 64 / 1000.0, "ms/1k_tok");
    }
    if (want("lstm")) {
      auto m = build("bench_lstm");
      const double H = 256, E = 64, V = 17;
      const double per_token = 2 * (4 * H * (E + H) + H * V);
      train_bench("m_lstm_b64", 3 * per_token * 64 * 64 / 1e6, *m, [&] { return m->loss(tokens); });
    }
  }
  if (want("unet")) {
    auto m = build("fashion_unet");  // lesson_diffusion's Fashion-MNIST U-Net
    auto& ddpm = dynamic_cast<models::DDPM&>(*m);
    Tensor x = dist::index_to_levels(g.randint({64, 1, 28, 28}, 0, 256), 256);
    const auto& unet = dynamic_cast<const models::UNet&>(ddpm.noise_predictor());
    train_bench("k_unet28_b64", unet_mflop(unet.options(), 28, 28, 64), ddpm, [&] { return ddpm.loss(x); });
    // one evaluation of eps_theta(x_t, t) without a graph: what each step of sampling costs
    models::UNet net(unet.options(), g);
    Tensor xt = g.normal({64, 1, 28, 28}), t = g.randint({64}, 0, 1000);
    bench("o_unet28_sample_b64", unet_mflop(unet.options(), 28, 28, 64) / 3, [&] {
      NoGradGuard ng;
      net.predict(xt, t);
    });
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

// The products of one training step of `model` on a batch of B, read off its parameters in
// the order it registers them (the data's layer first: no gradient to its input):
//   a 2-D weight [out, in] is a Linear layer y = x W^T (MADE's masked ones too: the mask
//     multiplies W, not the product): forward x W^T, input gradient g W, weight gradient g^T x;
//   a 4-D weight [out, in, k, k] a stride-1 'same' convolution on `pixels` positions, per example,
//     as conv2d runs it: forward W[out, in T] @ cols[in T, L], input gradient W^T @ g, weight
//     gradient cols @ g^T, over the T taps of its kernel the layer's "mask" buffer keeps (PixelCNN's
//     masked convolutions pack only those; without a mask, k k).
// Other parameters (biases, norms' scales) make no product.
std::vector<Gemm> step_gemms(const nn::Module& model, int64_t B, int64_t pixels) {
  std::map<std::string, Tensor> masks;
  for (const auto& [name, t] : model.named_buffers())
    if (name.ends_with("mask")) masks[name.substr(0, name.size() - 4)] = t;
  std::vector<Gemm> calls;
  bool first = true;
  for (const auto& [name, w] : model.named_parameters()) {
    if (!name.ends_with("weight")) continue;
    const Shape& s = w.shape();
    if (s.size() == 2) {  // Linear: [out, in]
      const int64_t out = s[0], in = s[1];
      calls.push_back({false, true, B, out, in});
      if (!first) calls.push_back({false, false, B, in, out});
      calls.push_back({true, false, out, in, B});
    } else if (s.size() == 4) {  // convolution: [out, in, k, k]
      const int64_t out = s[0], in = s[1], kk = s[2] * s[3];
      int64_t taps = kk;
      const auto m = masks.find(name.substr(0, name.size() - 6));
      if (m != masks.end()) {
        const std::vector<double> v = m->second.to_vector();
        taps = 0;
        for (int64_t t = 0; t < kk; ++t) {
          bool kept = false;
          for (size_t p = 0; p < v.size() && !kept; p += static_cast<size_t>(kk)) kept = v[p + static_cast<size_t>(t)] != 0;
          taps += kept;
        }
      }
      const int64_t K = in * taps;
      const int n = static_cast<int>(B);
      calls.push_back({false, false, out, pixels, K, n});
      if (!first) calls.push_back({true, false, K, pixels, out, n});
      calls.push_back({false, true, K, out, pixels, n});
    } else {
      continue;
    }
    first = false;
  }
  return calls;
}

// The floors of the MLP steps, the 2-D flow and DDPM and the PixelCNN, each built from its recipe at its
// training batch (the sizes of ../shared/bench/torch_ref.cpp): what bars each 1-thread ratio
// from below on this BLAS kernel.
void floors() {
  Generator g(0);
  auto floor_of = [&](const char* name, const char* tag, const nn::Module& m, int64_t pixels = 1) {
    gemm_floor(name, step_gemms(m, models::recipe(tag).full.batch_size, pixels));
  };
  floor_of("h_ddpm2d_b512_gemm_floor", "bench_ddpm2d", *models::build_ddpm2d(models::recipe("bench_ddpm2d"), g));
  floor_of("h_realnvp2d_b512_gemm_floor", "bench_realnvp2d", *models::build(models::recipe("bench_realnvp2d"), false, g));
  floor_of("h_vae_b128_gemm_floor", "bench_vae", *models::build(models::recipe("bench_vae"), false, g));
  floor_of("h_made_b128_gemm_floor", "bench_made", *models::build(models::recipe("bench_made"), false, g));
  const models::Recipe& px = models::recipe("bench_pixelcnn");
  const nlohmann::json c = nlohmann::json::parse(px.config);
  floor_of("h_pixelcnn_b32_gemm_floor", "bench_pixelcnn", *models::build(px, false, g), c.at("height").get<int64_t>() * c.at("width").get<int64_t>());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("dgm training-step benchmarks, comparable row by row with ../shared/bench/torch_ref.cpp",
               "bench_train");
  std::string only_list;
  app.add_option("--threads", g_threads, "Threads (dgm's pool; OpenBLAS runs on the thread that calls it)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--only", only_list, "Comma-separated workloads: vae,made,pixelcnn,realnvp,realnvp_img,ddpm,dcgan,unet,transformer,lstm,overhead,matmul,floor");
  app.add_flag("--quick", g_quick, "Short timings (a smoke test)");
  std::string conv = "winograd";
  app.add_option("--conv", conv, "Algorithm of the 3x3 stride-1 convolutions (the others are always im2col)")
      ->capture_default_str()->check(CLI::IsMember({"winograd", "im2col"}));
  CLI11_PARSE(app, argc, argv);
  runtime::set_conv_winograd(conv == "winograd");

  std::set<std::string> only;
  std::stringstream ss(only_list);
  for (std::string tok; std::getline(ss, tok, ',');)
    if (!tok.empty()) only.insert(tok);
  const std::set<std::string> known = {"vae", "made", "pixelcnn", "realnvp", "realnvp_img", "ddpm", "dcgan", "unet", "transformer", "lstm", "overhead", "matmul", "floor"};
  for (auto& w : only)
    if (!known.count(w)) {
      std::fprintf(stderr, "bench_train: unknown workload '%s' (known: vae, made, pixelcnn, realnvp, realnvp_img, ddpm, dcgan, unet, transformer, lstm, overhead, matmul, floor)\n", w.c_str());
      return 2;
    }
  auto want = [&](const std::string& n) { return only.empty() || only.count(n); };

  runtime::set_num_threads(g_threads);
  std::printf("# dgm engine; openblas corename=%s (%s) dgm threads=%d\n", runtime::blas_core().c_str(),
              runtime::blas_core_note().c_str(), runtime::num_threads());
  std::printf("# threads=%d quick=%d conv=%s\n", g_threads, static_cast<int>(g_quick), conv.c_str());
  bench::print_columns();
  model_workloads(want);
  if (want("overhead")) overhead();
  if (want("matmul")) matmul512();
  if (want("floor")) floors();
  return 0;
}
