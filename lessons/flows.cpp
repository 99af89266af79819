// lessons/flows.cpp — normalizing flows: the change of variables, step by step.
//
// 1. In 1-D: p_x(x) = p_z(f(x)) |f'(x)| for an affine map and a sinh-arcsinh
//    map (f' from the engine's backward) against a histogram of f^-1(z), and
//    the density integrated by quadrature.
// 2. A coupling layer's log |det J| three ways: closed form, the engine's full
//    Jacobian, central differences; its zero block.
// 3. NICE: additive couplings have log-det 0; the scaling layer carries it all.
// 4. RealNVP on 2-D toys: density maps beside the truth, samples, the warp
//    layer by layer; the density integrates to one; the inverse is exact.
// 5. Dequantization: the continuous NLL upper-bounds the discrete one (Jensen).
// 6. The 8x8 digits (17 levels): RealNVP and NICE test NLL in nats, and the
//    bits/dim bookkeeping (logit log-det, D log 17) with and without.
// 7. Forward vs reverse KL with a flow on 8 Gaussians: modes covered.
// 8. Fashion-MNIST (--quick: the digits): a multi-scale RealNVP in bits/dim,
//    samples at temperatures 1.0 and 0.7, a latent interpolation.
// Equations: docs/chapters/flows.md.
#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "autograd/gradcheck.h"
#include "autograd/graph.h"
#include "autograd/optim.h"
#include "lessons/common/harness.h"
#include "lessons/common/lesson.h"
#include "models/recipes.h"
#include "models/flows.h"
#include "models/toolkit/datasets.h"
#include "models/toolkit/distributions.h"
#include "models/toolkit/image.h"
#include "models/toolkit/linalg.h"
#include "models/toolkit/plot.h"
#include "models/toolkit/toy2d.h"
#include "models/toolkit/trainer.h"
#include "models/toolkit/transforms.h"

using namespace dgm;
using models::Flow;
namespace flows = dgm::models::flows;

