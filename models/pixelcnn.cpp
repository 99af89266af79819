// dgm/models/pixelcnn.cpp
#include "models/pixelcnn.h"

#include "autograd/graph.h"
#include "models/distributions.h"

namespace dgm::models {

PixelCNN::PixelCNN(int64_t levels, int64_t channels, int64_t blocks, Generator& gen, bool gated)
    : levels_(levels), gated_(gated) {
  if (levels < 2) throw Error("PixelCNN: needs at least 2 levels");
  input_ = register_module("input", std::make_shared<nn::MaskedConv2d>(1, channels, 7, nn::MaskType::A, gen));
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t width = gated ? 2 * channels : channels;
    blocks_.push_back(register_module("block" + std::to_string(b),
                                      std::make_shared<nn::MaskedConv2d>(channels, width, 3, nn::MaskType::B, gen)));
    if (gated)
      gate_out_.push_back(register_module("gate" + std::to_string(b), std::make_shared<nn::Conv2d>(channels, channels, 1, gen)));
  }
  output_ = register_module("output", std::make_shared<nn::Conv2d>(channels, levels == 2 ? 1 : levels, 1, gen));
}

Tensor PixelCNN::logits(const Tensor& x) {
  if (x.dim() != 4 || x.size(1) != 1)
    throw Error("PixelCNN: expects grey images [N, 1, H, W], got " + x.shape().str());
  ++passes;
  Tensor h = input_->forward((x - 0.5) * 2.0);
  for (size_t b = 0; b < blocks_.size(); ++b) {
    Tensor u = blocks_[b]->forward(relu(h));
    if (gated_) {
      const int64_t c = u.size(1) / 2;
      u = gate_out_[b]->forward(tanh(slice(u, 1, 0, c)) * sigmoid(slice(u, 1, c, 2 * c)));
    }
    h = h + u;
  }
  return output_->forward(relu(h));
}

// log p(x) = sum over pixels of log p(x_i | x_<i), all read off one pass.
Tensor PixelCNN::log_prob(const Tensor& x) {
  Tensor l = logits(x);
  if (levels_ == 2) return dist::sum_per_example(dist::bernoulli_log_prob(l, x));
  Tensor idx = dist::levels_to_index(squeeze(x, 1), levels_);
  return dist::sum_per_example(dist::categorical_log_prob(l, idx, 1));
}

Tensor PixelCNN::sample(int64_t n, int64_t h, int64_t w, Generator& gen, const Tensor& observed, int64_t known_rows) {
  NoGradGuard ng;
  const DType dt = output_->weight.dtype();
  Tensor x = observed.defined() ? observed.to(dt) : Tensor::zeros({n, 1, h, w}, dt);
  if (x.shape() != Shape{n, 1, h, w}) throw Error("PixelCNN::sample: observed must be [n, 1, H, W], got " + x.shape().str());
  for (int64_t i = known_rows; i < h; ++i)
    for (int64_t j = 0; j < w; ++j) {
      Tensor l = slice(slice(logits(x), 2, i, i + 1), 3, j, j + 1);  // [n, K, 1, 1]
      Tensor v = levels_ == 2 ? dist::bernoulli_sample(l, gen)
                              : dist::index_to_levels(dist::categorical_sample(l, 1, gen), levels_, dt);
      for (int64_t k = 0; k < n; ++k) {
        const double val = v.at(k);
        if (dt == DType::Float32) x.data<float>()[(k * h + i) * w + j] = static_cast<float>(val);
        else x.data<double>()[(k * h + i) * w + j] = val;
      }
    }
  return x;
}

}  // namespace dgm::models
