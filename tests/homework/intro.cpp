// Known wrong solutions of the intro homework lose points.
#include "homework/intro/exercises.h"
#include "tests/homework/helpers.h"

using namespace hw::intro;
using hw_test::grade;

TEST_CASE("intro homework: wrong Bayes' rules lose points", "[homework]") {
  Functions f = linked();
  SECTION("exp, then normalise (underflows for real images)") {
    f.class_posterior = [](const Tensor& lpx, const Tensor& lprior) {
      const Tensor p = dgm::exp(lpx + lprior);
      return p / dgm::sum(p, {1}, true);
    };
    hw_test::require_caught(grade(exercises(f), "class_posterior"), "stable");
  }
  SECTION("the prior left out") {
    f.class_posterior = [](const Tensor& lpx, const Tensor&) { return dgm::softmax(lpx, 1); };
    hw_test::require_caught(grade(exercises(f), "class_posterior"), "long double");
  }
}

TEST_CASE("intro homework: wrong AUROCs lose points", "[homework]") {
  Functions f = linked();
  SECTION("ties counted as losses") {
    f.auroc = [](const std::vector<double>& in, const std::vector<double>& out) {
      double wins = 0;
      for (double a : in)
        for (double b : out) wins += a > b;
      return wins / (static_cast<double>(in.size()) * static_cast<double>(out.size()));
    };
    hw_test::require_caught(grade(exercises(f), "auroc"), "ties");
  }
  SECTION("the wrong way round") {
    f.auroc = [](const std::vector<double>& in, const std::vector<double>& out) { return auroc(out, in); };
    hw_test::require_caught(grade(exercises(f), "auroc"), "pairs ranked right");
  }
}