namespace {

// Moves every parameter off its initial value: couplings start as the
// identity (their last layer is zero), and an identity shows nothing.
void perturb(nn::Module& m, uint64_t seed, double scale) {
  Generator g(seed);
  NoGradGuard ng;
  for (auto& p : m.parameters()) p.add_(g.normal(p.shape(), 0, scale, p.dtype()));
}

using dist::standard_normal_cdf;

// f at n + 1 equally spaced points of [a, b] (for lesson::simpson).
std::vector<double> on_grid(const std::function<double(double)>& f, double a, double b, int n) {
  std::vector<double> v(static_cast<size_t>(n) + 1);
  for (int i = 0; i <= n; ++i) v[static_cast<size_t>(i)] = f(a + (b - a) * i / n);
  return v;
}

// The chi-square distribution's 99% quantile (Wilson-Hilferty; within 0.1% for df >= 10).
double chi2_quantile_99(int df) {
  const double k = df, z = 2.3263478740;
  return k * std::pow(1 - 2 / (9 * k) + z * std::sqrt(2 / (9 * k)), 3);
}

// ------------------------------------------------------------ 1. change of variables in 1-D
struct Bijection1D {
  std::string name;
  std::function<Tensor(const Tensor&)> f;  // x -> z, in the engine (float64)
  std::function<double(double)> inverse;   // z -> x, in closed form
};

// log p_x(x) = log N(f(x); 0, 1) + log |f'(x)|, f' by the engine's backward.
std::vector<double> change_of_variables_log_density(const Bijection1D& b, const std::vector<double>& xs) {
  Tensor x = Tensor::from_vector(xs, {static_cast<int64_t>(xs.size())}).set_requires_grad(true);
  Tensor z = b.f(x);
  Tensor dz_dx = grad({sum(z)}, {x})[0];  // f acts elementwise: the gradient of the sum is f'(x)
  const std::vector<double> zv = z.to_vector(), dv = dz_dx.to_vector();
  std::vector<double> out(xs.size());
  for (size_t i = 0; i < xs.size(); ++i) out[i] = -0.5 * zv[i] * zv[i] - 0.5 * std::log(2 * M_PI) + std::log(std::abs(dv[i]));
  return out;
}

void one_dimension(lesson::Lesson& L, Generator& gen) {
  std::cout << "\n-- 1. The change of variables in 1-D: z = f(x) ~ N(0, 1), so p_x(x) = N(f(x)) |f'(x)|\n"
            << "   (f' by the engine's backward; samples x = f^-1(z) by the closed-form inverse)\n";
  const double a = 0.5, bb = 1.3;
  // asinh(x) = log(x + sqrt(x^2 + 1)): smooth everywhere (a form with sign(x) and |x| would
  // give the engine a derivative of 0 at x = 0, where sign's derivative is taken as 0)
  auto asinh_t = [](const Tensor& x) { return log(x + sqrt(square(x) + 1.0)); };
  auto sinh_t = [](const Tensor& y) { return (exp(y) - exp(neg(y))) * 0.5; };
  const std::vector<Bijection1D> maps = {
      {"affine f(x) = (x - 1) / 1.5", [](const Tensor& x) { return (x - 1.0) / 1.5; }, [](double z) { return 1 + 1.5 * z; }},
      {"sinh-arcsinh f(x) = sinh(1.3 asinh(x) - 0.5)", [&](const Tensor& x) { return sinh_t(asinh_t(x) * bb - a); },
       [&](double z) { return std::sinh((std::asinh(z) + a) / bb); }}};
  const int64_t n = L.options().quick ? 20000 : 200000;
  for (const auto& m : maps) {
    // quadrature of the formula over [-40, 40] (the tails beyond hold < 1e-15)
    const int N = 400000;
    std::vector<double> grid(N + 1);
    for (int i = 0; i <= N; ++i) grid[static_cast<size_t>(i)] = -40 + 80.0 * i / N;
    const std::vector<double> lp = change_of_variables_log_density(m, grid);
    std::vector<double> density(lp.size());
    for (size_t i = 0; i < lp.size(); ++i) density[i] = std::exp(lp[i]);
    const double integral = lesson::simpson(density, 80.0 / N);
    L.check_close(m.name + ": the density integrates to one (Simpson, 400,000 intervals on [-40, 40])", integral, 1.0, 1e-6);

    // a histogram of x = f^-1(z): 30 bins between f^-1(-2.5) and f^-1(2.5), plus the two tails
    const int bins = 30;
    const double lo = m.inverse(-2.5), hi = m.inverse(2.5), w = (hi - lo) / bins;
    std::vector<double> observed(bins + 2, 0), expected(bins + 2, 0);
    const Tensor z = gen.normal({n}, 0, 1, DType::Float64);
    for (int64_t i = 0; i < n; ++i) {
      const double x = m.inverse(z.at(i));
      const int k = x < lo ? 0 : x >= hi ? bins + 1 : 1 + std::min(bins - 1, static_cast<int>((x - lo) / w));
      observed[static_cast<size_t>(k)] += 1;
    }
    double inner = 0;
    for (int k = 0; k < bins; ++k) {  // each bin's mass: Simpson on the formula, 32 intervals
      std::vector<double> xs(33);
      for (int j = 0; j <= 32; ++j) xs[static_cast<size_t>(j)] = lo + w * (k + j / 32.0);
      std::vector<double> d = change_of_variables_log_density(m, xs);
      for (double& v : d) v = std::exp(v);
      const double mass = lesson::simpson(d, w / 32);
      expected[static_cast<size_t>(k + 1)] = mass * static_cast<double>(n);
      inner += mass;
    }
    expected[0] = expected[bins + 1] = 0.5 * (1 - inner) * static_cast<double>(n);  // f^-1(+-2.5): equal tails
    double chi2 = 0;
    for (int k = 0; k < bins + 2; ++k) chi2 += std::pow(observed[k] - expected[k], 2) / expected[k];
    L.check_le(m.name + ": chi-square of " + std::to_string(n) + " samples f^-1(z) against the formula's bin masses (" +
                   std::to_string(bins + 2) + " bins) <= its 99% quantile",
               chi2, chi2_quantile_99(bins + 1));
  }
}

// ------------------------------------------------------------ 2. and 3. log-dets three ways
double log_abs_det_of(const Tensor& J) { return linalg::log_abs_det(J); }

void coupling_jacobians(lesson::Lesson& L, Generator& gen) {
  std::cout << "\n-- 2. An affine coupling layer in 2-D: z_1 = x_1, z_2 = x_2 exp(s(x_1)) + t(x_1)\n"
            << "   log |det J| by the closed form sum s, by the engine's Jacobian (one backward per output), by central differences\n";
  flows::AffineCoupling layer(flows::alternating_mask(2, 0), flows::coupling_mlp(2, {16, 16}, 4, gen));
  layer.to(DType::Float64);
  perturb(layer, gen.next_u64(), 0.5);
  auto f = [&](const Tensor& x) { return layer.forward_flow(x).z; };
  double worst_engine = 0, worst_fd = 0, zero_block = 0;
  for (int i = 0; i < 5; ++i) {
    const Tensor x = gen.normal({1, 2}, 0, 1.5, DType::Float64);
    const double closed = layer.forward_flow(x).log_det.item();
    const Tensor J = jacobian(f, x), Jfd = numerical_jacobian(f, x, 1e-5);
    worst_engine = std::max(worst_engine, std::abs(closed - log_abs_det_of(J)));
    worst_fd = std::max(worst_fd, std::abs(closed - log_abs_det_of(Jfd)));
    zero_block = std::max(zero_block, std::abs(J.at(1)));  // dz_1/dx_2
    if (i == 0)
      std::cout << std::setprecision(6) << "   at x = (" << x.at(0) << ", " << x.at(1) << "): J = [[" << J.at(0) << ", " << J.at(1)
                << "], [" << J.at(2) << ", " << J.at(3) << "]], closed-form log-det " << closed << "\n";
  }
  L.check_close("coupling log-det: closed form vs the engine's Jacobian (5 points, float64, worst)", worst_engine, 0, 1e-8);
  L.check_close("coupling log-det: closed form vs central differences (5 points, float64, worst)", worst_fd, 0, 1e-8);
  L.check_le("the Jacobian is triangular: |dz_1/dx_2| (the kept coordinate never sees the transformed one), worst", zero_block, 0.0);

  std::cout << "\n-- 3. NICE (4-D): additive couplings z = x + (1-b) m(b x) keep volume; the diagonal scaling carries the log-det\n";
  auto nice = models::make_nice(4, 4, {16}, gen, 0, models::Prior::Logistic);
  nice->to(DType::Float64);
  perturb(*nice, gen.next_u64(), 0.5);
  auto& chain = dynamic_cast<flows::Chain&>(nice->bijector());
  const Tensor x = gen.normal({1, 4}, 0, 1, DType::Float64);
  Tensor h = x;
  double worst_coupling = 0;
  for (size_t i = 0; i + 1 < chain.size(); ++i) {
    auto g = [&](const Tensor& xi) { return chain[i].forward_flow(xi).z; };
    worst_coupling = std::max(worst_coupling, std::abs(log_abs_det_of(jacobian(g, h))));
    h = chain[i].forward_flow(h).z;
  }
  L.check_close("NICE: log |det| of each additive coupling's Jacobian (engine) is 0 (worst of 4)", worst_coupling, 0, 1e-12);
  auto& scaling = dynamic_cast<flows::Scaling&>(chain[chain.size() - 1]);
  const double total = log_abs_det_of(jacobian([&](const Tensor& xi) { return chain.forward_flow(xi).z; }, x));
  L.check_close("NICE: log |det| of the whole flow's Jacobian (engine) = sum of the scaling layer's log_scale", total,
                sum(scaling.log_scale).item(), 1e-10);
}

// ------------------------------------------------------------ 4. 2-D toys
struct Grid {
  int n;
  double range;
  Tensor points;  // [n * n, 2], row 0 at the top (y = +range)
  double cell() const { return 2 * range / n; }
};
Grid make_grid(int n, double range) {
  Grid g{n, range, Tensor::empty({static_cast<int64_t>(n) * n, 2})};
  float* p = g.points.data<float>();
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      p[2 * (i * n + j)] = static_cast<float>(-range + (j + 0.5) * g.cell());
      p[2 * (i * n + j) + 1] = static_cast<float>(range - (i + 0.5) * g.cell());
    }
  return g;
}

