// dgm/autograd/kernels.h — internal: the numeric kernels behind the ops.
//
// Kernels compute; they record nothing. The op files (autograd/ops/*.cpp)
// call them in their forward and wire the backward. Kernels that use
// xtensor/xsimd (vectorised exp, log, tanh ...) live in kernels_math.cpp, the
// BLAS calls in blas.cpp; this header names no xtensor type.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "autograd/tensor.h"

namespace dgm::kernels {

// Calls f(T{}) with T = float or double per `dtype`; int64 throws naming `op`.
template <class F>
decltype(auto) dispatch_float(DType dtype, const char* op, F&& f) {
  switch (dtype) {
    case DType::Float32: return f(float{});
    case DType::Float64: return f(double{});
    default: break;
  }
  throw Error(std::string(op) + ": int64 tensors are not supported here (convert with .to(DType::Float32))");
}

// Both operands floating and of one dtype, else an error naming `op`.
void check_same_float(const Tensor& a, const Tensor& b, const char* op);

enum class Binary { Add, Sub, Mul, Div, Pow, Max, Min, Eq, Ne, Lt, Le, Gt, Ge };
// out = a (op) b with NumPy broadcasting.
Tensor binary(Binary op, const Tensor& a, const Tensor& b, const char* name);

// The LSTM's gate activations (autograd/ops/recurrent.cpp), vectorised: `rows` rows of 4h
// pre-activations [i, f, g, o], `stride` values apart, in place: sigmoid on i, f and o, tanh on g.
void lstm_activate(void* gates, int64_t rows, int64_t h, int64_t stride, DType dtype);
// y = tanh(x) over n contiguous values (y may be x).
void tanh_raw(const void* x, void* y, int64_t n, DType dtype);
// y = e^x over n contiguous values (y may be x; e^{-inf} = 0): the causal softmax of autograd/ops/attention.cpp.
void exp_raw(const void* x, void* y, int64_t n, DType dtype);

// The forward kernel of every function in autograd/ops/unary_table.h, e.g.
// kernels::exp(x): no graph, y only. `op` names the caller in errors.
namespace unary {
#define DGM_UNARY(name, ...) Tensor name(const Tensor& x, const char* op = #name);
#include "autograd/ops/unary_table.h"
#undef DGM_UNARY
}  // namespace unary
// The one-pass backward kernels of the table's DGM_UNARY_GRAD lines, e.g.
// kernels::unary_grad::silu(g, x) = g * silu'(x): g and the saved tensor of
// one shape and dtype.
namespace unary_grad {
#define DGM_UNARY(...)
#define DGM_UNARY_GRAD(name, ...) Tensor name(const Tensor& g, const Tensor& saved);
#include "autograd/ops/unary_table.h"
#undef DGM_UNARY_GRAD
#undef DGM_UNARY
}  // namespace unary_grad
Tensor negate(const Tensor& x, const char* op = "neg");
Tensor sign(const Tensor& x);
Tensor leaky_relu(const Tensor& x, double slope);
Tensor clamp(const Tensor& x, double lo, double hi);
Tensor pow_scalar(const Tensor& x, double p);
// Binary cross-entropy with logits, elementwise, x and t of one shape and dtype:
//   l = max(x, 0) + log1p(e^-|x|) - x t   (one pass; the softplus of the table, then - x t)
Tensor bce_with_logits(const Tensor& x, const Tensor& t, const char* op);
// Its gradient in x in one pass: g (sigmoid(x) - t), all three of one shape and dtype.
Tensor bce_with_logits_grad(const Tensor& g, const Tensor& x, const Tensor& t);
// 1 where lo <= x <= hi, else 0 (clamp's derivative).
Tensor inside_mask(const Tensor& x, double lo, double hi);
// g where y > 0, else negative * g: relu's (negative = 0) and leaky_relu's
// backward in one pass (g and y of one shape).
Tensor scale_where_positive(const Tensor& g, const Tensor& y, double negative);
// linear_relu's backward pass over g [rows, cols] (y its output, same shape): g' = g where y > 0,
// else 0, and the bias gradient sum_rows g' [cols], in one pass. Both are bit for bit what
// scale_where_positive(g, y, 0) and reduce_axis(Sum, ., 0) give (the same sums in the same order).
std::pair<Tensor, Tensor> relu_grad_and_row_sum(const Tensor& g, const Tensor& y);

enum class Reduce { Sum, Max, Min };
// Reduces one axis, keeping it with size 1.
Tensor reduce_axis(Reduce op, const Tensor& x, size_t axis);
// Reduces everything to shape [].
Tensor reduce_all(Reduce op, const Tensor& x);

// Copies x broadcast to `shape` (x's shape must broadcast to it).
Tensor expand(const Tensor& x, const Shape& shape);
// Permuted copy: out.shape[i] = x.shape[order[i]].
Tensor permute(const Tensor& x, const std::vector<size_t>& order);

// C = alpha * op(A) op(B) + beta * C, row-major, through cblas_{s,d}gemm
// (or cblas_{s,d}gemv for skinny outputs, below). On more than one thread, C is cut into
// gemm_plan's pieces, each a single-threaded call on one of dgm's threads (runtime::run_chunks):
// OpenBLAS's own threads are never woken (autograd/blas.cpp says why).
struct GemmPlan {
  int chunks;    // 1: the whole product on the calling thread
  bool by_rows;  // pieces of rows of C (of op(A)), or of columns (of op(B))
};
GemmPlan gemm_plan(int64_t m, int64_t n, int64_t k);
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
          const void* a, int64_t lda, const void* b, int64_t ldb, double beta, void* c,
          int64_t ldc, DType dtype);

// op(B) [k, n] copied once into the layout of gemm_packed (autograd/packed_gemm.cpp), for many
// products with the same B: an RNN's recurrent weights at every step (and a Linear layer's weights
// for one product, where the packed product beats OpenBLAS's: see linear in autograd/ops/matmul.cpp).
// Float32 with AVX-512 or AVX2 + FMA; otherwise it keeps a pointer to B (which must then outlive it)
// and gemm_packed is gemm.
struct PackedB {
  int64_t k = 0, n = 0;
  DType dtype = DType::Float32;
  std::vector<float> panels;  // [ceil(n / P)][k][P], P = 2 registers (32 or 16), zero past column n; empty: not packed
  const void* b = nullptr;    // B itself, for gemm
  bool trans = false;
  int64_t ldb = 0;
};
PackedB pack_b(bool trans_b, int64_t k, int64_t n, const void* b, int64_t ldb, DType dtype);
// C [m, n] = A [m, k] op(B), or C += A op(B) with accumulate (row-major, leading dimensions lda, ldc),
// then, on each tile while it is in registers, + bias [n] (when not null) and max(., 0) (relu):
// nn::Linear's forward (y = x W^T + b, and relu of it) in one pass over y.
void gemm_packed(int64_t m, const void* a, int64_t lda, const PackedB& b, bool accumulate, void* c, int64_t ldc,
                 const void* bias = nullptr, bool relu = false);
// True when pack_b packs float32 (a build for a CPU with AVX-512 or AVX2 + FMA).
bool packs_float32();

// Products with at most kGemvRows rows or columns of output (and a longer
// inner dimension) run as that many GEMV calls: OpenBLAS's GEMM packs its
// operands into panels and computes a 16x4 register tile, so on a [512, 2]
// output most of the work is padding (see blas.cpp).
constexpr int64_t kGemvRows = 4;

}  // namespace dgm::kernels
