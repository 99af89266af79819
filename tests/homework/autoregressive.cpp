// Known wrong solutions of the autoregressive homework lose points.
#include "homework/autoregressive/exercises.h"
#include "tests/homework/helpers.h"

#include "autograd/graph.h"

using namespace hw::autoregressive;
using hw_test::grade;

namespace {
// MADE's masks with a chosen comparison for hidden and output layers and a chosen input degree.
std::vector<Tensor> masks_with(const std::vector<int64_t>& order, const std::vector<std::vector<int64_t>>& hidden,
                               bool hidden_strict, bool output_strict, bool degree_is_index) {
  std::vector<int64_t> in(order.size());
  for (size_t p = 0; p < order.size(); ++p) in[static_cast<size_t>(order[p])] = static_cast<int64_t>(p) + 1;
  if (degree_is_index)
    for (size_t d = 0; d < order.size(); ++d) in[d] = order[d] + 1;
  auto mask = [](const std::vector<int64_t>& out, const std::vector<int64_t>& from, bool strict) {
    std::vector<float> v;
    for (int64_t o : out)
      for (int64_t i : from) v.push_back((strict ? o > i : o >= i) ? 1.f : 0.f);
    return Tensor::from_vector(v, {static_cast<int64_t>(out.size()), static_cast<int64_t>(from.size())});
  };
  std::vector<Tensor> masks;
  std::vector<int64_t> prev = in;
  for (const auto& layer : hidden) {
    masks.push_back(mask(layer, prev, hidden_strict));
    prev = layer;
  }
  masks.push_back(mask(in, prev, output_strict));
  return masks;
}
}  // namespace

TEST_CASE("autoregressive homework: wrong MADE masks lose points", "[homework]") {
  Functions f = linked();
  SECTION("the output mask off by one (>=: an output sees its own input)") {
    f.made_masks = [](const auto& o, const auto& h) { return masks_with(o, h, false, false, false); };
    hw_test::require_caught(grade(exercises(f), "made_masks"), "Jacobian test");
  }
  SECTION("hidden masks strict (>): too few connections") {
    f.made_masks = [](const auto& o, const auto& h) { return masks_with(o, h, true, true, false); };
    hw_test::require_caught(grade(exercises(f), "made_masks"), "not over-masked");
  }
  SECTION("input degrees from the input's index, not its position in the ordering") {
    f.made_masks = [](const auto& o, const auto& h) { return masks_with(o, h, false, true, true); };
    hw_test::require_caught(grade(exercises(f), "made_masks"), "Jacobian test");
  }
}

TEST_CASE("autoregressive homework: wrong PixelCNN masks lose points", "[homework]") {
  Functions f = linked();
  SECTION("type A keeps the centre") {
    f.pixelcnn_mask = [](int64_t o, int64_t i, int64_t k, MaskType, int64_t dc) { return dgm::models::pixelcnn_mask(o, i, k, MaskType::B, dc); };
    hw_test::require_caught(grade(exercises(f), "pixelcnn_mask"), "sees only earlier pixels");
  }
  SECTION("the whole centre row kept") {
    f.pixelcnn_mask = [](int64_t o, int64_t i, int64_t k, MaskType t, int64_t dc) {
      Tensor m = dgm::models::pixelcnn_mask(o, i, k, t, dc);
      float* p = m.data<float>();
      for (int64_t pair = 0; pair < o * i; ++pair)
        for (int64_t x = k / 2 + 1; x < k; ++x) p[pair * k * k + (k / 2) * k + x] = 1;
      return m;
    };
    hw_test::require_caught(grade(exercises(f), "pixelcnn_mask"), "sees only earlier pixels");
  }
  SECTION("type B hides the centre too (colours of a pixel never see each other)") {
    f.pixelcnn_mask = [](int64_t o, int64_t i, int64_t k, MaskType, int64_t) { return dgm::models::pixelcnn_mask(o, i, k, MaskType::A, 1); };
    hw_test::require_caught(grade(exercises(f), "pixelcnn_mask"), "RGB");
  }
}

TEST_CASE("autoregressive homework: wrong samplers lose points", "[homework]") {
  Functions f = linked();
  SECTION("one pass: every dimension from the logits of x = 0") {
    f.sample_autoregressive = [](int64_t n, int64_t D, const std::function<Tensor(const Tensor&)>& logits_of, Generator& gen) {
      dgm::NoGradGuard ng;
      return gen.bernoulli(dgm::sigmoid(logits_of(Tensor::zeros({n, D}))));
    };
    hw_test::require_caught(grade(exercises(f), "sample_autoregressive"), "frequencies");
  }
  SECTION("rounding instead of drawing") {
    f.sample_autoregressive = [](int64_t n, int64_t D, const std::function<Tensor(const Tensor&)>& logits_of, Generator&) {
      dgm::NoGradGuard ng;
      Tensor x = Tensor::zeros({n, D});
      for (int64_t d = 0; d < D; ++d) {
        const Tensor l = logits_of(x);
        for (int64_t i = 0; i < n; ++i) x.data<float>()[i * D + d] = l.at(i * D + d) > 0 ? 1.f : 0.f;
      }
      return x;
    };
    hw_test::require_caught(grade(exercises(f), "sample_autoregressive"), "frequencies");
  }
}
