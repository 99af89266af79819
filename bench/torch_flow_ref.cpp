// bench/torch_flow_ref.cpp — the libtorch twin of bench_train's workload
// i_realnvp_img_b64 (the image flow of lesson_flows, models::make_image_flow
// with ImageFlowOptions' defaults), in the output format and with the timing
// rules of ../shared/bench/torch_ref.cpp, so bench/compare.sh puts the two side
// by side. Built by compare.sh only when Debian's libtorch-dev is installed.
//
//   torch_flow_ref --threads T [--only realnvp_img] [--quick]
//
// The model, layer for layer as models/flows.cpp builds it:
//   logit transform (alpha 0.05) with its log-det;
//   scale 0: 3 x [actnorm, affine coupling (checkerboard)], squeeze,
//            3 x [actnorm, affine coupling (channels)], factor out half;
//   scale 1: 4 x [actnorm, affine coupling (checkerboard)];
//   coupling net: conv3x3 C->32, ReLU, residual block (conv3x3, ReLU, conv3x3, + x, ReLU), conv3x3 32->2C;
//   s = scale * tanh(raw s), masked; loss = -mean(log N(z) + log-det) + D log 256.
#include <torch/torch.h>

#include "bench/timing.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

bool g_quick = false;
int g_threads = 1;

struct ResBlockImpl : torch::nn::Module {
  torch::nn::Conv2d c1{nullptr}, c2{nullptr};
  explicit ResBlockImpl(int64_t ch) {
    c1 = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(ch, ch, 3).padding(1)));
    c2 = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(ch, ch, 3).padding(1)));
  }
  torch::Tensor forward(const torch::Tensor& x) { return torch::relu(x + c2(torch::relu(c1(x)))); }
};
TORCH_MODULE(ResBlock);

struct CouplingImpl : torch::nn::Module {
  torch::Tensor mask, free, scale, an_bias, an_log_scale;
  torch::nn::Conv2d in{nullptr}, out{nullptr};
  ResBlock block{nullptr};
  CouplingImpl(torch::Tensor m, int64_t ch, int64_t hidden) : mask(m), free(1 - m) {
    scale = register_parameter("scale", torch::ones({1, ch, 1, 1}));
    an_bias = register_parameter("actnorm_bias", torch::zeros({1, ch, 1, 1}));
    an_log_scale = register_parameter("actnorm_log_scale", torch::zeros({1, ch, 1, 1}));
    in = register_module("in", torch::nn::Conv2d(torch::nn::Conv2dOptions(ch, hidden, 3).padding(1)));
    block = register_module("block", ResBlock(hidden));
    out = register_module("out", torch::nn::Conv2d(torch::nn::Conv2dOptions(hidden, 2 * ch, 3).padding(1)));
    torch::NoGradGuard ng;
    out->weight.zero_();
    out->bias.zero_();
  }
  // actnorm, then the affine coupling; adds both log-dets to `log_det`
  torch::Tensor forward(torch::Tensor x, torch::Tensor& log_det) {
    const double hw = static_cast<double>(x.size(2) * x.size(3));
    x = (x + an_bias) * torch::exp(an_log_scale);
    log_det = log_det + an_log_scale.sum() * hw;
    const int64_t c = x.size(1);
    auto h = out(torch::relu(block(torch::relu(in(x * mask)))));
    auto s = scale * torch::tanh(h.slice(1, 0, c)) * free;
    auto t = h.slice(1, c, 2 * c) * free;
    log_det = log_det + s.flatten(1).sum(1);
    return x * torch::exp(s) + t;
  }
};
TORCH_MODULE(Coupling);

torch::Tensor checkerboard(int64_t c, int64_t h, int64_t w, int parity) {
  auto ii = torch::arange(h).view({h, 1}), jj = torch::arange(w).view({1, w});
  return ((ii + jj) % 2 == parity).to(torch::kFloat).view({1, 1, h, w}).expand({1, c, h, w}).contiguous();
}
torch::Tensor channels(int64_t c, int parity) {
  auto m = torch::zeros({1, c, 1, 1});
  if (parity == 0) m.slice(1, 0, c / 2).fill_(1);
  else m.slice(1, c / 2, c).fill_(1);
  return m;
}

struct ImageFlowImpl : torch::nn::Module {
  std::vector<Coupling> s0a, s0b, s1;
  ImageFlowImpl(int steps = 3, int64_t hidden = 32) {
    for (int j = 0; j < steps; ++j)
      s0a.push_back(register_module("s0a" + std::to_string(j), Coupling(checkerboard(1, 28, 28, j % 2), 1, hidden)));
    for (int j = 0; j < steps; ++j)
      s0b.push_back(register_module("s0b" + std::to_string(j), Coupling(channels(4, j % 2), 4, hidden)));
    for (int j = 0; j < steps + 1; ++j)
      s1.push_back(register_module("s1_" + std::to_string(j), Coupling(checkerboard(2, 14, 14, j % 2), 2, hidden)));
  }
  torch::Tensor loss(const torch::Tensor& u) {
    const int64_t n = u.size(0);
    const double alpha = 0.05;
    auto p = u * (1 - 2 * alpha) + alpha;
    auto lp = torch::log(p), l1mp = torch::log(1 - p);
    torch::Tensor x = lp - l1mp;
    torch::Tensor log_det = (-(lp + l1mp)).flatten(1).sum(1) + 784 * std::log(1 - 2 * alpha);
    for (auto& c : s0a) x = c->forward(x, log_det);
    x = x.view({n, 1, 14, 2, 14, 2}).permute({0, 1, 3, 5, 2, 4}).reshape({n, 4, 14, 14});
    for (auto& c : s0b) x = c->forward(x, log_det);
    auto z0 = x.slice(1, 0, 2).flatten(1);
    x = x.slice(1, 2, 4);
    for (auto& c : s1) x = c->forward(x, log_det);
    auto z = torch::cat({z0, x.flatten(1)}, 1);
    auto log_pz = (-0.5 * z.pow(2) - 0.5 * std::log(2 * M_PI)).sum(1);
    return -(log_pz + log_det).mean() + 784 * std::log(256.0);
  }
};
TORCH_MODULE(ImageFlow);

}  // namespace

int main(int argc, char** argv) {
  const bench::TwinArgs args = bench::parse_twin_args(argc, argv);
  if (!args.wants("realnvp_img")) return 0;
  g_threads = args.threads, g_quick = args.quick;
  torch::set_num_threads(g_threads);
  bench::set_openblas_threads(g_threads);
  std::printf("# torch %s (flow twin), at::get_num_threads()=%d\n", TORCH_VERSION, torch::get_num_threads());
  bench::print_columns();
  torch::manual_seed(0);
  ImageFlow model;
  auto x = torch::randint(0, 256, {64, 1, 28, 28}).to(torch::kFloat) / 255.0;
  x = (x * 255 + torch::rand_like(x)) / 256;  // dequantized, as the dgm side's loss does
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(1e-3));
  // the same multiply-add count as bench_train's image_flow_mflop (convolutions only)
  const double macs = 3 * 9.0 * 784 * (1 * 32 + 2 * 32 * 32 + 32 * 2) + 3 * 9.0 * 196 * (4 * 32 + 2 * 32 * 32 + 32 * 8) +
                      4 * 9.0 * 196 * (2 * 32 + 2 * 32 * 32 + 32 * 4);
  bench::time_and_print("i_realnvp_img_b64", g_threads, g_quick, macs * 2 * 3 * 64 / 1e6, [&] {
    opt.zero_grad();
    auto l = model->loss(x);
    l.backward();
    opt.step();
  });
  return 0;
}
