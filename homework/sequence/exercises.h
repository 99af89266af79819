// dgm/homework/sequence/exercises.h — homework for the sequence-models chapter (docs/chapters/sequence.md).
#pragma once

#include <functional>
#include <utility>
#include <vector>

#include "autograd/ops.h"
#include "homework/grader/grader.h"

namespace hw::sequence {

using dgm::Tensor;

// causal_self_attention.cpp: softmax(q k^T / sqrt(d) + M) v with M = -inf above the diagonal (eq. 6);
// q, k, v [N, heads, L, d] -> [N, heads, L, d].
Tensor causal_self_attention(const Tensor& q, const Tensor& k, const Tensor& v);

// lstm_step.cpp: one LSTM step (eq. 2), PyTorch's gate order i, f, g, o; x [N, I], h and c [N, H],
// W_ih [4H, I], W_hh [4H, H], b [4H] -> {h', c'}.
std::pair<Tensor, Tensor> lstm_step(const Tensor& x, const Tensor& h, const Tensor& c, const Tensor& W_ih, const Tensor& W_hh,
                                    const Tensor& b);

// kv_cache_step.cpp: one sampling step with a key/value cache (eq. 8). The cache holds the keys and
// values of the t positions read so far ([N, heads, t, d]; undefined Tensors when t = 0); q, k, v
// [N, heads, 1, d] are the new position's. Returns the new position's attention output
// [N, heads, 1, d] and writes the grown cache (t + 1 positions) back into `keys` and `values`.
Tensor kv_cache_step(Tensor& keys, Tensor& values, const Tensor& q, const Tensor& k, const Tensor& v);

struct Functions {
  std::function<Tensor(const Tensor&, const Tensor&, const Tensor&)> causal_self_attention;
  std::function<std::pair<Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&)>
      lstm_step;
  std::function<Tensor(Tensor&, Tensor&, const Tensor&, const Tensor&, const Tensor&)> kv_cache_step;
};
inline Functions linked() { return {&hw::sequence::causal_self_attention, &hw::sequence::lstm_step, &hw::sequence::kv_cache_step}; }

std::vector<Exercise> exercises(const Functions& f);

}  // namespace hw::sequence
