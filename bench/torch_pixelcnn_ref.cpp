// bench/torch_pixelcnn_ref.cpp — the libtorch twin of bench_train's workload
// p_pixelcnn_sample_8x8: the digits' PixelCNN (recipe digits_pixelcnn, models::PixelCNN
// with 17 levels, 64 channels, 5 blocks, 8x8 images) drawing 64 digits pixel by pixel,
// in the output format and with the timing rules of ../shared/bench/torch_ref.cpp, so
// bench/compare.sh puts the two side by side. Built by compare.sh only when Debian's
// libtorch-dev is installed.
//
//   torch_pixelcnn_ref --threads T [--only pixelcnn] [--quick]
//
// The network, layer for layer as models/pixelcnn.cpp builds it (and as the shared
// reference's c_pixelcnn_b32, with 17 logits per pixel in place of one):
//   h = maskedA 7x7 1 -> 64 of (x - 0.5) * 2; five times h = h + maskedB 3x3 64 -> 64 of relu(h);
//   logits = 1x1 64 -> 17 of relu(h).
// One draw of 64 digits: for each of the 64 pixels in raster order, the whole network on the
// batch under torch::NoGradGuard, a categorical draw from that pixel's logits, written into x
// as level k / 16.
#include <torch/torch.h>

#include "bench/timing.h"

#include <cstdio>
#include <string>
#include <vector>

namespace {

namespace F = torch::nn::functional;

// ones strictly before the centre in raster order; the centre too for type B
torch::Tensor mask(int64_t cout, int64_t cin, int64_t k, bool type_a) {
  auto m = torch::zeros({cout, cin, k, k});
  const int64_t c = k / 2;
  for (int64_t y = 0; y < k; ++y)
    for (int64_t x = 0; x < k; ++x)
      if (y < c || (y == c && (x < c || (x == c && !type_a)))) m.index_put_({torch::indexing::Slice(), torch::indexing::Slice(), y, x}, 1.0);
  return m;
}

struct MaskedConvImpl : torch::nn::Module {
  torch::Tensor weight, bias, m;
  int64_t pad;
  MaskedConvImpl(int64_t cin, int64_t cout, int64_t k, bool type_a) : pad(k / 2) {
    auto conv = torch::nn::Conv2d(torch::nn::Conv2dOptions(cin, cout, k).padding(k / 2));
    weight = register_parameter("weight", conv->weight.detach().clone());
    bias = register_parameter("bias", conv->bias.detach().clone());
    m = register_buffer("mask", mask(cout, cin, k, type_a));
  }
  torch::Tensor forward(const torch::Tensor& x) { return F::conv2d(x, weight * m, F::Conv2dFuncOptions().bias(bias).padding(pad)); }
};
TORCH_MODULE(MaskedConv);

struct PixelCNNImpl : torch::nn::Module {
  MaskedConv in{nullptr};
  std::vector<MaskedConv> blocks;
  torch::nn::Conv2d out{nullptr};
  PixelCNNImpl(int64_t levels, int64_t channels, int64_t nblocks) {
    in = register_module("input", MaskedConv(1, channels, 7, true));
    for (int64_t i = 0; i < nblocks; ++i) blocks.push_back(register_module("block" + std::to_string(i), MaskedConv(channels, channels, 3, false)));
    out = register_module("output", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, levels, 1)));
  }
  torch::Tensor logits(const torch::Tensor& x) {
    auto h = in((x - 0.5) * 2.0);
    for (auto& b : blocks) h = h + b(torch::relu(h));
    return out(torch::relu(h));
  }
};
TORCH_MODULE(PixelCNN);

}  // namespace

int main(int argc, char** argv) {
  const bench::TwinArgs args = bench::parse_twin_args(argc, argv);
  if (!args.wants("pixelcnn")) return 0;
  torch::set_num_threads(args.threads);
  bench::set_openblas_threads(args.threads);
  std::printf("# torch %s (pixelcnn sampling twin), at::get_num_threads()=%d\n", TORCH_VERSION, torch::get_num_threads());
  bench::print_columns();
  torch::manual_seed(0);
  const int64_t levels = 17, n = 64, side = 8;
  PixelCNN net(levels, 64, 5);
  const double macs_per_pass = 64.0 * 64 * (49 * 64 + 5 * 9 * 64 * 64 + 64 * 17);  // as bench_train counts them
  bench::time_and_print("p_pixelcnn_sample_8x8", args.threads, args.quick, 64 * 2 * macs_per_pass / 1e6, [&] {
    torch::NoGradGuard ng;
    auto x = torch::zeros({n, 1, side, side});
    for (int64_t i = 0; i < side; ++i)
      for (int64_t j = 0; j < side; ++j) {
        auto l = net->logits(x).index({torch::indexing::Slice(), torch::indexing::Slice(), i, j});  // [n, levels]
        auto k = torch::multinomial(torch::softmax(l, 1), 1).squeeze(1);
        x.index_put_({torch::indexing::Slice(), 0, i, j}, k.to(torch::kFloat) / static_cast<double>(levels - 1));
      }
  });
  return 0;
}
