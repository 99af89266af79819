// lessons/elbo.cpp — variational inference on a model where everything is known.
//
// The linear-Gaussian latent model  z ~ N(0, I_k),  x | z ~ N(W z + b, s^2 I_d)
// has log p(x) and the posterior p(z | x) = N(m, S) in closed form:
//   p(x) = N(x; b, W W^T + s^2 I),   S^-1 = Lambda = I + W^T W / s^2,   m = S W^T (x - b) / s^2.
// For a Gaussian q = N(mu, Sigma) the ELBO and both KLs are closed-form too
// (docs/chapters/elbo.md, eq. 1-6), so every identity of the chapter can be
// checked to machine precision:
// 1. log p(x) = ELBO(q) + KL(q || p(z|x)) for several q.
// 2. E_q[log p(x,z)] + H[q] = E_q[log p(x|z)] - KL(q || p(z)); Monte Carlo
//    estimates converge as 1/sqrt(N).
// 3. Maximising the ELBO by the reparameterisation trick through the engine
//    over full-covariance Gaussians finds the posterior.
// 4. The mean-field optimum has the posterior precision's diagonal, so it
//    underestimates the variances.
// 5. Forward vs reverse KL fits of one Gaussian to two modes.
// 6. Reparameterisation vs score-function gradient variance.
#include <cmath>
#include <iomanip>
#include <iostream>

#include "autograd/graph.h"
#include "autograd/ops.h"
#include "autograd/random.h"
#include "autograd/optim.h"
#include "lessons/common/lesson.h"
#include "models/toolkit/distributions.h"
#include "models/toolkit/linalg.h"
#include "models/toolkit/plot.h"

using namespace dgm;

namespace {

const double kLog2Pi = std::log(2 * M_PI);

struct LinearGaussian {
  int64_t k, d;
  double s2;       // s^2
  Tensor W, b, x;  // [d, k], [d], [d]
  Tensor Lambda;   // posterior precision [k, k]
  Tensor S, m;     // posterior covariance [k, k], mean [k]
};

double dot(const Tensor& a, const Tensor& b) { return sum(a * b).item(); }
double trace(const Tensor& A) {
  double t = 0;
  for (int64_t i = 0; i < A.size(0); ++i) t += A.at(i * A.size(0) + i);
  return t;
}
Tensor col(const Tensor& v) { return reshape(v, {-1, 1}); }

LinearGaussian make_model(Generator& g, int64_t k, int64_t d) {
  NoGradGuard ng;
  LinearGaussian M{k, d, 0.25, g.normal({d, k}, 0, 1, DType::Float64), g.normal({d}, 0, 1, DType::Float64), Tensor(), Tensor(), Tensor(), Tensor()};
  Tensor z = g.normal({k}, 0, 1, DType::Float64);
  M.x = reshape(matmul(M.W, col(z)), {d}) + M.b + g.normal({d}, 0, std::sqrt(M.s2), DType::Float64);
  M.Lambda = Tensor::zeros({k, k}, DType::Float64) + matmul(transpose(M.W, 0, 1), M.W) / M.s2;
  for (int64_t i = 0; i < k; ++i) M.Lambda.data<double>()[i * k + i] += 1;
  M.S = linalg::inverse(M.Lambda);
  M.m = reshape(matmul(M.S, matmul(transpose(M.W, 0, 1), col(M.x - M.b))), {k}) / M.s2;
  return M;
}

// log p(x) = log N(x; b, W W^T + s^2 I)
double log_px(const LinearGaussian& M) {
  NoGradGuard ng;
  Tensor C = matmul(M.W, transpose(M.W, 0, 1));
  for (int64_t i = 0; i < M.d; ++i) C.data<double>()[i * M.d + i] += M.s2;
  Tensor r = col(M.x - M.b);
  const double quad = sum(r * matmul(linalg::inverse(C), r)).item();
  return -0.5 * (static_cast<double>(M.d) * kLog2Pi + linalg::log_det_spd(C) + quad);
}

// The pieces of the ELBO for q = N(mu, Sigma), in closed form (eq. 3-5 of the docs).
struct Pieces {
  double e_loglik;  // E_q log p(x | z)
  double e_logprior;  // E_q log p(z)
  double entropy;   // H[q]
  double kl_prior;  // KL(q || p(z))
  double kl_post;   // KL(q || p(z | x))
  double elbo() const { return e_loglik + e_logprior + entropy; }
};
Pieces pieces(const LinearGaussian& M, const Tensor& mu, const Tensor& Sigma) {
  NoGradGuard ng;
  const double k = static_cast<double>(M.k), d = static_cast<double>(M.d);
  Tensor resid = M.x - M.b - reshape(matmul(M.W, col(mu)), {M.d});
  const double tr_wsw = trace(matmul(matmul(M.W, Sigma), transpose(M.W, 0, 1)));
  const double logdet_sigma = linalg::log_det_spd(Sigma);
  Pieces p;
  p.e_loglik = -0.5 * d * (kLog2Pi + std::log(M.s2)) - (dot(resid, resid) + tr_wsw) / (2 * M.s2);
  p.e_logprior = -0.5 * k * kLog2Pi - 0.5 * (dot(mu, mu) + trace(Sigma));
  p.entropy = 0.5 * k * (1 + kLog2Pi) + 0.5 * logdet_sigma;
  p.kl_prior = 0.5 * (trace(Sigma) + dot(mu, mu) - k - logdet_sigma);
  Tensor dm = col(M.m - mu);
  p.kl_post = 0.5 * (trace(matmul(M.Lambda, Sigma)) + sum(dm * matmul(M.Lambda, dm)).item() - k -
                     linalg::log_det_spd(M.Lambda) - logdet_sigma);
  return p;
}

// log p(x, z) for a batch z [n, k] through the engine (differentiable in z).
Tensor log_joint(const LinearGaussian& M, const Tensor& z) {
  Tensor mean_x = matmul(z, transpose(M.W, 0, 1)) + M.b;  // [n, d]
  Tensor lik = sum(square(mean_x - M.x), {1}) * (-0.5 / M.s2) - 0.5 * static_cast<double>(M.d) * (kLog2Pi + std::log(M.s2));
  Tensor prior = sum(dist::Normal::standard(z.shape(), z.dtype()).log_prob(z), {1});
  return lik + prior;
}

Tensor diag(const Tensor& v) {
  const int64_t k = v.numel();
  Tensor D = Tensor::zeros({k, k}, DType::Float64);
  for (int64_t i = 0; i < k; ++i) D.data<double>()[i * k + i] = v.at(i);
  return D;
}

}  // namespace