std::vector<double> density_on(models::DensityModel& m, const Grid& g) {
  NoGradGuard ng;
  std::vector<double> out;
  for (int64_t s = 0; s < g.points.size(0); s += 50000) {
    const std::vector<double> v = m.log_prob(slice(g.points, 0, s, std::min(g.points.size(0), s + 50000))).to_vector();
    for (double lv : v) out.push_back(std::exp(lv));
  }
  return out;
}

// 8 hues by angle, so that a picture of the warp shows where each part of the data goes.
std::vector<std::array<uint8_t, 3>> colours_by_angle(const Tensor& x) {
  static const uint8_t pal[8][3] = {{214, 39, 40}, {255, 127, 14}, {188, 189, 34}, {44, 160, 44},
                                    {23, 190, 207}, {31, 119, 180}, {148, 103, 189}, {227, 119, 194}};
  std::vector<std::array<uint8_t, 3>> c;
  for (int64_t i = 0; i < x.size(0); ++i) {
    const double a = std::atan2(x.at(2 * i + 1), x.at(2 * i)) + M_PI;
    const auto* p = pal[std::min(7, static_cast<int>(a / (2 * M_PI) * 8))];
    c.push_back({p[0], p[1], p[2]});
  }
  return c;
}

struct ToyResult {
  std::shared_ptr<Flow> flow;
  double integral = 0, test_nll = 0, train_seconds = 0;
};

ToyResult train_toy(lesson::Lesson& L, data::Toy toy, Generator& gen) {
  const bool quick = L.options().quick;
  const std::string name = data::toy_name(toy);
  const Tensor train = data::sample_toy(toy, quick ? 5000 : 20000, gen), val = data::sample_toy(toy, 2000, gen),
               test = data::sample_toy(toy, 10000, gen);
  ToyResult r;
  r.flow = models::make_realnvp(2, 8, {64, 64}, gen);
  train::FitOptions o;
  o.epochs = L.epochs(12, 40);
  o.batch_size = 256;
  o.tag = "toy_" + name;
  o.out_dir = L.options().out;
  o.data_transform = "2-D toy " + name + ", points as they are";
  o.curve_title = "RealNVP on " + name;
  const train::FitResult fr = train::fit(*r.flow, train, val, gen, o);
  r.train_seconds = fr.seconds;
  r.flow->eval();
  r.test_nll = train::evaluate(*r.flow, test).nll_nats;
  const Grid g = make_grid(300, 6.0);
  const std::vector<double> model_density = density_on(*r.flow, g);
  for (double d : model_density) r.integral += d * g.cell() * g.cell();
  std::cout << std::fixed << std::setprecision(3) << "   " << name << ": test NLL " << r.test_nll << " nats";
  if (data::toy_has_density(toy)) {
    const double truth = -mean(data::toy_log_prob(toy, test)).item();
    std::cout << " (the true density's: " << truth << ")";
  }
  std::cout << ", integral on the grid " << std::setprecision(5) << r.integral << ", " << fr.seconds << " s\n";

  // pictures: model density | true density; samples over data
  const int cell = 1;
  image::RGB maps(2 * g.n * cell + 10, g.n * cell);
  image::paste(maps, image::heatmap(model_density, g.n, g.n, cell), 0, 0);
  if (data::toy_has_density(toy)) {
    const std::vector<double> lt = data::toy_log_prob(toy, g.points).to_vector();
    std::vector<double> truth(lt.size());
    for (size_t i = 0; i < lt.size(); ++i) truth[i] = std::exp(lt[i]);
    image::paste(maps, image::heatmap(truth, g.n, g.n, cell), g.n * cell + 10, 0);
  }
  image::write_png(L.path(name + "_density.png"), maps);
  image::RGB pts(2 * 300 + 10, 300);
  image::scatter(pts, 0, 0, 300, 4.0, slice(test, 0, 0, 3000), {}, 120, 120, 120);
  image::scatter(pts, 310, 0, 300, 4.0, r.flow->sample(3000, gen), {});
  image::write_png(L.path(name + "_samples.png"), pts);
  return r;
}

