// Reference solution: causal self-attention (homework/sequence/causal_self_attention.cpp).
#include <cmath>
#include <limits>

#include "homework/sequence/exercises.h"

namespace hw::sequence {

Tensor causal_self_attention(const Tensor& q, const Tensor& k, const Tensor& v) {
  const int64_t L = q.size(2), d = q.size(3);
  std::vector<double> m(static_cast<size_t>(L * L), 0.0);
  for (int64_t i = 0; i < L; ++i)
    for (int64_t j = i + 1; j < L; ++j) m[static_cast<size_t>(i * L + j)] = -std::numeric_limits<double>::infinity();
  const Tensor scores = dgm::matmul(q, dgm::transpose(k, 2, 3)) * (1.0 / std::sqrt(static_cast<double>(d)));
  return dgm::matmul(dgm::softmax(scores + Tensor::from_vector(m, {L, L}).to(q.dtype()), 3), v);
}

}  // namespace hw::sequence
