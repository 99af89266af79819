// dgm/models/gan.h — generative adversarial networks (Goodfellow et al. 2014),
// the non-saturating loss, and WGAN-GP (Gulrajani et al. 2017).
//
// A generator G maps noise z ~ N(0, I) to samples; a discriminator D maps a
// sample to one logit a (D(x) = sigmoid(a), the probability that x is real),
// or, for WGAN, to a score f(x) (a "critic"). The game
//   min_G max_D  V(G, D) = E_data[log D(x)] + E_z[log(1 - D(G(z)))]
// is played by alternating gradient steps. Each loss below is one line of
// that objective, written on logits with log_sigmoid for stability:
//   log D(x) = log_sigmoid(a),   log(1 - D(x)) = log_sigmoid(-a).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "autograd/nn.h"

namespace dgm::models::gan {

// ------------------------------------------------------------------ losses
// D's loss: -V = -E log D(x_real) - E log(1 - D(G(z)))   (minimised by D)
Tensor discriminator_loss(const Tensor& real_logits, const Tensor& fake_logits);
// G's loss in the original minimax game: E log(1 - D(G(z)))   ("saturating":
// when D rejects fakes confidently, a -> -inf, its gradient sigmoid(a) -> 0)
Tensor generator_loss_saturating(const Tensor& fake_logits);
// The non-saturating heuristic: -E log D(G(z)), same fixed point, gradient
// 1 - sigmoid(a) -> 1 where the saturating one vanishes
Tensor generator_loss_non_saturating(const Tensor& fake_logits);
// WGAN: the critic maximises E f(x_real) - E f(G(z)) (an estimate of the
// Wasserstein-1 distance when f is 1-Lipschitz); as losses to minimise:
Tensor critic_loss_wasserstein(const Tensor& real_scores, const Tensor& fake_scores);  // E f(fake) - E f(real)
Tensor generator_loss_wasserstein(const Tensor& fake_scores);                        // -E f(G(z))
// The hinge loss (Lim & Ye 2017; Miyato et al. 2018): D minimises E max(0, 1 - D(x)) + E max(0, 1 + D(G(z)))
// on its raw scores, G minimises -E D(G(z)) (generator_loss_wasserstein). D stops pushing a real
// example once its score passes 1 and a fake once it falls below -1.
Tensor discriminator_loss_hinge(const Tensor& real_scores, const Tensor& fake_scores);
// The gradient penalty, lambda E[(||grad_x f(x_hat)||_2 - 1)^2] at random
// interpolates x_hat = u x_real + (1 - u) x_fake, u ~ U(0, 1) per example:
// soft 1-Lipschitz constraint. Differentiable w.r.t. f's parameters (the
// gradient inside is taken with create_graph: a double backward).
Tensor gradient_penalty(const std::function<Tensor(const Tensor&)>& critic, const Tensor& real, const Tensor& fake,
                        Generator& gen, double lambda = 10.0);

// ------------------------------------------------------------------ networks
// Every network says what it takes and gives, so a pair is checked at construction.
class Network : public nn::Module {
 public:
  virtual Shape sample_shape() const = 0;  // one example's shape (G's output, D's input)
  // {"model": the class, and its constructor's arguments}: written beside its checkpoint
  virtual std::string config_json() const = 0;
  // A class-conditional network (classes() > 0) reads labels y, int64 [N] in [0, classes), beside
  // its input: G(z, y), D(x, y). Its forward(input) is an error; an unconditional one's forward_given.
  virtual int64_t classes() const { return 0; }
  virtual Tensor forward_given(const Tensor& input, const Tensor& y);
};

// z [N, latent] -> x [N, dims]: an MLP with ReLU.
class MLPGenerator : public Network {
 public:
  MLPGenerator(int64_t latent, int64_t dims, const std::vector<int64_t>& hidden, Generator& gen);
  Tensor forward(const Tensor& z) override;
  Shape sample_shape() const override { return Shape{dims_}; }
  std::string config_json() const override;
  int64_t latent() const { return latent_; }

 private:
  int64_t latent_, dims_;
  std::vector<int64_t> hidden_;
  std::shared_ptr<nn::Sequential> net_;
};

// x [N, dims] -> logits [N]: an MLP with LeakyReLU(0.2).
class MLPDiscriminator : public Network {
 public:
  MLPDiscriminator(int64_t dims, const std::vector<int64_t>& hidden, Generator& gen);
  Tensor forward(const Tensor& x) override;
  Shape sample_shape() const override { return Shape{dims_}; }
  std::string config_json() const override;

 private:
  int64_t dims_;
  std::vector<int64_t> hidden_;
  std::shared_ptr<nn::Sequential> net_;
};

// DCGAN-style (Radford et al. 2016) for 1 x 28 x 28 images in [0, 1]:
//   z -> Linear -> [2w, 7, 7] -> GN, ReLU -> convT 4x4 s2 -> [w, 14, 14] -> GN, ReLU
//     -> convT 4x4 s2 -> [C, 28, 28] -> sigmoid
// With classes > 0 (a conditional GAN, Mirza & Osindero 2014), G(z, y) adds a learned vector
// per class to the Linear layer's output, e_y [2w * 7 * 7]: the same as feeding [z, onehot(y)]
// to that layer (its weights on the one-hot's column k are e_k).
class ConvGenerator : public Network {
 public:
  ConvGenerator(int64_t latent, int64_t channels, int64_t width, Generator& gen, int64_t classes = 0);
  Tensor forward(const Tensor& z) override;
  Tensor forward_given(const Tensor& z, const Tensor& y) override;
  Shape sample_shape() const override { return Shape{channels_, 28, 28}; }
  std::string config_json() const override;
  int64_t width() const { return width_; }
  int64_t classes() const override { return classes_; }

