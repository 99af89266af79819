// dgm/models/divergences.cpp
#include "models/divergences.h"

#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "models/toolkit/linalg.h"

namespace dgm::models {

namespace {

// The Gram matrix of the pooled rows [X; Y], float64, row-major [(n+m)^2].
std::vector<double> pooled_gram(const Tensor& X, const Tensor& Y, double h) {
  if (X.dim() != 2 || Y.dim() != 2 || X.size(1) != Y.size(1))
    throw Error("mmd: samples must be [n, d] and [m, d] with the same d, got " + X.shape().str() + " and " +
                Y.shape().str());
  if (X.size(0) < 2 || Y.size(0) < 2) throw Error("mmd: needs at least 2 samples on each side");
  if (!(h > 0)) throw Error("mmd: the bandwidth must be positive");
  const Tensor Z = concat({X.to(DType::Float64), Y.to(DType::Float64)}, 0).contiguous_copy();
  const int64_t N = Z.size(0), d = Z.size(1);
  const double* z = Z.data<double>();
  std::vector<double> K(static_cast<size_t>(N * N));
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = i; j < N; ++j) {
      double s = 0;
      for (int64_t k = 0; k < d; ++k) s += (z[i * d + k] - z[j * d + k]) * (z[i * d + k] - z[j * d + k]);
      K[static_cast<size_t>(i * N + j)] = K[static_cast<size_t>(j * N + i)] = std::exp(-s / (2 * h * h));
    }
  return K;
}

// MMD^2_u for the labelling side[i] (true: the first sample) of the pooled Gram matrix.
double mmd2_of_labelling(const std::vector<double>& K, const std::vector<char>& side, int64_t n, int64_t m) {
  const int64_t N = n + m;
  double xx = 0, yy = 0, xy = 0;
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = 0; j < N; ++j) {
      if (i == j) continue;
      const double k = K[static_cast<size_t>(i * N + j)];
      if (side[static_cast<size_t>(i)] && side[static_cast<size_t>(j)])
        xx += k;
      else if (!side[static_cast<size_t>(i)] && !side[static_cast<size_t>(j)])
        yy += k;
      else
        xy += k;  // each cross pair is seen twice
    }
  const double dn = static_cast<double>(n), dm = static_cast<double>(m);
  return xx / (dn * (dn - 1)) + yy / (dm * (dm - 1)) - xy / (dn * dm);
}

}  // namespace

double mmd2_unbiased(const Tensor& X, const Tensor& Y, double bandwidth) {
  const int64_t n = X.size(0), m = Y.size(0);
  std::vector<char> side(static_cast<size_t>(n + m), 0);
  std::fill(side.begin(), side.begin() + n, 1);
  return mmd2_of_labelling(pooled_gram(X, Y, bandwidth), side, n, m);
}

MMDTest mmd_permutation_test(const Tensor& X, const Tensor& Y, double bandwidth, int permutations, Generator& gen) {
  const int64_t n = X.size(0), m = Y.size(0);
  const std::vector<double> K = pooled_gram(X, Y, bandwidth);
  std::vector<char> side(static_cast<size_t>(n + m), 0);
  std::fill(side.begin(), side.begin() + n, 1);
  MMDTest t;
  t.mmd2 = mmd2_of_labelling(K, side, n, m);
  t.permutations = permutations;
  int as_large = 0;
  for (int p = 0; p < permutations; ++p) {
    for (int64_t i = n + m - 1; i > 0; --i) std::swap(side[static_cast<size_t>(i)], side[static_cast<size_t>(gen.randint(0, i + 1))]);
    if (mmd2_of_labelling(K, side, n, m) >= t.mmd2) ++as_large;
  }
  t.p_value = (1.0 + as_large) / (1.0 + permutations);
  return t;
}

double expected_kernel(const GaussianMixture& P, const GaussianMixture& Q, double h) {
  const int64_t d = P.D();
  if (Q.D() != d) throw Error("expected_kernel: mixtures in " + std::to_string(d) + " and " + std::to_string(Q.D()) + " dimensions");
  const Tensor pw = P.weights.to(DType::Float64), qw = Q.weights.to(DType::Float64);
  const Tensor pm = P.means.to(DType::Float64), qm = Q.means.to(DType::Float64);
  const Tensor pc = P.covs.to(DType::Float64), qc = Q.covs.to(DType::Float64);
  double total = 0;
  for (int64_t a = 0; a < P.K(); ++a)
    for (int64_t b = 0; b < Q.K(); ++b) {
      Tensor S = (select(pc, 0, a) + select(qc, 0, b)).contiguous_copy();  // h^2 I + A + B
      for (int64_t i = 0; i < d; ++i) S.data<double>()[i * d + i] += h * h;
      Tensor delta = reshape(select(pm, 0, a) - select(qm, 0, b), {d, 1});
      const double quad = mm(delta, mm(linalg::inverse(S), delta), true).item();
      total += pw.at(a) * qw.at(b) * std::exp(d * std::log(h) - 0.5 * linalg::log_det_spd(S) - 0.5 * quad);
    }
  return total;
}

double mmd2_gaussian_mixtures(const GaussianMixture& P, const GaussianMixture& Q, double h) {
  return expected_kernel(P, P, h) + expected_kernel(Q, Q, h) - 2 * expected_kernel(P, Q, h);
}

double energy_distance(const Tensor& a, const Tensor& b) {
  if (a.dim() != 2 || b.dim() != 2 || a.size(1) != 2 || b.size(1) != 2)
    throw Error("energy_distance: needs two [n, 2] samples, got " + a.shape().str() + " and " + b.shape().str());
  auto mean_dist = [](const Tensor& p, const Tensor& q) {
    const std::vector<double> pv = p.to_vector(), qv = q.to_vector();
    const size_t n = pv.size() / 2, m = qv.size() / 2;
    double s = 0;
    for (size_t i = 0; i < n; ++i)
      for (size_t j = 0; j < m; ++j) {  // in double, from float or double points: no overflow, so no need of hypot's care
        const double dx = pv[2 * i] - qv[2 * j], dy = pv[2 * i + 1] - qv[2 * j + 1];
        s += std::sqrt(dx * dx + dy * dy);
      }
    return s / static_cast<double>(n * m);
  };
  return mean_dist(a, b) - 0.5 * (mean_dist(a, a) + mean_dist(b, b));
}

}  // namespace dgm::models
