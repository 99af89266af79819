// dgm/models/toolkit/toy2d.cpp — built-in 2-D toy distributions.
#include "models/toolkit/toy2d.h"

#include <array>
#include <cmath>

namespace dgm::data {

namespace {

struct Gauss2 {
  double w, mx, my, sxx, sxy, syy;  // weight, mean, covariance
};
// The GaussianMixture toy.
const std::array<Gauss2, 2> kMixture = {{{0.3, -1.0, 0.0, 0.5, 0.2, 0.3}, {0.7, 1.5, 0.5, 0.3, -0.1, 0.4}}};

double log_normal2(double x, double y, const Gauss2& g) {
  const double det = g.sxx * g.syy - g.sxy * g.sxy;
  const double dx = x - g.mx, dy = y - g.my;
  const double q = (g.syy * dx * dx - 2 * g.sxy * dx * dy + g.sxx * dy * dy) / det;
  return -std::log(2 * M_PI) - 0.5 * std::log(det) - 0.5 * q;
}

double log_sum_exp(const double* v, int n) {
  double m = -INFINITY;
  for (int i = 0; i < n; ++i) m = std::max(m, v[i]);
  if (!std::isfinite(m)) return m;
  double s = 0;
  for (int i = 0; i < n; ++i) s += std::exp(v[i] - m);
  return m + std::log(s);
}

// Dark squares of the board: cells (i, j), i, j in {-2, -1, 0, 1}, with i + j even.
bool on_board(double x, double y) {
  if (x < -2 || x >= 2 || y < -2 || y >= 2) return false;
  const int i = static_cast<int>(std::floor(x)), j = static_cast<int>(std::floor(y));
  return ((i + j) % 2 + 2) % 2 == 0;
}

const double kRingSigma = 0.1;
const double kGridSigma = 0.05;

}  // namespace

std::vector<Toy> all_toys() {
  return {Toy::TwoMoons, Toy::EightGaussians, Toy::SwissRoll, Toy::Checkerboard, Toy::Rings, Toy::GaussianMixture, Toy::Grid25};
}

const char* toy_name(Toy t) {
  switch (t) {
    case Toy::TwoMoons: return "two_moons";
    case Toy::EightGaussians: return "8gaussians";
    case Toy::SwissRoll: return "swiss_roll";
    case Toy::Checkerboard: return "checkerboard";
    case Toy::Rings: return "rings";
    case Toy::GaussianMixture: return "gmm";
    case Toy::Grid25: return "grid25";
  }
  return "?";
}

Toy toy_from_name(const std::string& name) {
  std::string names;
  for (Toy t : all_toys()) {
    if (name == toy_name(t)) return t;
    names += std::string(names.empty() ? "" : ", ") + toy_name(t);
  }
  throw Error("unknown toy data set '" + name + "' (known: " + names + ")");
}

bool toy_has_density(Toy t) { return t != Toy::TwoMoons && t != Toy::SwissRoll; }

Tensor sample_toy(Toy t, int64_t n, Generator& gen) {
  if (n <= 0) throw Error(std::string("sample_toy: n must be positive for ") + toy_name(t));
  Tensor x = Tensor::empty({n, 2});
  float* p = x.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    double a = 0, b = 0;
    switch (t) {
      case Toy::TwoMoons: {
        // make_moons's distribution, each point drawn on its own: a moon with probability 1/2, an
        // angle uniform on [0, pi]. (two_moons() lays the angles out evenly, as make_moons does; two
        // such sets are far closer to each other than two independent samples: see toy2d.h.)
        const bool upper = gen.uniform01() < 0.5;
        const double ang = M_PI * gen.uniform01();
        a = (upper ? std::cos(ang) : 1 - std::cos(ang)) + 0.1 * gen.normal01();
        b = (upper ? std::sin(ang) : 0.5 - std::sin(ang)) + 0.1 * gen.normal01();
        break;
      }
      case Toy::EightGaussians: {
        const double ang = 2 * M_PI * static_cast<double>(gen.randint(0, 8)) / 8;
        a = 2 * std::cos(ang) + 0.2 * gen.normal01();
        b = 2 * std::sin(ang) + 0.2 * gen.normal01();
        break;
      }
      case Toy::Grid25: {
        const int64_t k = gen.randint(0, 25);
        a = static_cast<double>(k / 5 - 2) + kGridSigma * gen.normal01();
        b = static_cast<double>(k % 5 - 2) + kGridSigma * gen.normal01();
        break;
      }
      case Toy::SwissRoll: {
        const double s = 1.5 * M_PI * (1 + 2 * gen.uniform01());
        a = s * std::cos(s) / 5 + 0.1 * gen.normal01();
        b = s * std::sin(s) / 5 + 0.1 * gen.normal01();
        break;
      }
      case Toy::Checkerboard: {
        // 8 dark cells: pick one uniformly, then a uniform point inside it
        const int64_t k = gen.randint(0, 8);
        const int64_t row = k / 2, col = 2 * (k % 2) + (row % 2);  // (col + row) even
        a = -2 + static_cast<double>(col) + gen.uniform01();
        b = -2 + static_cast<double>(row) + gen.uniform01();
        break;
      }
      case Toy::Rings: {
        const double r = (gen.uniform01() < 0.5 ? 1.0 : 2.0) + kRingSigma * gen.normal01();
        const double ang = 2 * M_PI * gen.uniform01();
        a = r * std::cos(ang);
        b = r * std::sin(ang);
        break;
      }
      case Toy::GaussianMixture: {
        const Gauss2& g = gen.uniform01() < kMixture[0].w ? kMixture[0] : kMixture[1];
        // Cholesky of [[sxx, sxy], [sxy, syy]]
        const double l11 = std::sqrt(g.sxx), l21 = g.sxy / l11, l22 = std::sqrt(g.syy - l21 * l21);
        const double z1 = gen.normal01(), z2 = gen.normal01();
        a = g.mx + l11 * z1;
        b = g.my + l21 * z1 + l22 * z2;
        break;
      }
      default: break;
    }
    p[2 * i] = static_cast<float>(a);
    p[2 * i + 1] = static_cast<float>(b);
  }
  return x;
}