// The flow's layers as a strip of panels: how the data are warped into N(0, I).
void draw_warp(lesson::Lesson& L, Flow& flow, const Tensor& x, const std::string& file) {
  NoGradGuard ng;
  auto& chain = dynamic_cast<flows::Chain&>(flow.bijector());
  const std::vector<Tensor> stages = chain.trace(x);
  const auto colours = colours_by_angle(x);
  const int size = 200;
  image::RGB strip(static_cast<int>(stages.size()) * (size + 6), size);
  for (size_t k = 0; k < stages.size(); ++k) image::scatter(strip, static_cast<int>(k) * (size + 6), 0, size, 4.0, stages[k], colours);
  image::write_png(L.path(file), strip);
}

// ------------------------------------------------------------ 5. dequantization
void dequantization(lesson::Lesson& L, Generator& gen) {
  std::cout << "\n-- 5. Dequantization: discrete k in {0..7}, a continuous density p on u = k + U[0, 1)\n"
            << "   -log P(k) = -log int_0^1 p(k + v) dv  <=  E_v[-log p(k + v)]   (Jensen)\n";
  const std::vector<double> pmf = {0.02, 0.05, 0.2, 0.3, 0.15, 0.08, 0.15, 0.05};
  const int64_t n = 20000;
  std::vector<double> ks(n), freq(8, 0);
  for (int64_t i = 0; i < n; ++i) {
    double u = gen.uniform01(), c = 0;
    int k = 0;
    while (k < 7 && u >= c + pmf[static_cast<size_t>(k)]) c += pmf[static_cast<size_t>(k++)];
    ks[static_cast<size_t>(i)] = k;
    freq[static_cast<size_t>(k)] += 1.0 / n;
  }
  const Tensor K = Tensor::from_vector(ks, {n, 1});
  // the continuous model: a mixture of 3 Gaussians, fitted by the dequantized objective
  Tensor logits = Tensor::zeros({1, 3}, DType::Float64).set_requires_grad(true);
  Tensor mu = Tensor::from_vector(std::vector<double>{2, 4, 6}, {1, 3}).set_requires_grad(true);
  Tensor log_sigma = Tensor::zeros({1, 3}, DType::Float64).set_requires_grad(true);
  auto log_density = [&](const Tensor& u) {  // [N, 1] -> [N]
    dist::Normal comp{mu, log_sigma * 2.0};
    return logsumexp(log_softmax(logits, 1) + comp.log_prob(u), {1});
  };
  optim::Adam opt({logits, mu, log_sigma}, 0.05);
  for (int step = 0; step < (L.options().quick ? 300 : 600); ++step) {
    opt.zero_grad();
    Tensor loss = neg(mean(log_density(K + gen.uniform({n, 1}, 0, 1, DType::Float64))));
    loss.backward();
    opt.step();
  }
  // route 1: the discrete likelihood, each bin's mass from the Gaussian CDF
  const std::vector<double> w = softmax(logits.detach(), 1).to_vector(), m = mu.detach().to_vector(),
                            s = exp(log_sigma.detach()).to_vector();
  auto mass = [&](int k) {
    double p = 0;
    for (int j = 0; j < 3; ++j) p += w[j] * (standard_normal_cdf((k + 1 - m[j]) / s[j]) - standard_normal_cdf((k - m[j]) / s[j]));
    return p;
  };
  auto density = [&](double u) {
    double p = 0;
    for (int j = 0; j < 3; ++j) p += w[j] * std::exp(-0.5 * std::pow((u - m[j]) / s[j], 2)) / (s[j] * std::sqrt(2 * M_PI));
    return p;
  };
  double discrete = 0, bound = 0, inside = 0;
  std::cout << "   k   data P(k)   model P(k)   E_v[log p(k + v)]\n";
  for (int k = 0; k < 8; ++k) {
    const double e_log = lesson::simpson(on_grid([&](double v) { return std::log(density(k + v)); }, 0, 1, 200), 1.0 / 200);  // route 2: quadrature
    discrete -= freq[k] * std::log(mass(k));
    bound -= freq[k] * e_log;
    inside += mass(k);
    std::cout << std::fixed << std::setprecision(4) << "   " << k << "   " << freq[k] << "      " << mass(k) << "       " << e_log
              << "\n";
  }
  // route 3: what training estimates, Monte Carlo over fresh uniform noise
  std::vector<double> mc;
  for (int r = 0; r < 20; ++r) mc.push_back(-mean(log_density(K + gen.uniform({n, 1}, 0, 1, DType::Float64))).item());
  const auto [mm, se] = lesson::mean_and_se(mc);
  std::cout << std::setprecision(5) << "   the model puts " << 1 - inside << " of its mass outside [0, 8)\n"
            << "   discrete NLL " << discrete << " nats, dequantized NLL " << bound << " nats: the gap " << bound - discrete
            << " is E_k KL(U[k, k+1) || p(u | k)), what dequantization costs\n";
  L.check_le("Jensen: the discrete NLL (bin masses by the CDF) <= the dequantized NLL (quadrature of log p)", discrete, bound);
  L.check_close("the dequantized NLL by quadrature vs by Monte Carlo over uniform noise (20 x 20,000 draws, 4 standard errors)",
                bound, mm, 4 * se + 1e-9);
}

