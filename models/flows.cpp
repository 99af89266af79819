// dgm/models/flows.cpp — the bijectors and flows of flows.h, each forward
// beside its inverse and its log-determinant.
#include "models/flows.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "autograd/graph.h"
#include "models/toolkit/distributions.h"
#include "models/toolkit/linalg.h"
#include "models/toolkit/transforms.h"

namespace dgm::models {

namespace flows {

namespace {

// The shape of one example: x's shape without the batch axis.
Shape event_of(const Tensor& x) {
  Shape s;
  for (size_t a = 1; a < x.dim(); ++a) s.push_back(x.size(static_cast<int64_t>(a)));
  return s;
}

// A mask [1, C, ...] (possibly broadcast, as channel masks are) fits a batch x
// when the ranks agree, the channels agree, and every other axis agrees or is 1.
void check_fits(const std::string& kind, const Tensor& x, const Tensor& mask) {
  bool ok = x.dim() == mask.dim() && x.dim() >= 2 && x.size(1) == mask.size(1);
  for (size_t a = 2; ok && a < x.dim(); ++a) ok = mask.size(static_cast<int64_t>(a)) == 1 || mask.size(static_cast<int64_t>(a)) == x.size(static_cast<int64_t>(a));
  if (!ok) {
    Shape want = event_of(mask);
    throw Error(kind + ": expects a batch of examples of shape " + want.str() + " (1 = any size), got " + x.shape().str());
  }
}

void check_image(const std::string& kind, const Tensor& x, int64_t channels) {
  if (x.dim() != 4 || (channels > 0 && x.size(1) != channels))
    throw Error(kind + ": expects images [N, " + (channels > 0 ? std::to_string(channels) : std::string("C")) +
                ", H, W], got " + x.shape().str());
}

// A per-channel parameter [1, C] as it broadcasts against x: [1, C] or [1, C, 1, 1].
Tensor per_channel(const Tensor& p, const Tensor& x) {
  if (x.dim() == 2) return p;
  Shape s{1, p.size(1)};
  for (size_t a = 2; a < x.dim(); ++a) s.push_back(1);
  return reshape(p, s);
}

// Pixels per channel of one example: H W for images, 1 for vectors.
double positions(const Tensor& x) {
  double n = 1;
  for (size_t a = 2; a < x.dim(); ++a) n *= static_cast<double>(x.size(static_cast<int64_t>(a)));
  return n;
}

// A per-example log-det that is the same for every example: c, broadcast to [N].
Tensor constant_log_det(const Tensor& c, const Tensor& x) { return expand(reshape(c, {1}), {x.size(0)}); }

}  // namespace

// ------------------------------------------------------------ Chain
Chain& Chain::add(std::shared_ptr<Bijector> layer) {
  layers_.push_back(register_module(std::to_string(layers_.size()), std::move(layer)));
  return *this;
}

Flowed Chain::forward_flow(const Tensor& x) {
  Tensor h = x, log_det;
  for (size_t i = 0; i < layers_.size(); ++i) {
    Flowed f;
    try {
      f = layers_[i]->forward_flow(h);
    } catch (const Error& e) {
      throw Error("flow layer " + std::to_string(i) + " (" + layers_[i]->kind() + "): " + e.what());
    }
    // A scale that overflowed or underflowed makes the layer non-invertible there.
    const double total = sum(f.log_det).item();
    if (!std::isfinite(total))
      throw Error("flow layer " + std::to_string(i) + " (" + layers_[i]->kind() + "): log-det is " +
                  std::to_string(total) + " (a scale of zero or infinity: the layer is not invertible here)");
    h = f.z;
    log_det = log_det.defined() ? log_det + f.log_det : f.log_det;
  }
  if (!log_det.defined()) log_det = Tensor::zeros({x.size(0)}, x.dtype());
  return {h, log_det};
}

Tensor Chain::inverse(const Tensor& z) {
  Tensor h = z;
  for (size_t i = layers_.size(); i-- > 0;) h = layers_[i]->inverse(h);
  return h;
}

Shape Chain::output_shape(const Shape& input) const {
  Shape s = input;
  for (const auto& l : layers_) s = l->output_shape(s);
  return s;
}

std::vector<Tensor> Chain::trace(const Tensor& x) {
  std::vector<Tensor> out{x};
  for (auto& l : layers_) out.push_back(l->forward_flow(out.back()).z);
  return out;
}

// ------------------------------------------------------------ masks
Tensor alternating_mask(int64_t dims, int parity) {
  Tensor m = Tensor::zeros({1, dims});
  for (int64_t i = 0; i < dims; ++i) m.data<float>()[i] = (i % 2 == parity) ? 1.f : 0.f;
  return m;
}

Tensor checkerboard_mask(int64_t channels, int64_t height, int64_t width, int parity) {
  Tensor m = Tensor::zeros({1, channels, height, width});
  float* p = m.data<float>();
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t h = 0; h < height; ++h)
      for (int64_t w = 0; w < width; ++w) p[(c * height + h) * width + w] = ((h + w) % 2 == parity) ? 1.f : 0.f;
  return m;
}

Tensor channel_mask(int64_t channels, int parity) {
  Tensor m = Tensor::zeros({1, channels, 1, 1});
  for (int64_t c = 0; c < channels; ++c) m.data<float>()[c] = ((c < channels / 2) == (parity == 0)) ? 1.f : 0.f;
  return m;
}

// ------------------------------------------------------------ AdditiveCoupling
AdditiveCoupling::AdditiveCoupling(const Tensor& mask, std::shared_ptr<nn::Module> net) {
  mask_ = register_buffer("mask", mask.clone());
  free_ = register_buffer("free", 1.0 - mask);
  net_ = register_module("net", std::move(net));
}

Tensor AdditiveCoupling::shift(const Tensor& x) { return net_->forward(x * mask_) * free_; }

// z = x + (1 - b) m(b x): dz/dx = I + (strictly off-diagonal block), det = 1.
Flowed AdditiveCoupling::forward_flow(const Tensor& x) {
  check_fits(kind(), x, mask_);
  return {x + shift(x), Tensor::zeros({x.size(0)}, x.dtype())};
}

// b z = b x, so m(b z) = m(b x): subtract the same shift.
Tensor AdditiveCoupling::inverse(const Tensor& z) {
  check_fits(kind(), z, mask_);
  return z - shift(z);
}

// ------------------------------------------------------------ AffineCoupling
AffineCoupling::AffineCoupling(const Tensor& mask, std::shared_ptr<nn::Module> net) {
  mask_ = register_buffer("mask", mask.clone());
  free_ = register_buffer("free", 1.0 - mask);
  net_ = register_module("net", std::move(net));
  scale_ = register_parameter("scale", Tensor::ones({1, mask.size(1)}));
}

std::pair<Tensor, Tensor> AffineCoupling::scale_shift(const Tensor& x) {
  const int64_t c = x.size(1);
  Tensor h = net_->forward(x * mask_);
  if (h.dim() != x.dim() || h.size(1) != 2 * c)
    throw Error(kind() + ": its net must map " + x.shape().str() + " to 2x the channels, gave " + h.shape().str());
  Tensor s = per_channel(scale_, x) * tanh(slice(h, 1, 0, c));  // bounded log-scale
  Tensor t = slice(h, 1, c, 2 * c);
  return {s * free_, t * free_};  // the kept part: s = 0, t = 0 (identity)
}

// log |det| = sum over the transformed part of s (the diagonal of a triangular Jacobian).
Flowed AffineCoupling::forward_flow(const Tensor& x) {
  check_fits(kind(), x, mask_);
  auto [s, t] = scale_shift(x);
  return {x * exp(s) + t, dist::sum_per_example(s)};
}

Tensor AffineCoupling::inverse(const Tensor& z) {
  check_fits(kind(), z, mask_);
  auto [s, t] = scale_shift(z);  // b z = b x: the same s and t
  return (z - t) / exp(s);        // dividing by the forward's own exp(s) undoes it more exactly than * exp(-s)
}

// ------------------------------------------------------------ Scaling
Scaling::Scaling(const Shape& event_shape) {
  Shape s{1};
  for (int64_t d : event_shape) s.push_back(d);
  log_scale = register_parameter("log_scale", Tensor::zeros(s));
}

Flowed Scaling::forward_flow(const Tensor& x) {
  check_fits(kind(), x, log_scale);
  return {x * exp(log_scale), constant_log_det(sum(log_scale), x)};
}

Tensor Scaling::inverse(const Tensor& z) {
  check_fits(kind(), z, log_scale);
  return z * exp(neg(log_scale));
}

// ------------------------------------------------------------ ActNorm
ActNorm::ActNorm(int64_t channels) {
  bias = register_parameter("bias", Tensor::zeros({1, channels}));
  log_scale = register_parameter("log_scale", Tensor::zeros({1, channels}));
  initialized_ = register_buffer("initialized", Tensor::zeros({1}));
}

// bias = -mean, log_scale = -log(std) per channel over the batch (and pixels).
void ActNorm::initialize(const Tensor& x) {
  NoGradGuard ng;
  Axes axes{0};
  for (size_t a = 2; a < x.dim(); ++a) axes.push_back(static_cast<int64_t>(a));
  const Tensor m = reshape(mean(x, axes), {1, x.size(1)});
  const Tensor v = reshape(var(x, axes, false, false), {1, x.size(1)});
  bias.copy_(neg(m).to(bias.dtype()));
  log_scale.copy_((log(v + 1e-6) * -0.5).to(log_scale.dtype()));
  initialized_.fill_(1);
}

Flowed ActNorm::forward_flow(const Tensor& x) {
  if (x.dim() < 2 || x.size(1) != bias.size(1))
    throw Error(kind() + ": expects [N, " + std::to_string(bias.size(1)) + ", ...], got " + x.shape().str());
  if (is_training() && initialized_.at(0) == 0 && x.size(0) > 1) initialize(x);
  return {(x + per_channel(bias, x)) * exp(per_channel(log_scale, x)),
          constant_log_det(sum(log_scale) * positions(x), x)};
}

Tensor ActNorm::inverse(const Tensor& z) {
  if (z.dim() < 2 || z.size(1) != bias.size(1))
    throw Error(kind() + ": expects [N, " + std::to_string(bias.size(1)) + ", ...], got " + z.shape().str());
  return z * exp(neg(per_channel(log_scale, z))) - per_channel(bias, z);
}

// ------------------------------------------------------------ Invertible1x1Conv
Invertible1x1Conv::Invertible1x1Conv(int64_t channels, Generator& gen) {
  // W0 = a random rotation = P L U; the diagonal of U becomes sign * exp(log_s).
  const linalg::LU f = linalg::lu(linalg::orthogonal_factor(gen.normal({channels, channels}, 0, 1, DType::Float64)));
  Tensor s = Tensor::zeros({1, channels}, DType::Float64), sg = Tensor::zeros({1, channels}, DType::Float64);
  Tensor lower_mask = Tensor::zeros({channels, channels}), upper_mask = Tensor::zeros({channels, channels});
  for (int64_t i = 0; i < channels; ++i) {
    const double d = f.U.at(i * channels + i);
    s.data<double>()[i] = std::log(std::abs(d));
    sg.data<double>()[i] = d < 0 ? -1 : 1;
    for (int64_t j = 0; j < channels; ++j) {
      lower_mask.data<float>()[i * channels + j] = j < i ? 1.f : 0.f;
      upper_mask.data<float>()[i * channels + j] = j > i ? 1.f : 0.f;
    }
  }
  lower = register_parameter("lower", f.L.to(DType::Float32) * lower_mask);
  upper = register_parameter("upper", f.U.to(DType::Float32) * upper_mask);
  log_s = register_parameter("log_s", s.to(DType::Float32));
  permutation_ = register_buffer("permutation", f.P.to(DType::Float32));
  sign_ = register_buffer("sign", sg.to(DType::Float32));
  lower_mask_ = register_buffer("lower_mask", lower_mask);
  upper_mask_ = register_buffer("upper_mask", upper_mask);
  Tensor eye = Tensor::zeros({channels, channels});
  for (int64_t i = 0; i < channels; ++i) eye.data<float>()[i * channels + i] = 1.f;
  eye_ = register_buffer("eye", eye);
}

// W = P (L + I) (U + diag(sign exp(log_s))), L and U kept strictly triangular by their masks.
Tensor Invertible1x1Conv::weight() {
  Tensor l = lower * lower_mask_ + eye_;
  Tensor u = upper * upper_mask_ + eye_ * (sign_ * exp(log_s));  // eye * [1, C]: the diagonal matrix
  return matmul(permutation_, matmul(l, u));
}

Flowed Invertible1x1Conv::forward_flow(const Tensor& x) {
  const int64_t c = lower.size(0);
  check_image(kind(), x, c);
  return {conv2d(x, reshape(weight(), {c, c, 1, 1})), constant_log_det(sum(log_s) * positions(x), x)};
}

Tensor Invertible1x1Conv::inverse(const Tensor& z) {
  const int64_t c = lower.size(0);
  check_image(kind(), z, c);
  NoGradGuard ng;  // sampling: W^-1 computed once per call, in float64
  Tensor w_inv = linalg::inverse(weight().to(DType::Float64)).to(z.dtype());
  return conv2d(z, reshape(w_inv, {c, c, 1, 1}));
}

// ------------------------------------------------------------ Squeeze
// x[n, c, 2i + a, 2j + b] -> z[n, 4c + 2a + b, i, j]
Flowed Squeeze::forward_flow(const Tensor& x) {
  check_image(kind(), x, 0);
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  if (h % 2 || w % 2) throw Error(kind() + ": needs an even height and width, got " + x.shape().str());
  Tensor z = reshape(permute(reshape(x, {n, c, h / 2, 2, w / 2, 2}), {0, 1, 3, 5, 2, 4}), {n, 4 * c, h / 2, w / 2});
  return {z, Tensor::zeros({n}, x.dtype())};  // a permutation of coordinates: |det| = 1
}

Tensor Squeeze::inverse(const Tensor& z) {
  check_image(kind(), z, 0);
  const int64_t n = z.size(0), c4 = z.size(1), h = z.size(2), w = z.size(3);
  if (c4 % 4) throw Error(kind() + ": inverse needs a multiple of 4 channels, got " + z.shape().str());
  return reshape(permute(reshape(z, {n, c4 / 4, 2, 2, h, w}), {0, 1, 4, 2, 5, 3}), {n, c4 / 4, 2 * h, 2 * w});
}

Shape Squeeze::output_shape(const Shape& in) const {
  if (in.size() != 3 || in[1] % 2 || in[2] % 2) throw Error(kind() + ": needs [C, H, W] with even H and W, got " + in.str());
  return Shape{4 * in[0], in[1] / 2, in[2] / 2};
}

// ------------------------------------------------------------ LogitTransform
Flowed LogitTransform::forward_flow(const Tensor& u) {
  const double lo = min(u).item(), hi = max(u).item();
  if (!(lo >= 0 && hi <= 1))
    throw Error(kind() + ": expects dequantized data in [0, 1], got values in [" + std::to_string(lo) + ", " +
                std::to_string(hi) + "]");
  const double d = static_cast<double>(u.numel() / u.size(0));
  Tensor p = u * (1 - 2 * alpha) + alpha;
  Tensor log_p = log(p), log_1mp = log(1.0 - p);
  // dy/du = (1 - 2 alpha) / (p (1 - p))
  return {log_p - log_1mp, dist::sum_per_example(neg(log_p + log_1mp)) + d * std::log(1 - 2 * alpha)};
}

Tensor LogitTransform::inverse(const Tensor& y) { return (sigmoid(y) - alpha) / (1 - 2 * alpha); }

// ------------------------------------------------------------ MultiScale
MultiScale::MultiScale(std::vector<std::shared_ptr<Chain>> stages, const Shape& input_shape)
    : input_shape_(input_shape) {
  if (stages.empty()) throw Error("multi-scale flow: needs at least one stage");
  Shape s = input_shape;
  for (size_t i = 0; i < stages.size(); ++i) {
    stages_.push_back(register_module("stage" + std::to_string(i), stages[i]));
    Shape out = stages[i]->output_shape(s);
    out_shapes_.push_back(out);
    if (i + 1 < stages.size()) {
      if (out.size() != 3 || out[0] < 2)
        throw Error("multi-scale flow: stage " + std::to_string(i) + " gives " + out.str() + ", needs [C >= 2, H, W] to factor out half");
      s = Shape{out[0] - out[0] / 2, out[1], out[2]};
      kept_shapes_.push_back(s);
    }
  }
}

Shape MultiScale::output_shape(const Shape& in) const {
  if (in != input_shape_) throw Error(kind() + ": built for examples " + input_shape_.str() + ", got " + in.str());
  int64_t d = 0;
  for (size_t i = 0; i < stages_.size(); ++i)
    d += i + 1 < stages_.size() ? (out_shapes_[i][0] / 2) * out_shapes_[i][1] * out_shapes_[i][2] : out_shapes_[i].numel();
  return Shape{d};
}

Flowed MultiScale::forward_flow(const Tensor& x) {
  if (event_of(x) != input_shape_)
    throw Error(kind() + ": expects a batch of examples " + input_shape_.str() + ", got " + x.shape().str());
  Tensor h = x, log_det;
  std::vector<Tensor> parts;
  for (size_t i = 0; i < stages_.size(); ++i) {
    Flowed f;
    try {
      f = stages_[i]->forward_flow(h);
    } catch (const Error& e) {
      throw Error("stage " + std::to_string(i) + ", " + e.what());
    }
    log_det = log_det.defined() ? log_det + f.log_det : f.log_det;
    if (i + 1 == stages_.size()) {
      parts.push_back(flatten(f.z, 1));
    } else {  // the first half of the channels leaves the flow here
      const int64_t c = f.z.size(1);
      parts.push_back(flatten(slice(f.z, 1, 0, c / 2), 1));
      h = slice(f.z, 1, c / 2, c);
    }
  }
  return {concat(parts, 1), log_det};
}

Tensor MultiScale::inverse(const Tensor& z) {
  const int64_t n = z.size(0);
  if (z.dim() != 2 || z.size(1) != output_shape(input_shape_)[0])
    throw Error(kind() + ": inverse expects z [N, " + std::to_string(output_shape(input_shape_)[0]) + "], got " + z.shape().str());
  auto batch = [n](const Shape& s) {
    Shape b{n};
    for (int64_t d : s) b.push_back(d);
    return b;
  };
  // z's parts in order: the factored-out halves of stages 0..K-2, then stage K-1's output.
  std::vector<int64_t> offsets{0};
  for (size_t i = 0; i + 1 < stages_.size(); ++i)
    offsets.push_back(offsets.back() + (out_shapes_[i][0] / 2) * out_shapes_[i][1] * out_shapes_[i][2]);
  const size_t last = stages_.size() - 1;
  Tensor h = stages_[last]->inverse(reshape(slice(z, 1, offsets[last], z.size(1)), batch(out_shapes_[last])));
  for (size_t i = last; i-- > 0;) {
    const Shape& o = out_shapes_[i];
    Tensor out = reshape(slice(z, 1, offsets[i], offsets[i + 1]), batch(Shape{o[0] / 2, o[1], o[2]}));
    h = stages_[i]->inverse(concat({out, h}, 1));
  }
  return h;
}

// ------------------------------------------------------------ coupling networks
std::shared_ptr<nn::Module> coupling_mlp(int64_t dims, const std::vector<int64_t>& hidden, int64_t out_dims,
                                         Generator& gen) {
  std::vector<int64_t> widths{dims};
  widths.insert(widths.end(), hidden.begin(), hidden.end());
  widths.push_back(out_dims);
  auto net = nn::mlp(widths, gen);
  auto& last = dynamic_cast<nn::Linear&>((*net)[net->size() - 1]);
  nn::init::zeros_(last.weight);  // the coupling starts as the identity
  nn::init::zeros_(last.bias);
  return net;
}

namespace {
// x + conv(relu(conv(x))), then ReLU.
class ResidualBlock : public nn::Module {
 public:
  ResidualBlock(int64_t channels, Generator& gen) {
    c1_ = register_module("conv1", std::make_shared<nn::Conv2d>(channels, channels, 3, gen, 1, 1));
    c2_ = register_module("conv2", std::make_shared<nn::Conv2d>(channels, channels, 3, gen, 1, 1));
  }
  Tensor forward(const Tensor& x) override { return relu(x + c2_->forward(relu(c1_->forward(x)))); }

