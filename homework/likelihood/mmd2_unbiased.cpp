// Homework, likelihood chapter, exercise 2 (10 points): the maximum mean discrepancy.
//   grade: make grade CHAPTER=likelihood      (the math: docs/chapters/likelihood.md, section 6)
#include "homework/likelihood/exercises.h"

namespace hw::likelihood {

// Without a likelihood (a GAN has none) a model can still be compared with data through
// samples. With the Gaussian kernel k(x, y) = exp(-|x - y|^2 / (2 h^2)), h = bandwidth,
//
//     MMD^2(P, Q) = E k(x, x') + E k(y, y') - 2 E k(x, y),    x, x' ~ P,  y, y' ~ Q
//
// and its unbiased estimate from X [n, d] ~ P and Y [m, d] ~ Q leaves out the i = j terms
// (k(x_i, x_i) = 1 is not a sample of E k(x, x') with x' independent of x):
//
//     MMD^2_u = sum_{i != j} k(x_i, x_j) / (n (n - 1)) + sum_{i != j} k(y_i, y_j) / (m (m - 1))
//               - 2 sum_{i, j} k(x_i, y_j) / (n m)
//
// Return MMD^2_u (it can be slightly negative). n and m may differ; compute in double.
double mmd2_unbiased(const Tensor& X, const Tensor& Y, double bandwidth) {
  DGM_TODO("mmd2_unbiased");
}

}  // namespace hw::likelihood
