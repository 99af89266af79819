// dgm/autograd/nn.cpp — Module, layers, initialisers.
#include "autograd/nn.h"

#include <cmath>
#include <typeinfo>

#include "autograd/graph.h"

namespace dgm::nn {

Tensor Module::forward(const Tensor&) {
  throw Error("Module::forward: this module has no single-input forward; call its own methods");
}

Tensor Module::register_parameter(const std::string& name, Tensor t) {
  for (auto& [n, _] : params_)
    if (n == name) throw Error("register_parameter: '" + name + "' is already registered");
  t.set_requires_grad(true);
  params_.emplace_back(name, t);
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t) {
  for (auto& [n, _] : buffers_)
    if (n == name) throw Error("register_buffer: '" + name + "' is already registered");
  buffers_.emplace_back(name, t);
  return t;
}

void Module::collect(const std::string& prefix, NamedTensors& out, bool buffers) const {
  for (auto& [n, t] : buffers ? buffers_ : params_) out.emplace_back(prefix + n, t);
  for (auto& [n, m] : children_) m->collect(prefix + n + ".", out, buffers);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", out, false);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", out, true);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [_, t] : named_parameters()) out.push_back(t);
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (auto& t : parameters()) n += t.numel();
  return n;
}

void Module::zero_grad() {
  for (auto& t : parameters()) t.zero_grad();
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [_, m] : children_) m->train(on);
}

void Module::to(DType dtype) {
  auto convert = [&](const NamedTensors& ts) {
    for (auto& [_, t] : ts) {
      if (t.dtype() == dtype || !is_floating(t.dtype())) continue;
      Tensor c = t.to(dtype);
      TensorImpl& impl = t.impl();
      impl.storage = c.impl().storage;
      impl.dtype = dtype;
      impl.grad.reset();
    }
  };
  convert(named_parameters());
  convert(named_buffers());
}

// ---------------------------------------------------------------- Linear
Linear::Linear(int64_t in, int64_t out, Generator& gen, bool has_bias) {
  if (in <= 0 || out <= 0)
    throw Error("Linear: sizes must be positive, got in=" + std::to_string(in) + " out=" + std::to_string(out));
  const double bound = 1.0 / std::sqrt(static_cast<double>(in));
  weight = register_parameter("weight", gen.uniform(Shape{out, in}, -bound, bound));
  if (has_bias) bias = register_parameter("bias", gen.uniform(Shape{out}, -bound, bound));
}

Tensor Linear::forward(const Tensor& x) { return linear(x, weight, bias); }

// ---------------------------------------------------------------- Sequential
Sequential& Sequential::add(std::shared_ptr<Module> m) {
  register_module(std::to_string(layers_.size()), m);
  layers_.push_back(std::move(m));
  return *this;
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (size_t i = 0; i < layers_.size(); ++i) {
    // A Linear followed by a ReLU (exactly those classes, not a subclass with its own forward):
    // one op, linear_relu, that writes relu(x W^T + b) in one pass over its output.
    const Module& m = *layers_[i];
    if (typeid(m) == typeid(Linear) && i + 1 < layers_.size() && typeid(*layers_[i + 1]) == typeid(ReLU)) {
      const auto& lin = static_cast<const Linear&>(m);
      h = linear_relu(h, lin.weight, lin.bias);
      ++i;
      continue;
    }
    h = layers_[i]->forward(h);
  }
  return h;
}

// ---------------------------------------------------------------- convolutions
Conv2d::Conv2d(int64_t in, int64_t out, int64_t k, Generator& gen, int64_t s, int64_t p, int64_t d, bool has_bias)
    : stride(s), padding(p), dilation(d) {
  if (in <= 0 || out <= 0 || k <= 0) throw Error("Conv2d: channels and kernel size must be positive");
  const double bound = 1.0 / std::sqrt(static_cast<double>(in * k * k));
  weight = register_parameter("weight", gen.uniform(Shape{out, in, k, k}, -bound, bound));
  if (has_bias) bias = register_parameter("bias", gen.uniform(Shape{out}, -bound, bound));
}
Tensor Conv2d::forward(const Tensor& x) { return conv2d(x, weight, bias, stride, padding, dilation); }

