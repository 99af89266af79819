// Reference solution: homework/conditional/drop_labels.cpp.
#include "homework/conditional/exercises.h"

namespace hw::conditional {

Tensor drop_labels(const Tensor& labels, int64_t classes, double p_uncond, Generator& gen) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < labels.numel(); ++i)
    out.push_back(gen.uniform01() < p_uncond ? classes : static_cast<int64_t>(labels.at(i)));
  return Tensor::from_indices(out, {labels.numel()});
}

}  // namespace hw::conditional