// ------------------------------------------------------------ 7. forward vs reverse KL
// log p(x) of the 8 Gaussians toy (radius 2, sd 0.2), written with the engine so
// that reverse-KL training can differentiate it.
Tensor eight_gaussians_log_density(const Tensor& x) {
  std::vector<float> m;
  for (int k = 0; k < 8; ++k) {
    m.push_back(static_cast<float>(2 * std::cos(2 * M_PI * k / 8)));
    m.push_back(static_cast<float>(2 * std::sin(2 * M_PI * k / 8)));
  }
  const Tensor means = Tensor::from_vector(m, {1, 8, 2}).to(x.dtype());
  const double var = 0.04;
  Tensor d2 = sum(square(unsqueeze(x, 1) - means), {2});  // [N, 8]
  return logsumexp(d2 * (-0.5 / var), {1}) - std::log(8.0) - std::log(2 * M_PI * var);
}

std::vector<double> mode_shares(const Tensor& x) {
  std::vector<double> share(8, 0);
  for (int64_t i = 0; i < x.size(0); ++i)
    for (int k = 0; k < 8; ++k) {
      const double dx = x.at(2 * i) - 2 * std::cos(2 * M_PI * k / 8), dy = x.at(2 * i + 1) - 2 * std::sin(2 * M_PI * k / 8);
      if (dx * dx + dy * dy <= 0.6 * 0.6) share[static_cast<size_t>(k)] += 1.0 / static_cast<double>(x.size(0));  // 3 sd
    }
  return share;
}

void forward_vs_reverse(lesson::Lesson& L, Flow& forward, Generator& gen) {
  std::cout << "\n-- 7. Forward vs reverse KL on 8 Gaussians (radius 2, sd 0.2)\n"
            << "   forward KL(p || q) = -E_p[log q] + const: maximum likelihood on samples (the flow of step 4)\n"
            << "   reverse KL(q || p) = E_q[log q(x) - log p(x)], x = f^-1(z): needs only an unnormalised log p, as VI does\n";
  auto reverse = models::make_realnvp(2, 8, {64, 64}, gen);
  const int64_t batch = 256;
  train::FitOptions o;
  o.epochs = L.epochs(6, 30);
  o.batch_size = batch;
  o.tag = "reverse_kl";
  o.out_dir = L.options().out;
  o.data_transform = "no data: fitted to an unnormalised 2-D density by reverse KL";
  o.train_column = "reverse_kl_nats";
  o.curve_title = "RealNVP fitted by reverse KL";
  o.y_label = "KL(q || p), nats";
  auto batch_loss = [&](const Tensor& idx) {
    Tensor z = gen.normal({idx.numel(), 2});
    Tensor x = reverse->bijector().inverse(z);
    return mean(reverse->log_prob(x) - eight_gaussians_log_density(x));
  };
  train::fit(*reverse, 50 * batch, batch_loss, {}, gen, o);
  const Tensor xf = forward.sample(5000, gen), xr = reverse->sample(5000, gen);
  const std::vector<double> sf = mode_shares(xf), sr = mode_shares(xr);
  int covered_f = 0, covered_r = 0;
  std::cout << "   share of 5,000 samples within 3 sd of each mode (covered: >= 1/32, a quarter of its 1/8):\n   mode     ";
  for (int k = 0; k < 8; ++k) std::cout << std::setw(7) << k;
  std::cout << "\n   forward  ";
  for (double v : sf) std::cout << std::setw(7) << std::setprecision(3) << v, covered_f += v >= 1.0 / 32;
  std::cout << "\n   reverse  ";
  for (double v : sr) std::cout << std::setw(7) << std::setprecision(3) << v, covered_r += v >= 1.0 / 32;
  std::cout << "\n   modes covered: forward " << covered_f << " of 8, reverse " << covered_r << " of 8"
            << (covered_r < covered_f ? " (reverse KL is mode-seeking: a missed mode costs it nothing)" : "") << "\n";
  L.check_le("forward KL (maximum likelihood) covers every mode: modes missed", 8.0 - covered_f, 0.0);
  L.metric("forward_kl_modes_covered", covered_f);
  L.metric("reverse_kl_modes_covered", covered_r);
  image::RGB pts(2 * 300 + 10, 300);
  image::scatter(pts, 0, 0, 300, 3.5, xf, {});
  image::scatter(pts, 310, 0, 300, 3.5, xr, {}, 200, 60, 40);
  image::write_png(L.path("forward_vs_reverse_kl.png"), pts);
}

// ------------------------------------------------------------ 6. digits and the bits/dim bookkeeping
struct DigitsResult {
  double test_nll = 0, test_bpd = 0, test_nll_se = 0;
  std::shared_ptr<Flow> image_flow;  // the multi-scale RealNVP (step 8 draws from it in --quick runs)
};

// A recipe's flow trained on the digits with the lesson's flags.
train::FitResult fit_digits(Flow& f, const models::Recipe& r, const data::DataSet& d, Generator& gen, lesson::Lesson& L) {
  train::FitOptions o = L.training(r);
  o.curve_title = r.tag + " on the 8x8 digits (dequantized, D log 17 included)";
  o.data_transform = "8x8 digits, 17 levels as k / 16, dequantized (k + U[0, 1)) / 17 inside the model";
  auto input = [&](const Tensor& x) { return r.flat ? reshape(x, {x.size(0), -1}) : x; };
  return train::fit(f, input(d.train), input(d.validation), gen, o);
}

// The test figure, averaged over `draws` dequantizations (each one is a bound; so is their mean), and
// its standard error over the test images: the mean of the draws' (the per-image average over draws
// varies at most as much as one draw, so this is an upper bound).
struct TestNLL {
  double nll = 0, se = 0;
};
TestNLL test_nll(Flow& f, const Tensor& test, int draws) {
  TestNLL t;
  for (int r = 0; r < draws; ++r) {
    const train::Evaluation e = train::evaluate(f, test);
    t.nll += e.nll_nats / draws, t.se += e.nll_se / draws;
  }
  return t;
}

