// Bad input gets a clear error: the op's name and both shapes.
#include "helpers.h"

#include "autograd/graph.h"

using namespace dgm;
using namespace dgm::test;

TEST_CASE("matmul names both shapes", "[errors]") {
  Tensor a = Tensor::zeros({128, 784}), b = Tensor::zeros({400, 20});
  CHECK(error_of([&] { matmul(a, b); }) == "matmul: cannot multiply [128, 784] by [400, 20]");
  CHECK(error_of([&] { mm(a, b, false, true); }) == "matmul: cannot multiply [128, 784] by [400, 20]^T");
  CHECK(error_of([&] { linear(Tensor::zeros({3, 5}), Tensor::zeros({4, 6})); }) ==
        "linear: cannot apply weight [4, 6] ([out, in]) to input [3, 5]");
}

TEST_CASE("broadcasting errors name the op and both shapes", "[errors]") {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4});
  CHECK(error_of([&] { add(a, b); }) == "add: cannot broadcast [2, 3] with [4]");
  CHECK(error_of([&] { mul(a, b); }) == "mul: cannot broadcast [2, 3] with [4]");
  CHECK(error_of([&] { expand(a, {3, 3}); }) == "expand: cannot broadcast [2, 3] with [3, 3]");
}

TEST_CASE("dtype mismatches and int64 misuse are named", "[errors]") {
  Tensor f = Tensor::zeros({2}), d = Tensor::zeros({2}, DType::Float64);
  CHECK(error_of([&] { add(f, d); }) == "add: dtype mismatch, float32 [2] vs float64 [2]");
  Tensor i = Tensor::from_indices({1, 2}, {2});
  CHECK_THAT(error_of([&] { exp(i); }), Catch::StartsWith("exp: int64 tensors are not supported"));
  CHECK_THAT(error_of([&] { i.set_requires_grad(true); }), Catch::Contains("floating-point"));
}

TEST_CASE("shape ops explain what does not fit", "[errors]") {
  Tensor x = Tensor::zeros({2, 3});
  CHECK(error_of([&] { reshape(x, {4, 2}); }) == "reshape: cannot reshape [2, 3] (6 elements) to [4, 2]");
  CHECK(error_of([&] { squeeze(x, 0); }) == "squeeze: axis 0 of [2, 3] has size 2, not 1");
  CHECK(error_of([&] { sum(x, {2}); }) == "sum: axis 2 is out of range for a 2-d tensor");
  CHECK(error_of([&] { permute(x, {0, 0}); }) == "permute: axis 0 appears twice");
  CHECK(error_of([&] { concat({x, Tensor::zeros({2, 3, 1})}, 1); }) ==
        "concat: cannot join [2, 3] float32 with [2, 3, 1] float32 along axis 1");
  CHECK(error_of([&] { index_select(x, 1, Tensor::from_indices({3}, {1})); }) ==
        "index_select: index 3 is out of range for axis 1 of [2, 3]");
  CHECK(error_of([&] { select(x, 1, 3); }) == "select: index 3 is out of range for axis 1 of [2, 3]");
  CHECK(error_of([&] { select(x, 0, -3); }) == "select: index -3 is out of range for axis 0 of [2, 3]");
  CHECK(error_of([&] { x.item(); }) == "item: tensor of shape [2, 3] has 6 elements, not one");
}

TEST_CASE("losses check their targets", "[errors]") {
  Tensor logits = Tensor::zeros({3, 4});
  CHECK(error_of([&] { cross_entropy(logits, Tensor::from_indices({0, 4, 1}, {3})); }) ==
        "cross_entropy: target 4 is not a class in [0, 4)");
  CHECK_THAT(error_of([&] { cross_entropy(logits, Tensor::zeros({3})); }), Catch::Contains("int64 class indices"));
  CHECK(error_of([&] { binary_cross_entropy_with_logits(logits, Tensor::zeros({4})); }) ==
        "binary_cross_entropy_with_logits: logits [3, 4] and target [4] must have one shape");
}

TEST_CASE("backward on something that needs no gradient says so", "[errors]") {
  Tensor x = Tensor::ones({1});
  CHECK_THAT(error_of([&] { (x * 2.0).backward(); }), Catch::Contains("does not require grad"));
}
