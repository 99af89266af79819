// dgm/models/density.h — what every likelihood model of the course offers.
//
// A density model p_theta(x) over examples x (one example: a vector [D] or an
// image [C, H, W]; a batch stacks them along a first axis N):
//   log_prob(x)   log p(x) per example, [N], in nats
//   sample(n)     n draws from the model, a batch in the same layout
//   loss(x)       what a training step minimises on a batch: by default the
//                 negative mean log-likelihood (maximum likelihood); a model
//                 that trains on a bound (the VAE's ELBO) says so by overriding it
//   name(), parameter_count(), log_prob_kind()
// MADE, PixelCNN, the VAE, the Gaussian mixture, and next the flows and the
// diffusion models implement it, so one trainer (toolkit/trainer.h) fits them
// and one evaluator reports nats and bits per dimension for all of them.
#pragma once

#include <string>

#include "autograd/nn.h"
#include "autograd/random.h"

namespace dgm::models {

class DensityModel {
 public:
  virtual ~DensityModel() = default;
  virtual std::string name() const = 0;
  // log p(x) per example, [N], nats.
  virtual Tensor log_prob(const Tensor& x) = 0;
  // "exact" where log_prob is log p(x) itself (autoregressive models, mixtures,
  // flows); for a latent-variable model the estimate it returns, e.g.
  // "IWAE lower bound, k = 1000".
  virtual std::string log_prob_kind() const { return "exact"; }
  // n draws, no gradient.
  virtual Tensor sample(int64_t n, Generator& gen) = 0;
  // The training objective on a batch (minimised): -mean log p(x) unless overridden.
  virtual Tensor loss(const Tensor& x) { return neg(mean(log_prob(x))); }
  virtual int64_t parameter_count() const = 0;
  // The constructor's arguments as a JSON object, e.g. {"dims": 64, "hidden": [512, 512], "levels": 17}:
  // what the trainer writes beside a checkpoint, so that another program (scripts/to_torch.py)
  // can rebuild the model. "{}" for a model that does not say.
  virtual std::string config_json() const { return "{}"; }
  // How many values log p(x) is a density over, averaged over the examples of x: what bits per
  // dimension divides by. D (one example's numel) unless a family says otherwise; a sequence model
  // over words counts each word's letters and its end token, not the padding after it.
  virtual double values_per_example(const Tensor& x) const { return static_cast<double>(x.numel() / x.size(0)); }
};

// A conditional density p_theta(x | y): the same family given a class label y
// (int64 [N], 0..classes()-1), docs/chapters/conditional.md. A family that can
// condition (PixelCNN, the VAE, DDPM with classifier-free guidance) takes a
// "classes" field in its config and implements this beside DensityModel; its
// log_prob(x) is then the mixture p(x) = sum_y p(x | y) p(y) with the uniform
// p(y) = 1 / classes (or what the family says in log_prob_kind()).
class ConditionalDensity {
 public:
  virtual ~ConditionalDensity() = default;
  virtual int64_t classes() const = 0;
  // log p(x | y) per example, [N], nats.
  virtual Tensor log_prob_given(const Tensor& x, const Tensor& y) = 0;
  // One draw x ~ p(x | y_n) per label, no gradient.
  virtual Tensor sample_given(const Tensor& y, Generator& gen) = 0;
  // The training objective on a labelled batch: -mean log p(x | y) unless overridden.
  virtual Tensor loss_given(const Tensor& x, const Tensor& y) { return neg(mean(log_prob_given(x, y))); }
  // What log_prob_given returns: "exact", or the bound it is (the leaderboard's "log p is" column).
  virtual std::string log_prob_given_kind() const { return "exact"; }
  // State set in closed form once gradient training ends, from the training data and its labels
  // (the VAE's class prior, moment-matched to its aggregate posterior): train::fit_given calls it on
  // the parameters it keeps and writes the result into the checkpoint. Returns what it did ("":
  // nothing, the default).
  virtual std::string finish_training(const Tensor& /*x*/, const Tensor& /*y*/) { return ""; }
};

// A density model whose parameters are an nn::Module's (everything trained by
// gradient descent): what the trainer fits.
class TrainableDensity : public nn::Module, public DensityModel {
 public:
  int64_t parameter_count() const override { return num_parameters(); }
  // The generator the model draws its own noise from (a VAE's reparameterisation, a DDPM's
  // t and eps, a flow's dequantization), if it has one: a resumed training restores its state.
  virtual Generator* noise_generator() { return nullptr; }
};

}  // namespace dgm::models
