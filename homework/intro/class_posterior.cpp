// Homework, intro chapter, exercise 1 (10 points): a generative model as a classifier.
//   grade: make grade CHAPTER=intro      (the math: docs/chapters/intro.md, section 1)
#include "homework/intro/exercises.h"

namespace hw::intro {

// A generative model of images per class, p(x | y), and the class frequencies p(y)
// classify by Bayes' rule:
//
//     p(y | x) = p(y) p(x | y) / sum_y' p(y') p(x | y')
//
// log_px_given_y: [N, C], log p(x_n | y = c); log_prior: [C], log p(y = c).
// Return p(y | x) [N, C], each row summing to 1. An image's likelihood is tiny
// (log p(x | y) = -3000 for a 784-pixel image is ordinary): exp() underflows to 0
// and 0 / 0 = NaN. Work with logs: subtract each row's logsumexp, then exp.
Tensor class_posterior(const Tensor& log_px_given_y, const Tensor& log_prior) {
  DGM_TODO("class_posterior");
}

}  // namespace hw::intro