 private:
  std::shared_ptr<nn::Conv2d> c1_, c2_;
};
}  // namespace

std::shared_ptr<nn::Module> coupling_resnet(int64_t in_channels, int64_t hidden, int blocks, int64_t out_channels,
                                            Generator& gen) {
  auto net = std::make_shared<nn::Sequential>();
  net->add(std::make_shared<nn::Conv2d>(in_channels, hidden, 3, gen, 1, 1));
  net->add(std::make_shared<nn::ReLU>());
  for (int b = 0; b < blocks; ++b) net->add(std::make_shared<ResidualBlock>(hidden, gen));
  auto out = std::make_shared<nn::Conv2d>(hidden, out_channels, 3, gen, 1, 1);
  nn::init::zeros_(out->weight);  // the coupling starts as the identity
  nn::init::zeros_(out->bias);
  net->add(out);
  return net;
}

}  // namespace flows

// ------------------------------------------------------------ Flow
Flow::Flow(std::string name, std::shared_ptr<flows::Bijector> bijector, const Shape& event_shape, Prior prior,
           int64_t levels, uint64_t noise_seed)
    : name_(std::move(name)), event_shape_(event_shape), prior_(prior), levels_(levels), noise_(noise_seed) {
  if (levels == 1 || levels < 0) throw Error(name_ + ": levels must be 0 (continuous data) or >= 2, got " + std::to_string(levels));
  bijector_ = register_module("flow", std::move(bijector));
  latent_shape_ = bijector_->output_shape(event_shape_);
}

