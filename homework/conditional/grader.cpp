// dgm/homework/conditional/grader.cpp — the checks of the conditional homework.
// Guidance against its formula, its two ends and the engine's DDPM; label dropout by its
// frequency, its values and its independence; SIR's weights against long double, at large
// logits, and against the closed-form density ratio of a Gaussian toy.
#include <cmath>

#include "autograd/graph.h"
#include "homework/conditional/exercises.h"
#include "models/diffusion.h"
#include "models/unet.h"

namespace hw::conditional {

using dgm::DType;

namespace {

using LD = long double;

// The toy of the lesson: p(y) = (0.5, 0.3, 0.2), p(x | y) = N(mu_y, I) in 2-D.
const double kPrior[3] = {0.5, 0.3, 0.2};
const double kMu[3][2] = {{-2.0, 0.0}, {2.0, 0.0}, {0.0, 2.5}};
double log_normal(double x0, double x1, int k) {
  const double d0 = x0 - kMu[k][0], d1 = x1 - kMu[k][1];
  return -0.5 * (d0 * d0 + d1 * d1) - std::log(2 * M_PI);
}
Tensor toy_log_prior() { return Tensor::from_vector(std::vector<double>{std::log(kPrior[0]), std::log(kPrior[1]), std::log(kPrior[2])}, {3}); }
// x ~ p(x): [n, 2]
Tensor toy_draws(Generator& gen, int64_t n) {
  std::vector<double> v;
  for (int64_t i = 0; i < n; ++i) {
    const double u = gen.uniform01();
    const int k = u < 0.5 ? 0 : (u < 0.8 ? 1 : 2);
    v.push_back(kMu[k][0] + gen.normal01());
    v.push_back(kMu[k][1] + gen.normal01());
  }
  return Tensor::from_vector(v, {n, 2});
}
// The exact posterior's logits (up to a constant per row): log p(k) + log N(x; mu_k, I).
Tensor toy_logits(const Tensor& x) {
  std::vector<double> v;
  for (int64_t i = 0; i < x.size(0); ++i)
    for (int k = 0; k < 3; ++k) v.push_back(std::log(kPrior[k]) + log_normal(x.at(i * 2), x.at(i * 2 + 1), k));
  return Tensor::from_vector(v, {x.size(0), 3});
}

Tensor log_weights_reference(const Tensor& logits, const Tensor& log_prior, int64_t target) {
  const int64_t M = logits.size(0), K = logits.size(1);
  std::vector<double> out;
  for (int64_t i = 0; i < M; ++i) {
    LD top = -INFINITY, s = 0;
    for (int64_t k = 0; k < K; ++k) top = std::max<LD>(top, logits.at(i * K + k));
    for (int64_t k = 0; k < K; ++k) s += std::exp(static_cast<LD>(logits.at(i * K + k)) - top);
    out.push_back(static_cast<double>(static_cast<LD>(logits.at(i * K + target)) - top - std::log(s) - static_cast<LD>(log_prior.at(target))));
  }
  return Tensor::from_vector(out, {M});
}

Tensor random_labels(Generator& gen, int64_t n, int64_t classes) { return gen.randint(dgm::Shape{n}, 0, classes); }

}  // namespace

std::vector<Exercise> exercises(const Functions& f) {
  std::vector<Exercise> list;

  // ---------------------------------------------------------------- guided_noise
  list.push_back({"guided_noise", "homework/conditional/guided_noise.cpp", 10, {}});
  auto& gn = list.back().checks;
  gn.push_back({"equals (1 + w) eps(x, y) - w eps(x, none) at w = 0.5, 2, 7.5 (3 seeds)", 4, [f](Expect& e) {
                  for (uint64_t seed : {1, 2, 3}) {
                    Generator gen(seed);
                    const Tensor c = gen.normal({4, 1, 3, 3}, 0, 1, DType::Float64), u = gen.normal({4, 1, 3, 3}, 0, 1, DType::Float64);
                    for (double w : {0.5, 2.0, 7.5}) {
                      e.set_context("seed " + std::to_string(seed) + ", w = " + fmt(w) + ": ");
                      e.tensors_near("eps~", c * (1 + w) - u * w, f.guided_noise(c, u, w), 1e-12,
                                     "the conditional noise gets 1 + w, the unconditional one -w");
                    }
                  }
                }, essential});
  gn.push_back({"w = 0 is the conditional model, w = -1 the unconditional one", 2, [f](Expect& e) {
                  Generator gen(4);
                  const Tensor c = gen.normal({5, 6}, 0, 1, DType::Float64), u = gen.normal({5, 6}, 0, 1, DType::Float64);
                  e.tensors_near("eps~ at w = 0", c, f.guided_noise(c, u, 0.0), 1e-12, "no guidance: the conditional noise as it is");
                  e.tensors_near("eps~ at w = -1", u, f.guided_noise(c, u, -1.0), 1e-12, "w = -1 removes the label altogether");
                }});
  gn.push_back({"agrees with the engine's conditional DDPM (models::DDPM::guided_noise)", 3, [f](Expect& e) {
                  Generator gen(5);
                  auto net = std::make_shared<dgm::models::MLPNoisePredictor>(6, std::vector<int64_t>{16}, gen, 8, 3);
                  dgm::models::DDPM m(dgm::Shape{6}, dgm::models::NoiseSchedule::linear(10, 0.02, 0.3), net, gen);
                  m.to(DType::Float64);
                  dgm::NoGradGuard ng;
                  for (Tensor& p : m.parameters()) p.copy_(p + gen.normal(p.shape(), 0, 0.3, DType::Float64));
                  const Tensor x = gen.normal({7, 6}, 0, 1, DType::Float64), t = gen.randint(dgm::Shape{7}, 0, 10), y = gen.randint(dgm::Shape{7}, 0, 3);
                  const Tensor c = m.predict_noise(x, t, y), u = m.predict_noise(x, t);
                  e.tensors_near("eps~ at w = 3", m.guided_noise(x, t, y, 3.0), f.guided_noise(c, u, 3.0), 1e-10,
                                 "eps(x, none) is the unconditional prediction the same network makes");
                }, essential});
  gn.push_back({"a gradient reaches both predictions: (1 + w) and -w", 1, [f](Expect& e) {
                  Generator gen(6);
                  Tensor c = gen.normal({3, 2}, 0, 1, DType::Float64), u = gen.normal({3, 2}, 0, 1, DType::Float64);
                  c.set_requires_grad(true), u.set_requires_grad(true);
                  const Tensor out = f.guided_noise(c, u, 2.0);
                  e.that(out.defined() && out.requires_grad(), "eps~ has no graph", "use engine ops on the two tensors");
                  if (!e.ok()) return;
                  dgm::sum(out).backward();
                  e.tensors_near("d sum / d eps(x, y)", Tensor::full({3, 2}, 3.0, DType::Float64), c.grad(), 1e-12, "");
                  e.tensors_near("d sum / d eps(x, none)", Tensor::full({3, 2}, -2.0, DType::Float64), u.grad(), 1e-12, "");
                }});
  add_library_check(list.back(), {"dgm::models::DDPM", "models::DDPM"});

  // ---------------------------------------------------------------- drop_labels
  list.push_back({"drop_labels", "homework/conditional/drop_labels.cpp", 10, {}});
  auto& dl = list.back().checks;
  dl.push_back({"int64 [N]; each entry its own label or the 'none' index `classes`", 2, [f](Expect& e) {
                  Generator gen(1), labels_gen(2);
                  const Tensor y = random_labels(labels_gen, 500, 10);
                  const Tensor out = f.drop_labels(y, 10, 0.3, gen);
                  e.shape_is("dropped labels", out, {500}, "one label per example");
                  if (!e.ok()) return;
                  e.that(out.dtype() == DType::Int64, "the labels are not int64", "Tensor::from_indices makes int64 tensors");
                  for (int64_t i = 0; i < 500 && e.ok(); ++i)
                    e.that(out.at(i) == y.at(i) || out.at(i) == 10,
                           "entry " + std::to_string(i) + " is " + fmt(out.at(i)) + ", neither its label " + fmt(y.at(i)) + " nor 10",
                           "a label is kept as it is, or replaced by `classes` (none)");
                }, essential});
  dl.push_back({"p = 0 keeps every label; p = 1 drops every one to `classes`, never to a real class", 2, [f](Expect& e) {
                  Generator gen(3), labels_gen(4);
                  const Tensor y = random_labels(labels_gen, 300, 7);
                  e.tensors_near("p = 0", y.to(DType::Float64), f.drop_labels(y, 7, 0.0, gen).to(DType::Float64), 0, "nothing is dropped at p = 0");
                  e.tensors_near("p = 1", Tensor::full({300}, 7.0, DType::Float64), f.drop_labels(y, 7, 1.0, gen).to(DType::Float64), 0,
                                 "'none' is the index `classes`, one past the real labels");
                }, essential});
  dl.push_back({"the share dropped is p_uncond (20,000 labels, within 4 standard errors), p = 0.1 and 0.5", 3, [f](Expect& e) {
                  for (double p : {0.1, 0.5}) {
                    Generator gen(5), labels_gen(6);
                    const int64_t n = 20000;
                    const Tensor out = f.drop_labels(random_labels(labels_gen, n, 10), 10, p, gen);
                    double dropped = 0;
                    for (int64_t i = 0; i < out.numel(); ++i) dropped += out.at(i) == 10;
                    e.near("share dropped at p = " + fmt(p), p, dropped / static_cast<double>(n), 4 * std::sqrt(p * (1 - p) / n),
                           "drop with probability p_uncond, keep with 1 - p_uncond");
                  }
                }, essential});
  dl.push_back({"independent per example: the count in a batch of 100 varies as a binomial's (200 batches)", 3, [f](Expect& e) {
                  Generator gen(7), labels_gen(8);
                  const double p = 0.3, n = 100, batches = 200;
                  double s = 0, s2 = 0;
                  for (int b = 0; b < batches; ++b) {
                    const Tensor out = f.drop_labels(random_labels(labels_gen, 100, 10), 10, p, gen);
                    double c = 0;
                    for (int64_t i = 0; i < out.numel(); ++i) c += out.at(i) == 10;
                    s += c, s2 += c * c;
                  }
                  const double mean = s / batches, var = (s2 - batches * mean * mean) / (batches - 1), binomial = n * p * (1 - p);
                  e.near("variance of the dropped count per batch", binomial, var, 4 * binomial * std::sqrt(2 / (batches - 1)),
                         "one uniform draw per example, not one per batch: the network must see both kinds in every batch");
                }});

  // ---------------------------------------------------------------- sir_log_weights
  list.push_back({"sir_log_weights", "homework/conditional/sir_log_weights.cpp", 10, {}});
  auto& sw = list.back().checks;
  sw.push_back({"equals log p(y | x) - log p(y), p(y | x) = softmax(logits), in long double (3 seeds)", 4, [f](Expect& e) {
                  for (uint64_t seed : {1, 2, 3}) {
                    Generator gen(seed);
                    const Tensor logits = gen.normal({20, 5}, 0, 3, DType::Float64);
                    const Tensor log_prior = dgm::log_softmax(gen.normal({5}, 0, 1, DType::Float64), 0);
                    const int64_t target = static_cast<int64_t>(seed);
                    e.set_context("seed " + std::to_string(seed) + ": ");
                    const Tensor w = f.sir_log_weights(logits, log_prior, target);
                    e.shape_is("log w", w, {20}, "one weight per draw");
                    if (e.ok())
                      e.tensors_near("log w", log_weights_reference(logits, log_prior, target), w, 1e-10,
                                     "normalise the logits (log-softmax), take the target's column, divide by p(y)");
                  }
                }, essential});
  sw.push_back({"stable: logits of +-1000 (a confident classifier)", 2, [f](Expect& e) {
                  Generator gen(4);
                  const Tensor logits = gen.normal({10, 4}, 0, 600, DType::Float64);
                  const Tensor log_prior = dgm::log_softmax(gen.normal({4}, 0, 1, DType::Float64), 0);
                  const Tensor w = f.sir_log_weights(logits, log_prior, 2);
                  e.that(w.defined() && all_finite(w), "your log-weights have NaN or Inf for logits near +-1000",
                         "exp(1000) overflows: subtract each row's logsumexp in the log domain");
                  if (e.ok()) e.tensors_near("log w", log_weights_reference(logits, log_prior, 2), w, 1e-9, "");
                }, essential});
  sw.push_back({"on the Gaussian toy, w is the density ratio p(x | y) / p(x) of the closed form", 2, [f](Expect& e) {
                  Generator gen(5);
                  const Tensor x = toy_draws(gen, 50);
                  const Tensor w = f.sir_log_weights(toy_logits(x), toy_log_prior(), 2);
                  std::vector<double> ratio;
                  for (int64_t i = 0; i < 50; ++i) {
                    LD px = 0;
                    for (int k = 0; k < 3; ++k) px += kPrior[k] * std::exp(static_cast<LD>(log_normal(x.at(i * 2), x.at(i * 2 + 1), k)));
                    ratio.push_back(log_normal(x.at(i * 2), x.at(i * 2 + 1), 2) - static_cast<double>(std::log(px)));
                  }
                  e.tensors_near("log p(x | y) - log p(x)", Tensor::from_vector(ratio, {50}), w, 1e-10,
                                 "Bayes' rule: p(y | x) / p(y) = p(x | y) / p(x)");
                }});
  sw.push_back({"the weights' mean over x ~ p(x) is 1 (20,000 draws, within 4 standard errors)", 2, [f](Expect& e) {
                  Generator gen(6);
                  const int64_t n = 20000;
                  const Tensor w = f.sir_log_weights(toy_logits(toy_draws(gen, n)), toy_log_prior(), 1);
                  if (!(w.defined() && w.numel() == n)) {
                    e.that(false, "no weights", "");
                    return;
                  }
                  double s = 0, s2 = 0;
                  for (int64_t i = 0; i < n; ++i) s += std::exp(w.at(i)), s2 += std::exp(2 * w.at(i));
                  const double m = s / n, se = std::sqrt((s2 / n - m * m) / (n - 1));
                  e.near("mean of w", 1.0, m, 4 * se, "E_p(x)[p(y | x) / p(y)] = 1: the prior belongs in the denominator");
                }});
  add_library_check(list.back(), {"dgm::models::sir_indices", "models::sir_indices", "models::log_posterior", "dgm::models::log_posterior"});
  return list;
}

}  // namespace hw::conditional