DigitsResult digits(lesson::Lesson& L, const data::DataSet& d, Generator& gen) {
  const bool quick = L.options().quick;
  std::cout << "\n-- 6. The 8x8 digits, 17 grey levels, uniform dequantization (train " << d.train.size(0) << " / validation "
            << d.validation.size(0) << " / test " << d.test.size(0) << ")\n";
  const Tensor te = reshape(d.test, {d.test.size(0), 64});
  const models::Recipe &nice_r = models::recipe("digits_nice"), &realnvp_r = models::recipe("digits_realnvp_mlp"),
                       &multi_r = models::recipe("digits_realnvp_multiscale");
  auto as_flow = [](std::shared_ptr<models::TrainableDensity> m) { return std::dynamic_pointer_cast<Flow>(m); };
  auto nice = as_flow(models::build(nice_r, quick, gen));
  const train::FitResult fn = fit_digits(*nice, nice_r, d, gen, L);
  auto realnvp = as_flow(models::build(realnvp_r, quick, gen));
  const train::FitResult fr = fit_digits(*realnvp, realnvp_r, d, gen, L);
  DigitsResult res;
  res.image_flow = as_flow(models::build(multi_r, quick, gen));
  const train::FitResult fm = fit_digits(*res.image_flow, multi_r, d, gen, L);
  nice->eval(), realnvp->eval(), res.image_flow->eval();
  const int draws = quick ? 2 : 10;
  const TestNLL nice_t = test_nll(*nice, te, draws), mlp_t = test_nll(*realnvp, te, draws), multi_t = test_nll(*res.image_flow, d.test, draws);
  const double nice_nll = nice_t.nll, mlp_nll = mlp_t.nll;
  res.test_nll = multi_t.nll, res.test_nll_se = multi_t.se;
  res.test_bpd = train::bits_per_dim(res.test_nll, 64);
  auto line = [](const std::string& what, double nll, const train::FitResult& f) {
    std::cout << "   " << std::left << std::setw(72) << what << std::right << std::fixed << std::setprecision(2) << std::setw(8) << nll
              << " nats  (best epoch " << f.best_epoch << ", " << std::setprecision(1) << f.seconds << " s)\n";
  };
  std::cout << "   test NLL per image (mean of " << draws << " dequantizations):\n";
  line(nice_r.title(quick) + ", scaling, logistic prior", nice_nll, fn);
  line(realnvp_r.title(quick) + ", logit, actnorm", mlp_nll, fr);
  line(multi_r.title(quick) + ", logit, actnorm", res.test_nll, fm);
  std::cout << "   = " << std::setprecision(3) << res.test_bpd << " bits/dim for the multi-scale flow. References: a uniform model "
            << "64 ln 17 = 181.3 nats;\n   the book code's RealNVP about 125 (validation); MADE and PixelCNN on this split: lesson_autoregressive\n";
  if (!quick && L.options().epochs == 0 && !d.synthetic)
    L.check_le("digits: multi-scale RealNVP test NLL <= 105 nats (the issue's target for the default run)", res.test_nll, 105.0);
  L.metric("digits_nice_test_nll_nats", nice_nll, nice_t.se);
  L.metric("digits_realnvp_mlp_test_nll_nats", mlp_nll, mlp_t.se);

  std::cout << "\n   The bookkeeping of bits/dim, for the MLP RealNVP (its first layer is the logit transform), on the test set\n"
            << "   with one fixed dequantization u:\n";
  {
    const std::string noise_before = realnvp->noise().state();  // the model's own log_prob below draws this same u
    const Tensor u = [&] {
      NoGradGuard ng;
      return realnvp->dequantize(te);
    }();
    auto& chain = dynamic_cast<flows::Chain&>(realnvp->bijector());
    auto& logit = dynamic_cast<flows::LogitTransform&>(chain[0]);
    NoGradGuard ng;
    // the right figure: -log p_u(u) + D log 17 (p_u includes the logit transform's log-det)
    const double right = -mean(realnvp->log_prob_continuous(u)).item() + 64 * std::log(17.0);
    // mistake 1: the flow's density in logit space, as if it were the density of u
    Tensor h = logit.forward_flow(u).z, log_det_rest = Tensor::zeros({u.size(0)});
    for (size_t i = 1; i < chain.size(); ++i) {
      flows::Flowed f = chain[i].forward_flow(h);
      h = f.z;
      log_det_rest = log_det_rest + f.log_det;
    }
    const double no_logit = -mean(realnvp->prior_log_prob(h) + log_det_rest).item() + 64 * std::log(17.0);
    // mistake 2: the density of u on [0, 1]^D reported as if it were a probability of the levels
    const double no_scaling = -mean(realnvp->log_prob_continuous(u)).item();
    const double bpd = 64 * std::log(2.0);
    std::cout << std::setprecision(3) << "     right:                              " << right << " nats = " << right / bpd
              << " bits/dim\n"
              << "     forgetting the logit's log-det:     " << no_logit << " nats = " << no_logit / bpd << " bits/dim\n"
              << "     forgetting D log 17 (density as P): " << no_scaling << " nats = " << no_scaling / bpd << " bits/dim\n";
    // route 2 for the logit's share: its Jacobian is diagonal (elementwise), so log|det J| = sum_i log dy_i/du_i,
    // each derivative from the engine's backward through the LogitTransform layer itself
    double logit_log_det = 0;
    {
      GradModeGuard with_grad(true);
      const Tensor ud = u.to(DType::Float64).set_requires_grad(true);
      const Tensor dy_du = grad({sum(logit.forward_flow(ud).z)}, {ud})[0];
      logit_log_det = mean(sum(log(dy_du), {1})).item();
    }
    L.check_close("the logit mistake shifts the NLL by E[log|det J_logit|], its Jacobian's diagonal from the engine's backward",
                  no_logit - right, logit_log_det, 1e-3);
    // route 2 for the total: the model's own log_prob of the levels (it dequantizes with the same u and counts
    // -D log 17 inside) against the figure assembled here
    realnvp->noise().set_state(noise_before);
    const double model_nll = -mean(realnvp->log_prob(te)).item();
    L.check_close("the NLL of the levels: the model's log_prob(x) vs -log p_u(u) + 64 ln 17 assembled here, the same u", model_nll,
                  right, 1e-3);
    std::cout << "     the scaling mistake is -64 ln 17 = " << -64 * std::log(17.0) << " nats: " << no_scaling - right << " here\n";
  }
  return res;
}

