// Known wrong solutions of the likelihood homework lose points.
#include <cmath>

#include "homework/likelihood/exercises.h"
#include "tests/homework/helpers.h"

using namespace hw::likelihood;
using hw_test::grade;

TEST_CASE("likelihood homework: wrong rANS steps lose points", "[homework]") {
  Functions f = linked();
  SECTION("no renormalisation (the state overflows)") {
    f.rans_put = [](uint32_t x, uint32_t freq, uint32_t start, std::vector<uint8_t>&) { return ((x / freq) << 16) + (x % freq) + start; };
    hw_test::require_caught(grade(exercises(f), "rans_put"), "decoder gives back");
  }
  SECTION("renormalising against 2^23 * freq (a bound 2^16 too high)") {
    f.rans_put = [](uint32_t x, uint32_t freq, uint32_t start, std::vector<uint8_t>& out) {
      while (static_cast<uint64_t>(x) >= (static_cast<uint64_t>(1) << 23) * freq) { out.push_back(x & 0xff); x >>= 8; }
      return ((x / freq) << 16) + (x % freq) + start;
    };
    hw_test::require_caught(grade(exercises(f), "rans_put"), "decoder gives back");
  }
  SECTION("x mod freq left out") {
    f.rans_put = [](uint32_t x, uint32_t freq, uint32_t start, std::vector<uint8_t>& out) {
      while (x >= ((1u << 23 >> 16) << 8) * freq) { out.push_back(x & 0xff); x >>= 8; }
      return ((x / freq) << 16) + start;
    };
    hw_test::require_caught(grade(exercises(f), "rans_put"), "one step");
  }
}

TEST_CASE("likelihood homework: wrong MMD estimates lose points", "[homework]") {
  Functions f = linked();
  SECTION("the biased V-statistic (i = j terms kept)") {
    f.mmd2_unbiased = [](const Tensor& X, const Tensor& Y, double h) {
      const double n = static_cast<double>(X.size(0)), m = static_cast<double>(Y.size(0));
      const double u = mmd2_unbiased(X, Y, h);
      auto within = [h](const Tensor& A) {
        const int64_t n = A.size(0), d = A.size(1);
        double s = 0;
        for (int64_t i = 0; i < n; ++i)
          for (int64_t j = 0; j < n; ++j) {
            double sq = 0;
            for (int64_t c = 0; c < d; ++c) sq += std::pow(A.at(i * d + c) - A.at(j * d + c), 2);
            s += std::exp(-sq / (2 * h * h));
          }
        return s;
      };
      const double wx = within(X), wy = within(Y);
      // replace the unbiased within-sample terms by the biased ones
      return u - (wx - n) / (n * (n - 1)) - (wy - m) / (m * (m - 1)) + wx / (n * n) + wy / (m * m);
    };
    hw_test::require_caught(grade(exercises(f), "mmd2_unbiased"), "unbiased");
  }
  SECTION("the kernel without the factor 2 (exp(-|x - y|^2 / h^2))") {
    f.mmd2_unbiased = [](const Tensor& X, const Tensor& Y, double h) { return mmd2_unbiased(X, Y, h / std::sqrt(2.0)); };
    hw_test::require_caught(grade(exercises(f), "mmd2_unbiased"), "long-double sums");
  }
}
