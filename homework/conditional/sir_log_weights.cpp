// Homework, conditional chapter, exercise 3 (10 points): sampling-importance-resampling's weights.
//   grade: make grade CHAPTER=conditional      (the math: docs/chapters/conditional.md, step 3)
#include "homework/conditional/exercises.h"

namespace hw::conditional {

// Draws x_i ~ p(x) from an unconditional model, and a classifier's p(y | x), give draws
// of p(x | y) by Bayes' rule, p(x | y) = p(x) p(y | x) / p(y): weight each draw by
//
//     w_i = p(y = target | x_i) / p(y = target)      (= p(x_i | y) / p(x_i), whose mean under p(x) is 1)
//
// and resample in proportion to w.
// classifier_logits: [M, K], the classifier's logits (p(y | x_i) = softmax of row i);
// log_prior: [K], log p(y). Return log w_i, [M]. Logits can be large (a confident
// classifier's reach +-1000): exp() of them overflows. Work with logs.
Tensor sir_log_weights(const Tensor& classifier_logits, const Tensor& log_prior, int64_t target) {
  DGM_TODO("sir_log_weights");
}

}  // namespace hw::conditional
