// bench/torch_diffusion_ref.cpp — the libtorch twin of bench_train's workloads
// k_unet28_b64 (a training step) and o_unet28_sample_b64 (one evaluation of a batch
// of 64 under torch::NoGradGuard: a step of sampling) of
// lesson_diffusion's Fashion-MNIST U-Net (models::UNet with base 16,
// multipliers {1, 2, 2}, GroupNorm(4), attention in the middle; T = 1000,
// L_simple), in the output format and with the timing rules of
// ../shared/bench/torch_ref.cpp, so bench/compare.sh puts the two side by
// side. Built by compare.sh only when Debian's libtorch-dev is installed.
//
//   torch_diffusion_ref --threads T [--only unet] [--quick]
//
// The network, layer for layer as models/unet.cpp builds it:
//   emb = Linear(4b) SiLU Linear(4b) of the sinusoidal embedding of t (b dims);
//   conv3x3 1 -> 16; level 0: ResBlock(16 -> 16), conv3x3 stride 2;
//   level 1: ResBlock(16 -> 32), conv3x3 stride 2; level 2: ResBlock(32 -> 32);
//   middle: ResBlock, self-attention (GroupNorm, 1x1 qkv, softmax(q^T k / sqrt C), 1x1 proj), ResBlock;
//   up 2: cat skip, ResBlock(64 -> 32), nearest x2, conv3x3; up 1: cat, ResBlock(64 -> 32), x2, conv3x3;
//   up 0: cat, ResBlock(48 -> 16); GroupNorm, SiLU, conv3x3 16 -> 1.
//   ResBlock: conv(SiLU(GN(x))) + Linear(SiLU(emb)), conv(SiLU(GN(.))), + skip (1x1 conv when widths differ).
//   Loss: t ~ U{0..T-1}, eps ~ N(0, I), x_t = sqrt(abar) x + sqrt(1 - abar) eps, mean over examples of
//   ||eps - eps_theta||^2 / D (drawn inside every step, as the dgm side does).
#include <torch/torch.h>

#include "bench/timing.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

bool g_quick = false;
int g_threads = 1;

using torch::nn::Conv2d;
using torch::nn::Conv2dOptions;
using torch::nn::GroupNorm;
using torch::nn::GroupNormOptions;
using torch::nn::Linear;

struct ResBlockImpl : torch::nn::Module {
  GroupNorm n1{nullptr}, n2{nullptr};
  Conv2d c1{nullptr}, c2{nullptr}, skip{nullptr};
  Linear proj{nullptr};
  ResBlockImpl(int64_t in, int64_t out, int64_t emb, int64_t groups) {
    n1 = register_module("norm1", GroupNorm(GroupNormOptions(groups, in)));
    c1 = register_module("conv1", Conv2d(Conv2dOptions(in, out, 3).padding(1)));
    proj = register_module("emb_proj", Linear(emb, out));
    n2 = register_module("norm2", GroupNorm(GroupNormOptions(groups, out)));
    c2 = register_module("conv2", Conv2d(Conv2dOptions(out, out, 3).padding(1)));
    if (in != out) skip = register_module("skip", Conv2d(Conv2dOptions(in, out, 1)));
    torch::NoGradGuard ng;
    c2->weight.zero_();
    c2->bias.zero_();
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& emb) {
    auto h = c1(torch::silu(n1(x)));
    auto e = proj(torch::silu(emb));
    h = h + e.view({e.size(0), e.size(1), 1, 1});
    h = c2(torch::silu(n2(h)));
    return (skip ? skip(x) : x) + h;
  }
};
TORCH_MODULE(ResBlock);

