// Homework, flows chapter, exercises 3 and 4 (3 + 7 points): dequantization and bits per dimension.
//   grade: make grade CHAPTER=flows      (the math: docs/chapters/flows.md, sections 4-5)
#include "homework/flows/exercises.h"

namespace hw::flows {

// Images hold integers k in {0, ..., levels - 1}. A flow is a density on continuous data,
// so it is fitted to dequantized u = (k + noise) / levels, noise ~ U[0, 1)^D: u lies in the
// cube [k / levels, (k + 1) / levels) of volume levels^-D, and by Jensen
//     log P(k) >= E_noise[ log p_U(u) ] - D log levels.
// Return u (same shape as k) from dequantize().
Tensor dequantize(const Tensor& k, const Tensor& noise, int64_t levels) {
  DGM_TODO("dequantize");
}

// RealNVP does not model u but y = logit(v), v = alpha + (1 - 2 alpha) u (away from 0 and 1).
// The flow gives log p_Y(y) per example; the change of variables brings it back to u:
//     log p_U(u) = log p_Y(y) + sum_d log |dy_d / du_d|,
//     dy/du      = (1 - 2 alpha) / (v (1 - v)),
// and the bound in bits per dimension, D = the number of values in one example
// (u may be [N, D] or an image batch [N, C, H, W]: D = C H W), is
//     bits/dim = -( log p_U(u) - D log levels ) / (D ln 2).
// log_p_y: [N]. Return the bits/dim of each example, [N].
Tensor bits_per_dim(const Tensor& log_p_y, const Tensor& u, int64_t levels, double alpha) {
  DGM_TODO("bits_per_dim");
}

}  // namespace hw::flows
