// Autoregressive models: the factorised likelihood is normalised (it sums to
// one over every possible image), and sampling takes one pass per dimension.
#include "helpers.h"

#include <cmath>

#include "autograd/graph.h"
#include "models/made.h"
#include "models/pixelcnn.h"

using namespace dgm;
using namespace dgm::test;

namespace {
// Every image with D pixels of `levels` levels, as rows of [levels^D, D] in [0, 1].
Tensor all_images(int64_t D, int64_t levels) {
  int64_t count = 1;
  for (int64_t i = 0; i < D; ++i) count *= levels;
  Tensor x = Tensor::empty({count, D}, DType::Float64);
  for (int64_t r = 0; r < count; ++r) {
    int64_t v = r;
    for (int64_t d = 0; d < D; ++d) {
      x.data<double>()[r * D + d] = static_cast<double>(v % levels) / static_cast<double>(levels - 1);
      v /= levels;
    }
  }
  return x;
}
double total_probability(const Tensor& log_probs) {
  double s = 0;
  for (int64_t i = 0; i < log_probs.numel(); ++i) s += std::exp(log_probs.at(i));
  return s;
}
}  // namespace

TEST_CASE("MADE sums to one over all 512 binary 3x3 images, in any ordering", "[ar][made]") {
  Generator g(1);
  models::MADE made(9, {32, 32}, 2, g);
  made.to(DType::Float64);
  NoGradGuard ng;
  Tensor x = all_images(9, 2);
  CHECK(total_probability(made.log_prob(x)) == Approx(1.0).epsilon(1e-12));
  made.reorder(g, /*random=*/true);
  CHECK(total_probability(made.log_prob(x)) == Approx(1.0).epsilon(1e-12));
}

TEST_CASE("categorical MADE sums to one over all 3^4 images", "[ar][made]") {
  Generator g(2);
  models::MADE made(4, {16}, 3, g);
  made.to(DType::Float64);
  NoGradGuard ng;
  CHECK(total_probability(made.log_prob(all_images(4, 3))) == Approx(1.0).epsilon(1e-12));
}

TEST_CASE("PixelCNN sums to one over all 512 binary 3x3 images and all 3^4 2x2 images", "[ar][pixelcnn]") {
  Generator g(3);
  NoGradGuard ng;
  models::PixelCNN bin(2, 8, 2, 3, 3, g);
  bin.to(DType::Float64);
  CHECK(total_probability(bin.log_prob(reshape(all_images(9, 2), {-1, 1, 3, 3}))) == Approx(1.0).epsilon(1e-12));
  models::PixelCNN cat(3, 8, 1, 2, 2, g, /*gated=*/true);
  cat.to(DType::Float64);
  CHECK(total_probability(cat.log_prob(reshape(all_images(4, 3), {-1, 1, 2, 2}))) == Approx(1.0).epsilon(1e-12));
}

TEST_CASE("MADE and PixelCNN logits: output i has zero gradient w.r.t. inputs at or after i", "[ar]") {
  Generator g(4);
  models::MADE made(6, {24}, 2, g);
  made.reorder(g, true);
  Tensor x = g.uniform({1, 6}).set_requires_grad(true);
  Tensor l = made.logits(x);
  std::vector<int64_t> pos(6);
  for (int64_t p = 0; p < 6; ++p) pos[static_cast<size_t>(made.order()[static_cast<size_t>(p)])] = p;
  for (int64_t i = 0; i < 6; ++i) {
    Tensor v = Tensor::zeros({1, 6});
    v.data<float>()[i] = 1;
    Tensor gx = grad({l}, {x}, {v}, true)[0];
    for (int64_t j = 0; j < 6; ++j)
      if (pos[static_cast<size_t>(j)] >= pos[static_cast<size_t>(i)]) CHECK(gx.at(j) == 0.0);
  }
}

TEST_CASE("sampling takes one pass per dimension, and completion keeps what is observed", "[ar]") {
  Generator g(5);
  models::MADE made(9, {16}, 2, g);
  made.passes = 0;
  Tensor s = made.sample(4, g);
  CHECK(made.passes == 9);
  CHECK(s.shape() == Shape{4, 9});
  for (double v : s.to_vector()) CHECK((v == 0 || v == 1));
  Tensor obs = Tensor::ones({4, 9});
  Tensor known = Tensor::zeros({9});
  for (int i = 0; i < 4; ++i) known.data<float>()[i] = 1;
  Tensor c = made.complete(obs, known, g);
  for (int64_t r = 0; r < 4; ++r)
    for (int64_t d = 0; d < 4; ++d) CHECK(c.at(r * 9 + d) == 1.0);

  models::PixelCNN pix(5, 8, 1, 3, 4, g);
  pix.passes = 0;
  Tensor p = pix.sample(2, g);
  CHECK(pix.passes == 12);
  for (double v : p.to_vector()) CHECK(std::abs(v * 4 - std::round(v * 4)) < 1e-6);
  Tensor half = pix.complete(Tensor::ones({2, 1, 3, 4}), 2, g);
  for (int64_t k = 0; k < 8; ++k) CHECK(half.at(k) == 1.0);  // first image's first two rows
}
