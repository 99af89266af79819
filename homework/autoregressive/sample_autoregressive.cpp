// Homework, autoregressive chapter, exercise 3 (10 points): ancestral sampling.
//   grade: make grade CHAPTER=autoregressive      (the math: docs/chapters/autoregressive.md, section 1)
#include "homework/autoregressive/exercises.h"

namespace hw::autoregressive {

// An autoregressive model of binary vectors p(x) = prod_d p(x_d | x_<d), in the natural
// order 0, 1, ..., D-1. logits_of(x) takes x [n, D] (float32) and returns logits [n, D]
// whose column d is log p(x_d = 1 | x_<d) - log p(x_d = 0 | x_<d): it reads only x_<d.
// Draw n samples:
//     x = zeros [n, D]
//     for d = 0 .. D-1:   l = logits_of(x);   x[:, d] ~ Bernoulli(sigmoid(l[:, d]))
// That is D passes of the network (training needs one pass, sampling needs D).
// Draw the randomness from `gen` (gen.bernoulli(probs) draws 0/1 with P(1) = probs),
// so the same seed gives the same samples. Sampling needs no gradient: dgm::NoGradGuard.
// Return x [n, D], float32, every entry 0 or 1.
Tensor sample_autoregressive(int64_t n, int64_t dims, const std::function<Tensor(const Tensor&)>& logits_of,
                             Generator& gen) {
  DGM_TODO("sample_autoregressive");
}

}  // namespace hw::autoregressive