Tensor toy_log_prob(Toy t, const Tensor& x) {
  if (!toy_has_density(t)) throw Error(std::string("toy_log_prob: ") + toy_name(t) + " has no closed-form density");
  if (x.dim() != 2 || x.size(1) != 2) throw Error("toy_log_prob: expects points [n, 2], got " + x.shape().str());
  const int64_t n = x.size(0);
  Tensor out = Tensor::empty({n}, DType::Float64);
  double* po = out.data<double>();
  for (int64_t i = 0; i < n; ++i) {
    const double a = x.at(2 * i), b = x.at(2 * i + 1);
    switch (t) {
      case Toy::EightGaussians: {
        double terms[8];
        for (int k = 0; k < 8; ++k) {
          const double ang = 2 * M_PI * k / 8;
          terms[k] = std::log(1.0 / 8) + log_normal2(a, b, {1, 2 * std::cos(ang), 2 * std::sin(ang), 0.04, 0, 0.04});
        }
        po[i] = log_sum_exp(terms, 8);
        break;
      }
      case Toy::Grid25: {
        double terms[25];
        const double v = kGridSigma * kGridSigma;
        for (int k = 0; k < 25; ++k) terms[k] = std::log(1.0 / 25) + log_normal2(a, b, {1, static_cast<double>(k / 5 - 2), static_cast<double>(k % 5 - 2), v, 0, v});
        po[i] = log_sum_exp(terms, 25);
        break;
      }
      case Toy::Checkerboard: po[i] = on_board(a, b) ? std::log(1.0 / 8) : -INFINITY; break;
      case Toy::Rings: {
        // polar change of variables: p(x) = p(r) / (2 pi r), p(r) = 1/2 N(r; 1, s) + 1/2 N(r; 2, s)
        const double r = std::hypot(a, b);
        double terms[2];
        for (int k = 0; k < 2; ++k) {
          const double d = (r - (k + 1)) / kRingSigma;
          terms[k] = std::log(0.5) - 0.5 * d * d - std::log(kRingSigma * std::sqrt(2 * M_PI));
        }
        po[i] = log_sum_exp(terms, 2) - std::log(2 * M_PI * r);
        break;
      }
      case Toy::GaussianMixture: {
        double terms[2];
        for (int k = 0; k < 2; ++k) terms[k] = std::log(kMixture[k].w) + log_normal2(a, b, kMixture[k]);
        po[i] = log_sum_exp(terms, 2);
        break;
      }
      default: break;
    }
  }
  return out;
}