struct AttentionImpl : torch::nn::Module {
  GroupNorm norm{nullptr};
  Conv2d qkv{nullptr}, proj{nullptr};
  AttentionImpl(int64_t c, int64_t groups) {
    norm = register_module("norm", GroupNorm(GroupNormOptions(groups, c)));
    qkv = register_module("qkv", Conv2d(Conv2dOptions(c, 3 * c, 1)));
    proj = register_module("proj", Conv2d(Conv2dOptions(c, c, 1)));
    torch::NoGradGuard ng;
    proj->weight.zero_();
    proj->bias.zero_();
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const int64_t n = x.size(0), c = x.size(1), hw = x.size(2) * x.size(3);
    auto h = qkv(norm(x)).view({n, 3 * c, hw});
    auto q = h.slice(1, 0, c), k = h.slice(1, c, 2 * c), v = h.slice(1, 2 * c, 3 * c);
    auto a = torch::softmax(torch::matmul(q.transpose(1, 2), k) / std::sqrt(static_cast<double>(c)), -1);
    auto out = torch::matmul(v, a.transpose(1, 2));
    return x + proj(out.view(x.sizes()));
  }
};
TORCH_MODULE(Attention);

struct UNetImpl : torch::nn::Module {
  int64_t base;
  Linear e1{nullptr}, e2{nullptr};
  Conv2d in{nullptr}, d0{nullptr}, d1{nullptr}, u2{nullptr}, u1{nullptr}, out{nullptr};
  ResBlock r0{nullptr}, r1{nullptr}, r2{nullptr}, m1{nullptr}, m2{nullptr}, q2{nullptr}, q1{nullptr}, q0{nullptr};
  Attention attn{nullptr};
  GroupNorm nout{nullptr};
  UNetImpl(int64_t b = 16, int64_t groups = 4) : base(b) {
    const int64_t emb = 4 * b, w1 = 2 * b;
    e1 = register_module("emb1", Linear(b, emb));
    e2 = register_module("emb2", Linear(emb, emb));
    in = register_module("conv_in", Conv2d(Conv2dOptions(1, b, 3).padding(1)));
    r0 = register_module("down0", ResBlock(b, b, emb, groups));
    d0 = register_module("downsample0", Conv2d(Conv2dOptions(b, b, 3).stride(2).padding(1)));
    r1 = register_module("down1", ResBlock(b, w1, emb, groups));
    d1 = register_module("downsample1", Conv2d(Conv2dOptions(w1, w1, 3).stride(2).padding(1)));
    r2 = register_module("down2", ResBlock(w1, w1, emb, groups));
    m1 = register_module("mid1", ResBlock(w1, w1, emb, groups));
    attn = register_module("mid_attention", Attention(w1, groups));
    m2 = register_module("mid2", ResBlock(w1, w1, emb, groups));
    q2 = register_module("up2", ResBlock(2 * w1, w1, emb, groups));
    u2 = register_module("upsample2", Conv2d(Conv2dOptions(w1, w1, 3).padding(1)));
    q1 = register_module("up1", ResBlock(2 * w1, w1, emb, groups));
    u1 = register_module("upsample1", Conv2d(Conv2dOptions(w1, w1, 3).padding(1)));
    q0 = register_module("up0", ResBlock(w1 + b, b, emb, groups));
    nout = register_module("norm_out", GroupNorm(GroupNormOptions(groups, b)));
    out = register_module("conv_out", Conv2d(Conv2dOptions(b, 1, 3).padding(1)));
    torch::NoGradGuard ng;
    out->weight.zero_();
    out->bias.zero_();
  }
  torch::Tensor embedding(const torch::Tensor& t) {  // [sin(t f_i), cos(t f_i)], f_i = 10000^(-i/h)
    const int64_t h = base / 2;
    auto f = torch::pow(10000.0, -torch::arange(h, torch::kFloat) / static_cast<double>(h));
    auto a = t.to(torch::kFloat).unsqueeze(1) * f.unsqueeze(0);
    return torch::cat({torch::sin(a), torch::cos(a)}, 1);
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t) {
    auto emb = e2(torch::silu(e1(embedding(t))));
    auto h = in(x);
    auto s0 = r0(h, emb);
    auto s1 = r1(d0(s0), emb);
    auto s2 = r2(d1(s1), emb);
    h = m2(attn(m1(s2, emb)), emb);
    auto up = [](const torch::Tensor& z) { return torch::upsample_nearest2d(z, {z.size(2) * 2, z.size(3) * 2}); };
    h = u2(up(q2(torch::cat({h, s2}, 1), emb)));
    h = u1(up(q1(torch::cat({h, s1}, 1), emb)));
    h = q0(torch::cat({h, s0}, 1), emb);
    return out(torch::silu(nout(h)));
  }
};
TORCH_MODULE(UNet);

}  // namespace

