// dgm/homework/intro/exercises.h — homework for the introduction (docs/chapters/intro.md).
#pragma once

#include <functional>
#include <vector>

#include "autograd/ops.h"
#include "homework/grader/grader.h"

namespace hw::intro {

using dgm::Tensor;

// class_posterior.cpp: p(y | x) from a generative model's p(x | y) and p(y), by Bayes' rule.
Tensor class_posterior(const Tensor& log_px_given_y, const Tensor& log_prior);
// auroc.cpp: the area under the ROC curve of scores that should rank `in` above `out`.
double auroc(const std::vector<double>& in, const std::vector<double>& out);

struct Functions {
  std::function<Tensor(const Tensor&, const Tensor&)> class_posterior;
  std::function<double(const std::vector<double>&, const std::vector<double>&)> auroc;
};
inline Functions linked() { return {&hw::intro::class_posterior, &hw::intro::auroc}; }

std::vector<Exercise> exercises(const Functions& f);

}  // namespace hw::intro
