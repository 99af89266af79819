// dgm/models/diffusion.h — denoising diffusion (Ho, Jain & Abbeel 2020, DDPM).
//
// A fixed forward process adds Gaussian noise in T steps,
//   q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I),
// whose marginals are closed-form: with alpha_t = 1 - beta_t, abar_t = prod_{s<=t} alpha_s,
//   q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I),  i.e.  x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps.
// A network eps_theta(x_t, t) learns to predict eps (the simplified objective
// L_simple = E ||eps - eps_theta(x_t, t)||^2), and ancestral sampling runs the
// learned reverse chain
//   x_{t-1} = (x_t - beta_t / sqrt(1 - abar_t) eps_theta(x_t, t)) / sqrt(alpha_t) + sigma_t z,  sigma_t^2 = beta_t
// (or the variances fit_variances chooses after training).
#pragma once

#include <functional>
#include <vector>

#include "models/density.h"
#include "models/unet.h"

namespace dgm::models {

// Every derived quantity of a schedule, computed once in float64. Index t =
// 0..T-1 stands for the paper's step t + 1: beta[0] is beta_1, alpha_bar[t] =
// prod_{s <= t} alpha[s].
//   posterior q(x_{t-1} | x_t, x_0) = N(posterior_coef_x0[t] x_0 + posterior_coef_xt[t] x_t, posterior_var[t]):
//     posterior_var     = beta_t (1 - abar_{t-1}) / (1 - abar_t)
//     posterior_coef_x0 = sqrt(abar_{t-1}) beta_t / (1 - abar_t)
//     posterior_coef_xt = sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t)
//   (index 0 has abar_{-1} = 1: variance 0, mean x_0 -- the chain starts at the data).
struct NoiseSchedule {
  std::vector<double> beta, alpha, alpha_bar;
  std::vector<double> posterior_var, posterior_coef_x0, posterior_coef_xt;
  int64_t steps() const { return static_cast<int64_t>(beta.size()); }
  // How it was made, as JSON: {"kind": "linear", "T", "beta_1", "beta_T"}, {"kind": "cosine", "T", "s"}
  // or {"kind": "betas", "betas": [...]} (what a checkpoint's JSON records).
  std::string config_json;
  // Any betas in (0, 1); throws naming the first bad one, or T = 0.
  static NoiseSchedule from_betas(const std::vector<double>& betas);
  // beta rising linearly from beta_1 to beta_T (the paper: 1e-4 to 0.02, T = 1000)
  static NoiseSchedule linear(int64_t T, double beta_1 = 1e-4, double beta_T = 0.02);
  // Nichol & Dhariwal 2021: abar(t) = f(t) / f(0), f(t) = cos^2(((t / T) + s) / (1 + s) pi / 2),
  // beta_t = 1 - abar(t) / abar(t - 1) clipped to 0.999 (the last steps would otherwise be 1).
  static NoiseSchedule cosine(int64_t T, double s = 0.008);
  // The schedule a config_json describes (its inverse); an unknown kind is an error naming it.
  static NoiseSchedule from_config(const std::string& config_json);
  // The weight of L_{t-1} in epsilon form when the reverse step has variance sigma2:
  //   KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)) = w_t ||eps - eps_theta||^2 + (a constant in theta),
  //   w_t = beta_t^2 / (2 sigma_t^2 alpha_t (1 - abar_t))  (per dimension).
  double eps_weight(int64_t t, double sigma2) const;
  // The reverse step's mean from x_t and a noise prediction:
  //   mu = (x_t - beta_t / sqrt(1 - abar_t) eps) / sqrt(alpha_t).
  double mean_from_eps(int64_t t, double x_t, double eps) const;
};

// DDPM's decoder p(x_0 | x_1) for data on `levels` values in [-1, 1]: the
// Gaussian N(mean, exp(log_var)) integrated over each value's bin
// [x - 1/(levels-1), x + 1/(levels-1)], the two end bins extended to -inf and
// +inf, so the levels' masses sum to one. log P per element, float64, no
// gradient (the bound is evaluated, not trained, through it).
Tensor discretized_gaussian_log_prob(const Tensor& x, const Tensor& mean, const Tensor& log_var, int64_t levels);

// DDPM over examples of any shape (vectors [N, D] or images [N, C, H, W]):
// eps_theta is a NoisePredictor (models/unet.h: an MLP for vectors, a U-Net
// for images); the reverse steps have variance sigma_t^2 = beta_t until fit_variances.
// With levels > 0 the data are discrete values k / (levels - 1) in [0, 1],
// modelled as y = 2 x - 1 in [-1, 1] with the discretized Gaussian decoder
// for L_0 (discrete probabilities do not change under the relabelling).
//
// Class-conditional (a noise predictor with classes > 0; docs/chapters/conditional.md): one
// network eps_theta(x_t, t, y) learns p(x | y) and, with the label dropped (y = classes, "none")
// with probability p_uncond during training, p(x) as well (Ho & Salimans 2022). Sampling with
// classifier-free guidance weight w uses
//   eps~ = (1 + w) eps_theta(x_t, t, y) - w eps_theta(x_t, t, none)
// (w = 0: the conditional model, w = -1: the unconditional one). Without labels, every method
// (loss, log_prob, bound, sample, DDIM, fit_variances) is the unconditional model's.
class DDPM : public TrainableDensity, public ConditionalDensity {
 public:
  enum class Objective {
    Simple,  // L_simple: E_t ||eps - eps_theta||^2 (Ho et al.'s choice: better samples)
    Bound    // the bound: T E_t [w_t ||eps - eps_theta||^2] with (5)'s weights (a better likelihood)
  };
  // How training draws each example's step t (either way the loss's expectation is the objective):
  enum class Timesteps {
    Uniform,    // t ~ U{1..T}
    Importance  // t ~ p_t = w_t / sum_s w_s (the bound's weights at sigma_t^2 = beta_t), each term divided by T p_t:
                // the bound's terms then all weigh sum_s w_s, and the rare small t with the largest weights are
                // drawn often instead of weighed heavily (Nichol & Dhariwal 2021 sample the bound by importance
                // too, p_t from a history of the terms; here p_t is fixed)
  };
  // example_shape: one example's shape ({D} or {C, H, W}).
  DDPM(const Shape& example_shape, const NoiseSchedule& schedule, std::shared_ptr<NoisePredictor> net, Generator& gen,
       int64_t levels = 0);
  // Vectors [N, dims] with an MLPNoisePredictor(dims, hidden, embedding).
  DDPM(int64_t dims, const NoiseSchedule& schedule, const std::vector<int64_t>& hidden, Generator& gen,
       int64_t levels = 0, int64_t embedding = 32);

