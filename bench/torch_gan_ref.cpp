// bench/torch_gan_ref.cpp — the libtorch twin of bench_train's workload
// j_dcgan_b64 (lesson_gan's Fashion-MNIST DCGAN, models::gan::ConvGenerator and
// ConvDiscriminator with width 32 and z of 64), in the output format and with
// the timing rules of ../shared/bench/torch_ref.cpp, so bench/compare.sh puts
// the two side by side. Built by compare.sh only when libtorch-dev is installed.
//
//   torch_gan_ref --threads T [--only dcgan] [--quick]
//
// The networks, layer for layer as models/gan.cpp builds them:
//   G: z 64 -> Linear -> [64, 7, 7] -> GroupNorm(4), ReLU -> convT 4x4 s2 p1 -> [32, 14, 14]
//      -> GroupNorm(4), ReLU -> convT 4x4 s2 p1 -> [1, 28, 28] -> sigmoid
//   D: conv 4x4 s2 p1 -> [32, 14, 14], LeakyReLU(0.2) -> conv 4x4 s2 p1 -> [64, 7, 7],
//      LeakyReLU(0.2) -> Linear -> one logit
// One step: D on 64 real + 64 fake (G without a graph), -mean log sigmoid(a_real)
// - mean log sigmoid(-a_fake), Adam; then G through D, -mean log sigmoid(a_fake), Adam
// (2e-4, betas 0.5, 0.999 for both).
#include <torch/torch.h>

#include "bench/timing.h"

#include <cstdio>
#include <cstdlib>
#include <set>
#include <sstream>
#include <string>

namespace {

bool g_quick = false;
int g_threads = 1;

struct GeneratorImpl : torch::nn::Module {
  torch::nn::Linear fc{nullptr};
  torch::nn::GroupNorm n1{nullptr}, n2{nullptr};
  torch::nn::ConvTranspose2d up1{nullptr}, up2{nullptr};
  int64_t w;
  GeneratorImpl(int64_t latent, int64_t width) : w(width) {
    fc = register_module("fc", torch::nn::Linear(latent, 2 * w * 49));
    n1 = register_module("norm1", torch::nn::GroupNorm(torch::nn::GroupNormOptions(w / 8, 2 * w)));
    up1 = register_module("up1", torch::nn::ConvTranspose2d(torch::nn::ConvTranspose2dOptions(2 * w, w, 4).stride(2).padding(1)));
    n2 = register_module("norm2", torch::nn::GroupNorm(torch::nn::GroupNormOptions(w / 8, w)));
    up2 = register_module("up2", torch::nn::ConvTranspose2d(torch::nn::ConvTranspose2dOptions(w, 1, 4).stride(2).padding(1)));
  }
  torch::Tensor forward(const torch::Tensor& z) {
    auto h = fc(z).view({z.size(0), 2 * w, 7, 7});
    h = up1(torch::relu(n1(h)));
    h = up2(torch::relu(n2(h)));
    return torch::sigmoid(h);
  }
};
TORCH_MODULE(Generator);

struct DiscriminatorImpl : torch::nn::Module {
  torch::nn::Conv2d c1{nullptr}, c2{nullptr};
  torch::nn::Linear fc{nullptr};
  explicit DiscriminatorImpl(int64_t w) {
    c1 = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, w, 4).stride(2).padding(1)));
    c2 = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(w, 2 * w, 4).stride(2).padding(1)));
    fc = register_module("fc", torch::nn::Linear(2 * w * 49, 1));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto h = torch::leaky_relu(c1(x), 0.2);
    h = torch::leaky_relu(c2(h), 0.2);
    return fc(h.flatten(1)).squeeze(1);
  }
};
TORCH_MODULE(Discriminator);

}  // namespace

int main(int argc, char** argv) {
  const bench::TwinArgs args = bench::parse_twin_args(argc, argv);
  if (!args.wants("dcgan")) return 0;
  g_threads = args.threads, g_quick = args.quick;
  torch::set_num_threads(g_threads);
  bench::set_openblas_threads(g_threads);
  std::printf("# torch %s (gan twin), at::get_num_threads()=%d\n", TORCH_VERSION, torch::get_num_threads());
  bench::print_columns();
  torch::manual_seed(0);
  const int64_t w = 32, latent = 64, batch = 64;
  Generator G(latent, w);
  Discriminator D(w);
  auto real = torch::randint(0, 256, {batch, 1, 28, 28}).to(torch::kFloat) / 255.0;
  torch::optim::Adam opt_d(D->parameters(), torch::optim::AdamOptions(2e-4).betas({0.5, 0.999}));
  torch::optim::Adam opt_g(G->parameters(), torch::optim::AdamOptions(2e-4).betas({0.5, 0.999}));
  // the same count as bench_train's dcgan_mflop
  const double W = static_cast<double>(w);
  const double g = static_cast<double>(latent) * 2 * W * 49 + 49 * 2 * W * W * 16 + 196 * W * 16;
  const double d = 196 * W * 16 + 49 * W * 2 * W * 16 + 2 * W * 49;
  const double mflop = (2 * 3 * d + g + 3 * (g + d)) * 2 * static_cast<double>(batch) / 1e6;
  bench::time_and_print("j_dcgan_b64", g_threads, g_quick, mflop, [&] {
    torch::Tensor fake;
    {
      torch::NoGradGuard ng;
      fake = G->forward(torch::randn({batch, latent}));
    }
    opt_d.zero_grad();
    auto d_loss = -torch::log_sigmoid(D->forward(real)).mean() - torch::log_sigmoid(-D->forward(fake)).mean();
    d_loss.backward();
    opt_d.step();
    opt_g.zero_grad();
    auto g_loss = -torch::log_sigmoid(D->forward(G->forward(torch::randn({batch, latent})))).mean();
    g_loss.backward();
    opt_g.step();
  });
  return 0;
}
