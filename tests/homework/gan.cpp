// Known wrong solutions of the GAN homework lose points.
#include "autograd/graph.h"
#include "homework/gan/exercises.h"
#include "tests/homework/helpers.h"

using namespace hw::gan;
using hw_test::grade;

TEST_CASE("gan homework: wrong generator losses lose points", "[homework]") {
  Functions f = linked();
  SECTION("the saturating loss E log(1 - D(G(z)))") {
    f.generator_loss_non_saturating = [](const Tensor& l) { return dgm::mean(dgm::log(1.0 - dgm::sigmoid(l))); };
    hw_test::require_caught(grade(exercises(f), "generator_loss_non_saturating"), "non-saturating");
  }
  SECTION("-log(sigmoid(l)), unstabilised") {
    f.generator_loss_non_saturating = [](const Tensor& l) { return dgm::mean(-dgm::log(dgm::sigmoid(l))); };
    hw_test::require_caught(grade(exercises(f), "generator_loss_non_saturating"), "stable");
  }
  SECTION("a sum over the batch, not a mean") {
    f.generator_loss_non_saturating = [](const Tensor& l) { return dgm::sum(dgm::softplus(-l)); };
    hw_test::require_caught(grade(exercises(f), "generator_loss_non_saturating"), "long double");
  }
}

namespace {
Tensor penalty_with(const Critic& critic, const Tensor& x_hat_in, bool create_graph, bool squared_norm) {
  const Tensor x_hat = x_hat_in.detach().set_requires_grad(true);
  const Tensor g = dgm::grad({dgm::sum(critic(x_hat))}, {x_hat}, {}, true, create_graph)[0];
  const Tensor sq = dgm::sum(dgm::square(g), {1});
  return dgm::mean(dgm::square((squared_norm ? sq : dgm::sqrt(sq)) - 1.0));
}
}  // namespace

TEST_CASE("gan homework: wrong gradient penalties lose points", "[homework]") {
  Functions f = linked();
  SECTION("no create_graph: the penalty never reaches the critic's parameters") {
    f.gradient_penalty = [](const Critic& c, const Tensor& r, const Tensor& fk, const Tensor& eps) {
      return penalty_with(c, eps * r + (1.0 - eps) * fk, false, false);
    };
    hw_test::require_caught(grade(exercises(f), "gradient_penalty"), "double backward");
  }
  SECTION("the squared norm") {
    f.gradient_penalty = [](const Critic& c, const Tensor& r, const Tensor& fk, const Tensor& eps) {
      return penalty_with(c, eps * r + (1.0 - eps) * fk, true, true);
    };
    hw_test::require_caught(grade(exercises(f), "gradient_penalty"), "linear critic");
  }
  SECTION("the gradient at the real samples, not at the interpolates") {
    f.gradient_penalty = [](const Critic& c, const Tensor& r, const Tensor&, const Tensor&) { return penalty_with(c, r, true, false); };
    hw_test::require_caught(grade(exercises(f), "gradient_penalty"), "quadratic critic");
  }
}
