// dgm/homework/intro/grader.cpp — the checks of the intro homework.
// Bayes' rule against long double and against the engine's class-conditional model;
// the AUROC against counting every pair, with and without ties, and by its symmetry.
#include <cmath>

#include "autograd/random.h"
#include "homework/intro/exercises.h"
#include "models/mixtures.h"

namespace hw::intro {

using dgm::DType;
using dgm::Generator;

namespace {

using LD = long double;

Tensor posterior_reference(const Tensor& lpx, const Tensor& lprior) {
  const int64_t N = lpx.size(0), C = lpx.size(1);
  std::vector<double> out(static_cast<size_t>(N * C));
  for (int64_t n = 0; n < N; ++n) {
    LD s = 0;  // long double: e^-11000 is representable
    for (int64_t c = 0; c < C; ++c) s += std::exp(static_cast<LD>(lpx.at(n * C + c)) + lprior.at(c));
    for (int64_t c = 0; c < C; ++c) out[static_cast<size_t>(n * C + c)] = static_cast<double>(std::exp(static_cast<LD>(lpx.at(n * C + c)) + lprior.at(c)) / s);
  }
  return Tensor::from_vector(out, {N, C});
}

Tensor random_log_prior(Generator& gen, int64_t C) {
  return dgm::log_softmax(gen.normal({C}, 0, 1, DType::Float64), 0);
}

double auroc_by_pairs(const std::vector<double>& in, const std::vector<double>& out) {
  double wins = 0;
  for (double a : in)
    for (double b : out) wins += a > b ? 1.0 : a == b ? 0.5 : 0.0;
  return wins / (static_cast<double>(in.size()) * static_cast<double>(out.size()));
}

std::vector<double> draws(Generator& gen, int64_t n, double mean, bool integers) {
  std::vector<double> v;
  for (int64_t i = 0; i < n; ++i) v.push_back(integers ? std::round(mean + 2 * gen.normal01()) : mean + gen.normal01());
  return v;
}

}  // namespace

std::vector<Exercise> exercises(const Functions& f) {
  std::vector<Exercise> list;

  // ---------------------------------------------------------------- class_posterior
  list.push_back({"class_posterior", "homework/intro/class_posterior.cpp", 10, {}});
  auto& cp = list.back().checks;
  cp.push_back({"p(y | x) is [N, C] and each row sums to 1", 1, [f](Expect& e) {
                  Generator gen(1);
                  const Tensor p = f.class_posterior(gen.normal({6, 4}, -50, 5, DType::Float64), random_log_prior(gen, 4));
                  e.shape_is("p(y | x)", p, {6, 4}, "one row per input, one column per class");
                  if (e.ok()) e.tensors_near("row sums", Tensor::ones({6}, DType::Float64), dgm::sum(p, {1}), 1e-12, "normalise over the classes");
                }});
  cp.push_back({"equals p(y) p(x | y) / sum_y' p(y') p(x | y') in long double (3 seeds)", 3, [f](Expect& e) {
                  for (uint64_t seed : {1, 2, 3}) {
                    Generator gen(seed);
                    const Tensor lpx = gen.normal({8, 5}, -20, 4, DType::Float64), lprior = random_log_prior(gen, 5);
                    e.set_context("seed " + std::to_string(seed) + ": ");
                    e.tensors_near("p(y | x)", posterior_reference(lpx, lprior), f.class_posterior(lpx, lprior), 1e-12,
                                   "the prior multiplies the likelihood (adds in logs) before normalising");
                  }
                }, essential});
  cp.push_back({"stable: log p(x | y) near -3000 (a 784-pixel image)", 3, [f](Expect& e) {
                  Generator gen(4);
                  const Tensor lpx = gen.normal({5, 10}, -3000, 6, DType::Float64), lprior = random_log_prior(gen, 10);
                  const Tensor p = f.class_posterior(lpx, lprior);
                  e.that(p.defined() && all_finite(p), "your posterior has NaN or Inf for log-likelihoods near -3000",
                         "exp(-3000) is 0 in double: subtract each row's logsumexp before exp");
                  e.tensors_near("p(y | x)", posterior_reference(lpx, lprior), p, 1e-10, "normalise in the log domain");
                }, essential});
  cp.push_back({"agrees with the engine's class-conditional Bernoulli model on 8x8 binary images", 3, [f](Expect& e) {
                  Generator gen(5);
                  dgm::models::ClassConditionalBernoulli model;
                  model.log_prior = random_log_prior(gen, 3);
                  for (int c = 0; c < 3; ++c) {
                    dgm::models::BernoulliMixture m;
                    m.weights = dgm::softmax(gen.normal({2}, 0, 1, DType::Float64), 0);
                    m.means = gen.uniform({2, 64}, 0.05, 0.95, DType::Float64);
                    model.classes.push_back(m);
                  }
                  const Tensor X = gen.bernoulli({7, 64}, 0.5, DType::Float64);
                  std::vector<Tensor> columns;
                  for (auto& m : model.classes) columns.push_back(m.log_prob(X));
                  e.tensors_near("p(y | x)", dgm::exp(model.log_posterior(X)), f.class_posterior(dgm::stack(columns, 1), model.log_prior), 1e-10,
                                 "p(y | x) = exp(log p(x | y) + log p(y) - logsumexp_y'(...))");
                }, essential});

  // ---------------------------------------------------------------- auroc
  list.push_back({"auroc", "homework/intro/auroc.cpp", 10, {}});
  auto& au = list.back().checks;
  au.push_back({"equals the fraction of (in, out) pairs ranked right, continuous scores (3 seeds)", 4, [f](Expect& e) {
                  for (uint64_t seed : {1, 2, 3}) {
                    Generator gen(seed);
                    const auto in = draws(gen, 40 + 10 * static_cast<int64_t>(seed), 0.7, false), out = draws(gen, 35, 0, false);
                    e.near("seed " + std::to_string(seed) + ": AUROC", auroc_by_pairs(in, out), f.auroc(in, out), 1e-12,
                           "the probability that an in-distribution score is ABOVE an out-of-distribution one");
                  }
                }, essential});
  au.push_back({"ties count one half (integer scores)", 3, [f](Expect& e) {
                  Generator gen(4);
                  const auto in = draws(gen, 60, 1, true), out = draws(gen, 50, 0, true);
                  e.near("AUROC with ties", auroc_by_pairs(in, out), f.auroc(in, out), 1e-12,
                         "a pair with equal scores counts 1/2: the ROC curve joins its corners with a straight line");
                  e.near("identical sets", 0.5, f.auroc(in, in), 1e-12, "a set against itself is chance, 0.5");
                }});
  au.push_back({"symmetry AUROC(out, in) = 1 - AUROC(in, out), and 3000 x 3000 pairs", 3, [f](Expect& e) {
                  Generator gen(5);
                  const auto in = draws(gen, 3000, 0.3, true), out = draws(gen, 3000, 0, true);
                  const double a = f.auroc(in, out), b = f.auroc(out, in);
                  e.near("AUROC(out, in) + AUROC(in, out)", 1.0, a + b, 1e-12, "every pair is won by one side or tied");
                  e.near("AUROC, 3000 x 3000", auroc_by_pairs(in, out), a, 1e-12, "");
                }});
  // No exercise may call the library's own implementation of itself (grader.h, add_library_check).
  for (auto& ex : list) {
    if (ex.name == "class_posterior") add_library_check(ex, {"log_posterior", "ClassConditionalBernoulli"});
  }
  return list;
}

}  // namespace hw::intro