ConvTranspose2d::ConvTranspose2d(int64_t in, int64_t out, int64_t k, Generator& gen, int64_t s, int64_t p,
                                 int64_t op, bool has_bias)
    : stride(s), padding(p), output_padding(op) {
  if (in <= 0 || out <= 0 || k <= 0) throw Error("ConvTranspose2d: channels and kernel size must be positive");
  const double bound = 1.0 / std::sqrt(static_cast<double>(out * k * k));  // PyTorch's fan-in for [in, out, k, k]
  weight = register_parameter("weight", gen.uniform(Shape{in, out, k, k}, -bound, bound));
  if (has_bias) bias = register_parameter("bias", gen.uniform(Shape{out}, -bound, bound));
}
Tensor ConvTranspose2d::forward(const Tensor& x) {
  return conv_transpose2d(x, weight, bias, stride, padding, output_padding);
}

// ---------------------------------------------------------------- masked layers
MaskedLinear::MaskedLinear(int64_t in, int64_t out, const Tensor& m, Generator& gen, bool has_bias) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(in));
  weight = register_parameter("weight", gen.uniform(Shape{out, in}, -bound, bound));
  if (has_bias) bias = register_parameter("bias", gen.uniform(Shape{out}, -bound, bound));
  mask = register_buffer("mask", Tensor::zeros({out, in}));
  set_mask(m);
}
void MaskedLinear::set_mask(const Tensor& m) {
  if (m.shape() != mask.shape())
    throw Error("MaskedLinear: mask " + m.shape().str() + " must have the weight's shape " + mask.shape().str());
  NoGradGuard ng;
  mask.copy_(m.to(mask.dtype()));
}
Tensor MaskedLinear::forward(const Tensor& x) { return linear(x, weight * mask, bias); }

// ---------------------------------------------------------------- normalisation
LayerNorm::LayerNorm(const Shape& shape, double e) : eps(e) {
  weight = register_parameter("weight", Tensor::ones(shape));
  bias = register_parameter("bias", Tensor::zeros(shape));
}
Tensor LayerNorm::forward(const Tensor& x) {
  return layer_norm(x, static_cast<int64_t>(weight.dim()), weight, bias, eps);
}

GroupNorm::GroupNorm(int64_t g, int64_t channels, double e) : groups(g), eps(e) {
  weight = register_parameter("weight", Tensor::ones({channels}));
  bias = register_parameter("bias", Tensor::zeros({channels}));
}
Tensor GroupNorm::forward(const Tensor& x) { return group_norm(x, groups, weight, bias, eps); }

// ---------------------------------------------------------------- initialisers
std::pair<int64_t, int64_t> fans(const Tensor& w) {
  if (w.dim() < 2) throw Error("init: fan-in needs a weight of at least 2 dimensions, got " + w.shape().str());
  int64_t receptive = 1;
  for (size_t i = 2; i < w.dim(); ++i) receptive *= w.shape()[i];
  return {w.shape()[1] * receptive, w.shape()[0] * receptive};
}

namespace init {
void uniform_(Tensor& t, double low, double high, Generator& gen) { gen.fill_uniform_(t, low, high); }
void normal_(Tensor& t, double mean, double std, Generator& gen) { gen.fill_normal_(t, mean, std); }
void zeros_(Tensor& t) {
  NoGradGuard ng;
  t.fill_(0.0);
}
void kaiming_uniform_(Tensor& w, Generator& gen, double a) {
  const double std = std::sqrt(2.0 / (1.0 + a * a)) / std::sqrt(static_cast<double>(fans(w).first));
  const double bound = std::sqrt(3.0) * std;  // U(-b, b) has std b / sqrt(3)
  gen.fill_uniform_(w, -bound, bound);
}
void kaiming_normal_(Tensor& w, Generator& gen, double a) {
  const double std = std::sqrt(2.0 / (1.0 + a * a)) / std::sqrt(static_cast<double>(fans(w).first));
  gen.fill_normal_(w, 0.0, std);
}
void xavier_uniform_(Tensor& w, Generator& gen, double gain) {
  auto [fi, fo] = fans(w);
  const double bound = gain * std::sqrt(6.0 / static_cast<double>(fi + fo));
  gen.fill_uniform_(w, -bound, bound);
}
void xavier_normal_(Tensor& w, Generator& gen, double gain) {
  auto [fi, fo] = fans(w);
  gen.fill_normal_(w, 0.0, gain * std::sqrt(2.0 / static_cast<double>(fi + fo)));
}
}  // namespace init

}  // namespace dgm::nn
