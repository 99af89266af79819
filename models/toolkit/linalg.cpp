// dgm/models/toolkit/linalg.cpp — the one models/ TU that includes xtensor-blas.
#include "models/toolkit/linalg.h"

#include "autograd/graph.h"
#include "autograd/ops.h"

#include <cmath>
#include <xtensor-blas/xlinalg.hpp>
#include <xtensor/xadapt.hpp>
#include <xtensor/xtensor.hpp>
#include <xtensor/xview.hpp>

namespace dgm::linalg {

namespace {
xt::xtensor<double, 2> to_xt(const Tensor& t, const char* op) {
  if (t.dim() != 2 || t.dtype() != DType::Float64)
    throw Error(std::string(op) + ": expects a float64 matrix, got " + t.shape().str() + " " + dtype_name(t.dtype()));
  std::array<size_t, 2> shape{static_cast<size_t>(t.size(0)), static_cast<size_t>(t.size(1))};
  return xt::adapt(t.data<double>(), static_cast<size_t>(t.numel()), xt::no_ownership(), shape);
}
template <class E>
Tensor from_xt(const E& e) {
  xt::xtensor<double, 2> m = e;  // row-major copy
  Tensor t = Tensor::empty({static_cast<int64_t>(m.shape()[0]), static_cast<int64_t>(m.shape()[1])}, DType::Float64);
  std::copy(m.begin(), m.end(), t.data<double>());
  return t;
}
void check_square(const Tensor& A, const char* op) {
  if (A.dim() != 2 || A.size(0) != A.size(1)) throw Error(std::string(op) + ": expects a square matrix, got " + A.shape().str());
}
}  // namespace

Tensor cholesky(const Tensor& A, const std::string& what) {
  check_square(A, "cholesky");
  const int64_t n = A.size(0);
  if (n == 1) {
    if (!(A.at(0) > 0)) throw Error("cholesky: " + what + " is not positive definite");
    return Tensor::full({1, 1}, std::sqrt(A.at(0)), DType::Float64);
  }
  try {
    return from_xt(xt::linalg::cholesky(to_xt(A, "cholesky")));
  } catch (const std::runtime_error&) {
    throw Error("cholesky: " + what + " is not positive definite");
  }
}

Tensor solve_lower(const Tensor& L, const Tensor& B) {
  check_square(L, "solve_lower");
  if (B.dim() != 2 || B.size(0) != L.size(0))
    throw Error("solve_lower: L " + L.shape().str() + " does not fit B " + B.shape().str());
  // xtensor-blas 0.20's solve_triangular passes one right-hand side to LAPACK
  // whatever B's width (nrhs is fixed to 1), so: L^-1 (LAPACK getri) times B (BLAS).
  NoGradGuard ng;
  return matmul(inverse(L), B);
}

Tensor inverse(const Tensor& A) {
  check_square(A, "inverse");
  return from_xt(xt::linalg::inv(to_xt(A, "inverse")));
}

double log_det_spd(const Tensor& A) {
  Tensor L = cholesky(A);
  double s = 0;
  for (int64_t i = 0; i < L.size(0); ++i) s += std::log(L.at(i * L.size(0) + i));
  return 2 * s;
}

double log_abs_det(const Tensor& A) {
  check_square(A, "log_abs_det");
  auto [sign, logdet] = xt::linalg::slogdet(to_xt(A, "log_abs_det"));
  return sign == 0 ? -INFINITY : logdet;
}

LU lu(const Tensor& A) {
  check_square(A, "lu");
  const int64_t n = A.size(0);
  xt::xtensor<double, 2, xt::layout_type::column_major> f = to_xt(A, "lu");
  xt::uvector<xt::blas_index_t> piv(static_cast<size_t>(n));
  if (xt::lapack::getrf(f, piv) < 0) throw Error("lu: LAPACK getrf rejected its input");
  // getrf's pivots say "row i was swapped with row piv[i] - 1", in order; apply
  // them to the identity to get the permutation p with (P^T A) = L U.
  std::vector<int64_t> perm(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) perm[static_cast<size_t>(i)] = i;
  for (int64_t i = 0; i < n; ++i) std::swap(perm[static_cast<size_t>(i)], perm[static_cast<size_t>(piv[static_cast<size_t>(i)] - 1)]);
  LU r{Tensor::zeros({n, n}, DType::Float64), Tensor::zeros({n, n}, DType::Float64), Tensor::zeros({n, n}, DType::Float64)};
  double *P = r.P.data<double>(), *L = r.L.data<double>(), *U = r.U.data<double>();
  for (int64_t i = 0; i < n; ++i) {
    P[perm[static_cast<size_t>(i)] * n + i] = 1;  // row i of L U is row perm[i] of A
    for (int64_t j = 0; j < n; ++j) {
      const double v = f(static_cast<size_t>(i), static_cast<size_t>(j));
      if (j < i) L[i * n + j] = v;
      else U[i * n + j] = v;
    }
    L[i * n + i] = 1;
  }
  return r;
}

Tensor orthogonal_factor(const Tensor& A) {
  check_square(A, "orthogonal_factor");
  auto [q, r] = xt::linalg::qr(to_xt(A, "orthogonal_factor"));
  for (size_t j = 0; j < r.shape()[0]; ++j)
    if (r(j, j) < 0) xt::view(q, xt::all(), j) *= -1.0;
  return from_xt(q);
}

Eigh eigh(const Tensor& A) {
  check_square(A, "eigh");
  auto [w, v] = xt::linalg::eigh(to_xt(A, "eigh"));
  Eigh e;
  e.values = Tensor::empty({A.size(0)}, DType::Float64);
  std::copy(w.begin(), w.end(), e.values.data<double>());
  e.vectors = from_xt(v);
  return e;
}

Tensor sqrtm_psd(const Tensor& A) {
  const Eigh e = eigh(A);
  const int64_t n = A.size(0);
  // V diag(sqrt(w)) V^T = (V diag(w^1/4)) (V diag(w^1/4))^T
  Tensor half = Tensor::empty({n, n}, DType::Float64);
  const double* v = e.vectors.data<double>();
  double* h = half.data<double>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) h[i * n + j] = v[i * n + j] * std::pow(std::max(e.values.at(j), 0.0), 0.25);
  NoGradGuard ng;
  return mm(half, half, false, true);
}

}  // namespace dgm::linalg