  std::string name() const override { return "ddpm"; }
  // log_prob: minus bound_stratified over log_prob_strata ranges -- every step once when T <= 65 (the
  // digits' T = 50), 65 network evaluations an example instead of 1,000 for the images' T = 1000
  static constexpr int64_t log_prob_strata = 64;
  std::string log_prob_kind() const override {
    return schedule_.steps() - 1 <= log_prob_strata ? "ELBO, all T terms, one x_t per term"
                                                    : "ELBO, L_0 and L_T exact, the other terms stratified over 64 ranges of steps, one x_t each";
  }
  std::string log_prob_given_kind() const override { return log_prob_kind(); }
  // {"example_shape", "schedule": the schedule's config_json, "levels", "net": the predictor's, "objective",
  //  "timesteps" (written when "importance"; absent: "uniform")}
  std::string config_json() const override;
  // t: int64 [N] (0..T-1); y: labels (int64 [N], 0..classes; undefined: none) of a conditional model
  Tensor predict_noise(const Tensor& x_t, const Tensor& t, const Tensor& y = Tensor());
  // Classifier-free guidance: (1 + w) eps_theta(x_t, t, y) - w eps_theta(x_t, t, none), both halves in one batch.
  Tensor guided_noise(const Tensor& x_t, const Tensor& t, const Tensor& y, double w);
  // --- the conditional model (a noise predictor with classes > 0; an unconditional one throws)
  int64_t classes() const override { return net_->classes(); }
  double p_uncond = 0.1;  // the share of training labels dropped to "none" (loss_given)
  double guidance = 0;    // w, what sample_given guides with
  Tensor loss_given(const Tensor& x, const Tensor& y) override;           // L_simple with labels, p_uncond of them dropped
  Tensor log_prob_given(const Tensor& x, const Tensor& y) override;       // minus bound_stratified given y (no guidance)
  Tensor sample_given(const Tensor& y, Generator& gen) override;          // ancestral sampling, guided with `guidance`
  const NoisePredictor& noise_predictor() const { return *net_; }
  Tensor loss(const Tensor& x) override;  // the chosen objective on a batch, noise from noise()
  // loss(x)'s terms, one an example (their mean is the loss, the same draws): steps drawn as `timesteps` says
  Tensor loss_terms(const Tensor& x);
  // The objective's term of each example at the given steps t (int64 [N]), as drawn uniformly: L_simple's
  // ||eps - eps_theta||^2 / D, or the bound's T w_t ||eps - eps_theta||^2; eps from noise(). The mean over
  // every t is the objective's expectation over t for that x_0 -- what importance sampling must keep.
  Tensor objective_at(const Tensor& x, const Tensor& t);
  // The terms of the negative ELBO per example, nats, float64 [N]: L_T, the sum
  // over t >= 2 of L_{t-1} (closed-form Gaussian KLs, x_t ~ q(x_t | x_0) once per t),
  // L_0 (decoder), and their total. No gradient. `each_term(t)` (if given) is
  // called after each of the T terms (a progress bar).
  struct Bound {
    Tensor prior, transitions, decoder, total;
  };
  Bound bound(const Tensor& x, Generator& gen, const std::function<void(int64_t)>& each_term = {});
  // An unbiased estimate of bound(x) at strata + 1 network evaluations per example instead of T:
  // L_T and L_0 exactly, and the sum over t >= 2 of L_{t-1} by stratified sampling. The steps
  // 2..T are cut into `strata` ranges whose widths grow geometrically (the first, largest terms
  // alone in their range), one step drawn uniformly in each range for each example, its term
  // (in epsilon form, w_t ||eps - eps_theta||^2 + D k_t with w_t at sigma_t^2 and
  // k_t = (log(sigma_t^2 / beta~_t) + beta~_t / sigma_t^2 - 1) / 2) counted range-width times. Every term
  // is an unbiased estimate of its range's sum, so the total is one of bound's; its spread over
  // the examples holds the draws' noise as well as the examples'. strata >= T - 1: every step once.
  // `each_range(j)` (if given) is called after range j.
  // y: the labels of a conditional model's p(x | y) (undefined: the unconditional model)
  Bound bound_stratified(const Tensor& x, int64_t strata, Generator& gen, const std::function<void(int64_t)>& each_range = {},
                         const Tensor& y = Tensor());
  // The ranges bound_stratified uses: their first steps (indices 1..T-1, ascending), then T.
  std::vector<int64_t> strata_edges(int64_t strata) const;
  Tensor log_prob(const Tensor& x) override { return neg(bound_stratified(x, log_prob_strata, noise_).total); }
  Tensor sample(int64_t n, Generator& gen) override { return sample(n, gen, {}); }  // on the levels when levels > 0
  // Ancestral sampling; `each_step(t, x_t)` (if given) sees x_T, then x_t after every reverse step, in model space.
  Tensor sample(int64_t n, Generator& gen, const std::function<void(int64_t, const Tensor&)>& each_step);
  // DDIM (Song, Meng & Ermon 2021), eta = 0: the deterministic sampler of the
  // same trained model on a subsequence of `steps` of the T steps,
  //   x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t),
  //   x_s = sqrt(abar_s) x0_hat + sqrt(1 - abar_s) eps          (s: the previous step kept).
  Tensor sample_ddim(int64_t n, int64_t steps, Generator& gen,
                     const std::function<void(int64_t, const Tensor&)>& each_step = {});
  // The reverse chain's mean mu_theta(x_t, t) (in model space); given labels y, from the guided noise at weight w.
  Tensor reverse_mean(const Tensor& x_t, int64_t t, const Tensor& y = Tensor(), double w = 0);
  // sigma_t^2, the variance of the reverse step p(x_{t-1} | x_t) = N(mu_theta, sigma_t^2 I) at
  // index t (index 0: the decoder's Gaussian): beta_t as built, until fit_variances. Every
  // sigma_t^2 gives a valid bound and the network is trained without them (L_simple does not see
  // them), so they can be chosen after training; they are saved with the parameters (a buffer).
  double reverse_variance(int64_t t) const;
  std::vector<double> reverse_variances() const;
  void set_reverse_variances(const std::vector<double>& v);  // T values > 0; throws naming the first bad one
  // Analytic-DPM (Bao, Li, Zhu & Zhang 2022): for a trained eps_theta the sigma_t^2 that minimises
  // E[L_{t-1}] in closed form. With m_t = E||eps - eps_theta(x_t, t)||^2 / D, the model's mean is
  // off the posterior's by beta_t / sqrt(alpha_t (1 - abar_t)) (eps - eps_theta), and
  //   E[KL] / D = 1/2 (log(sigma^2 / beta~_t) + (beta~_t + c_t m_t) / sigma^2 - 1),  c_t = beta_t^2 / (alpha_t (1 - abar_t)),
  // whose minimum is at sigma_t^2* = beta~_t + c_t m_t: the posterior's variance plus the mean's
  // squared error. m_t is estimated on `x` (training examples: one x_t per example and step) and
  // sigma_t^2 clipped to [beta~_t, beta_t]. The decoder (index 0): with levels, the variance of
  // a grid (beta_1 2^(k/4), k = -32..16) that gives the least L_0 on x; without, c_1 m_1.
  struct VarianceFit {
    std::vector<double> mse;             // m_t, per step
    std::vector<double> before, after;   // sigma_t^2 before and after
    double decoder_before = 0, decoder_after = 0;  // L_0 on x, nats per example, at the two variances
  };
  VarianceFit fit_variances(const Tensor& x, Generator& gen, const std::function<void(int64_t)>& each_step = {});
  Tensor to_model_space(const Tensor& x) const;  // 2x - 1 with levels, else x
  const NoiseSchedule& schedule() const { return schedule_; }
  int64_t levels() const { return levels_; }
  const Shape& example_shape() const { return example_shape_; }
  Generator& noise() { return noise_; }
  Generator* noise_generator() override { return &noise_; }
  Objective objective = Objective::Simple;
  Timesteps timesteps = Timesteps::Uniform;
  // p_t, the importance distribution over the steps (index t - 1), float64
  std::vector<double> importance_probabilities() const;
  // "L_simple", "the bound" or "the bound, t drawn by importance" (what a lesson prints)
  std::string objective_title() const;

