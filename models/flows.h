// dgm/models/flows.h — normalizing flows: an invertible f with a tractable
// Jacobian turns a simple base density into a model of the data.
//
//   z = f(x),   log p(x) = log p_Z(f(x)) + log |det df/dx|       (change of variables)
//
// f is a chain of bijectors f = f_K o ... o f_1, and the log-determinants add:
//   log |det df/dx| = sum_k log |det df_k/dh_{k-1}|.
//
// The layers (each: forward_flow(x) -> {z, log_det}, inverse(z) -> x):
//   AdditiveCoupling   NICE (Dinh, Krueger & Bengio 2015): z = x + (1-b) * m(b * x), log-det 0
//   Scaling            NICE's diagonal scaling: z = x * exp(s), log-det sum(s)
//   AffineCoupling     RealNVP (Dinh, Sohl-Dickstein & Bengio 2017):
//                      z = b * x + (1-b) * (x * exp(s(b * x)) + t(b * x)), log-det sum((1-b) * s)
//   ActNorm            Glow (Kingma & Dhariwal 2018): per-channel affine, data-initialised
//   Invertible1x1Conv  Glow: z = W x at every pixel, W = P L (U + diag(sign * exp(log_s))),
//                      log-det H W sum(log_s)
//   Squeeze            [C, H, W] -> [4C, H/2, W/2], log-det 0
//   LogitTransform     u in [0, 1] -> logit(alpha + (1 - 2 alpha) u), with its log-det
//   Chain              applies layers in order, sums log-dets
//   MultiScale         RealNVP's multi-scale architecture: after each stage half
//                      of the channels leave the flow (they are part of z)
// b is a fixed 0/1 mask: 1 where the coupling keeps (conditions on) the input.
//
// Flow (a DensityModel) puts a base density under a bijector; with `levels`
// it is a model of discrete data by uniform dequantization.
// Equations and the lesson: docs/chapters/flows.md.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "models/density.h"

namespace dgm::models {

namespace flows {

struct Flowed {
  Tensor z;        // f(x), same batch size
  Tensor log_det;  // log |det df/dx| per example, [N]
};

// An invertible layer with a tractable log-determinant.
class Bijector : public nn::Module {
 public:
  virtual std::string kind() const = 0;  // "affine coupling", ... (error messages)
  virtual Flowed forward_flow(const Tensor& x) = 0;
  virtual Tensor inverse(const Tensor& z) = 0;
  // The shape of one example after the layer (Squeeze and MultiScale change it).
  virtual Shape output_shape(const Shape& input) const { return input; }
  Tensor forward(const Tensor& x) override { return forward_flow(x).z; }
};

// Applies its layers in order; log-dets add. A layer whose log-det is not
// finite (a scale that under- or overflowed) stops the flow with an error
// naming the layer.
class Chain : public Bijector {
 public:
  Chain& add(std::shared_ptr<Bijector> layer);
  std::string kind() const override { return "chain"; }
  Flowed forward_flow(const Tensor& x) override;
  Tensor inverse(const Tensor& z) override;
  Shape output_shape(const Shape& input) const override;
  // x and the output of every layer (for pictures of how the space is warped).
  std::vector<Tensor> trace(const Tensor& x);
  size_t size() const { return layers_.size(); }
  Bijector& operator[](size_t i) { return *layers_.at(i); }

 private:
  std::vector<std::shared_ptr<Bijector>> layers_;
};

// ------------------------------------------------------------ masks (1 = kept)
// [1, D]: 1 on indices i with i % 2 == parity (NICE's odd/even partition).
Tensor alternating_mask(int64_t dims, int parity);
// [1, C, H, W]: 1 where (h + w) % 2 == parity (RealNVP's checkerboard).
Tensor checkerboard_mask(int64_t channels, int64_t height, int64_t width, int parity);
// [1, C, 1, 1]: 1 on the first half of the channels (parity 0) or the second (parity 1).
Tensor channel_mask(int64_t channels, int parity);

// ------------------------------------------------------------ layers
// z = x + (1 - b) * m(b * x);  log |det| = 0;  x = z - (1 - b) * m(b * z).
// The Jacobian is unit triangular: the transformed part moves by a function
// of the kept part only.
class AdditiveCoupling : public Bijector {
 public:
  AdditiveCoupling(const Tensor& mask, std::shared_ptr<nn::Module> net);
  std::string kind() const override { return "additive coupling"; }
  Flowed forward_flow(const Tensor& x) override;
  Tensor inverse(const Tensor& z) override;

 private:
  Tensor shift(const Tensor& x);  // (1 - b) * m(b * x)
  Tensor mask_, free_;            // b and 1 - b
  std::shared_ptr<nn::Module> net_;
};

// z = b * x + (1 - b) * (x * exp(s) + t),  (s, t) from the net on b * x:
//   s = scale * tanh(raw s)   (bounded: RealNVP's stabilised scale), t as is;
//   log |det| = sum (1 - b) * s;   x = (z - t) * exp(-s) on the transformed part.
// The net maps [N, C, ...] to [N, 2C, ...]: the first C are raw s, the next C are t.
class AffineCoupling : public Bijector {
 public:
  AffineCoupling(const Tensor& mask, std::shared_ptr<nn::Module> net);
  std::string kind() const override { return "affine coupling"; }
  Flowed forward_flow(const Tensor& x) override;
  Tensor inverse(const Tensor& z) override;

