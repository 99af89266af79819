// dgm/homework/autoregressive/exercises.h — homework for the autoregressive chapter
// (docs/chapters/autoregressive.md: MADE, PixelCNN, sampling).
#pragma once

#include <functional>
#include <vector>

#include "autograd/ops.h"
#include "autograd/random.h"
#include "homework/grader/grader.h"
#include "models/pixelcnn.h"

namespace hw::autoregressive {

using dgm::Generator;
using dgm::Tensor;
using dgm::models::MaskType;

// made_masks.cpp: MADE's masks, one [out, in] 0/1 matrix per layer.
std::vector<Tensor> made_masks(const std::vector<int64_t>& order, const std::vector<std::vector<int64_t>>& hidden_degrees);
// pixelcnn_mask.cpp: the [out, in, k, k] mask of a type-A or type-B masked convolution.
Tensor pixelcnn_mask(int64_t out_channels, int64_t in_channels, int64_t kernel, MaskType type, int64_t data_channels);
// sample_autoregressive.cpp: n samples of D binary dimensions, one network pass per dimension.
Tensor sample_autoregressive(int64_t n, int64_t dims, const std::function<Tensor(const Tensor&)>& logits_of,
                             Generator& gen);

struct Functions {
  std::function<std::vector<Tensor>(const std::vector<int64_t>&, const std::vector<std::vector<int64_t>>&)> made_masks;
  std::function<Tensor(int64_t, int64_t, int64_t, MaskType, int64_t)> pixelcnn_mask;
  std::function<Tensor(int64_t, int64_t, const std::function<Tensor(const Tensor&)>&, Generator&)> sample_autoregressive;
};
inline Functions linked() {
  return {&hw::autoregressive::made_masks, &hw::autoregressive::pixelcnn_mask, &hw::autoregressive::sample_autoregressive};
}

std::vector<Exercise> exercises(const Functions& f);

}  // namespace hw::autoregressive
