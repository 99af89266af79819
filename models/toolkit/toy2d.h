// dgm/models/toolkit/toy2d.h — built-in 2-D toy distributions (no download needed).
//
// They are what tests and --quick runs use. Where a toy's density is known in
// closed form, toy_log_prob() gives it, so a model's density can be compared
// with the truth and a density can be integrated to one on a grid.
#pragma once

#include <string>
#include <vector>

#include "autograd/random.h"

namespace dgm::data {

enum class Toy {
  TwoMoons,        // two interleaving half circles, N(0, 0.1^2) noise (no closed-form density)
  EightGaussians,  // 8 equal-weight N(m_k, 0.2^2 I), m_k on the circle of radius 2
  SwissRoll,       // a spiral (t cos t, t sin t)/5, t in [1.5 pi, 4.5 pi], N(0, 0.1^2) noise (no density)
  Checkerboard,    // uniform on the 8 dark squares of a 4x4 board on [-2, 2]^2: density 1/8 there
  Rings,           // two rings, radius ~ N(1, 0.1^2) or N(2, 0.1^2), uniform angle
  GaussianMixture, // 0.3 N(m1, S1) + 0.7 N(m2, S2), full covariances
  Grid25           // 25 equal-weight N(m_k, 0.05^2 I), m_k on the grid {-2, -1, 0, 1, 2}^2 (GAN mode counting)
};

std::vector<Toy> all_toys();
const char* toy_name(Toy t);                 // "two_moons", "8gaussians", ...
Toy toy_from_name(const std::string& name);  // throws listing the names
bool toy_has_density(Toy t);

// n independent samples, [n, 2] float32. TwoMoons: the distribution of two_moons() below (a moon
// with probability 1/2, its angle uniform), each point drawn independently -- not make_moons's
// evenly spaced angles, whose sets are more alike than samples can be: the energy distance
// between two evenly spaced sets of 1,500 is 1/4 of that between one and an independent sample.
Tensor sample_toy(Toy t, int64_t n, Generator& gen);
// log p(x) for x [n, 2] (any float dtype), as float64 [n]. Throws for toys without a density.
// Rings: the radial density is a Gaussian truncated at r = 0 (mass below 1e-22, ignored).
Tensor toy_log_prob(Toy t, const Tensor& x);

// The modes of a toy made of equal-weight isotropic Gaussians (EightGaussians,
// Grid25): their centres [K, 2] float64 and their standard deviation; what mode
// coverage is counted against. Throws for the other toys.
struct Modes {
  Tensor centres;
  double sigma = 0;
};
Modes toy_modes(Toy t);
// Mode coverage of samples [n, 2]: a sample is "high quality" when it lies within
// 3 sigma of a centre (Euclidean distance); a mode is covered when at least
// `min_share` of all samples are high-quality samples of it.
struct Coverage {
  int64_t modes_covered = 0, modes = 0;
  double high_quality_share = 0;
  std::vector<double> shares;  // per mode
};
Coverage mode_coverage(const Modes& modes, const Tensor& samples, double min_share);

struct Labelled2D {
  Tensor x;       // [n, 2] float32
  Tensor labels;  // [n] int64
};

// Two interleaving half circles (scikit-learn's make_moons): label 0 is the
// upper moon centred at (0, 0), label 1 the lower one centred at (1, 0.5);
// each point gets N(0, noise^2) added per coordinate. As make_moons, the first
// ceil(n / 2) points are the upper moon and the angles are evenly spaced (a
// classification set); sample_toy(Toy::TwoMoons, ...) draws from the same
// distribution independently (a density's training and held-out data).
Labelled2D two_moons(int64_t n, double noise, Generator& gen);

}  // namespace dgm::data
