// dgm/homework/likelihood/exercises.h — homework for the likelihood chapter (docs/chapters/likelihood.md).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "autograd/ops.h"
#include "homework/grader/grader.h"

namespace hw::likelihood {

using dgm::Tensor;

// rans_put.cpp: one rANS encoding step (with its renormalisation): the state after coding a symbol.
uint32_t rans_put(uint32_t state, uint32_t freq, uint32_t start, std::vector<uint8_t>& bytes_out);
// mmd2_unbiased.cpp: the unbiased estimate of MMD^2 between samples X and Y, Gaussian kernel.
double mmd2_unbiased(const Tensor& X, const Tensor& Y, double bandwidth);

struct Functions {
  std::function<uint32_t(uint32_t, uint32_t, uint32_t, std::vector<uint8_t>&)> rans_put;
  std::function<double(const Tensor&, const Tensor&, double)> mmd2_unbiased;
};
inline Functions linked() { return {&hw::likelihood::rans_put, &hw::likelihood::mmd2_unbiased}; }

std::vector<Exercise> exercises(const Functions& f);

}  // namespace hw::likelihood
