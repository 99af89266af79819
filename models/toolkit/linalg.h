// dgm/models/toolkit/linalg.h — small dense linear algebra on float64 matrices
// (LAPACK through xtensor-blas): what closed-form models (Gaussian mixtures,
// linear-Gaussian models) need. Not differentiable; no graph is recorded.
#pragma once

#include "autograd/tensor.h"

namespace dgm::linalg {

// The lower Cholesky factor L of a symmetric positive-definite A [n, n]: A = L L^T.
// Throws naming `what` when A is not positive definite.
Tensor cholesky(const Tensor& A, const std::string& what = "matrix");
// X with L X = B, L lower triangular [n, n], B [n, m].
Tensor solve_lower(const Tensor& L, const Tensor& B);
// A^{-1} for a square invertible A.
Tensor inverse(const Tensor& A);
// log det A for a symmetric positive-definite A: 2 sum_i log L_ii.
double log_det_spd(const Tensor& A);
// log |det A| for any square A (LAPACK's LU); -inf when A is singular.
double log_abs_det(const Tensor& A);
// A = P L U with partial pivoting (LAPACK getrf): P a permutation matrix, L unit
// lower triangular, U upper triangular, all float64 [n, n].
struct LU {
  Tensor P, L, U;
};
LU lu(const Tensor& A);
// The orthogonal factor Q of A = Q R (LAPACK geqrf), signs fixed so that
// diag(R) > 0: for A with N(0, 1) entries, Q is a uniformly random rotation.
Tensor orthogonal_factor(const Tensor& A);

// The eigen-decomposition of a symmetric A [n, n] (LAPACK syevd): A = V diag(w) V^T,
// eigenvalues w ascending [n], eigenvectors the columns of V [n, n].
struct Eigh {
  Tensor values, vectors;
};
Eigh eigh(const Tensor& A);
// The symmetric square root of a symmetric positive semi-definite A: V diag(sqrt(w)) V^T,
// eigenvalues below zero (rounding) clipped to zero.
Tensor sqrtm_psd(const Tensor& A);

}  // namespace dgm::linalg
