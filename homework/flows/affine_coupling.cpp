// Homework, flows chapter, exercises 1 and 2 (6 + 4 points): an affine coupling layer, forward and inverse.
//   grade: make grade CHAPTER=flows      (the math: docs/chapters/flows.md, section 2)
#include "homework/flows/exercises.h"

namespace hw::flows {

// RealNVP (Dinh et al. 2017). A binary mask b [D] (or [1, D]) splits x: the dimensions with
// b = 1 pass through and condition the others:
//
//     (s, t) = net(b * x)                                       (s = log_scale, t = shift)
//     y      = b * x + (1 - b) * (x * exp(s) + t)
//     log |det dy/dx| = sum_d (1 - b_d) s_d                      (the Jacobian is triangular)
//
// and the inverse, from y (b * y = b * x, so the network sees the same input):
//     (s, t) = net(b * y)
//     x      = b * y + (1 - b) * (y - t) * exp(-s)
//
// x, y: [N, D]. Return y and the log-det per example [N] from coupling_forward, x from
// coupling_inverse. Engine ops throughout: the flow trains through both y and the log-det.
Coupled coupling_forward(const Tensor& x, const Tensor& mask, const Conditioner& net) {
  DGM_TODO("coupling_forward");
}

Tensor coupling_inverse(const Tensor& y, const Tensor& mask, const Conditioner& net) {
  DGM_TODO("coupling_inverse");
}

}  // namespace hw::flows