// ------------------------------------------------------------ 8. the multi-scale image flow
struct ImageResult {
  double test_bpd = 0, test_nll = 0, seconds = 0, test_nll_se = 0;
};

// The headline figure against training time: each validation of the run (every 100 steps) with its
// minutes, and the best so far -- what a run given that many minutes keeps, since the rate is constant.
void write_bpd_by_minutes(lesson::Lesson& L, const train::FitResult& fr, int64_t n_train, int64_t batch, double dims) {
  const double per_epoch = static_cast<double>((n_train + batch - 1) / batch);
  std::vector<std::vector<double>> rows;
  double best = INFINITY;
  for (const auto& c : fr.curve) {  // epoch, train, validation, train_seconds
    if (c.size() < 4 || !std::isfinite(c[2])) continue;
    const double v = train::bits_per_dim(c[2], dims);
    best = std::min(best, v);
    rows.push_back({c[3] / 60, std::round(c[0] * per_epoch), v, best});
  }
  if (rows.empty()) return;
  L.write_csv("fashion_bpd_by_minutes.csv", {"training_minutes", "steps", "validation_bpd", "best_validation_bpd"}, rows);
  plot::line_plot(L.path("fashion_bpd_by_minutes.csv"), L.path("fashion_bpd_by_minutes.png"),
                  "multi-scale RealNVP on Fashion-MNIST: validation bits/dim against training time", "training minutes", "bits/dim", 1,
                  {{3, "validation"}, {4, "best so far (what a run this long keeps)"}}, false, true);
  std::cout << "   wrote fashion_bpd_by_minutes.csv and .png (validation bits/dim against training minutes, every 100 steps)\n";
}

