// Known wrong solutions of the conditional homework lose points.
#include "homework/conditional/exercises.h"
#include "tests/homework/helpers.h"

using namespace hw::conditional;
using hw_test::grade;

TEST_CASE("conditional homework: wrong guidance loses points", "[homework]") {
  Functions f = linked();
  SECTION("an interpolation w eps(y) + (1 - w) eps(none) instead of the extrapolation") {
    f.guided_noise = [](const Tensor& c, const Tensor& u, double w) { return c * w + u * (1 - w); };
    hw_test::require_caught(grade(exercises(f), "guided_noise"), "equals (1 + w)");
  }
  SECTION("the two predictions swapped") {
    f.guided_noise = [](const Tensor& c, const Tensor& u, double w) { return u * (1 + w) - c * w; };
    hw_test::require_caught(grade(exercises(f), "guided_noise"), "engine's conditional DDPM");
  }
}

TEST_CASE("conditional homework: wrong label dropout loses points", "[homework]") {
  Functions f = linked();
  SECTION("dropped to class 0 instead of the none index") {
    f.drop_labels = [](const Tensor& y, int64_t, double p, Generator& gen) {
      std::vector<int64_t> v;
      for (int64_t i = 0; i < y.numel(); ++i) v.push_back(gen.uniform01() < p ? 0 : static_cast<int64_t>(y.at(i)));
      return Tensor::from_indices(v, {y.numel()});
    };
    hw_test::require_caught(grade(exercises(f), "drop_labels"), "never to a real class");
  }
  SECTION("kept with probability p_uncond instead of dropped") {
    f.drop_labels = [](const Tensor& y, int64_t classes, double p, Generator& gen) {
      std::vector<int64_t> v;
      for (int64_t i = 0; i < y.numel(); ++i) v.push_back(gen.uniform01() < p ? static_cast<int64_t>(y.at(i)) : classes);
      return Tensor::from_indices(v, {y.numel()});
    };
    hw_test::require_caught(grade(exercises(f), "drop_labels"), "share dropped");
  }
  SECTION("one draw per batch: the whole batch dropped or kept") {
    f.drop_labels = [](const Tensor& y, int64_t classes, double p, Generator& gen) {
      const bool drop = gen.uniform01() < p;
      std::vector<int64_t> v;
      for (int64_t i = 0; i < y.numel(); ++i) v.push_back(drop ? classes : static_cast<int64_t>(y.at(i)));
      return Tensor::from_indices(v, {y.numel()});
    };
    hw_test::require_caught(grade(exercises(f), "drop_labels"), "share dropped");
  }
}

TEST_CASE("conditional homework: wrong SIR weights lose points", "[homework]") {
  Functions f = linked();
  SECTION("the prior left out: log p(y | x)") {
    f.sir_log_weights = [](const Tensor& logits, const Tensor&, int64_t target) {
      return dgm::select(dgm::log_softmax(logits, 1), 1, target);
    };
    hw_test::require_caught(grade(exercises(f), "sir_log_weights"), "long double");
  }
  SECTION("the raw logit taken for log p(y | x)") {
    f.sir_log_weights = [](const Tensor& logits, const Tensor& log_prior, int64_t target) {
      return dgm::select(logits, 1, target) - log_prior.at(target);
    };
    hw_test::require_caught(grade(exercises(f), "sir_log_weights"), "long double");
  }
  SECTION("softmax by exp, then log (overflows at large logits)") {
    f.sir_log_weights = [](const Tensor& logits, const Tensor& log_prior, int64_t target) {
      const Tensor p = dgm::exp(logits);
      return dgm::log(dgm::select(p, 1, target) / dgm::sum(p, {1})) - log_prior.at(target);
    };
    hw_test::require_caught(grade(exercises(f), "sir_log_weights"), "stable");
  }
}
