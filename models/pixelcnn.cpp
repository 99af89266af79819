// dgm/models/pixelcnn.cpp
#include "models/pixelcnn.h"

#include "autograd/graph.h"
#include "models/conditional.h"
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
                   bool gated, int64_t classes, int64_t class_maps)
    : levels_(levels), height_(height), width_(width), channels_(channels), blocks_count_(blocks), classes_(classes),
      class_maps_(classes > 0 ? class_maps : 0), gated_(gated) {
  if (levels < 2) throw Error("PixelCNN: needs at least 2 levels");
  if (classes < 0 || class_maps < 0)
    throw Error("PixelCNN: classes and class_maps must be >= 0 (0: none), got " + std::to_string(classes) + " and " + std::to_string(class_maps));
  input_ = register_module("input", std::make_shared<MaskedConv2d>(1, channels, 7, MaskType::A, gen));
  // a conditional model's class terms start at 0: it starts as the unconditional model
  if (class_maps_ > 0) maps_ = register_parameter("class_maps", Tensor::zeros({classes, class_maps_, height, width}));
  auto class_vectors = [&](const std::string& name, int64_t width) {
    if (classes == 0) return;
    class_vectors_.push_back(register_parameter(name, Tensor::zeros({classes, width})));
    const double bound = 1.0 / std::sqrt(static_cast<double>(class_maps_));
    if (class_maps_ > 0)
      map_weights_.push_back(register_parameter(name + "_map_weight", gen.uniform(Shape{width, class_maps_, 1, 1}, -bound, bound)));
  };
  class_vectors("class_input", channels);
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t width = gated ? 2 * channels : channels;
    blocks_.push_back(register_module("block" + std::to_string(b),
                                      std::make_shared<MaskedConv2d>(channels, width, 3, MaskType::B, gen)));
    class_vectors("class_block" + std::to_string(b), width);
    if (gated)
      gate_out_.push_back(register_module("gate" + std::to_string(b), std::make_shared<nn::Conv2d>(channels, channels, 1, gen)));
  }
  output_ = register_module("output", std::make_shared<nn::Conv2d>(channels, levels == 2 ? 1 : levels, 1, gen));
}

Tensor PixelCNN::logits(const Tensor& x, const Tensor& y) {
  if (x.dim() != 4 || x.size(1) != 1)
    throw Error("PixelCNN: expects grey images [N, 1, H, W], got " + x.shape().str());
  if (classes_ > 0 && !y.defined()) throw Error("PixelCNN: a class-conditional model (" + std::to_string(classes_) + " classes) needs labels");
  if (classes_ == 0 && y.defined()) throw Error("PixelCNN: labels given to an unconditional model (classes 0)");
  if (y.defined()) check_labels(y, x.size(0), classes_, "PixelCNN");
  ++passes;
  // the class vector of layer l, [N, width, 1, 1]: the same at every pixel (0 when unconditional)
  auto with_class = [&](const Tensor& pre, size_t layer) {
    if (classes_ == 0) return pre;
    const Tensor v = index_select(class_vectors_[layer], 0, y);
    Tensor out = pre + reshape(v, {v.size(0), v.size(1), 1, 1}).to(pre.dtype());
    if (class_maps_ > 0) out = out + conv2d(index_select(maps_, 0, y), map_weights_[layer]).to(pre.dtype());
    return out;
  };
  Tensor h = with_class(input_->forward((x - 0.5) * 2.0), 0);
  for (size_t b = 0; b < blocks_.size(); ++b) {
    Tensor u = with_class(blocks_[b]->forward(relu(h)), b + 1);
    if (gated_) {
      const int64_t c = u.size(1) / 2;
      u = gate_out_[b]->forward(tanh(slice(u, 1, 0, c)) * sigmoid(slice(u, 1, c, 2 * c)));
    }
    h = h + u;
  }
  return output_->forward(relu(h));
}

// log p(x) = sum over pixels of log p(x_i | x_<i), all read off one pass
// (a conditional model: log (1/K) sum_y p(x | y), one pass per class).
Tensor PixelCNN::log_prob(const Tensor& x) {
  if (classes_ > 0) return uniform_mixture_log_prob(*this, x);
  return log_prob_given(x, Tensor());
}

Tensor PixelCNN::log_prob_given(const Tensor& x, const Tensor& y) {
  Tensor l = logits(x, y);
  if (levels_ == 2) return dist::sum_per_example(dist::Bernoulli{l}.log_prob(x));
  Tensor idx = dist::levels_to_index(squeeze(x, 1), levels_);
  return dist::sum_per_example(dist::Categorical{l, 1}.log_prob(idx));
}

Tensor PixelCNN::sample(int64_t n, Generator& gen) {
  // a conditional model: y ~ p(y) (uniform), then x ~ p(x | y)
  if (classes_ > 0) return sample_given(gen.randint(Shape{n}, 0, classes_), gen);
  return complete(Tensor::zeros({n, 1, height_, width_}, output_->weight.dtype()), 0, gen);
}

Tensor PixelCNN::sample_given(const Tensor& y, Generator& gen) {
  return complete(Tensor::zeros({y.numel(), 1, height_, width_}, output_->weight.dtype()), 0, gen, y);
}

Tensor PixelCNN::complete(const Tensor& observed, int64_t known_rows, Generator& gen, const Tensor& y) {
  NoGradGuard ng;
  const DType dt = output_->weight.dtype();
  Tensor x = observed.to(dt).contiguous_copy();
  const int64_t n = x.size(0), h = height_, w = width_;
  if (x.shape() != Shape{n, 1, h, w})
    throw Error("PixelCNN::complete: observed must be [n, 1, " + std::to_string(h) + ", " + std::to_string(w) +
                "], got " + x.shape().str());
  for (int64_t i = known_rows; i < h; ++i)
    for (int64_t j = 0; j < w; ++j) {
      Tensor l = slice(slice(logits(x, y), 2, i, i + 1), 3, j, j + 1);  // [n, K, 1, 1]
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
  nlohmann::json c{{"levels", levels_}, {"channels", channels_}, {"blocks", blocks_count_},
                   {"height", height_},  {"width", width_},       {"gated", gated_}};
  if (classes_ > 0) c["classes"] = classes_, c["class_maps"] = class_maps_;
  return c.dump();
}

}  // namespace dgm::models
