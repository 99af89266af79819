// The graph: accumulation, retain_graph, freed buffers, in-place safety,
// no-grad, detach, deep graphs, to_dot.
#include "helpers.h"

#include "autograd/graph.h"
#include "autograd/graphviz.h"

using namespace dgm;
using namespace dgm::test;

TEST_CASE("gradients accumulate into leaves until zero_grad", "[graph]") {
  Tensor x = Tensor::from_vector(std::vector<float>{1, 2, 3}, {3}).set_requires_grad(true);
  sum(x * x).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{2, 4, 6});
  sum(x * 3.0).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{5, 7, 9});
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("a leaf used twice gets both contributions, and shared gradients are not aliased", "[graph]") {
  Tensor a = Tensor::from_vector(std::vector<float>{1, 2}, {2}).set_requires_grad(true);
  Tensor b = Tensor::from_vector(std::vector<float>{3, 4}, {2}).set_requires_grad(true);
  sum(a + b + a).backward();
  CHECK(a.grad().to_vector() == std::vector<double>{2, 2});
  CHECK(b.grad().to_vector() == std::vector<double>{1, 1});
  // scaling one gradient in place must not change the other
  Tensor c = Tensor::from_vector(std::vector<float>{1, 1}, {2}).set_requires_grad(true);
  Tensor d = Tensor::from_vector(std::vector<float>{1, 1}, {2}).set_requires_grad(true);
  sum(c + d).backward();
  {
    NoGradGuard ng;
    c.grad().mul_(10.0);
  }
  CHECK(d.grad().to_vector() == std::vector<double>{1, 1});
}

TEST_CASE("a second backward through a freed graph is a clear error", "[graph]") {
  Tensor x = Tensor::from_vector(std::vector<float>{1, 2}, {2}).set_requires_grad(true);
  Tensor y = sum(tanh(x));
  y.backward();
  std::string msg = error_of([&] { y.backward(); });
  CHECK_THAT(msg, Catch::Contains("already freed") && Catch::Contains("retain_graph=true"));
}

TEST_CASE("retain_graph allows a second backward", "[graph]") {
  Tensor x = Tensor::from_vector(std::vector<float>{1, 2}, {2}).set_requires_grad(true);
  Tensor y = sum(x * x);
  y.backward(Tensor(), /*retain_graph=*/true);
  y.backward();
  CHECK(x.grad().to_vector() == std::vector<double>{4, 8});
}

TEST_CASE("the graph's buffers are freed after backward", "[graph][memory]") {
  const LiveCounts before = live_counts();
  int64_t during_bytes = 0;
  {
    Generator g(1);
    Tensor x = g.normal({64, 64}).set_requires_grad(true);
    Tensor w = g.normal({64, 64}).set_requires_grad(true);
    Tensor h = x;
    for (int i = 0; i < 10; ++i) h = tanh(matmul(h, w));
    Tensor loss = sum(h);
    h = Tensor();
    const LiveCounts during = live_counts();
    during_bytes = during.bytes;
    CHECK(during.nodes >= 21);  // 10 matmul + 10 tanh + sum
    loss.backward();
    const LiveCounts after_backward = live_counts();
    // the saved activations are gone; x, w, their grads and the loss remain
    const int64_t kept = 4 * 64 * 64 * 4 + 4 * 4;
    CHECK(after_backward.bytes - before.bytes <= kept + 1024);
    CHECK(after_backward.bytes < during_bytes);
  }
  const LiveCounts after = live_counts();
  CHECK(after.tensors == before.tensors);
  CHECK(after.nodes == before.nodes);
  CHECK(after.bytes == before.bytes);
}

TEST_CASE("modifying a saved tensor in place makes backward throw, naming both ops", "[graph][inplace]") {
  Tensor x = Tensor::from_vector(std::vector<float>{0.1f, 0.2f}, {2}).set_requires_grad(true);
  Tensor y = exp(x);       // exp saves its output y
  Tensor z = sum(y * 2.0);
  y.add_(Tensor::ones({2}));  // y is not a leaf: in-place is allowed, but exp's saved y is now stale
  std::string msg = error_of([&] { z.backward(); });
  CHECK_THAT(msg, Catch::Contains("exp") && Catch::Contains("add_") && Catch::Contains("modified in place"));
}

TEST_CASE("in-place changes of a leaf that requires grad need NoGradGuard", "[graph][inplace]") {
  Tensor w = Tensor::zeros({2}).set_requires_grad(true);
  CHECK_THAT(error_of([&] { w.add_(Tensor::ones({2})); }), Catch::Contains("NoGradGuard"));
  NoGradGuard ng;
  w.add_(Tensor::ones({2}));
  CHECK(w.to_vector() == std::vector<double>{1, 1});
}

TEST_CASE("NoGradGuard records nothing, and detach cuts the graph", "[graph]") {
  Tensor x = Tensor::ones({2}).set_requires_grad(true);
  {
    NoGradGuard ng;
    Tensor y = x * 2.0;
    CHECK_FALSE(y.requires_grad());
    CHECK(y.is_leaf());
  }
  Tensor y = x * 2.0;
  CHECK(y.requires_grad());
  Tensor d = y.detach();
  CHECK_FALSE(d.requires_grad());
  sum(y * d).backward();  // d is a constant: dy/dx * d = 2 * 2
  CHECK(x.grad().to_vector() == std::vector<double>{4, 4});
}

