// lessons/em.cpp — the EM algorithm: the ELBO made tight, then raised.
//
// 1. log p(x | theta) = ELBO(q, theta) + KL(q || p(z | x, theta)) for any q,
//    and the E-step (q = the posterior) makes the KL zero.
// 2. EM as coordinate ascent on the ELBO: each M-step raises the ELBO, so the
//    log-likelihood never falls (checked at every iteration; a table).
// 3. Parameter recovery on data from a known 3-component mixture.
// 4. EM against gradient ascent through the engine on the same data.
// 5. A mixture of Bernoullis on binarized images, its means drawn as images.
// Writes em_progress.png (ellipses after iterations 1, 2, 5 and the last),
// em_loglik.csv/.png, bernoulli_means.png, metrics.json.
#include <algorithm>
#include <cmath>
#include <iomanip>
#include <iostream>

#include "autograd/graph.h"
#include "autograd/optim.h"
#include "lessons/common/lesson.h"
#include "models/toolkit/datasets.h"
#include "models/toolkit/image.h"
#include "models/toolkit/linalg.h"
#include "models/mixtures.h"
#include "models/toolkit/plot.h"
#include "models/toolkit/progress.h"
#include "models/toolkit/trainer.h"
#include "models/toolkit/transforms.h"

using namespace dgm;
using models::GaussianMixture;

namespace {

// The mixture the data come from.
GaussianMixture truth() {
  GaussianMixture m;
  m.weights = Tensor::from_vector(std::vector<double>{0.2, 0.5, 0.3}, {3});
  m.means = Tensor::from_vector(std::vector<double>{-3, 0, 0, 2, 2.5, -2}, {3, 2});
  m.covs = Tensor::from_vector(std::vector<double>{0.6, 0.2, 0.2, 0.4, 1.2, -0.5, -0.5, 0.7, 0.5, 0.1, 0.1, 0.5}, {3, 2, 2});
  return m;
}

// A deliberately poor start (so the pictures show EM at work): K data points
// as means, unit covariances, equal weights.
GaussianMixture naive_init(const Tensor& X, int64_t K, Generator& gen) {
  GaussianMixture m;
  m.weights = Tensor::full({K}, 1.0 / static_cast<double>(K), DType::Float64);
  m.means = index_select(X, 0, slice(gen.permutation(X.size(0)), 0, 0, K));
  m.covs = Tensor::zeros({K, 2, 2}, DType::Float64);
  for (int64_t k = 0; k < K; ++k) m.covs.data<double>()[k * 4] = m.covs.data<double>()[k * 4 + 3] = 1;
  return m;
}

// One panel: the data as grey dots and each component's 1- and 2-sigma ellipses.
void draw_panel(image::RGB& img, int x0, int size, const Tensor& X, const GaussianMixture& m) {
  const double lo = -6, hi = 6;
  auto px = [&](double x) { return x0 + static_cast<int>((x - lo) / (hi - lo) * size); };
  auto py = [&](double y) { return static_cast<int>((hi - y) / (hi - lo) * size); };
  for (int y = 0; y < size; ++y) img.set(x0, y, 0, 0, 0);  // a separator line
  for (int64_t n = 0; n < X.size(0); ++n) img.set(px(X.at(2 * n)), py(X.at(2 * n + 1)), 150, 150, 150);
  const uint8_t colours[4][3] = {{214, 39, 40}, {31, 119, 180}, {44, 160, 44}, {148, 103, 189}};
  for (int64_t k = 0; k < m.K(); ++k) {
    Tensor L = linalg::cholesky(reshape(slice(m.covs, 0, k, k + 1), {2, 2}));
    const auto* c = colours[k % 4];
    for (double r : {1.0, 2.0})
      for (int s = 0; s < 720; ++s) {
        const double t = 2 * M_PI * s / 720, a = r * std::cos(t), b = r * std::sin(t);
        const double x = m.means.at(2 * k) + L.at(0) * a, y = m.means.at(2 * k + 1) + L.at(2) * a + L.at(3) * b;
        img.disc(px(x), py(y), r == 1.0 ? 1 : 0, c[0], c[1], c[2]);
      }
    img.disc(px(m.means.at(2 * k)), py(m.means.at(2 * k + 1)), 3, c[0], c[1], c[2]);
  }
}

// A second route to the mixture's densities, for the checks of step 1: the
// 2-D Gaussian density written out with the closed-form 2x2 determinant and
// inverse, N(x; m, S) = exp(-d^T S^-1 d / 2) / (2 pi sqrt(det S)), weighted and
// summed directly -- no log-joint, no logsumexp.
struct DirectDensities {
  std::vector<std::vector<double>> weighted;  // [n][k] = pi_k N(x_n; mu_k, Sigma_k)
  std::vector<double> total;                  // [n]    = p(x_n)
};
DirectDensities direct_densities(const GaussianMixture& m, const Tensor& X) {
  DirectDensities d;
  const int64_t N = X.size(0), K = m.K();
  d.weighted.assign(static_cast<size_t>(N), std::vector<double>(static_cast<size_t>(K)));
  d.total.assign(static_cast<size_t>(N), 0.0);
  for (int64_t k = 0; k < K; ++k) {
    const double a = m.covs.at(4 * k), b = m.covs.at(4 * k + 1), c = m.covs.at(4 * k + 3), det = a * c - b * b;
    for (int64_t n = 0; n < N; ++n) {
      const double u = X.at(2 * n) - m.means.at(2 * k), v = X.at(2 * n + 1) - m.means.at(2 * k + 1);
      const double quad = (c * u * u - 2 * b * u * v + a * v * v) / det;
      const double p = m.weights.at(k) * std::exp(-0.5 * quad) / (2 * M_PI * std::sqrt(det));
      d.weighted[static_cast<size_t>(n)][static_cast<size_t>(k)] = p;
      d.total[static_cast<size_t>(n)] += p;
    }
  }
  return d;
}

}  // namespace