std::string Flow::log_prob_kind() const {
  return levels_ > 0 ? "dequantization lower bound, one uniform draw per example" : "exact";
}

void Flow::check_input(const Tensor& x) const {
  Shape ev;
  for (size_t a = 1; a < x.dim(); ++a) ev.push_back(x.size(static_cast<int64_t>(a)));
  if (x.dim() == 0 || ev != event_shape_)
    throw Error(name_ + ": expects a batch of examples of shape " + event_shape_.str() + ", got " + x.shape().str());
}

Tensor Flow::prior_log_prob(const Tensor& z) const {
  if (prior_ == Prior::Logistic) return dist::sum_per_example(dist::Logistic::standard(z.shape(), z.dtype()).log_prob(z));
  return dist::sum_per_example(dist::Normal::standard(z.shape(), z.dtype()).log_prob(z));
}

Tensor Flow::log_prob_continuous(const Tensor& u) {
  check_input(u);
  flows::Flowed f = bijector_->forward_flow(u);
  return prior_log_prob(f.z) + f.log_det;  // the change of variables
}

Tensor Flow::dequantize(const Tensor& x) { return data::dequantize_uniform(x, levels_, noise_); }

Tensor Flow::quantize(const Tensor& u) const {
  NoGradGuard ng;
  Tensor k = Tensor::empty(u.shape(), DType::Int64);
  const std::vector<double> v = u.to_vector();
  for (size_t i = 0; i < v.size(); ++i)
    k.data<int64_t>()[i] = std::clamp<int64_t>(static_cast<int64_t>(std::floor(v[i] * static_cast<double>(levels_))), 0, levels_ - 1);
  return dist::index_to_levels(k, levels_, u.dtype());
}