 private:
  Tensor run(const Tensor& z, const Tensor& y);  // y undefined: unconditional
  int64_t latent_, channels_, width_, classes_;
  Tensor class_vectors_;  // [classes, 2w * 7 * 7] (classes > 0)
  std::shared_ptr<nn::Linear> fc_;
  std::shared_ptr<nn::GroupNorm> n1_, n2_;
  std::shared_ptr<nn::ConvTranspose2d> up1_, up2_;
};

// x [N, C, 28, 28] -> conv 4x4 s2 [w, 14, 14], LeakyReLU(0.2) -> conv 4x4 s2
// [2w, 7, 7], LeakyReLU(0.2) -> Linear -> logits [N] (no normalisation: the
// gradient penalty is per example, which batch statistics would break)
// With classes > 0, the projection discriminator of Miyato & Koyama (2018): the features
// phi(x) = the flattened [2w, 7, 7] map, and
//   D(x, y) = w . phi(x) + b + e_y . phi(x),
// a last layer per class, w + e_y, on shared features. Why projection and not concatenation: the
// optimal logit is log p(x, y) / q(x, y) = log p(x) / q(x) + log p(y | x) / q(y | x), and if
// p(y | x) and q(y | x) are softmaxes of linear functions of phi(x), the second term is exactly
// e_y . phi(x) (+ a term of x alone, absorbed in w . phi(x)); concatenating onehot(y) to x or
// phi(x) can represent it only through more layers, and it trains worse (their Table 1).
class ConvDiscriminator : public Network {
 public:
  ConvDiscriminator(int64_t channels, int64_t width, Generator& gen, int64_t classes = 0);
  Tensor forward(const Tensor& x) override;
  Tensor forward_given(const Tensor& x, const Tensor& y) override;
  Shape sample_shape() const override { return Shape{channels_, 28, 28}; }
  std::string config_json() const override;
  int64_t classes() const override { return classes_; }

 private:
  Tensor run(const Tensor& x, const Tensor& y);  // y undefined: unconditional
  int64_t channels_, width_, classes_;
  Tensor class_vectors_;  // the projections e_y, [classes, 2w * 7 * 7] (classes > 0)
  std::shared_ptr<nn::Conv2d> c1_, c2_;
  std::shared_ptr<nn::Linear> fc_;
};

// ------------------------------------------------------------------ training
enum class Loss { Minimax, NonSaturating, WassersteinGP, Hinge };
std::string loss_name(Loss loss);
Loss loss_from_name(const std::string& name);  // loss_name's inverse; an unknown name is an error listing the four

struct Options {
  Loss loss = Loss::NonSaturating;
  int64_t steps = 1000;        // generator updates
  int64_t batch_size = 64;
  int64_t n_critic = 1;        // discriminator updates per generator update (WGAN-GP: 5)
  double lr = 2e-4, beta1 = 0.5, beta2 = 0.999;  // Adam, both networks (WGAN-GP paper: 1e-4, 0, 0.9)
  double generator_lr = 0;     // > 0: the generator's own rate (two time-scales, Heusel et al. 2017)
  double lambda = 10;          // gradient penalty weight (WGAN-GP)
  double max_seconds = 0;      // stop after this long (0: no limit)
  std::string tag = "gan";     // progress bar label, file stem
  std::string out_dir;         // "<tag>_generator.safetensors" and .json, the same for the discriminator, "<tag>_curve.csv"
  std::string data_transform;  // written into the networks' JSON
  bool progress = true;
  int64_t log_every = 50;      // a curve row every this many generator steps
  bool resume = false;         // continue from <out>/<tag>.resume.safetensors (both networks, both Adams, the step, the curve)
  std::function<void(int64_t step)> every;  // called after every `every_steps` generator steps; its time is not
                                            // training time (not counted against max_seconds, nor in Result::seconds)
  int64_t every_steps = 0;
};
struct Result {
  int64_t steps = 0;
  double seconds = 0;
  std::vector<std::vector<double>> curve;  // step, discriminator loss, generator loss
};

// The two networks of one game; construction checks that G's samples are D's inputs, and
// that both are unconditional or both know the same classes.
class GAN {
 public:
  GAN(std::shared_ptr<Network> generator, int64_t latent, std::shared_ptr<Network> discriminator);
  Tensor sample(int64_t n, Generator& gen);                     // G(z), no gradient (unconditional)
  Tensor sample_given(const Tensor& y, Generator& gen);         // G(z, y), one sample per label, no gradient
  Tensor noise(int64_t n, Generator& gen) const { return gen.normal({n, latent_}); }
  std::shared_ptr<Network> generator, discriminator;
  int64_t latent() const { return latent_; }
  int64_t classes() const { return generator->classes(); }

 private:
  int64_t latent_;
};

// Alternating updates on minibatches of `data` [N, ...]: n_critic steps of D,
// then one of G. A NaN or Inf loss stops training with the step and the network.
Result train(GAN& gan, const Tensor& data, Generator& gen, const Options& options);
// The conditional game on labelled data (labels int64 [N]): D sees (x, y) pairs, real ones from the
// data and fake ones (G(z, y), y), with y drawn as the data's labels are (the real batch's labels
// for D's step, another batch's for G's), so p(y) is the same on both sides and D can only tell
// them apart by p(x | y). Checkpoints and resume as train's.
Result train_given(GAN& gan, const Tensor& data, const Tensor& labels, Generator& gen, const Options& options);

}  // namespace dgm::models::gan
