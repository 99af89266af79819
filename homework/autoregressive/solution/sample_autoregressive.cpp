// Reference solution: homework/autoregressive/sample_autoregressive.cpp.
#include "homework/autoregressive/exercises.h"

#include "autograd/graph.h"

namespace hw::autoregressive {

Tensor sample_autoregressive(int64_t n, int64_t dims, const std::function<Tensor(const Tensor&)>& logits_of,
                             Generator& gen) {
  dgm::NoGradGuard no_grad;
  Tensor x = Tensor::zeros({n, dims});
  for (int64_t d = 0; d < dims; ++d) {
    const Tensor probs = dgm::sigmoid(dgm::slice(logits_of(x), 1, d, d + 1)).to(dgm::DType::Float32);  // [n, 1]
    const Tensor draw = gen.bernoulli(probs);
    float* px = x.data<float>();
    for (int64_t i = 0; i < n; ++i) px[i * dims + d] = static_cast<float>(draw.at(i));
  }
  return x;
}

}  // namespace hw::autoregressive