 private:
  std::pair<Tensor, Tensor> scale_shift(const Tensor& x);  // (1-b) s, (1-b) t
  Tensor mask_, free_, scale_;
  std::shared_ptr<nn::Module> net_;
};

// NICE's diagonal scaling: z = x * exp(s), one learned s per dimension of an
// example; log |det| = sum(s).
class Scaling : public Bijector {
 public:
  explicit Scaling(const Shape& event_shape);
  std::string kind() const override { return "diagonal scaling"; }
  Flowed forward_flow(const Tensor& x) override;
  Tensor inverse(const Tensor& z) override;
  Tensor log_scale;  // [1, event...]
};

// z = (x + bias) * exp(log_scale) per channel (axis 1); log |det| = (H W) sum(log_scale).
// The first batch seen in training mode sets bias and scale so that the
// output has zero mean and unit variance per channel (Glow's data-dependent init).
class ActNorm : public Bijector {
 public:
  explicit ActNorm(int64_t channels);
  std::string kind() const override { return "actnorm"; }
  Flowed forward_flow(const Tensor& x) override;
  Tensor inverse(const Tensor& z) override;
  Tensor bias, log_scale;  // [1, C]: reshaped to [1, C, 1, 1] for images

 private:
  void initialize(const Tensor& x);
  Tensor initialized_;  // buffer: 0 until the data-dependent init ran (a reloaded model keeps its 1)
};

// Glow's invertible 1x1 convolution: z[:, :, h, w] = W x[:, :, h, w], with
// W = P L (U + diag(sign * exp(log_s))) (LU-parameterised: P fixed, L unit lower,
// U strictly upper), so log |det W| = sum(log_s) and log |det| = H W sum(log_s).
class Invertible1x1Conv : public Bijector {
 public:
  Invertible1x1Conv(int64_t channels, Generator& gen);  // W starts as a random rotation
  std::string kind() const override { return "invertible 1x1 conv"; }
  Flowed forward_flow(const Tensor& x) override;
  Tensor inverse(const Tensor& z) override;
  Tensor weight();  // W, [C, C]
  Tensor lower, upper, log_s;

 private:
  Tensor permutation_, sign_, lower_mask_, upper_mask_, eye_;
};

// [N, C, H, W] -> [N, 4C, H/2, W/2]: each 2x2 block of pixels becomes 4 channels.
class Squeeze : public Bijector {
 public:
  std::string kind() const override { return "squeeze"; }
  Flowed forward_flow(const Tensor& x) override;
  Tensor inverse(const Tensor& z) override;
  Shape output_shape(const Shape& input) const override;
};

// Dequantized data u in [0, 1] -> y = logit(p), p = alpha + (1 - 2 alpha) u:
//   log |det| = sum log((1 - 2 alpha) / (p (1 - p))).
// Forgetting this term is the classic bits/dim mistake (docs/chapters/flows.md).
class LogitTransform : public Bijector {
 public:
  explicit LogitTransform(double alpha = 0.05) : alpha(alpha) {}
  std::string kind() const override { return "logit transform"; }
  Flowed forward_flow(const Tensor& u) override;
  Tensor inverse(const Tensor& y) override;
  double alpha;
};

// RealNVP's multi-scale architecture: stage 0, then half of its output
// channels leave the flow (they are z's first part), stage 1 on the other
// half, and so on; the last stage's output is z's last part. z is flat: [N, D].
class MultiScale : public Bijector {
 public:
  MultiScale(std::vector<std::shared_ptr<Chain>> stages, const Shape& input_shape);
  std::string kind() const override { return "multi-scale flow"; }
  Flowed forward_flow(const Tensor& x) override;
  Tensor inverse(const Tensor& z) override;
  Shape output_shape(const Shape& input) const override;
  size_t stages() const { return stages_.size(); }

 private:
  std::vector<std::shared_ptr<Chain>> stages_;
  Shape input_shape_;
  std::vector<Shape> kept_shapes_;  // the input of each stage after the first, per example
  std::vector<Shape> out_shapes_;   // each stage's output, per example
};

// ------------------------------------------------------------ coupling networks
// An MLP dims -> hidden... -> out_dims, ReLU between, the last layer zero
// (the coupling starts as the identity).
std::shared_ptr<nn::Module> coupling_mlp(int64_t dims, const std::vector<int64_t>& hidden, int64_t out_dims,
                                         Generator& gen);
// conv 3x3 in -> hidden, `blocks` residual blocks (conv 3x3, ReLU, conv 3x3, + input),
// ReLU, conv 3x3 hidden -> out (zero): the small ResNet of RealNVP's couplings.
std::shared_ptr<nn::Module> coupling_resnet(int64_t in_channels, int64_t hidden, int blocks, int64_t out_channels,
                                            Generator& gen);

}  // namespace flows

enum class Prior { Gaussian, Logistic };

// A normalizing flow as a density model: log p(x) = log p_Z(f(x)) + log |det df/dx|.
// With levels > 0 the data are discrete (values k / (levels - 1), as the
// data sets store them) and the model is the continuous flow on the
// dequantized u = (k + noise) / levels, noise ~ U[0, 1)^D:
//   log P(k) >= E_noise[log p_u(u)] - D log(levels)         (Jensen)
// and log_prob returns one draw of the right side.
class Flow : public TrainableDensity {
 public:
  Flow(std::string name, std::shared_ptr<flows::Bijector> bijector, const Shape& event_shape,
       Prior prior = Prior::Gaussian, int64_t levels = 0, uint64_t noise_seed = 0);