 private:
  Tensor simple_loss(const Tensor& x, const Tensor& y);  // the chosen objective given labels y (undefined: none)
  Tensor checked_model_space(const Tensor& x) const;     // a batch of examples' shape, else throws; then to_model_space
  Tensor draw_steps(int64_t n);                          // n steps, as `timesteps` says (noise())
  // ||eps - eps_theta(x_t, t, y)||^2 per example, x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, eps from noise()
  Tensor squared_errors(const Tensor& x0, const Tensor& t, const Tensor& y);
  // The objective's term per example before L_simple's 1 / D: ||.||^2, or T w_t ||.||^2 for the bound; with
  // `drawn` (t from draw_steps) and importance-drawn steps, each also divided by T p_t
  Tensor weighted_errors(const Tensor& x0, const Tensor& t, const Tensor& y, bool drawn);
  // Ancestral sampling of n examples, given labels y (undefined: none) guided at weight w.
  Tensor ancestral(int64_t n, Generator& gen, const std::function<void(int64_t, const Tensor&)>& each_step, const Tensor& y, double w);
  Shape batch_shape(int64_t n) const;  // [n, example shape...]
  DType model_dtype() const;          // the network's (float32 unless converted; float32 without parameters)
  Tensor per_example(const Tensor& t) const;  // [N] -> [N, 1, ...] to broadcast over an example
  Tensor to_levels(const Tensor& y) const;    // model space -> the nearest level in [0, 1]
  // The end terms both bounds share, per example (x0 in model space, float64): L_T, and L_0 given
  // the decoder's mean mu (the discretized Gaussian with levels), both at the reverse variances.
  Tensor prior_kl(const Tensor& x0) const;
  Tensor decoder_nll(const Tensor& x0, const Tensor& mu) const;
  NoiseSchedule schedule_;
  Shape example_shape_;
  int64_t dims_, levels_;
  std::shared_ptr<NoisePredictor> net_;
  Tensor sqrt_ab_, sqrt_1mab_, weights_;  // [T] float32: sqrt(abar), sqrt(1 - abar), T w_t
  std::vector<double> importance_cdf_;    // [T]: sum_{s <= t} p_s
  Tensor importance_scale_;               // [T] float32: 1 / (T p_t)
  Tensor reverse_variance_;               // [T] buffer "reverse_variance": sigma_t^2
  Generator noise_;
};

// DDPM on 2-D points: eps_theta is an MLP on (x_t, t / T), 3 -> hidden... -> 2.
// bench_train's twin of the reference's workload e (recipe bench_ddpm2d); no likelihood.
class DDPM2D : public nn::Module {
 public:
  DDPM2D(const NoiseSchedule& schedule, const std::vector<int64_t>& hidden, Generator& gen);
  // {"schedule": the schedule's config_json, "hidden": [...]}: the constructor's arguments
  std::string config_json() const;
  Tensor predict_noise(const Tensor& x_t, const Tensor& t);  // t: int64 [N]
  // L_simple on a batch x_0 [N, 2]: t ~ U{0..T-1}, eps ~ N(0, I), mean squared error.
  Tensor loss(const Tensor& x0, Generator& gen);
  // Ancestral sampling: x_T ~ N(0, I), then T reverse steps.
  Tensor sample(int64_t n, Generator& gen);
  const NoiseSchedule& schedule() const { return schedule_; }

 private:
  NoiseSchedule schedule_;
  std::vector<int64_t> hidden_;
  std::shared_ptr<nn::Sequential> net_;
  Tensor sqrt_alpha_bar_, sqrt_one_minus_alpha_bar_;  // [T] float32, for the loss
};

}  // namespace dgm::models
