// dgm/autograd/nn.h — modules with named parameters, layers, initialisers.
//
// A Module owns named parameters and named child modules; parameter names
// are dotted paths ("encoder.fc1.weight"), as in PyTorch, and they are the
// keys of checkpoints. train()/eval() switch mode through the whole tree.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/ops.h"
#include "autograd/random.h"

namespace dgm::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // The single-input forward most layers have; composite models may instead
  // define methods of their own (log_prob, elbo, ...).
  virtual Tensor forward(const Tensor& x);
  Tensor operator()(const Tensor& x) { return forward(x); }

  NamedTensors named_parameters() const;  // this module's and all children's, dotted names
  NamedTensors named_buffers() const;     // non-trainable state (masks, running stats)
  std::vector<Tensor> parameters() const;
  int64_t num_parameters() const;         // total number of scalar parameters
  void zero_grad();
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  // Converts every parameter and buffer to `dtype` in place: handles held
  // elsewhere see the new dtype too (float64 for gradient checks).
  void to(DType dtype);

 protected:
  Tensor register_parameter(const std::string& name, Tensor t);
  Tensor register_buffer(const std::string& name, Tensor t);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    children_.emplace_back(name, m);
    return m;
  }

 private:
  void collect(const std::string& prefix, NamedTensors& out, bool buffers) const;
  NamedTensors params_, buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

// ---------------------------------------------------------------- layers
// y = x W^T + b,  W: [out, in]. Initialised as PyTorch does: U(-1/sqrt(in), 1/sqrt(in)).
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, Generator& gen, bool bias = true);
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias;
};

// Applies its children in order. A Linear directly followed by a ReLU runs as one op, linear_relu
// (the same values; one node in the graph, named "linear_relu").
class Sequential : public Module {
 public:
  Sequential() = default;
  Sequential& add(std::shared_ptr<Module> m);
  Tensor forward(const Tensor& x) override;
  size_t size() const { return layers_.size(); }
  Module& operator[](size_t i) { return *layers_.at(i); }

 private:
  std::vector<std::shared_ptr<Module>> layers_;
};

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override { return relu(x); }
};
class Tanh : public Module {
 public:
  Tensor forward(const Tensor& x) override { return tanh(x); }
};
class Sigmoid : public Module {
 public:
  Tensor forward(const Tensor& x) override { return sigmoid(x); }
};
class SiLU : public Module {
 public:
  Tensor forward(const Tensor& x) override { return silu(x); }
};
class GELU : public Module {
 public:
  Tensor forward(const Tensor& x) override { return gelu(x); }
};
class Softplus : public Module {
 public:
  Tensor forward(const Tensor& x) override { return softplus(x); }
};
class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(double slope = 0.01) : slope_(slope) {}
  Tensor forward(const Tensor& x) override { return leaky_relu(x, slope_); }

 private:
  double slope_;
};

// y = conv2d(x, W) + b, W: [out, in, k, k], initialised as PyTorch (U(+-1/sqrt(in k k))).
class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel, Generator& gen, int64_t stride = 1,
         int64_t padding = 0, int64_t dilation = 1, bool bias = true);
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias;
  int64_t stride, padding, dilation;
};

// y = conv_transpose2d(x, W) + b, W: [in, out, k, k].
class ConvTranspose2d : public Module {
 public:
  ConvTranspose2d(int64_t in_channels, int64_t out_channels, int64_t kernel, Generator& gen, int64_t stride = 1,
                  int64_t padding = 0, int64_t output_padding = 0, bool bias = true);
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias;
  int64_t stride, padding, output_padding;
};

// A Linear layer whose weight is multiplied by a fixed 0/1 mask [out, in]
// (MADE): output j sees input i only where mask[j][i] = 1.
class MaskedLinear : public Module {
 public:
  MaskedLinear(int64_t in_features, int64_t out_features, const Tensor& mask, Generator& gen, bool bias = true);
  Tensor forward(const Tensor& x) override;
  void set_mask(const Tensor& mask);  // e.g. after re-drawing an ordering
  Tensor weight, bias, mask;
};

class LayerNorm : public Module {
 public:
  explicit LayerNorm(const Shape& normalized_shape, double eps = 1e-5);
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias;
  double eps;
};

class GroupNorm : public Module {
 public:
  GroupNorm(int64_t groups, int64_t channels, double eps = 1e-5);
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias;
  int64_t groups;
  double eps;
};

// Active in train() mode only; draws its masks from `gen` (kept by reference).
class Dropout : public Module {
 public:
  Dropout(double p, Generator& gen) : p_(p), gen_(&gen) {}
  Tensor forward(const Tensor& x) override { return dropout(x, p_, is_training(), *gen_); }

 private:
  double p_;
  Generator* gen_;
};

// An MLP: Linear layers of the given widths with `Activation` between them
// (none after the last).
template <class Activation = ReLU>
std::shared_ptr<Sequential> mlp(const std::vector<int64_t>& widths, Generator& gen) {
  auto s = std::make_shared<Sequential>();
  for (size_t i = 0; i + 1 < widths.size(); ++i) {
    s->add(std::make_shared<Linear>(widths[i], widths[i + 1], gen));
    if (i + 2 < widths.size()) s->add(std::make_shared<Activation>());
  }
  return s;
}

// ---------------------------------------------------------------- initialisers
// fan_in / fan_out of a weight [out, in, k...]: in * prod(k) and out * prod(k).
std::pair<int64_t, int64_t> fans(const Tensor& w);
namespace init {
void uniform_(Tensor& t, double low, double high, Generator& gen);
void normal_(Tensor& t, double mean, double std, Generator& gen);
void zeros_(Tensor& t);
// Kaiming (He): std = gain / sqrt(fan_in), gain = sqrt(2 / (1 + a^2)) (a: leaky slope).
void kaiming_uniform_(Tensor& w, Generator& gen, double a = 0.0);
void kaiming_normal_(Tensor& w, Generator& gen, double a = 0.0);
// Xavier (Glorot): std = gain * sqrt(2 / (fan_in + fan_out)).
void xavier_uniform_(Tensor& w, Generator& gen, double gain = 1.0);
void xavier_normal_(Tensor& w, Generator& gen, double gain = 1.0);
}  // namespace init

}  // namespace dgm::nn