int main(int argc, char** argv) {
  lesson::Lesson L("elbo", "variational inference, checked on a linear-Gaussian model where everything is known");
  return L.run(argc, argv, [&] {
    const auto& opt = L.options();
    Generator gen(opt.seed);

    const LinearGaussian M = make_model(gen, 2, 5);
    const double lp = log_px(M);
    std::cout << "\n   model: k = 2 latent, d = 5 observed, s^2 = 0.25; log p(x) = " << std::setprecision(10) << lp << "\n"
              << "   posterior: m = (" << M.m.at(0) << ", " << M.m.at(1) << "), correlation "
              << M.S.at(1) / std::sqrt(M.S.at(0) * M.S.at(3)) << "\n";

    // ------------------------------------------------------------ 1. the decomposition
    std::cout << "\n-- 1. log p(x) = ELBO(q) + KL(q || p(z|x))\n";
    Tensor A = gen.normal({2, 2}, 0, 1, DType::Float64);
    Tensor random_sigma = matmul(A, transpose(A, 0, 1)) + diag(Tensor::full({2}, 0.1, DType::Float64));
    Tensor mf_sigma = diag(Tensor::from_vector(std::vector<double>{1 / M.Lambda.at(0), 1 / M.Lambda.at(3)}, {2}));
    struct Q { const char* name; Tensor mu, Sigma; };
    for (const Q& q : {Q{"a random Gaussian", gen.normal({2}, 0, 1, DType::Float64), random_sigma},
                       Q{"the mean-field optimum", M.m, mf_sigma}, Q{"the exact posterior", M.m, M.S}}) {
      Pieces p = pieces(M, q.mu, q.Sigma);
      std::cout << "   q = " << std::left << std::setw(24) << q.name << std::right << " ELBO " << std::setw(14) << p.elbo()
                << "  KL " << std::setw(14) << p.kl_post << "\n";
      L.check_close(std::string("ELBO + KL(q || posterior) = log p(x) for ") + q.name, p.elbo() + p.kl_post, lp, 1e-8);
    }
    L.check_close("KL(posterior || posterior) = 0", pieces(M, M.m, M.S).kl_post, 0, 1e-10);

    // ------------------------------------------------------------ 2. two forms, and Monte Carlo
    std::cout << "\n-- 2. E_q[log p(x,z)] + H[q] = E_q[log p(x|z)] - KL(q || p(z)), and Monte Carlo estimates of it\n";
    {
      Tensor mu = gen.normal({2}, 0, 0.5, DType::Float64);
      Tensor Sigma = diag(Tensor::from_vector(std::vector<double>{0.3, 0.5}, {2}));
      Pieces p = pieces(M, mu, Sigma);
      // The two forms share E_q log p(x|z); they differ in E_q log p(z) + H[q] against -KL(q || p(z)),
      // each in its own closed form (expected log-prior and entropy vs the Gaussian KL formula).
      L.check_close("E_q log p(z) + H[q] vs -KL(q || p(z)) (so E log p(x,z) + H = E log p(x|z) - KL)",
                    p.e_logprior + p.entropy, -p.kl_prior, 1e-10);
      Tensor Lq = linalg::cholesky(Sigma);
      auto estimate = [&](int64_t n) {  // (1/n) sum_i [log p(x, z_i) - log q(z_i)],  z_i = mu + L eps_i
        NoGradGuard ng;
        Tensor eps = gen.normal({n, 2}, 0, 1, DType::Float64);
        Tensor z = mu + matmul(eps, transpose(Lq, 0, 1));
        Tensor log_q = sum(square(eps), {1}) * -0.5 - kLog2Pi - 0.5 * linalg::log_det_spd(Sigma);
        return mean(log_joint(M, z) - log_q).item();
      };
      std::cout << "        N     RMS error   RMS error * sqrt(N)\n";
      std::vector<double> rms_at;
      const int reps = opt.quick ? 100 : 400;
      for (int64_t n : {10, 100, 1000, 10000}) {
        double se = 0;
        for (int r = 0; r < reps; ++r) se += std::pow(estimate(n) - p.elbo(), 2);
        const double rms = std::sqrt(se / reps);
        rms_at.push_back(rms);
        std::cout << std::setw(9) << n << std::setw(14) << std::scientific << std::setprecision(3) << rms << std::setw(16)
                  << std::fixed << rms * std::sqrt(static_cast<double>(n)) << "\n";
      }
      // 1/sqrt(N): a hundred times the samples, a tenth of the error
      L.check_close("RMS error ratio N=100 vs N=10000 (1/sqrt(N) predicts 10; tolerance for " + std::to_string(reps) + " repeats)",
                    rms_at[1] / rms_at[3], 10.0, 2.0);
    }

    // ------------------------------------------------------------ 3. the reparameterisation trick
    std::cout << "\n-- 3. Maximising the ELBO by reparameterised gradients over full-covariance Gaussians\n"
                 "   q = N(mu, L L^T), z = mu + L eps; ELBO ~ mean_i log p(x, mu + L eps_i) + H[q]\n";
    {
      Tensor mu = Tensor::zeros({2}, DType::Float64).set_requires_grad(true);
      Tensor l_raw = Tensor::zeros({2, 2}, DType::Float64).set_requires_grad(true);  // lower part, log-diagonal
      Tensor lower = Tensor::from_vector(std::vector<double>{0, 0, 1, 0}, {2, 2}), eye = diag(Tensor::ones({2}, DType::Float64));
      optim::Adam adam({mu, l_raw}, 0.05);
      const int steps = opt.quick ? 3000 : 6000;
      for (int t = 0; t < steps; ++t) {
        if (t > steps / 3) adam.set_lr(0.05 * std::pow(1e-3, double(t - steps / 3) / double(steps - steps / 3)));  // decay
        Tensor Lf = l_raw * lower + exp(l_raw) * eye;
        Tensor eps = gen.normal({64, 2}, 0, 1, DType::Float64);
        Tensor z = mu + matmul(eps, transpose(Lf, 0, 1));
        Tensor entropy = sum(l_raw * eye) + 0.5 * 2 * (1 + kLog2Pi);  // H = k/2 (1 + log 2 pi) + sum log L_ii
        Tensor elbo = mean(log_joint(M, z)) + entropy;
        adam.zero_grad();
        neg(elbo).backward();
        adam.step();
      }
      NoGradGuard ng;
      Tensor Lf = l_raw * lower + exp(l_raw) * eye;
      Tensor Sigma = matmul(Lf, transpose(Lf, 0, 1));
      Pieces p = pieces(M, mu.detach(), Sigma);
      std::cout << "   after " << steps << " Adam steps: mu = (" << std::setprecision(5) << mu.at(0) << ", " << mu.at(1)
                << "), posterior m = (" << M.m.at(0) << ", " << M.m.at(1) << ")\n";
      L.check_le("KL(q || p(z|x)) after optimisation is below 1e-3", p.kl_post, 1e-3);
      L.metric("reparam_fit_kl_to_posterior", p.kl_post);
    }

    // ------------------------------------------------------------ 4. mean field
    std::cout << "\n-- 4. Mean field q = N(mu_1, s_1^2) N(mu_2, s_2^2) on a correlated posterior\n"
                 "   theory: the optimum has mu = m and s_i^2 = 1 / Lambda_ii (the posterior precision's diagonal)\n";
    {
      Tensor mu = Tensor::zeros({2}, DType::Float64).set_requires_grad(true);
      Tensor log_s2 = Tensor::zeros({2}, DType::Float64).set_requires_grad(true);
      Tensor wtw_diag = Tensor::from_vector(std::vector<double>{0, 0}, {2});
      {
        NoGradGuard ng;
        Tensor wtw = matmul(transpose(M.W, 0, 1), M.W);
        wtw_diag = Tensor::from_vector(std::vector<double>{wtw.at(0), wtw.at(3)}, {2});
      }
      optim::Adam adam({mu, log_s2}, 0.05);
      for (int t = 0; t < 4000; ++t) {
        if (t > 2000) adam.set_lr(0.05 * std::pow(1e-3, (t - 2000) / 2000.0));
        // the closed-form ELBO for a diagonal Sigma (constants dropped)
        Tensor s2 = exp(log_s2);
        Tensor resid = M.x - M.b - reshape(matmul(M.W, reshape(mu, {2, 1})), {M.d});
        Tensor elbo = (sum(square(resid)) + sum(s2 * wtw_diag)) * (-0.5 / M.s2) - (sum(square(mu)) + sum(s2)) * 0.5 +
                      sum(log_s2) * 0.5;
        adam.zero_grad();
        neg(elbo).backward();
        adam.step();
      }
      for (int i = 0; i < 2; ++i) {
        const double s2 = std::exp(log_s2.at(i)), theory = 1 / M.Lambda.at(i * 3), marginal = M.S.at(i * 3);
        L.check_close("mean-field variance s_" + std::to_string(i + 1) + "^2 vs 1 / Lambda_ii", s2, theory, 1e-6);
        std::cout << "   s_" << i + 1 << "^2 / true posterior variance S_ii = " << std::setprecision(4) << s2 / marginal
                  << " (below 1: mean field underestimates the spread)\n";
        L.metric("mean_field_variance_ratio_" + std::to_string(i + 1), s2 / marginal);
      }
      L.check_close("mean-field mean vs posterior mean m_1", mu.at(0), M.m.at(0), 1e-6);
    }

    // ------------------------------------------------------------ 5. forward vs reverse KL
    std::cout << "\n-- 5. One Gaussian fitted to p = 0.5 N(-2, 0.6^2) + 0.5 N(2, 0.6^2)\n";
    {
      const int64_t G = 4001;
      const double lo = -8, h = 16.0 / (G - 1);
      Tensor z = Tensor::empty({G}, DType::Float64);
      for (int64_t i = 0; i < G; ++i) z.data<double>()[i] = lo + h * static_cast<double>(i);
      auto log_normal = [](const Tensor& x, const Tensor& m, const Tensor& log_sd) {
        return dist::Normal{m, log_sd * 2.0}.log_prob(x);  // log-variance = 2 log sd
      };
      Tensor log_p = logsumexp(stack({log_normal(z, Tensor::scalar(-2.0, DType::Float64), Tensor::scalar(std::log(0.6), DType::Float64)),
                                      log_normal(z, Tensor::scalar(2.0, DType::Float64), Tensor::scalar(std::log(0.6), DType::Float64))}, 0),
                                {0}) + std::log(0.5);
      Tensor p = exp(log_p);
      auto fit = [&](bool forward, double mu0) {
        Tensor m = Tensor::scalar(mu0, DType::Float64).set_requires_grad(true);
        Tensor ls = Tensor::scalar(std::log(0.5), DType::Float64).set_requires_grad(true);
        optim::Adam adam({m, ls}, 0.05);
        for (int t = 0; t < 3000; ++t) {
          if (t > 1500) adam.set_lr(0.05 * std::pow(1e-3, (t - 1500) / 1500.0));
          Tensor log_q = log_normal(z, m, ls);
          // forward KL(p||q) = const - sum p log q dz;  reverse KL(q||p) = sum q (log q - log p) dz
          Tensor kl = forward ? neg(sum(p * log_q)) * h : sum(exp(log_q) * (log_q - log_p)) * h;
          adam.zero_grad();
          kl.backward();
          adam.step();
        }
        return std::pair{m.item(), std::exp(ls.item())};
      };
      // both start at N(1, 0.5^2), a little right of the centre
      auto [mf, sf] = fit(true, 1.0);
      auto [mr, sr] = fit(false, 1.0);
      std::cout << "   forward KL(p||q): mu = " << std::setprecision(4) << mf << ", sigma = " << sf
                << "   (moment matching: mean 0, sd sqrt(0.36 + 4) = " << std::sqrt(4.36) << ")\n"
                << "   reverse KL(q||p): mu = " << mr << ", sigma = " << sr << "   (one mode: 2, 0.6)\n";
      L.check_close("forward KL fit: sigma^2 = variance of p (0.36 + 4)", sf * sf, 4.36, 1e-3);
      L.check_close("forward KL fit: mu = mean of p", mf, 0.0, 1e-3);
      L.check_close("reverse KL fit picks the mode at 2", mr, 2.0, 0.01);
      std::vector<std::vector<double>> rows;
      for (int64_t i = 0; i < G; i += 10) {
        const double x = z.at(i);
        rows.push_back({x, p.at(i), std::exp(-0.5 * std::pow((x - mf) / sf, 2)) / (sf * std::sqrt(2 * M_PI)),
                        std::exp(-0.5 * std::pow((x - mr) / sr, 2)) / (sr * std::sqrt(2 * M_PI))});
      }
      L.write_csv("kl_fits.csv", {"z", "target_p", "forward_kl_fit", "reverse_kl_fit"}, rows);
      plot::line_plot(L.path("kl_fits.csv"), L.path("kl_fits.png"), "one Gaussian fitted to two modes", "z", "density", 1,
                      {{2, "target p"}, {3, "argmin KL(p||q): covers both"}, {4, "argmin KL(q||p): picks one"}});
    }

    // ------------------------------------------------------------ 6. gradient estimators
    std::cout << "\n-- 6. d/dmu E_{z ~ N(mu, 1)}[z^2] = 2 mu: reparameterisation vs score function (REINFORCE)\n";
    {
      const int64_t n = opt.quick ? 20000 : 200000;
      const double mu0 = 1.5;
      // one leaf per sample, so one backward gives every per-sample gradient
      Tensor mu = Tensor::full({n}, mu0, DType::Float64).set_requires_grad(true);
      Tensor eps = gen.normal({n}, 0, 1, DType::Float64);
      sum(square(mu + eps)).backward();                                // reparam: d/dmu f(mu + eps)
      std::vector<double> g_rep = mu.grad().to_vector();
      Tensor mu2 = Tensor::full({n}, mu0, DType::Float64).set_requires_grad(true);
      Tensor zs = (mu2.detach() + eps).detach();
      Tensor log_q = square(zs - mu2) * -0.5;                          // log N(z; mu, 1) + const
      sum(log_q * square(zs)).backward();                              // score: f(z) d/dmu log q(z)
      std::vector<double> g_sc = mu2.grad().to_vector();
      auto stats = [&](const std::vector<double>& v) {
        double m = 0, s = 0;
        for (double x : v) m += x;
        m /= static_cast<double>(v.size());
        for (double x : v) s += (x - m) * (x - m);
        return std::pair{m, s / static_cast<double>(v.size() - 1)};
      };
      auto [m_rep, v_rep] = stats(g_rep);
      auto [m_sc, v_sc] = stats(g_sc);
      std::cout << "   estimator          mean      variance   (exact gradient " << 2 * mu0 << ")\n"
                << "   reparameterised " << std::setw(8) << std::setprecision(4) << m_rep << std::setw(12) << v_rep << "\n"
                << "   score function  " << std::setw(8) << m_sc << std::setw(12) << v_sc << "\n";
      L.check_close("reparameterised estimator is unbiased (4 standard errors)", m_rep, 2 * mu0, 4 * std::sqrt(v_rep / n));
      L.check_close("score-function estimator is unbiased (4 standard errors)", m_sc, 2 * mu0, 4 * std::sqrt(v_sc / n));
      L.check_le("reparameterised variance below the score function's", v_rep, v_sc);
      L.metric("gradient_variance_reparam", v_rep);
      L.metric("gradient_variance_score", v_sc);
    }
  });
}