int main(int argc, char** argv) {
  lesson::Lesson L("em", "the EM algorithm: Gaussian and Bernoulli mixtures, EM as coordinate ascent on the ELBO");
  return L.run(argc, argv, [&] {
    const auto& opt = L.options();
    Generator gen(opt.seed);

    const int64_t N = opt.quick ? 1500 : 5000;
    GaussianMixture true_m = truth();
    Tensor X = true_m.sample(N, gen);
    const double n = static_cast<double>(N);

    // ------------------------------------------------------------ 1. the decomposition
    std::cout << "\n-- 1. log p(x|theta) = ELBO(q, theta) + KL(q || p(z|x, theta)), per data point (N = " << N << ")\n";
    GaussianMixture m = naive_init(X, 3, gen);
    {
      // log p(x) by the second route: weighted densities summed directly
      const DirectDensities direct = direct_densities(m, X);
      double ll = 0;
      for (double p : direct.total) ll += std::log(p);
      ll /= n;
      Tensor lj = m.log_joint(X);
      Tensor uniform = Tensor::full({N, 3}, 1.0 / 3, DType::Float64);
      Tensor random_q = softmax(gen.normal({N, 3}, 0, 3, DType::Float64), 1);
      Tensor posterior = models::e_step(m, X);
      for (auto [name, q] : {std::pair{"uniform q", uniform}, std::pair{"random q", random_q}, std::pair{"q = posterior", posterior}}) {
        const double e = models::elbo(lj, q) / n, kl = models::kl_to_posterior(lj, q) / n;
        std::cout << "   " << std::left << std::setw(14) << name << std::right << " ELBO " << std::setw(10) << std::fixed
                  << std::setprecision(6) << e << "  KL " << std::setw(10) << kl << "  sum " << e + kl << "\n";
        L.check_close(std::string("ELBO + KL (log domain) = log p(x) (densities summed directly) for ") + name, e + kl, ll,
                      1e-10);
      }
      // the E-step's responsibilities (log domain, logsumexp) against Bayes' rule on the densities
      double worst = 0;
      for (int64_t i = 0; i < N; ++i)
        for (int64_t k = 0; k < 3; ++k)
          worst = std::max(worst, std::abs(posterior.at(3 * i + k) - direct.weighted[static_cast<size_t>(i)][static_cast<size_t>(k)] /
                                                                        direct.total[static_cast<size_t>(i)]));
      L.check_close("E-step q(z|x) vs Bayes' rule pi_k N_k(x) / p(x): max |difference| over all points", worst, 0, 1e-12);
    }

    // ------------------------------------------------------------ 2. coordinate ascent
    std::cout << "\n-- 2. EM from a poor start: each M-step raises the ELBO, the log-likelihood never falls\n"
                 "   iter   log p(x)/N   ELBO(q_t,th_t)   ELBO(q_t,th_t+1)   KL(q_t||p_t+1)\n";
    int ll_drops = 0, elbo_drops = 0, iterations = 0;
    double worst_drop = 0;
    std::vector<std::vector<double>> curve;
    image::RGB panel(4 * 300 + 1, 300);
    int panel_slot = 0;
    progress::Stopwatch t_em;
    double prev_ll = m.total_log_likelihood(X) / n;
    for (int it = 1; it <= 500; ++it) {
      Tensor q = models::e_step(m, X);                               // E: q_t = p(z | x, theta_t)
      const double elbo_before = models::elbo(m.log_joint(X), q) / n;
      GaussianMixture next = models::m_step(X, q);                   // M: theta_t+1
      Tensor lj_next = next.log_joint(X);
      const double elbo_after = models::elbo(lj_next, q) / n, kl_after = models::kl_to_posterior(lj_next, q) / n;
      const double ll = next.total_log_likelihood(X) / n;
      elbo_drops += elbo_after < elbo_before - 1e-12;
      ll_drops += ll < prev_ll - 1e-12;
      worst_drop = std::max(worst_drop, prev_ll - ll);
      curve.push_back({double(it), ll, elbo_before, elbo_after, kl_after});
      if (it <= 5 || it % 10 == 0)
        std::cout << "   " << std::setw(4) << it << std::setw(13) << std::setprecision(6) << ll << std::setw(17) << elbo_before
                  << std::setw(19) << elbo_after << std::setw(17) << std::scientific << std::setprecision(2) << kl_after
                  << std::fixed << "\n";
      const bool converged = std::abs(ll - prev_ll) <= 1e-10 * std::abs(prev_ll);
      if (it == 1 || it == 2 || it == 5) draw_panel(panel, 300 * panel_slot++, 300, X, next);
      m = next;
      prev_ll = ll;
      iterations = it;
      if (converged) break;
    }
    const double em_seconds = t_em.seconds();
    draw_panel(panel, 300 * panel_slot, 300, X, m);
    image::write_png(L.path("em_progress.png"), panel);
    L.write_csv("em_loglik.csv", {"iteration", "loglik_per_point", "elbo_before_m", "elbo_after_m", "kl_after_m"}, curve);
    plot::line_plot(L.path("em_loglik.csv"), L.path("em_loglik.png"), "EM: log-likelihood per point", "iteration", "nats", 1,
                    {{2, "log p(x)/N"}});
    std::cout << "   converged after " << iterations << " iterations; wrote em_progress.png (iterations 1, 2, 5, "
              << iterations << ") and em_loglik.png\n";
    L.check_close("M-steps that lowered the ELBO, of " + std::to_string(iterations), elbo_drops, 0, 0);
    L.check_close("iterations that lowered the log-likelihood, of " + std::to_string(iterations), ll_drops, 0, 0);
    L.metric("gmm_loglik_per_point", prev_ll);
    L.metric("gmm_iterations", iterations);
    L.metric("gmm_em_seconds", em_seconds);

    // ------------------------------------------------------------ 3. recovery
    std::cout << "\n-- 3. Parameter recovery (k-means++ start), up to a relabelling, within 4 standard errors\n";
    const GaussianMixture kmeans_start = models::init_kmeans_pp(X, 3, gen);
    GaussianMixture fit = kmeans_start;
    models::fit_em(fit, X, 500, 1e-10);
    const std::vector<int64_t> best = models::match_components(fit.means, true_m.means);
    double worst_z = 0;  // the largest |error| / standard error over every parameter
    for (int k = 0; k < 3; ++k) {
      const double w = true_m.weights.at(k), nk = n * w;
      worst_z = std::max(worst_z, std::abs(fit.weights.at(best[k]) - w) / std::sqrt(w * (1 - w) / n));
      for (int a = 0; a < 2; ++a) {
        worst_z = std::max(worst_z, std::abs(fit.means.at(best[k] * 2 + a) - true_m.means.at(k * 2 + a)) /
                                        std::sqrt(true_m.covs.at(k * 4 + a * 3) / nk));
        for (int b = 0; b < 2; ++b) {
          const double saa = true_m.covs.at(k * 4 + a * 3), sbb = true_m.covs.at(k * 4 + b * 3), sab = true_m.covs.at(k * 4 + a * 2 + b);
          worst_z = std::max(worst_z, std::abs(fit.covs.at(best[k] * 4 + a * 2 + b) - sab) / std::sqrt((saa * sbb + sab * sab) / nk));
        }
      }
      std::cout << "   component " << k << ": weight " << std::setprecision(3) << fit.weights.at(best[k]) << " (true " << w
                << "), mean (" << fit.means.at(best[k] * 2) << ", " << fit.means.at(best[k] * 2 + 1) << ") (true ("
                << true_m.means.at(k * 2) << ", " << true_m.means.at(k * 2 + 1) << "))\n";
    }
    L.check_le("largest |fitted - true| / standard error over weights, means, covariances", worst_z, 4.0);

    // ------------------------------------------------------------ 4. EM vs gradient ascent
    std::cout << "\n-- 4. The same mixture by gradient ascent on log p(x) through the engine (Adam, full batch)\n";
    {
      const GaussianMixture& start = kmeans_start;  // the start of step 3, for both methods
      GaussianMixture em = start;
      progress::Stopwatch t0;
      auto trace = models::fit_em(em, X, 500, 1e-10);
      const double t_em2 = t0.seconds();
      const double target = em.total_log_likelihood(X) / n;
      models::GaussianMixtureGradient ga(start);
      // full-batch Adam (one batch of all N points per "epoch"), stopped once it reaches EM's figure
      train::FitOptions o;
      o.epochs = L.epochs(3000, 10000);  // one full batch per pass
      o.batch_size = N;
      o.shuffle = false;
      o.lr = L.lr(0.02);
      o.tag = "gmm_gradient_ascent";
      o.data_transform = "2-D points as they are";
      o.progress = false;
      o.stop_when = [&](double loss) { return -loss >= target - 1e-4; };
      progress::Stopwatch t1;
      const train::FitResult fr = train::fit(ga, X, Tensor(), gen, o, {});
      const int64_t steps = fr.steps;
      const double ga_ll = ga.to_mixture().total_log_likelihood(X) / n;
      const double t_ga = t1.seconds();
      std::cout << "   method            iterations   seconds   log p(x)/N\n"
                << "   EM                " << std::setw(10) << trace.iterations << std::setw(10) << std::setprecision(3) << t_em2
                << std::setw(13) << std::setprecision(6) << target << "\n"
                << "   gradient ascent   " << std::setw(10) << steps << std::setw(10) << std::setprecision(3) << t_ga
                << std::setw(13) << std::setprecision(6) << ga_ll << "\n";
      L.check_close("gradient ascent reaches EM's log-likelihood per point", ga_ll, target, 1e-3);
      L.metric("em_iterations_to_converge", trace.iterations);
      L.metric("gradient_ascent_steps_to_em_loglik", steps);
      L.metric("gradient_ascent_seconds", t_ga);
    }

    // ------------------------------------------------------------ 5. mixture of Bernoullis
    std::cout << "\n-- 5. A mixture of Bernoullis on binarized images; its means are images\n";
    try {
      Tensor images;
      int64_t K = 10;
      if (opt.quick) {
        images = lesson::load_digits(opt).train.images;
      } else {
        images = data::fashion_mnist(data::Split::Train, opt.data, 10000).images;
        K = 20;
      }
      const int64_t h = images.size(2), w = images.size(3);
      Tensor Xb = reshape(data::binarize_threshold(images, 0.5), {images.size(0), h * w}).to(DType::Float64);
      const double a = 0.01;
      auto objective = [&](const models::BernoulliMixture& bm) {  // log-likelihood + log Beta(1+a, 1+a) prior
        return bm.total_log_likelihood(Xb) + a * sum(log(bm.means) + log1p(neg(bm.means))).item();
      };
      models::BernoulliMixture bm = models::init_bernoulli_mixture(K, h * w, gen);
      double prev = objective(bm);
      int drops = 0, its = 0;
      std::vector<std::vector<double>> bcurve;
      progress::Stopwatch t0;
      for (int it = 1; it <= (opt.quick ? 30 : 60); ++it) {
        bm = models::m_step_bernoulli(Xb, models::e_step(bm, Xb), a);
        const double obj = objective(bm);
        drops += obj < prev - 1e-9 * std::abs(prev);
        bcurve.push_back({double(it), bm.total_log_likelihood(Xb) / static_cast<double>(Xb.size(0))});
        prev = obj;
        its = it;
      }
      L.check_close("EM iterations that lowered the (MAP) objective, of " + std::to_string(its), drops, 0, 0);
      image::save_image_grid(L.path("bernoulli_means.png"), reshape(bm.means, {K, 1, h, w}), K <= 10 ? 5 : 10,
                             h <= 8 ? 8 : 3, 2);
      L.write_csv("bernoulli_loglik.csv", {"iteration", "loglik_per_image"}, bcurve);
      std::cout << "   " << K << " components, " << Xb.size(0) << " images: log-likelihood "
                << std::setprecision(2) << bcurve.back()[1] << " nats per image after " << its << " iterations ("
                << std::setprecision(1) << t0.seconds() << " s); wrote bernoulli_means.png\n";
      L.metric("bernoulli_loglik_per_image", bcurve.back()[1]);
    } catch (const data::DataNotFound& e) {  // only a data set that is not installed is skipped
      std::cout << "   skipped: " << e.what() << "\n";
    }
  });
}
