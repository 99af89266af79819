// Known wrong solutions of the flows homework lose points.
#include <cmath>

#include "homework/flows/exercises.h"
#include "tests/homework/helpers.h"

using namespace hw::flows;
using hw_test::grade;

TEST_CASE("flows homework: wrong coupling layers lose points", "[homework]") {
  Functions f = linked();
  SECTION("the log-det summed over every dimension, the passed-through ones too") {
    f.coupling_forward = [](const Tensor& x, const Tensor& b, const Conditioner& net) {
      const ScaleShift st = net(b * x);
      const Tensor s = st.log_scale * (1.0 - b);
      return Coupled{b * x + (1.0 - b) * (x * dgm::exp(s) + st.shift), dgm::sum(st.log_scale, {1})};
    };
    const auto r = grade(exercises(f), "coupling_forward");
    hw_test::require_caught(r, "engine's Jacobian");
    hw_test::require_caught(r, "integrates to 1");
  }
  SECTION("the log-det detached (right values, but the scale network never learns from it)") {
    f.coupling_forward = [](const Tensor& x, const Tensor& b, const Conditioner& net) {
      const ScaleShift st = net(b * x);
      const Tensor s = st.log_scale * (1.0 - b);
      return Coupled{b * x + (1.0 - b) * (x * dgm::exp(s) + st.shift), dgm::sum(s, {1}).detach()};
    };
    const auto r = grade(exercises(f), "coupling_forward");
    hw_test::require_caught(r, "gradcheck");
    hw_test::require_caught(r, "trains the scale network");
    REQUIRE(r.earned <= 3.0 + 1e-9);  // the case: it kept 9 of 10 points
  }
  SECTION("the inverse scales by exp(s) instead of exp(-s)") {
    f.coupling_inverse = [](const Tensor& y, const Tensor& b, const Conditioner& net) {
      const ScaleShift st = net(b * y);
      return b * y + (1.0 - b) * (y - st.shift) * dgm::exp(st.log_scale * (1.0 - b));
    };
    hw_test::require_caught(grade(exercises(f), "coupling_inverse"), "undoes the grader's forward");
  }
  SECTION("the network sees all of x, not b * x") {
    f.coupling_forward = [](const Tensor& x, const Tensor& b, const Conditioner& net) {
      const ScaleShift st = net(x);
      const Tensor s = st.log_scale * (1.0 - b);
      return Coupled{b * x + (1.0 - b) * (x * dgm::exp(s) + st.shift), dgm::sum(s, {1})};
    };
    hw_test::require_caught(grade(exercises(f), "coupling_forward"), "engine's Jacobian");
  }
}

TEST_CASE("flows homework: wrong bits/dim bookkeeping loses points", "[homework]") {
  Functions f = linked();
  auto bpd = [](const Tensor& log_p_u, int64_t D, double levels, double log_base) {
    return -(log_p_u - D * std::log(levels)) / (D * log_base);
  };
  SECTION("the logit transform's log-det forgotten") {
    f.bits_per_dim = [bpd](const Tensor& log_p_y, const Tensor& u, int64_t levels, double) {
      return bpd(log_p_y, u.numel() / u.size(0), static_cast<double>(levels), std::log(2.0));
    };
    hw_test::require_caught(grade(exercises(f), "bits_per_dim"), "uniform model");
  }
  SECTION("nats, not bits") {
    f.bits_per_dim = [](const Tensor& log_p_y, const Tensor& u, int64_t levels, double alpha) {
      return bits_per_dim(log_p_y, u, levels, alpha) * std::log(2.0);
    };
    hw_test::require_caught(grade(exercises(f), "bits_per_dim"), "uniform model");
  }
  SECTION("dequantizing by levels - 1") {
    f.dequantize = [](const Tensor& k, const Tensor& noise, int64_t levels) { return (k + noise) / static_cast<double>(levels - 1); };
    hw_test::require_caught(grade(exercises(f), "dequantize"), "inside k's cube");
  }
  SECTION("the - D log levels term forgotten") {
    f.bits_per_dim = [](const Tensor& log_p_y, const Tensor& u, int64_t levels, double alpha) {
      const double D = static_cast<double>(u.numel() / u.size(0));
      return bits_per_dim(log_p_y, u, levels, alpha) - std::log2(static_cast<double>(levels)) + 0 * D;
    };
    hw_test::require_caught(grade(exercises(f), "bits_per_dim"), "uniform model");
  }
}