int main(int argc, char** argv) {
  const bench::TwinArgs args = bench::parse_twin_args(argc, argv);
  if (!args.wants("unet")) return 0;
  g_threads = args.threads, g_quick = args.quick;
  torch::set_num_threads(g_threads);
  bench::set_openblas_threads(g_threads);
  std::printf("# torch %s (diffusion twin), at::get_num_threads()=%d\n", TORCH_VERSION, torch::get_num_threads());
  bench::print_columns();
  torch::manual_seed(0);
  UNet net;
  const int64_t T = 1000;
  std::vector<double> ab(T);
  double prod = 1;
  for (int64_t t = 0; t < T; ++t) ab[static_cast<size_t>(t)] = prod *= 1 - (1e-4 + (0.02 - 1e-4) * static_cast<double>(t) / (T - 1));
  auto sqrt_ab = torch::sqrt(torch::tensor(ab).to(torch::kFloat)), sqrt_1mab = torch::sqrt(1 - torch::tensor(ab).to(torch::kFloat));
  // the recipe's objective: the bound with t drawn by importance, p_t ~ w_t = beta_t / (2 alpha_t (1 - abar_t)) (sigma_t^2 = beta_t),
  // each term T w_t ||eps - eps_theta||^2 / (T p_t) = sum_s w_s ||eps - eps_theta||^2 (models/diffusion.h, DDPM::Timesteps)
  std::vector<double> w_t(T);
  for (int64_t t = 0; t < T; ++t) {
    const double beta = 1e-4 + (0.02 - 1e-4) * static_cast<double>(t) / (T - 1);
    w_t[static_cast<size_t>(t)] = beta / (2 * (1 - beta) * (1 - ab[static_cast<size_t>(t)]));
  }
  auto p_t = torch::tensor(w_t).to(torch::kFloat);
  const double w_sum = p_t.sum().item<double>();
  p_t = p_t / w_sum;
  auto scaled_w = torch::full({T}, w_sum, torch::kFloat);  // T w_t / (T p_t), per step
  auto x = torch::randint(0, 256, {64, 1, 28, 28}).to(torch::kFloat) / 255.0 * 2 - 1;
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(1e-3));
  // the same multiply-add count as bench_train's unet_mflop (base 16, 28x28)
  auto res = [](double in, double out, double p) { return p * (9 * in * out + 9 * out * out + (in != out ? in * out : 0)); };
  const double b = 16, w = 32, p0 = 784, p1 = 196, p2 = 49;
  const double macs = 9 * b * p0 + res(b, b, p0) + 9 * b * b * p1 + res(b, w, p1) + 9 * w * w * p2 + res(w, w, p2) +
                      2 * res(w, w, p2) + 4 * w * w * p2 + 2 * p2 * p2 * w + res(2 * w, w, p2) + 9 * w * w * p1 +
                      res(2 * w, w, p1) + 9 * w * w * p0 + res(w + b, b, p0) + 9 * b * p0;
  bench::time_and_print("k_unet28_b64", g_threads, g_quick, macs * 2 * 3 * 64 / 1e6, [&] {
    opt.zero_grad();
    auto t = torch::multinomial(p_t, 64, true);
    auto eps = torch::randn_like(x);
    auto xt = sqrt_ab.index_select(0, t).view({64, 1, 1, 1}) * x + sqrt_1mab.index_select(0, t).view({64, 1, 1, 1}) * eps;
    auto l = (scaled_w.index_select(0, t) * (net->forward(xt, t) - eps).pow(2).flatten(1).sum(1)).mean();
    l.backward();
    opt.step();
  });
  UNet eval_net;  // a network of its own, as the dgm side builds one
  auto xt = torch::randn({64, 1, 28, 28});
  auto t = torch::randint(0, T, {64}, torch::kLong);
  bench::time_and_print("o_unet28_sample_b64", g_threads, g_quick, macs * 2 * 64 / 1e6, [&] {
    torch::NoGradGuard ng;
    eval_net->forward(xt, t);
  });
  return 0;
}