Modes toy_modes(Toy t) {
  std::vector<double> c;
  Modes m;
  if (t == Toy::EightGaussians) {
    for (int k = 0; k < 8; ++k) c.push_back(2 * std::cos(2 * M_PI * k / 8)), c.push_back(2 * std::sin(2 * M_PI * k / 8));
    m.sigma = 0.2;
  } else if (t == Toy::Grid25) {
    for (int k = 0; k < 25; ++k) c.push_back(k / 5 - 2), c.push_back(k % 5 - 2);
    m.sigma = kGridSigma;
  } else {
    throw Error(std::string("toy_modes: ") + toy_name(t) + " is not a mixture of equal isotropic Gaussians (8gaussians, grid25 are)");
  }
  m.centres = Tensor::from_vector(c, {static_cast<int64_t>(c.size() / 2), 2});
  return m;
}

Coverage mode_coverage(const Modes& modes, const Tensor& samples, double min_share) {
  if (samples.dim() != 2 || samples.size(1) != 2) throw Error("mode_coverage: expects points [n, 2], got " + samples.shape().str());
  Coverage c;
  c.modes = modes.centres.size(0);
  c.shares.assign(static_cast<size_t>(c.modes), 0.0);
  const int64_t n = samples.size(0);
  const std::vector<double> x = samples.to_vector(), m = modes.centres.to_vector();
  for (int64_t i = 0; i < n; ++i) {
    int64_t best = -1;
    double best_d = INFINITY;
    for (int64_t k = 0; k < c.modes; ++k) {
      const double d = std::hypot(x[2 * i] - m[2 * k], x[2 * i + 1] - m[2 * k + 1]);
      if (d < best_d) best_d = d, best = k;
    }
    if (best_d <= 3 * modes.sigma) c.shares[static_cast<size_t>(best)] += 1.0 / static_cast<double>(n);
  }
  for (double s : c.shares) {
    c.high_quality_share += s;
    c.modes_covered += s >= min_share;
  }
  return c;
}

Labelled2D two_moons(int64_t n, double noise, Generator& gen) {
  if (n <= 0) throw Error("two_moons: n must be positive, got " + std::to_string(n));
  Tensor x = Tensor::empty(Shape{n, 2}, DType::Float32);
  Tensor y = Tensor::empty(Shape{n}, DType::Int64);
  float* px = x.data<float>();
  int64_t* py = y.data<int64_t>();
  const int64_t n_upper = n / 2 + n % 2, n_lower = n / 2;
  for (int64_t i = 0; i < n; ++i) {
    const bool upper = i < n_upper;
    const int64_t j = upper ? i : i - n_upper;
    const int64_t count = upper ? n_upper : n_lower;
    const double t = count > 1 ? M_PI * static_cast<double>(j) / static_cast<double>(count - 1) : 0.0;
    const double a = upper ? std::cos(t) : 1.0 - std::cos(t);
    const double b = upper ? std::sin(t) : 0.5 - std::sin(t);
    px[2 * i] = static_cast<float>(a + noise * gen.normal01());
    px[2 * i + 1] = static_cast<float>(b + noise * gen.normal01());
    py[i] = upper ? 0 : 1;
  }
  return {x, y};
}

}  // namespace dgm::data