  std::string name() const override { return name_; }
  std::string log_prob_kind() const override;
  // What the builder (make_nice, make_realnvp, make_image_flow) was given, with "builder" naming it.
  std::string config_json() const override { return config_; }
  void set_config(std::string json) { config_ = std::move(json); }
  Tensor log_prob(const Tensor& x) override;
  Tensor sample(int64_t n, Generator& gen) override { return sample(n, gen, 1.0); }
  // z ~ p_Z with its scale times `temperature` (below 1: smoother samples), x = f^-1(z).
  Tensor sample(int64_t n, Generator& gen, double temperature);

  // log p(u) of the continuous flow, [N] (on dequantized u when levels > 0).
  Tensor log_prob_continuous(const Tensor& u);
  Tensor prior_log_prob(const Tensor& z) const;  // log p_Z(z) per example, [N]
  Tensor dequantize(const Tensor& x);            // (k + U[0, 1)) / levels, from noise()
  Tensor quantize(const Tensor& u) const;        // floor(u levels) / (levels - 1), clipped
  flows::Bijector& bijector() { return *bijector_; }
  const Shape& event_shape() const { return event_shape_; }
  const Shape& latent_shape() const { return latent_shape_; }
  int64_t levels() const { return levels_; }
  Generator& noise() { return noise_; }
  Generator* noise_generator() override { return &noise_; }

 private:
  void check_input(const Tensor& x) const;
  std::string name_;
  std::shared_ptr<flows::Bijector> bijector_;
  Shape event_shape_, latent_shape_;
  Prior prior_;
  int64_t levels_;
  Generator noise_;
  std::string config_ = "{}";
};

// ------------------------------------------------------------ the course's flows
// NICE on vectors [N, D]: `couplings` additive couplings (MLP nets, alternating
// odd/even halves) then a diagonal scaling; logistic prior as in the paper.
std::shared_ptr<Flow> make_nice(int64_t dims, int couplings, const std::vector<int64_t>& hidden, Generator& gen,
                                int64_t levels = 0, Prior prior = Prior::Logistic);
// RealNVP on vectors [N, D]: `couplings` affine couplings with MLP nets on
// alternating masks, an ActNorm before each when `actnorm`; with levels > 0 a
// logit transform (alpha) first.
std::shared_ptr<Flow> make_realnvp(int64_t dims, int couplings, const std::vector<int64_t>& hidden, Generator& gen,
                                   int64_t levels = 0, bool actnorm = false, double logit_alpha = 0.05);

// RealNVP's multi-scale image flow (with Glow's 1x1 convolutions as an option):
//   logit transform; for each scale but the last: `steps` checkerboard couplings,
//   squeeze, `steps` channel couplings, factor out half the channels;
//   the last scale: `steps + 1` checkerboard couplings.
// Each coupling is preceded by an ActNorm (and a 1x1 convolution with conv1x1).
struct ImageFlowOptions {
  int64_t channels = 1, height = 28, width = 28;
  int64_t levels = 256;
  int scales = 2;
  int steps = 3;
  int64_t hidden = 32;  // channels of the coupling ResNets
  int blocks = 1;       // residual blocks per coupling net
  bool conv1x1 = false;
  double logit_alpha = 0.05;
};
std::shared_ptr<Flow> make_image_flow(const ImageFlowOptions& o, Generator& gen);

// The 2-D RealNVP of the toys and of bench_train's d_realnvp2d_b512 (the
// libtorch reference's exact model): affine couplings on one coordinate,
// (s, t) = MLP 2 -> hidden -> hidden -> 2 of the masked input, s = tanh(raw s).
class RealNVP2D : public TrainableDensity {
 public:
  RealNVP2D(int layers, int64_t hidden, Generator& gen);
  flows::Flowed forward_flow(const Tensor& x);
  Tensor inverse(const Tensor& z);  // f^-1, [N, 2]
  std::string name() const override { return "realnvp2d"; }
  std::string config_json() const override;  // {"layers", "hidden"}
  Tensor log_prob(const Tensor& x) override;  // log N(f(x); 0, I) + log |det df/dx|, [N]
  Tensor sample(int64_t n, Generator& gen) override;

 private:
  std::vector<std::shared_ptr<nn::Sequential>> nets_;
  int64_t hidden_;
  const Tensor& mask(size_t i, DType dtype);
  std::vector<Tensor> masks_;  // [1, 2]: 1 on the kept coordinate
};

}  // namespace dgm::models