// Discrete data: log P(k) >= log p_u((k + noise) / L) - D log L (density on [0, 1]^D,
// each bin of width 1/L).
Tensor Flow::log_prob(const Tensor& x) {
  check_input(x);
  if (levels_ == 0) return log_prob_continuous(x);
  return log_prob_continuous(dequantize(x)) - static_cast<double>(event_shape_.numel()) * std::log(static_cast<double>(levels_));
}

Tensor Flow::sample(int64_t n, Generator& gen, double temperature) {
  NoGradGuard ng;
  Shape s{n};
  for (int64_t d : latent_shape_) s.push_back(d);
  const DType dt = parameters().empty() ? DType::Float32 : parameters()[0].dtype();
  Tensor z = prior_ == Prior::Logistic ? dist::Logistic::standard(s, dt).sample(gen) : gen.normal(s, 0, 1, dt);
  Tensor u = bijector_->inverse(z * temperature);
  return levels_ > 0 ? quantize(u) : u;
}

// ------------------------------------------------------------ the course's flows
std::shared_ptr<Flow> make_nice(int64_t dims, int couplings, const std::vector<int64_t>& hidden, Generator& gen,
                                int64_t levels, Prior prior) {
  auto chain = std::make_shared<flows::Chain>();
  for (int i = 0; i < couplings; ++i)
    chain->add(std::make_shared<flows::AdditiveCoupling>(flows::alternating_mask(dims, i % 2),
                                                         flows::coupling_mlp(dims, hidden, dims, gen)));
  chain->add(std::make_shared<flows::Scaling>(Shape{dims}));
  auto flow = std::make_shared<Flow>("nice", chain, Shape{dims}, prior, levels, gen.next_u64());
  flow->set_config(nlohmann::json{{"builder", "nice"}, {"dims", dims}, {"couplings", couplings}, {"hidden", hidden},
                                  {"levels", levels}, {"prior", prior == Prior::Logistic ? "logistic" : "gaussian"}}
                       .dump());
  return flow;
}

