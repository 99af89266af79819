// Known wrong solutions of the engine homework lose points (and the reference gets full marks).
#include <algorithm>
#include <deque>
#include <unordered_set>

#include "homework/engine/exercises.h"
#include "tests/homework/helpers.h"

using namespace hw::engine;
using hw_test::grade;

TEST_CASE("engine homework: wrong softplus backwards lose points", "[homework]") {
  Functions f = linked();
  SECTION("e^x / (1 + e^x) overflows at x = 800") {
    f.softplus_backward = [](const Tensor& x, const Tensor& g) { return g * dgm::exp(x) / (1.0 + dgm::exp(x)); };
    hw_test::require_caught(grade(exercises(f), "softplus_backward"), "stable at |x| = 800");
  }
  SECTION("forgetting to multiply by g") {
    f.softplus_backward = [](const Tensor& x, const Tensor&) { return dgm::sigmoid(x); };
    hw_test::require_caught(grade(exercises(f), "softplus_backward"), "gradcheck");
  }
  SECTION("sigmoid(-x)") {
    f.softplus_backward = [](const Tensor& x, const Tensor& g) { return g * dgm::sigmoid(-x); };
    hw_test::require_caught(grade(exercises(f), "softplus_backward"), "long double");
  }
  SECTION("right values from a raw loop, with no graph of their own") {
    f.softplus_backward = [](const Tensor& x, const Tensor& g) {
      Tensor out = Tensor::empty(x.shape(), x.dtype());
      const Tensor s = dgm::sigmoid(x.detach()) * g.detach();
      out.copy_(s);
      return out;
    };
    hw_test::require_caught(grade(exercises(f), "softplus_backward"), "gradgradcheck");
  }
}

TEST_CASE("engine homework: wrong sum_to's lose points", "[homework]") {
  Functions f = linked();
  SECTION("summing only the leading axes") {
    f.sum_to = [](const Tensor& g, const Shape& s) {
      dgm::Axes axes;
      for (size_t i = 0; i + s.size() < g.dim(); ++i) axes.push_back(static_cast<int64_t>(i));
      return axes.empty() ? g : dgm::sum(g, axes);
    };
    hw_test::require_caught(grade(exercises(f), "sum_to"), "values are the engine's");
  }
  SECTION("summing the size-1 axes without keeping them") {
    f.sum_to = [](const Tensor& g, const Shape& s) {
      dgm::Axes axes;
      const size_t lead = g.dim() - s.size();
      for (size_t i = 0; i < g.dim(); ++i)
        if (i < lead || (s[i - lead] == 1 && g.shape()[i] != 1)) axes.push_back(static_cast<int64_t>(i));
      return axes.empty() ? g : dgm::sum(g, axes);
    };
    hw_test::require_caught(grade(exercises(f), "sum_to"), "target shape");
  }
  SECTION("no error for an impossible shape") {
    f.sum_to = [](const Tensor& g, const Shape& s) { return g.dim() == 2 && s.size() == 1 && s[0] == 4 ? Tensor::zeros(s, g.dtype()) : dgm::sum_to(g, s); };
    hw_test::require_caught(grade(exercises(f), "sum_to"), "error naming both shapes");
  }
}

TEST_CASE("engine homework: wrong topological sorts lose points", "[homework]") {
  Functions f = linked();
  SECTION("depth-first pre-order without a visited set (nodes repeat)") {
    f.topological_sort = [](const Tensor& out) {
      std::vector<Node*> order, stack{out.grad_fn().get()};
      while (!stack.empty()) {
        Node* n = stack.back();
        stack.pop_back();
        order.push_back(n);
        for (const auto& next : n->next)
          if (next) stack.push_back(next.get());
      }
      return order;
    };
    hw_test::require_caught(grade(exercises(f), "topological_sort"), "each once");
  }
  SECTION("post-order, not reversed") {
    f.topological_sort = [](const Tensor& out) {
      std::vector<Node*> order = topological_sort(out);
      std::reverse(order.begin(), order.end());
      return order;
    };
    hw_test::require_caught(grade(exercises(f), "topological_sort"), "comes before");
  }
  SECTION("breadth-first order") {
    f.topological_sort = [](const Tensor& out) {
      std::vector<Node*> order;
      std::unordered_set<Node*> seen{out.grad_fn().get()};
      std::deque<Node*> queue{out.grad_fn().get()};
      while (!queue.empty()) {
        Node* n = queue.front();
        queue.pop_front();
        order.push_back(n);
        for (const auto& next : n->next)
          if (next && seen.insert(next.get()).second) queue.push_back(next.get());
      }
      return order;
    };
    hw_test::require_caught(grade(exercises(f), "topological_sort"), "comes before");
  }
}
