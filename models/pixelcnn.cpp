// dgm/models/pixelcnn.cpp
#include "models/pixelcnn.h"

#include "autograd/graph.h"
#include "models/toolkit/distributions.h"

#include <cmath>
#include <nlohmann/json.hpp>

namespace dgm::models {

// ---------------------------------------------------------------- the masked convolution
Tensor pixelcnn_mask(int64_t out_c, int64_t in_c, int64_t k, MaskType type, int64_t data_channels) {
  if (k % 2 == 0) throw Error("pixelcnn_mask: the kernel size must be odd, got " + std::to_string(k));
  if (data_channels < 1 || in_c < data_channels || out_c < data_channels)
    throw Error("pixelcnn_mask: " + std::to_string(data_channels) + " data channels do not fit " +
                std::to_string(in_c) + " -> " + std::to_string(out_c) + " channels");
  Tensor m = Tensor::zeros({out_c, in_c, k, k});
  float* p = m.data<float>();
  const int64_t c = k / 2;
  auto group = [data_channels](int64_t ch, int64_t total) { return ch * data_channels / total; };
  for (int64_t o = 0; o < out_c; ++o)
    for (int64_t i = 0; i < in_c; ++i)
      for (int64_t y = 0; y < k; ++y)
        for (int64_t x = 0; x < k; ++x) {
          bool keep;
          if (y < c || (y == c && x < c)) keep = true;  // strictly before the centre in raster order
          else if (y == c && x == c)
            keep = type == MaskType::A ? group(i, in_c) < group(o, out_c) : group(i, in_c) <= group(o, out_c);
          else keep = false;
          p[((o * in_c + i) * k + y) * k + x] = keep ? 1.f : 0.f;
        }
  return m;
}

MaskedConv2d::MaskedConv2d(int64_t in, int64_t out, int64_t k, MaskType type, Generator& gen, int64_t data_channels,
                           bool has_bias) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(in * k * k));
  weight = register_parameter("weight", gen.uniform(Shape{out, in, k, k}, -bound, bound));
  if (has_bias) bias = register_parameter("bias", gen.uniform(Shape{out}, -bound, bound));
  mask = register_buffer("mask", pixelcnn_mask(out, in, k, type, data_channels));
  // one [k, k] kernel mask when every (out, in) pair has the same one
  const float* m = mask.data<float>();
  bool uniform = true;
  for (int64_t p = 0; p < out * in && uniform; ++p)
    for (int64_t t = 0; t < k * k; ++t)
      if (m[p * k * k + t] != m[t]) uniform = false;
  if (uniform) kernel_mask_ = reshape(slice(reshape(mask, {out * in, k * k}), 0, 0, 1), {k, k}).contiguous_copy();
}

Tensor MaskedConv2d::forward(const Tensor& x) {
  const int64_t pad = weight.shape()[2] / 2;
  if (kernel_mask_.defined()) return masked_conv2d(x, weight, kernel_mask_, bias, 1, pad);
  return conv2d(x, weight * mask, bias, 1, pad);
}

// ---------------------------------------------------------------- the model
PixelCNN::PixelCNN(int64_t levels, int64_t channels, int64_t blocks, int64_t height, int64_t width, Generator& gen,
                   bool gated)
    : levels_(levels), height_(height), width_(width), channels_(channels), blocks_count_(blocks), gated_(gated) {
  if (levels < 2) throw Error("PixelCNN: needs at least 2 levels");
  input_ = register_module("input", std::make_shared<MaskedConv2d>(1, channels, 7, MaskType::A, gen));
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t width = gated ? 2 * channels : channels;
    blocks_.push_back(register_module("block" + std::to_string(b),
                                      std::make_shared<MaskedConv2d>(channels, width, 3, MaskType::B, gen)));
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
  if (levels_ == 2) return dist::sum_per_example(dist::Bernoulli{l}.log_prob(x));
  Tensor idx = dist::levels_to_index(squeeze(x, 1), levels_);
  return dist::sum_per_example(dist::Categorical{l, 1}.log_prob(idx));
}

Tensor PixelCNN::sample(int64_t n, Generator& gen) {
  return complete(Tensor::zeros({n, 1, height_, width_}, output_->weight.dtype()), 0, gen);
}

Tensor PixelCNN::complete(const Tensor& observed, int64_t known_rows, Generator& gen) {
  NoGradGuard ng;
  const DType dt = output_->weight.dtype();
  Tensor x = observed.to(dt).contiguous_copy();
  const int64_t n = x.size(0), h = height_, w = width_;
  if (x.shape() != Shape{n, 1, h, w})
    throw Error("PixelCNN::complete: observed must be [n, 1, " + std::to_string(h) + ", " + std::to_string(w) +
                "], got " + x.shape().str());
  for (int64_t i = known_rows; i < h; ++i)
    for (int64_t j = 0; j < w; ++j) {
      Tensor l = slice(slice(logits(x), 2, i, i + 1), 3, j, j + 1);  // [n, K, 1, 1]
      Tensor v = levels_ == 2 ? dist::Bernoulli{l}.sample(gen)
                              : dist::index_to_levels(dist::Categorical{l, 1}.sample(gen), levels_, dt);
      for (int64_t k = 0; k < n; ++k) {
        const double val = v.at(k);
        if (dt == DType::Float32) x.data<float>()[(k * h + i) * w + j] = static_cast<float>(val);
        else x.data<double>()[(k * h + i) * w + j] = val;
      }
    }
  return x;
}

std::string PixelCNN::config_json() const {
  return nlohmann::json{{"levels", levels_}, {"channels", channels_}, {"blocks", blocks_count_},
                        {"height", height_},  {"width", width_},       {"gated", gated_}}
      .dump();
}

}  // namespace dgm::models
