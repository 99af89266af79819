// dgm/homework/gan/grader.cpp — the checks of the GAN homework.
// The loss against long double and its closed-form gradient; the penalty against
// closed forms for linear and quadratic critics, and its gradient with respect to
// the critic's parameters against central differences (the double backward).
#include <cmath>

#include "autograd/gradcheck.h"
#include "autograd/graph.h"
#include "autograd/random.h"
#include "homework/gan/exercises.h"

namespace hw::gan {

using dgm::DType;
using dgm::Generator;

namespace {

using LD = long double;
LD softplus_ld(LD v) { return v > 0 ? v + std::log1p(std::exp(-v)) : std::log1p(std::exp(v)); }

// f(x) = 1/2 || A x ||^2 per row: grad_x f = A^T A x.
struct QuadraticCritic {
  Tensor A;  // [H, D], a parameter
  Tensor operator()(const Tensor& x) const { return 0.5 * dgm::sum(dgm::square(dgm::linear(x, A)), {1}); }
};

struct PenaltyCase {
  Tensor real, fake, eps;
};
PenaltyCase penalty_case(uint64_t seed, int64_t N, int64_t D) {
  Generator gen(seed);
  return {gen.normal({N, D}, 1, 1, DType::Float64), gen.normal({N, D}, -1, 1, DType::Float64), gen.uniform({N, 1}, 0, 1, DType::Float64)};
}

// The penalty for the quadratic critic, in long double.
double quadratic_penalty(const PenaltyCase& c, const Tensor& A) {
  const int64_t N = c.real.size(0), D = c.real.size(1), H = A.size(0);
  LD total = 0;
  for (int64_t n = 0; n < N; ++n) {
    std::vector<LD> x(static_cast<size_t>(D));
    const LD e = c.eps.at(n);
    for (int64_t d = 0; d < D; ++d) x[static_cast<size_t>(d)] = e * c.real.at(n * D + d) + (1 - e) * c.fake.at(n * D + d);
    std::vector<LD> Ax(static_cast<size_t>(H), 0);
    for (int64_t h = 0; h < H; ++h)
      for (int64_t d = 0; d < D; ++d) Ax[static_cast<size_t>(h)] += static_cast<LD>(A.at(h * D + d)) * x[static_cast<size_t>(d)];
    LD sq = 0;
    for (int64_t d = 0; d < D; ++d) {
      LD g = 0;  // (A^T A x)_d
      for (int64_t h = 0; h < H; ++h) g += static_cast<LD>(A.at(h * D + d)) * Ax[static_cast<size_t>(h)];
      sq += g * g;
    }
    total += (std::sqrt(sq) - 1) * (std::sqrt(sq) - 1);
  }
  return static_cast<double>(total / N);
}

}  // namespace

std::vector<Exercise> exercises(const Functions& f) {
  std::vector<Exercise> list;

  // ---------------------------------------------------------------- generator_loss_non_saturating
  list.push_back({"generator_loss_non_saturating", "homework/gan/generator_loss.cpp", 10, {}});
  auto& gl = list.back().checks;
  gl.push_back({"a scalar (shape [])", 1, [f](Expect& e) {
                  Generator gen(1);
                  e.shape_is("loss of logits [8, 1]", f.generator_loss_non_saturating(gen.normal({8, 1}, 0, 1, DType::Float64)), {},
                             "the mean over the batch: dgm::mean(...) gives shape []");
                }});
  gl.push_back({"equals mean(-log sigmoid(l)) in long double (3 seeds)", 3, [f](Expect& e) {
                  for (uint64_t seed : {1, 2, 3}) {
                    Generator gen(seed);
                    const Tensor l = gen.normal({16}, 0, 3, DType::Float64);
                    LD want = 0;
                    for (int64_t i = 0; i < 16; ++i) want += softplus_ld(-static_cast<LD>(l.at(i)));
                    e.near("seed " + std::to_string(seed) + ": loss", static_cast<double>(want / 16), f.generator_loss_non_saturating(l).item(), 1e-12,
                           "L_G = -E log D(G(z)) = E softplus(-l), a mean over the batch (not log(1 - D): that is the saturating loss)");
                  }
                }, essential});
  gl.push_back({"stable at l = -1000 and +1000", 2, [f](Expect& e) {
                  const Tensor l = Tensor::from_vector(std::vector<double>{-1000, 1000}, {2});
                  e.near("loss at l = (-1000, 1000)", 500, f.generator_loss_non_saturating(l).item(), 1e-9,
                         "-log sigmoid(-1000) = 1000: log(sigmoid(l)) underflows to log 0; softplus(-l) does not");
                }, essential});
  gl.push_back({"gradient: dL/dl_n = -(1 - sigmoid(l_n)) / N", 2, [f](Expect& e) {
                  Generator gen(4);
                  const Tensor l = gen.normal({10}, 0, 3, DType::Float64).set_requires_grad(true);
                  const Tensor g = dgm::grad({f.generator_loss_non_saturating(l)}, {l})[0];
                  e.tensors_near("dL/dl", -(1.0 - dgm::sigmoid(l.detach())) / 10.0, g, 1e-12, "write the loss with engine ops");
                }, essential});
  gl.push_back({"non-saturating: where D rejects the fakes (l = -10) the gradient is still ~1/N", 2, [f](Expect& e) {
                  const Tensor l = Tensor::full({4}, -10.0, DType::Float64).set_requires_grad(true);
                  const Tensor g = dgm::grad({f.generator_loss_non_saturating(l)}, {l})[0];
                  e.near("|dL/dl| at l = -10 (N = 4)", 0.25 * (1 - 1 / (1 + std::exp(10.0))), std::abs(g.at(0)), 1e-9,
                         "log(1 - D) has gradient sigmoid(l) ~ 5e-5 there: the generator would not learn. Use -log D.");
                }, essential});

  // ---------------------------------------------------------------- gradient_penalty
  list.push_back({"gradient_penalty", "homework/gan/gradient_penalty.cpp", 10, {}});
  auto& gp = list.back().checks;
  gp.push_back({"a scalar (shape [])", 1, [f](Expect& e) {
                  const PenaltyCase c = penalty_case(1, 4, 3);
                  Generator gen(1);
                  const QuadraticCritic critic{gen.normal({2, 3}, 0, 1, DType::Float64).set_requires_grad(true)};
                  e.shape_is("penalty", f.gradient_penalty(std::cref(critic), c.real, c.fake, c.eps), {}, "the mean over the batch");
                }});
  gp.push_back({"a linear critic f(x) = w . x + c gives (||w|| - 1)^2 exactly", 2, [f](Expect& e) {
                  for (double scale : {0.3, 2.5}) {
                    Generator gen(2);
                    const Tensor w = gen.normal({1, 4}, 0, 1, DType::Float64);
                    const Tensor unit = w / std::sqrt(dgm::sum(dgm::square(w)).item()) * scale;  // ||w|| = scale
                    const Critic critic = [unit](const Tensor& x) { return dgm::linear(x, unit) + 0.7; };
                    const PenaltyCase c = penalty_case(2, 5, 4);
                    e.near("||w|| = " + fmt(scale), (scale - 1) * (scale - 1), f.gradient_penalty(critic, c.real, c.fake, c.eps).item(), 1e-10,
                           "the penalty is on the norm (not the squared norm) minus 1, squared; no lambda");
                  }
                }, essential});
  gp.push_back({"a quadratic critic f(x) = ||A x||^2 / 2: matches the closed form at the interpolates (3 seeds)", 3, [f](Expect& e) {
                  for (uint64_t seed : {3, 4, 5}) {
                    Generator gen(seed);
                    const QuadraticCritic critic{gen.normal({3, 4}, 0, 0.6, DType::Float64).set_requires_grad(true)};
                    const PenaltyCase c = penalty_case(seed, 6, 4);
                    e.near("seed " + std::to_string(seed) + ": penalty", quadratic_penalty(c, critic.A.detach()),
                           f.gradient_penalty(std::cref(critic), c.real, c.fake, c.eps).item(), 1e-9,
                           "x_hat = eps * real + (1 - eps) * fake, eps one per example (row); the gradient is taken at x_hat");
                  }
                }, essential});
  gp.push_back({"double backward: d GP / d A matches central differences", 4, [f](Expect& e) {
                  Generator gen(6);
                  Tensor A = gen.normal({3, 4}, 0, 0.6, DType::Float64);
                  const QuadraticCritic critic{A.set_requires_grad(true)};
                  const PenaltyCase c = penalty_case(6, 5, 4);
                  const Tensor penalty = f.gradient_penalty(std::cref(critic), c.real, c.fake, c.eps);
                  if (!penalty.requires_grad()) {
                    e.that(false, "the penalty does not depend on the critic's parameters (no graph reaches A)",
                           "take grad_x f with create_graph = true, so the gradient itself is differentiable");
                    return;
                  }
                  const Tensor analytic = dgm::grad({penalty}, {critic.A})[0];
                  Tensor probe = critic.A.detach();
                  const QuadraticCritic frozen{probe};
                  for (int64_t i = 0; i < probe.numel(); ++i) {
                    const double numeric = dgm::central_difference([&] {
                      return f.gradient_penalty(std::cref(frozen), c.real, c.fake, c.eps).item();
                    }, probe, i);
                    e.near("d GP / d A[" + std::to_string(i) + "]", numeric, analytic.at(i), 1e-6 + 1e-5 * std::abs(numeric),
                           "create_graph = true keeps grad_x f differentiable in the critic's parameters");
                  }
                }, essential});
  // No exercise may call the library's own implementation of itself (grader.h, add_library_check).
  for (auto& ex : list) {
    if (ex.name == "generator_loss_non_saturating") add_library_check(ex, {"gan::generator_loss_non_saturating"});
    if (ex.name == "gradient_penalty") add_library_check(ex, {"gan::gradient_penalty"});
  }
  return list;
}

}  // namespace hw::gan
