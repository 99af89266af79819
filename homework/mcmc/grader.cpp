// dgm/homework/mcmc/grader.cpp — the checks of the MCMC homework.
// The MH acceptance against long-double arithmetic, where exp() underflows, and through the 5-state
// chain it builds (invariance with an asymmetric proposal); the leapfrog step against the harmonic
// oscillator's exact map, by reversibility, its energy error's order and its Jacobian (central
// differences); the DSM loss against long-double sums, by gradcheck into a score's parameters, and by
// where it is smallest (the noised data's score, in closed form for Gaussian data).
#include <cmath>

#include "autograd/gradcheck.h"
#include "autograd/random.h"
#include "homework/mcmc/exercises.h"
#include "models/toolkit/linalg.h"

namespace hw::mcmc {

using dgm::DType;
using dgm::Generator;

namespace {

using LD = long double;

// The banana x1 ~ N(0, 1), x2 | x1 ~ N(x1^2, 0.25): grad log pi and log pi, written out.
Tensor banana_grad(const Tensor& x) {
  const int64_t C = x.size(0);
  std::vector<double> g(static_cast<size_t>(2 * C));
  for (int64_t c = 0; c < C; ++c) {
    const double a = x.at(2 * c), b = x.at(2 * c + 1);
    g[2 * c] = -a + 2 * a * (b - a * a) / 0.25;
    g[2 * c + 1] = -(b - a * a) / 0.25;
  }
  return Tensor::from_vector(g, {C, 2});
}
double banana_energy(const Phase& z, int64_t c) {  // H = -log pi + |p|^2 / 2
  const double a = z.x.at(2 * c), b = z.x.at(2 * c + 1), p0 = z.p.at(2 * c), p1 = z.p.at(2 * c + 1);
  return a * a / 2 + (b - a * a) * (b - a * a) / 0.5 + (p0 * p0 + p1 * p1) / 2;
}

Phase banana_phase(uint64_t seed, int64_t C) {
  Generator gen(seed);
  std::vector<double> x(static_cast<size_t>(2 * C));
  for (int64_t c = 0; c < C; ++c) {
    x[2 * c] = gen.normal01();
    x[2 * c + 1] = x[2 * c] * x[2 * c] + 0.5 * gen.normal01();
  }
  return {Tensor::from_vector(x, {C, 2}), gen.normal({C, 2}, 0, 1, DType::Float64)};
}

bool phase_shapes(Expect& e, const Phase& z, int64_t C, int64_t D) {
  e.shape_is("x'", z.x, {C, D}, "the new position, [C, D]");
  e.shape_is("p'", z.p, {C, D}, "the new momentum, [C, D]");
  return e.ok();
}

// The DSM loss in long double: (1/N) sum_n 1/2 sigma_n^2 |s_n + z_n / sigma_n|^2, s = the score's output.
LD dsm_reference(const Tensor& s, const Tensor& sigma, const Tensor& z) {
  const int64_t N = z.size(0), D = z.size(1);
  LD total = 0;
  for (int64_t n = 0; n < N; ++n) {
    const LD sg = sigma.at(n);
    LD sq = 0;
    for (int64_t d = 0; d < D; ++d) {
      const LD r = static_cast<LD>(s.at(n * D + d)) + static_cast<LD>(z.at(n * D + d)) / sg;
      sq += r * r;
    }
    total += 0.5L * sg * sg * sq;
  }
  return total / N;
}

struct DsmCase {
  Tensor x, sigma, z, A, b;
};
DsmCase dsm_case(uint64_t seed, int64_t N, int64_t D) {
  Generator gen(seed);
  DsmCase c;
  c.x = gen.normal({N, D}, 0, 1, DType::Float64);
  std::vector<double> s(static_cast<size_t>(N));
  for (auto& v : s) v = std::exp(gen.uniform01() * std::log(100.0)) * 0.03;  // 0.03 ... 3
  c.sigma = Tensor::from_vector(s, {N, 1});
  c.z = gen.normal({N, D}, 0, 1, DType::Float64);
  c.A = gen.normal({D, D}, 0, 0.5, DType::Float64);
  c.b = gen.normal({D}, 0, 0.5, DType::Float64);
  return c;
}

}  // namespace

std::vector<Exercise> exercises(const Functions& f) {
  std::vector<Exercise> list;

  // ---------------------------------------------------------------- mh_log_acceptance
  list.push_back({"mh_log_acceptance", "homework/mcmc/mh_log_acceptance.cpp", 10, {}});
  auto& mh = list.back().checks;
  mh.push_back({"equals min(0, log pi' - log pi + log q_back - log q_forward) in long double (200 draws)", 3, [f](Expect& e) {
                  Generator gen(1);
                  for (int i = 0; i < 200 && e.ok(); ++i) {
                    const double a = gen.normal01() * 5, b = gen.normal01() * 5, qb = gen.normal01(), qf = gen.normal01();
                    const LD want = std::min<LD>(0, (static_cast<LD>(a) - b) + (static_cast<LD>(qb) - qf));
                    e.near("log alpha for log pi' = " + fmt(a) + ", log pi = " + fmt(b) + ", log q(x|x') = " + fmt(qb) +
                               ", log q(x'|x) = " + fmt(qf),
                           static_cast<double>(want), f.mh_log_acceptance(a, b, qb, qf), 1e-12,
                           "log [pi(x') q(x | x') / (pi(x) q(x' | x))], capped at 0");
                  }
                }, essential});
  mh.push_back({"no underflow: log-densities near -3000 (an image's) give the log of their ratio", 2, [f](Expect& e) {
                  e.near("log alpha for log pi' = -3001, log pi = -3000", -1.0, f.mh_log_acceptance(-3001, -3000, 0, 0), 1e-12,
                         "exp(-3000) is 0 in double precision: subtract the logs instead of dividing densities");
                  e.near("log alpha for log pi' = -4000.5, log pi = -4000, log q_back = -700, log q_forward = -700.25", -0.25,
                         f.mh_log_acceptance(-4000.5, -4000, -700, -700.25), 1e-12, "stay in log space for the proposal terms too");
                }, essential});
  mh.push_back({"an asymmetric proposal on 5 states: the chain it builds leaves pi invariant (1e-12)", 3, [f](Expect& e) {
                  const int K = 5;
                  const std::vector<double> pi = {0.05, 0.1, 0.2, 0.25, 0.4};
                  auto q = [&](int i, int j) { return j == (i + 1) % K ? 0.7 : j == (i + K - 1) % K ? 0.3 : 0.0; };
                  std::vector<LD> P(K * K, 0);
                  for (int i = 0; i < K; ++i) {
                    LD stay = 1;
                    for (int j = 0; j < K; ++j)
                      if (j != i && q(i, j) > 0) {
                        P[i * K + j] = q(i, j) * std::exp(static_cast<LD>(
                                                     f.mh_log_acceptance(std::log(pi[j]), std::log(pi[i]), std::log(q(j, i)), std::log(q(i, j)))));
                        stay -= P[i * K + j];
                      }
                    P[i * K + i] = stay;
                  }
                  for (int j = 0; j < K; ++j) {
                    LD piP = 0;
                    for (int i = 0; i < K; ++i) piP += pi[i] * P[i * K + j];
                    e.near("(pi P)_" + std::to_string(j), pi[j], static_cast<double>(piP), 1e-12,
                           "the proposal goes right with 0.7 and left with 0.3: without q(x|x') / q(x'|x) the chain drifts right");
                  }
                }, essential});
  mh.push_back({"a probability: log alpha <= 0, and 0 for an uphill move under a symmetric proposal", 2, [f](Expect& e) {
                  e.near("log alpha uphill (log pi' = -1, log pi = -5)", 0.0, f.mh_log_acceptance(-1, -5, 0, 0), 0,
                         "an uphill move is always accepted: min(1, ratio) = 1, log 1 = 0");
                  const double v = f.mh_log_acceptance(-1, -5, 2, -1);
                  e.that(v <= 0, "log alpha = " + fmt(v) + " > 0 for a ratio above 1", "cap the log-ratio at 0: a probability is at most 1");
                }});

  // ---------------------------------------------------------------- leapfrog_step
  list.push_back({"leapfrog_step", "homework/mcmc/leapfrog_step.cpp", 10, {}});
  auto& lf = list.back().checks;
  lf.push_back({"x' and p' are [C, D]", 1, [f](Expect& e) {
                  const Phase z = banana_phase(1, 7);
                  phase_shapes(e, f.leapfrog_step(&banana_grad, z, 0.1), 7, 2);
                }});
  lf.push_back({"equals the exact leapfrog map of H = (x^2 + p^2) / 2 (1e-13)", 3, [f](Expect& e) {
                  Generator gen(2);
                  const Tensor x = gen.normal({5, 3}, 0, 1, DType::Float64), p = gen.normal({5, 3}, 0, 1, DType::Float64);
                  const double eps = 0.3;
                  const Phase z = f.leapfrog_step([](const Tensor& y) { return -y; }, {x, p}, eps);
                  if (!phase_shapes(e, z, 5, 3)) return;
                  // p_half = p - eps/2 x, x' = x + eps p_half, p' = p_half - eps/2 x'
                  const Tensor ph = p - (eps / 2) * x, x1 = x + eps * ph, p1 = ph - (eps / 2) * x1;
                  e.tensors_near("x'", x1, z.x, 1e-13, "half a momentum step with +grad log pi (here -x), then a full position step");
                  e.tensors_near("p'", p1, z.p, 1e-13, "the last half momentum step uses the gradient at the NEW position");
                }, essential});
  lf.push_back({"reversible: 40 steps, momentum flipped, 40 steps, flipped: back at the start (1e-11)", 3, [f](Expect& e) {
                  const Phase start = banana_phase(3, 16);
                  Phase z = start;
                  for (int i = 0; i < 40; ++i) z = f.leapfrog_step(&banana_grad, z, 0.02);
                  if (!phase_shapes(e, z, 16, 2)) return;
                  z.p = -z.p;
                  for (int i = 0; i < 40; ++i) z = f.leapfrog_step(&banana_grad, z, 0.02);
                  e.tensors_near("x after going back", start.x, z.x, 1e-11, "momentum half step, position full step, momentum half step: that order is reversible");
                  e.tensors_near("-p after going back", start.p, -z.p, 1e-11, "a full momentum step at the start is not reversible");
                }, essential});
  lf.push_back({"the energy error over a fixed time shrinks as eps^2 (log-log slope within 2 +- 0.2)", 2, [f](Expect& e) {
                  const Phase start = banana_phase(4, 32);
                  std::vector<double> le, lh;
                  for (double eps : {0.1, 0.05, 0.025}) {
                    Phase z = start;
                    const int steps = static_cast<int>(std::lround(0.8 / eps));
                    for (int i = 0; i < steps; ++i) z = f.leapfrog_step(&banana_grad, z, eps);
                    if (!phase_shapes(e, z, 32, 2)) return;
                    double err = 0;
                    for (int64_t c = 0; c < 32; ++c) err += std::abs(banana_energy(z, c) - banana_energy(start, c)) / 32;
                    le.push_back(std::log(eps)), lh.push_back(std::log(err));
                  }
                  const double slope = (lh[2] - lh[0]) / (le[2] - le[0]);
                  e.near("slope of log |H' - H| against log eps", 2.0, slope, 0.2,
                         "the leapfrog's energy error is O(eps^2); O(eps) means a first-order (Euler) step, no error decrease a wrong gradient sign");
                }});
  lf.push_back({"volume-preserving: log |det| of its Jacobian (central differences) is 0 (1e-6)", 1, [f](Expect& e) {
                  const Phase z0 = banana_phase(5, 1);
                  std::vector<double> v = {z0.x.at(0), z0.x.at(1), z0.p.at(0), z0.p.at(1)};
                  std::vector<double> J(16);
                  const double h = 1e-6;
                  for (int j = 0; j < 4; ++j) {
                    std::vector<double> up = v, dn = v;
                    up[j] += h, dn[j] -= h;
                    const Phase a = f.leapfrog_step(&banana_grad, {Tensor::from_vector(std::vector<double>{up[0], up[1]}, {1, 2}), Tensor::from_vector(std::vector<double>{up[2], up[3]}, {1, 2})}, 0.2);
                    const Phase b = f.leapfrog_step(&banana_grad, {Tensor::from_vector(std::vector<double>{dn[0], dn[1]}, {1, 2}), Tensor::from_vector(std::vector<double>{dn[2], dn[3]}, {1, 2})}, 0.2);
                    if (!phase_shapes(e, a, 1, 2)) return;
                    for (int i = 0; i < 4; ++i)
                      J[i * 4 + j] = ((i < 2 ? a.x.at(i) : a.p.at(i - 2)) - (i < 2 ? b.x.at(i) : b.p.at(i - 2))) / (2 * h);
                  }
                  const double log_det = dgm::linalg::log_abs_det(Tensor::from_vector(J, {4, 4}));
                  e.near("log |det| of the Jacobian of (x, p) -> (x', p')", 0.0, log_det, 1e-6,
                         "each of the three updates shears one of x, p by a function of the other: determinant 1");
                }});

  // ---------------------------------------------------------------- dsm_loss
  list.push_back({"dsm_loss", "homework/mcmc/dsm_loss.cpp", 10, {}});
  auto& dl = list.back().checks;
  dl.push_back({"a scalar", 1, [f](Expect& e) {
                  const DsmCase c = dsm_case(1, 6, 2);
                  e.shape_is("L", f.dsm_loss([&](const Tensor& y, const Tensor&) { return dgm::matmul(y, c.A); }, c.x, c.sigma, c.z), {},
                             "the mean over examples: a tensor of shape []");
                }});
  dl.push_back({"equals the formula in long double (3 seeds, sigma from 0.03 to 3, a linear score)", 4, [f](Expect& e) {
                  for (uint64_t seed : {2, 3, 4}) {
                    const DsmCase c = dsm_case(seed, 40, 3);
                    Tensor seen;
                    const Score s = [&](const Tensor& y, const Tensor& sg) {
                      e.tensors_near("the score's input x~", c.x + c.sigma * c.z, y, 1e-12, "noise the data: x~ = x + sigma z");
                      e.tensors_near("the score's sigma", c.sigma, sg, 0, "pass each example's sigma [N, 1]");
                      return seen = dgm::matmul(y, c.A) + c.b;
                    };
                    const Tensor L = f.dsm_loss(s, c.x, c.sigma, c.z);
                    if (!e.ok()) return;
                    e.set_context("seed " + std::to_string(seed) + ": ");
                    e.shape_is("L", L, {}, "");
                    if (!e.ok() || !seen.defined()) return;
                    e.near("L", static_cast<double>(dsm_reference(seen, c.sigma, c.z)), L.item(), 1e-10,
                           "1/2 sigma^2 |s(x~) + z / sigma|^2 averaged: the target score is -z / sigma (mind the sign), weighted by sigma^2");
                  }
                }, essential});
  dl.push_back({"gradcheck: its gradient reaches the score's parameters", 3, [f](Expect& e) {
                  const DsmCase c = dsm_case(5, 8, 2);
                  const auto report = dgm::gradcheck(
                      [&](const std::vector<Tensor>& in) {
                        return f.dsm_loss([&](const Tensor& y, const Tensor&) { return dgm::matmul(y, in[0]) + in[1]; }, c.x, c.sigma, c.z);
                      },
                      {c.A, c.b});
                  e.that(report.ok, report.str(), "compute the loss with engine ops (no detach, no values copied out and back): the network learns from this gradient");
                }, essential});
  dl.push_back({"smallest at the noised data's score: for x ~ N(0, 0.5), s = -a x~ is best at a = 1 / (0.5 + sigma^2)", 2, [f](Expect& e) {
                  Generator gen(6);
                  const int64_t N = 20000;
                  const double sigma = 0.7, best = 1 / (0.5 + sigma * sigma);
                  const Tensor x = gen.normal({N, 1}, 0, std::sqrt(0.5), DType::Float64), z = gen.normal({N, 1}, 0, 1, DType::Float64);
                  const Tensor sg = Tensor::full({N, 1}, sigma, DType::Float64);
                  auto loss_at = [&](double a) { return f.dsm_loss([a](const Tensor& y, const Tensor&) { return -a * y; }, x, sg, z).item(); };
                  const double l0 = loss_at(best);
                  for (double a : {0.8 * best, 1.25 * best, -best}) {
                    const double l = loss_at(a);
                    e.that(l > l0, "L = " + fmt(l) + " at a = " + fmt(a) + ", not above L = " + fmt(l0) + " at a = " + fmt(best),
                           "the loss is smallest when s is the score of the noised data, grad log N(x~; 0, 0.5 + sigma^2) = -x~ / (0.5 + sigma^2): "
                           "the target is -z / sigma, not +z / sigma");
                  }
                }});
  for (auto& ex : list) {
    if (ex.name == "mh_log_acceptance") add_library_check(ex, {"mcmc::log_acceptance"});
    if (ex.name == "leapfrog_step") add_library_check(ex, {"mcmc::leapfrog", "mcmc::hmc_transition", "mcmc::phase_point"});
  }
  return list;
}

}  // namespace hw::mcmc