ImageResult image_flow(lesson::Lesson& L, const DigitsResult& dr, const data::DataSet& d, const models::Recipe& recipe, double minutes,
                       Generator& gen) {
  const auto& opt = L.options();
  ImageResult r;
  std::shared_ptr<Flow> flow;
  Tensor test;
  if (opt.quick) {  // the digits' multi-scale flow of step 6 stands in for Fashion-MNIST
    std::cout << "\n-- 8. The multi-scale RealNVP of step 6 stands in for Fashion-MNIST (--quick): its figures, its samples\n";
    flow = dr.image_flow, test = d.test;
    r.test_nll = dr.test_nll, r.test_bpd = dr.test_bpd, r.test_nll_se = dr.test_nll_se;
  } else {
    const data::DataSet fashion = lesson::harness::data_for(recipe.data, opt);
    test = fashion.test;
    flow = std::dynamic_pointer_cast<Flow>(models::build(recipe, false, gen));
    train::FitOptions f = L.training(recipe);
    if (opt.epochs == 0) f.max_seconds = minutes * 60;
    std::cout << "\n-- 8. A " << recipe.title(false) << " on Fashion-MNIST (" << fashion.description << ")\n   "
              << flow->num_parameters() << " parameters; Adam " << f.lr << ", batch " << f.batch_size << ", "
              << (opt.epochs > 0 ? std::to_string(opt.epochs) + " epochs" : (std::ostringstream() << minutes << " minutes").str()) << "\n";
    f.data_transform = "Fashion-MNIST, 256 levels as k / 255, dequantized (k + U[0, 1)) / 256 inside the model";
    f.curve_title = "multi-scale RealNVP on Fashion-MNIST: NLL per image (dequantized)";
    f.train_column = "train_nll_nats_running";
    f.seconds_column = true;
    const train::FitResult fr = train::fit(*flow, fashion.train, fashion.validation, gen, f);
    write_bpd_by_minutes(L, fr, fashion.train.size(0), f.batch_size, static_cast<double>(fashion.train.numel() / fashion.train.size(0)));
    flow->eval();
    const train::Evaluation ev = train::evaluate(*flow, test, 250);
    r = {ev.bits_per_dim, ev.nll_nats, fr.seconds, ev.nll_se};
    std::cout << std::fixed << std::setprecision(3) << "   test: " << ev.nll_nats << " nats per image = " << ev.bits_per_dim
              << " bits/dim (" << ev.kind << "), after " << fr.steps << " steps, " << std::setprecision(0) << fr.seconds << " s\n"
              << "   published: Glow on Fashion-MNIST 2.958 bits/dim (long GPU training); the issue's target for the default run 3.8\n";
    if (opt.epochs == 0) L.check_le("Fashion-MNIST: test bits/dim <= 3.8 (the issue's target for the default run)", ev.bits_per_dim, 3.8);
  }
  const int64_t h = test.size(2);
  // samples at temperature 1.0 and 0.7, and a latent interpolation between two test images
  const int up = image::upscale_for(h);
  for (double t : {1.0, 0.7}) {
    std::ostringstream name;
    name << "samples_t" << std::fixed << std::setprecision(1) << t << ".png";
    image::save_image_grid(L.path(name.str()), flow->sample(64, gen, t), 8, up, 2);
  }
  {
    NoGradGuard ng;
    Tensor pair = slice(test, 0, 0, 2);
    Tensor z = flow->bijector().forward_flow(flow->dequantize(pair)).z;
    std::vector<Tensor> frames;
    for (int i = 0; i <= 9; ++i) frames.push_back(slice(z, 0, 0, 1) * (1 - i / 9.0) + slice(z, 0, 1, 2) * (i / 9.0));
    Tensor x = flow->quantize(flow->bijector().inverse(concat(frames, 0)));
    image::save_image_grid(L.path("latent_interpolation.png"), x, 10, up, 2);
  }
  std::cout << "   wrote samples_t1.0.png, samples_t0.7.png, latent_interpolation.png\n";
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  lesson::Lesson L("flows", "normalizing flows: the change of variables, NICE, RealNVP, dequantization, bits/dim");
  // the Fashion-MNIST flow is the recipe fashion_flow; these flags change it (and the JSON beside its checkpoint says so)
  models::Recipe fashion_flow = models::recipe("fashion_flow");
  double minutes = fashion_flow.full.minutes;
  int64_t hidden = 32;
  int steps = 3, blocks = 1;
  bool conv1x1 = false;
  L.app().add_option("--minutes", minutes, "Training time for the Fashion-MNIST flow, minutes (default run)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  L.app().add_option("--hidden", hidden, "Channels of the image flow's coupling ResNets")->capture_default_str()->check(CLI::PositiveNumber);
  L.app().add_option("--steps", steps, "Couplings per half-scale of the image flow")->capture_default_str()->check(CLI::PositiveNumber);
  L.app().add_option("--blocks", blocks, "Residual blocks per coupling net")->capture_default_str()->check(CLI::NonNegativeNumber);
  L.app().add_flag("--conv1x1", conv1x1, "Glow-style: an invertible 1x1 convolution before every coupling");
  bool skip_fashion = false;
  L.app().add_flag("--skip-fashion", skip_fashion, "Skip step 8 on Fashion-MNIST (a full run trains it for --minutes)");
  return L.run(argc, argv, [&] {
    const auto& opt = L.options();
    Generator gen(opt.seed);
    one_dimension(L, gen);
    coupling_jacobians(L, gen);

    std::cout << "\n-- 4. RealNVP (8 affine couplings, MLP 64-64) on 2-D toys: density maps (model | truth), samples (data | model)\n";
    std::vector<data::Toy> toys = {data::Toy::EightGaussians, data::Toy::TwoMoons};
    if (!opt.quick) toys.insert(toys.end(), {data::Toy::Checkerboard, data::Toy::Rings});
    ToyResult eight;
    double toy_seconds = 0;
    for (data::Toy t : toys) {
      ToyResult r = train_toy(L, t, gen);
      toy_seconds += r.train_seconds;
      if (t == data::Toy::EightGaussians) eight = r;
    }
    L.check_close("the 8 Gaussians flow's density integrates to one (midpoint rule, 300 x 300 cells on [-6, 6]^2)", eight.integral,
                  1.0, 1e-2);
    double inverse_error = 0;
    {
      NoGradGuard ng;
      const Tensor x = data::sample_toy(data::Toy::EightGaussians, 10000, gen);  // float32
      const Tensor back = eight.flow->bijector().inverse(eight.flow->bijector().forward_flow(x).z);
      inverse_error = max(abs(back - x)).item();
      L.check_le("the flow's inverse reconstructs 10,000 points in float32: max |f^-1(f(x)) - x| < 1e-5", inverse_error, 1e-5);
      draw_warp(L, *eight.flow, slice(x, 0, 0, 3000), "8gaussians_warp.png");
      std::cout << "   wrote <toy>_density.png, <toy>_samples.png, 8gaussians_warp.png (data, then after each coupling)\n";
    }

    dequantization(L, gen);
    fashion_flow.set("hidden", std::to_string(hidden)).set("steps", std::to_string(steps)).set("blocks", std::to_string(blocks));
    fashion_flow.set("conv1x1", conv1x1 ? "true" : "false");
    const data::DataSet d = lesson::harness::data_for("digits17", opt);
    const DigitsResult dr = digits(L, d, gen);
    forward_vs_reverse(L, *eight.flow, gen);
    ImageResult ir;
    if (opt.quick || !skip_fashion) ir = image_flow(L, dr, d, fashion_flow, minutes, gen);

    L.metric("digits_test_nll_nats", dr.test_nll, dr.test_nll_se);
    L.metric("digits_test_bpd", dr.test_bpd, train::bits_per_dim(dr.test_nll_se, 64));
    if (opt.quick || !skip_fashion) {
      L.metric("fashion_test_bpd", ir.test_bpd, ir.test_bpd * ir.test_nll_se / ir.test_nll);  // --quick: the digits flow of step 8
      L.metric("fashion_test_nll_nats", ir.test_nll, ir.test_nll_se);
      L.metric("image_flow_train_seconds", ir.seconds);
    }
    L.metric("toy_density_integral", eight.integral);
    L.metric("toy_8gaussians_test_nll_nats", eight.test_nll);
    L.metric("max_inverse_error", inverse_error);
    L.metric("toy_train_seconds", toy_seconds);
  });
}
