// Reference solution: homework/autoregressive/made_masks.cpp.
#include "homework/autoregressive/exercises.h"

namespace hw::autoregressive {

std::vector<Tensor> made_masks(const std::vector<int64_t>& order, const std::vector<std::vector<int64_t>>& hidden_degrees) {
  const int64_t D = static_cast<int64_t>(order.size());
  std::vector<int64_t> input_degree(order.size());
  for (int64_t pos = 0; pos < D; ++pos) input_degree[static_cast<size_t>(order[static_cast<size_t>(pos)])] = pos + 1;
  // mask[k, j] = keep(degree_out[k], degree_in[j])
  auto mask = [](const std::vector<int64_t>& out, const std::vector<int64_t>& in, bool strict) {
    Tensor m = Tensor::zeros({static_cast<int64_t>(out.size()), static_cast<int64_t>(in.size())});
    float* p = m.data<float>();
    for (size_t k = 0; k < out.size(); ++k)
      for (size_t j = 0; j < in.size(); ++j)
        p[k * in.size() + j] = (strict ? out[k] > in[j] : out[k] >= in[j]) ? 1.f : 0.f;
    return m;
  };
  std::vector<Tensor> masks;
  const std::vector<int64_t>* previous = &input_degree;
  for (const auto& layer : hidden_degrees) {
    masks.push_back(mask(layer, *previous, /*strict=*/false));
    previous = &layer;
  }
  masks.push_back(mask(input_degree, *previous, /*strict=*/true));
  return masks;
}

}  // namespace hw::autoregressive
