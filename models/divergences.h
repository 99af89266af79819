// dgm/models/divergences.h — comparing a model with data through samples only:
// the maximum mean discrepancy (Gretton et al., "A kernel two-sample test",
// JMLR 2012), with the Gaussian kernel k(x, y) = exp(-|x - y|^2 / (2 h^2)).
//
//   MMD^2(P, Q) = E k(x, x') + E k(y, y') - 2 E k(x, y),   x, x' ~ P,  y, y' ~ Q
// is 0 exactly when P = Q (the Gaussian kernel is characteristic). Its
// unbiased estimate from samples X (n) and Y (m) leaves out the i = j terms:
//   MMD^2_u = sum_{i != j} k(x_i, x_j) / (n (n-1)) + sum_{i != j} k(y_i, y_j) / (m (m-1))
//             - 2 sum_{i, j} k(x_i, y_j) / (n m)
// The permutation test: under P = Q the labels "model" and "data" are
// exchangeable, so the estimate on random relabellings of the pooled samples
// is its null distribution; p = (1 + #{permuted >= observed}) / (1 + permutations).
// Between two Gaussian mixtures MMD^2 has a closed form (each E k is a sum over
// component pairs of a Gaussian integral), which is what the estimator is checked against.
#pragma once

#include "autograd/random.h"
#include "models/mixtures.h"

namespace dgm::models {

// X [n, d], Y [m, d] (any float dtype; computed in float64).
double mmd2_unbiased(const Tensor& X, const Tensor& Y, double bandwidth);

struct MMDTest {
  double mmd2 = 0;     // the unbiased estimate on the real labelling
  double p_value = 1;  // (1 + #{permuted >= observed}) / (1 + permutations)
  int permutations = 0;
};
MMDTest mmd_permutation_test(const Tensor& X, const Tensor& Y, double bandwidth, int permutations, Generator& gen);

// E k(x, y) for x ~ N(a, A), y ~ N(b, B) in d dimensions:
//   h^d / sqrt(det(h^2 I + A + B)) exp(-(a - b)^T (h^2 I + A + B)^-1 (a - b) / 2)
// summed over the two mixtures' components with their weights.
double expected_kernel(const GaussianMixture& P, const GaussianMixture& Q, double bandwidth);
// MMD^2(P, Q) in closed form.
double mmd2_gaussian_mixtures(const GaussianMixture& P, const GaussianMixture& Q, double bandwidth);

// The energy distance E|X - Y| - (E|X - X'| + E|Y - Y'|) / 2 between two samples of 2-D points
// (V-statistics; Szekely & Rizzo 2013), what the 2-D samples of the diffusion and MCMC chapters are
// measured by. Its population value is 0 when the distributions are equal; from samples it is biased
// up by about E|X - X'| / (2n) + E|Y - Y'| / (2m) (each sample's own pairs include its n zero
// distances), so compare it with the same statistic for real samples of the same sizes.
// a [n, 2], b [m, 2], any float dtype.
double energy_distance(const Tensor& a, const Tensor& b);

}  // namespace dgm::models
