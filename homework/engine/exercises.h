// dgm/homework/engine/exercises.h — homework for the engine chapter (docs/chapters/engine.md).
// Each function is written in its own file here; the grader (grader.cpp) runs it.
#pragma once

#include <functional>
#include <vector>

#include "autograd/graph.h"
#include "autograd/ops.h"
#include "homework/grader/grader.h"

namespace hw::engine {

using dgm::Node;
using dgm::Shape;
using dgm::Tensor;

// softplus_backward.cpp: dL/dx of y = softplus(x) = log(1 + e^x), given x and g = dL/dy.
Tensor softplus_backward(const Tensor& x, const Tensor& grad_output);
// sum_to.cpp: a broadcast gradient summed back to the shape of the input it came from.
Tensor sum_to(const Tensor& g, const Shape& shape);
// topological_sort.cpp: the graph's nodes in the order backward visits them.
std::vector<Node*> topological_sort(const Tensor& output);

// What the grader calls: these functions, or (in the tests) known wrong ones.
struct Functions {
  std::function<Tensor(const Tensor&, const Tensor&)> softplus_backward;
  std::function<Tensor(const Tensor&, const Shape&)> sum_to;
  std::function<std::vector<Node*>(const Tensor&)> topological_sort;
};
inline Functions linked() { return {&hw::engine::softplus_backward, &hw::engine::sum_to, &hw::engine::topological_sort}; }

std::vector<Exercise> exercises(const Functions& f);

}  // namespace hw::engine
