// Homework, engine chapter, exercise 2 (10 points): summing a broadcast gradient back.
//   grade: make grade CHAPTER=engine        (the math: docs/chapters/engine.md, section 2)
#include "homework/engine/exercises.h"

namespace hw::engine {

// When c = a + b broadcasts a of shape [3, 1] against b of shape [2, 3, 4], every
// element of a is used 2 * 4 times, so its gradient is the sum of those uses:
//
//     dL/da[i, 0] = sum_{n, j} dL/dc[n, i, j]
//
// Given g (the gradient of the broadcast result) return it summed to `shape`:
// 1. sum over the leading axes g has and `shape` lacks (g.dim() - shape.size() of them);
// 2. then sum, keeping the axis (keepdim = true), every axis where shape has 1 and g does not.
// The result has exactly `shape` (shape [] for a scalar). Use dgm::sum(x, axes, keepdim)
// and dgm::reshape. If g cannot have come from broadcasting `shape` (g [2, 3] to [4]),
// throw dgm::Error with a message that names both shapes (Shape::str() gives "[2, 3]").
Tensor sum_to(const Tensor& g, const Shape& shape) {
  DGM_TODO("sum_to");
}

}  // namespace hw::engine