std::shared_ptr<Flow> make_realnvp(int64_t dims, int couplings, const std::vector<int64_t>& hidden, Generator& gen,
                                   int64_t levels, bool actnorm, double logit_alpha) {
  auto chain = std::make_shared<flows::Chain>();
  if (levels > 0) chain->add(std::make_shared<flows::LogitTransform>(logit_alpha));
  for (int i = 0; i < couplings; ++i) {
    if (actnorm) chain->add(std::make_shared<flows::ActNorm>(dims));
    chain->add(std::make_shared<flows::AffineCoupling>(flows::alternating_mask(dims, i % 2),
                                                       flows::coupling_mlp(dims, hidden, 2 * dims, gen)));
  }
  auto flow = std::make_shared<Flow>("realnvp", chain, Shape{dims}, Prior::Gaussian, levels, gen.next_u64());
  flow->set_config(nlohmann::json{{"builder", "realnvp"}, {"dims", dims}, {"couplings", couplings}, {"hidden", hidden},
                                  {"levels", levels}, {"actnorm", actnorm}, {"logit_alpha", logit_alpha}}
                       .dump());
  return flow;
}

std::shared_ptr<Flow> make_image_flow(const ImageFlowOptions& o, Generator& gen) {
  int64_t c = o.channels, h = o.height, w = o.width;
  auto step = [&](flows::Chain& chain, const Tensor& mask, int64_t channels) {
    chain.add(std::make_shared<flows::ActNorm>(channels));
    if (o.conv1x1) chain.add(std::make_shared<flows::Invertible1x1Conv>(channels, gen));
    chain.add(std::make_shared<flows::AffineCoupling>(mask, flows::coupling_resnet(channels, o.hidden, o.blocks, 2 * channels, gen)));
  };
  std::vector<std::shared_ptr<flows::Chain>> stages;
  for (int scale = 0; scale < o.scales; ++scale) {
    auto stage = std::make_shared<flows::Chain>();
    if (scale == 0) stage->add(std::make_shared<flows::LogitTransform>(o.logit_alpha));
    const bool last = scale + 1 == o.scales;
    for (int j = 0; j < (last ? o.steps + 1 : o.steps); ++j) step(*stage, flows::checkerboard_mask(c, h, w, j % 2), c);
    if (!last) {
      stage->add(std::make_shared<flows::Squeeze>());
      c *= 4, h /= 2, w /= 2;
      for (int j = 0; j < o.steps; ++j) step(*stage, flows::channel_mask(c, j % 2), c);
      c -= c / 2;  // half of the channels are factored out
    }
    stages.push_back(stage);
  }
  const Shape event{o.channels, o.height, o.width};
  auto ms = std::make_shared<flows::MultiScale>(stages, event);
  auto flow = std::make_shared<Flow>(o.conv1x1 ? "glow-style multi-scale flow" : "realnvp multi-scale flow", ms, event,
                                     Prior::Gaussian, o.levels, gen.next_u64());
  flow->set_config(nlohmann::json{{"builder", "image_flow"}, {"channels", o.channels}, {"height", o.height}, {"width", o.width},
                                  {"levels", o.levels}, {"scales", o.scales}, {"steps", o.steps}, {"hidden", o.hidden},
                                  {"blocks", o.blocks}, {"conv1x1", o.conv1x1}, {"logit_alpha", o.logit_alpha}}
                       .dump());
  return flow;
}

