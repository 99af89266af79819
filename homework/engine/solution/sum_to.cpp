// Reference solution: homework/engine/sum_to.cpp.
#include "homework/engine/exercises.h"

namespace hw::engine {

Tensor sum_to(const Tensor& g, const Shape& shape) {
  const size_t lead = g.dim() >= shape.size() ? g.dim() - shape.size() : 0;
  bool fits = g.dim() >= shape.size();
  for (size_t i = 0; fits && i < shape.size(); ++i)
    fits = shape[i] == g.shape()[lead + i] || shape[i] == 1;
  if (!fits) throw dgm::Error("sum_to: a gradient of shape " + g.shape().str() + " cannot be summed to " + shape.str());
  dgm::Axes axes;
  for (size_t i = 0; i < lead; ++i) axes.push_back(static_cast<int64_t>(i));
  for (size_t i = 0; i < shape.size(); ++i)
    if (shape[i] == 1 && g.shape()[lead + i] != 1) axes.push_back(static_cast<int64_t>(lead + i));
  if (axes.empty()) return g;
  return dgm::reshape(dgm::sum(g, axes, /*keepdim=*/true), shape);  // drop the leading ones
}

}  // namespace hw::engine