TEST_CASE("backward is iterative: a chain of 200000 ops neither overflows nor leaks", "[graph][memory]") {
  const LiveCounts before = live_counts();
  {
    Tensor x = Tensor::full({1}, 0.5).set_requires_grad(true);
    Tensor y = x;
    for (int i = 0; i < 200000; ++i) y = y * 1.0;
    y.backward();
    CHECK(x.grad().item() == 1.0);
    Tensor z = x;
    for (int i = 0; i < 200000; ++i) z = z + 0.0;  // dropped without backward
  }
  CHECK(live_counts().nodes == before.nodes);
  CHECK(live_counts().tensors == before.tensors);
}

TEST_CASE("grad() returns gradients without touching .grad", "[graph]") {
  Tensor x = Tensor::from_vector(std::vector<double>{1, 2}, {2}).set_requires_grad(true);
  Tensor unused = Tensor::ones({3}, DType::Float64).set_requires_grad(true);
  Tensor y = sum(x * x * x);
  auto g = grad({y}, {x, unused});
  CHECK(g[0].to_vector() == std::vector<double>{3, 12});
  CHECK(g[1].to_vector() == std::vector<double>{0, 0, 0});
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("backward of a non-scalar needs its gradient", "[graph]") {
  Tensor x = Tensor::ones({2}).set_requires_grad(true);
  Tensor y = x * 3.0;
  CHECK_THAT(error_of([&] { y.backward(); }), Catch::Contains("more than one element"));
  y.backward(Tensor::from_vector(std::vector<float>{1, 2}, {2}));
  CHECK(x.grad().to_vector() == std::vector<double>{3, 6});
}

TEST_CASE("to_dot draws ops, shapes, leaf names and values", "[graph][dot]") {
  Tensor w = Tensor::from_vector(std::vector<float>{0.5f, -1}, {2, 1}).set_requires_grad(true).set_name("w");
  Tensor x = Tensor::from_vector(std::vector<float>{1, 2}, {1, 2});
  Tensor loss = sum(tanh(matmul(x, w))).set_name("loss");
  std::string dot = to_dot(loss);
  CHECK_THAT(dot, Catch::StartsWith("digraph"));
  CHECK_THAT(dot, Catch::Contains("label=\"tanh\"") && Catch::Contains("label=\"matmul\"") &&
                      Catch::Contains("label=\"sum\""));
  CHECK_THAT(dot, Catch::Contains("w [2, 1]") && Catch::Contains("{0.5, -1}"));
  CHECK_THAT(dot, Catch::Contains("loss []"));
  CHECK_THAT(dot, Catch::Contains("->"));
}

TEST_CASE("dtype conversion is differentiable, and clone copies and passes gradients", "[graph]") {
  Tensor x = Tensor::from_vector(std::vector<double>{0.5, -2}, {2}).set_requires_grad(true);
  Tensor y = x.to(DType::Float32) * 3.0;
  CHECK(y.dtype() == DType::Float32);
  sum(y).backward();
  CHECK(x.grad().dtype() == DType::Float64);
  CHECK(x.grad().to_vector() == std::vector<double>{3, 3});
  Tensor c = x.clone();
  CHECK(c.impl().storage != x.impl().storage);
  CHECK(c.grad_fn() != nullptr);
}

TEST_CASE("a loop over rows: select's gradients added into the gathered buffer equal the scattered ones", "[graph]") {
  for (DType dtype : {DType::Float64, DType::Float32}) {
    Tensor x = randn({3, 6, 4}, 1).to(dtype).set_requires_grad(true);
    Tensor h = Tensor::zeros({3, 4}, dtype);
    for (int64_t r = 0; r < 6; ++r) h = tanh(h * 0.5 + select(x, 1, r) * static_cast<double>(r + 1));  // a recurrence over the rows
    Tensor loss = sum(square(h)) + sum(select(x, 1, 2));  // row 2 reached twice
    // the engine's fast path (no graph for the gradient) against create_graph, which never takes it
    const std::vector<Tensor> fast = grad({loss}, {x}, {}, true);
    const std::vector<Tensor> slow = grad({loss}, {x}, {}, false, true);
    for (int64_t i = 0; i < x.numel(); ++i)
      REQUIRE(fast[0].at(i) == Approx(slow[0].at(i)).margin(dtype == DType::Float64 ? 1e-14 : 1e-6));
    // every row got its gradient, none was dropped: row 2 has at least the +1 of the second use
    double row2 = 0;
    for (int64_t n = 0; n < 3; ++n)
      for (int64_t k = 0; k < 4; ++k) row2 += fast[0].at((n * 6 + 2) * 4 + k);
    CHECK(std::abs(row2) > 0);
    // the same through .backward(): the leaf's .grad
    loss.backward();
    for (int64_t i = 0; i < x.numel(); ++i) REQUIRE(x.grad().at(i) == Approx(slow[0].at(i)).margin(dtype == DType::Float64 ? 1e-14 : 1e-6));
  }
}