// ------------------------------------------------------------ RealNVP2D
RealNVP2D::RealNVP2D(int layers, int64_t hidden, Generator& gen) : hidden_(hidden) {
  for (int i = 0; i < layers; ++i) {
    nets_.push_back(register_module("c" + std::to_string(i), nn::mlp({2, hidden, hidden, 2}, gen)));
    Tensor m = Tensor::zeros({1, 2});
    m.data<float>()[i % 2] = 1;  // layer i keeps coordinate i % 2
    masks_.push_back(m);
  }
}

const Tensor& RealNVP2D::mask(size_t i, DType dtype) {
  if (masks_[i].dtype() != dtype) masks_[i] = masks_[i].to(dtype);  // once, after to(Float64)
  return masks_[i];
}

flows::Flowed RealNVP2D::forward_flow(const Tensor& x0) {
  if (x0.dim() != 2 || x0.size(1) != 2) throw Error("RealNVP2D: expects points [N, 2], got " + x0.shape().str());
  Tensor x = x0;
  Tensor log_det = Tensor::zeros({x.size(0)}, x.dtype());
  for (size_t i = 0; i < nets_.size(); ++i) {
    const int64_t keep = static_cast<int64_t>(i % 2), tr = 1 - keep;
    Tensor st = nets_[i]->forward(x * mask(i, x.dtype()));
    Tensor s = tanh(select(st, 1, 0)), t = select(st, 1, 1);
    Tensor y_tr = select(x, 1, tr) * exp(s) + t;  // y_tr = x_tr e^s + t
    Tensor x_keep = select(x, 1, keep);
    x = keep == 0 ? stack({x_keep, y_tr}, 1) : stack({y_tr, x_keep}, 1);
    log_det = log_det + s;                         // log |det| of one coupling: s
  }
  return {x, log_det};
}

Tensor RealNVP2D::inverse(const Tensor& z) {
  Tensor y = z;
  for (size_t i = nets_.size(); i-- > 0;) {
    const int64_t keep = static_cast<int64_t>(i % 2), tr = 1 - keep;
    Tensor st = nets_[i]->forward(y * mask(i, y.dtype()));  // the kept part is unchanged: same s, t
    Tensor s = tanh(select(st, 1, 0)), t = select(st, 1, 1);
    Tensor x_tr = (select(y, 1, tr) - t) * exp(neg(s));  // x_tr = (y_tr - t) e^-s
    Tensor y_keep = select(y, 1, keep);
    y = keep == 0 ? stack({y_keep, x_tr}, 1) : stack({x_tr, y_keep}, 1);
  }
  return y;
}

Tensor RealNVP2D::log_prob(const Tensor& x) {
  flows::Flowed f = forward_flow(x);
  // log N(z; 0, I) in 2-D = -|z|^2 / 2 - log(2 pi)
  return f.log_det - sum(square(f.z), {1}) * 0.5 - std::log(2 * M_PI);
}

std::string RealNVP2D::config_json() const {
  return nlohmann::json{{"layers", nets_.size()}, {"hidden", hidden_}}.dump();
}

Tensor RealNVP2D::sample(int64_t n, Generator& gen) {
  NoGradGuard ng;
  return inverse(gen.normal({n, 2}, 0, 1, nets_[0]->parameters()[0].dtype()));
}

}  // namespace dgm::models
