// dgm/autograd/ops/attention.cpp — causal multi-head self-attention, one op (forward and backward
// side by side), reading the queries, keys and values where one linear layer wrote them.
//
// qkv [N, T, 3C] holds, for every position, the query, key and value (each C = heads x d wide; head h
// in columns h d .. h d + d - 1 of each). Per example n and head h, with Q, K, V [T, d] and s = 1/sqrt(d):
//   S = s Q K^T,   A_ij = e^{S_ij} / sum_{k <= i} e^{S_ik} for j <= i, exactly 0 for j > i,   O = A V
// and out[n, t, h d + e] = O_te. Backward, from dO:
//   dA = dO V^T,   dS_ij = A_ij (dA_ij - sum_k A_ik dA_ik)     (the softmax's Jacobian; 0 above the diagonal)
//   dQ = s dS K,   dK = s dS^T Q,   dV = A^T dO
// written back into dqkv [N, T, 3C] in the same columns. Without a graph these are five GEMMs per
// (example, head) with leading dimensions 3C and C (no permuted copies of q, k, v or of the output)
// and one pass for the softmax, the (example, head) pairs split between threads; A [N, H, T, T] is
// kept from the forward. Under create_graph the same formulas run in engine ops (differentiable
// again). tests/test_sequence.cpp gradchecks and gradgradchecks it and checks it against
// models::causal_attention, the composition of engine ops the KV cache uses.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "autograd/graph.h"
#include "autograd/kernels.h"
#include "autograd/ops.h"
#include "autograd/parallel.h"

namespace dgm {

namespace {

struct AttentionDims {
  int64_t n, t, c, heads;
  int64_t d() const { return c / heads; }
  double scale() const { return 1.0 / std::sqrt(static_cast<double>(d())); }
  int64_t pairs() const { return n * heads; }
  double flops() const { return 4.0 * static_cast<double>(pairs() * t * t * d()); }  // the GEMMs of a forward
};

// Rows of S [T, T] in place -> A: the causal softmax, 0 above the diagonal.
template <class T>
void causal_softmax(T* s, int64_t len, DType dtype) {
  for (int64_t i = 0; i < len; ++i) {
    T* row = s + i * len;
    const T m = *std::max_element(row, row + i + 1);
    for (int64_t j = 0; j <= i; ++j) row[j] -= m;
  }
  for (int64_t i = 0; i < len; ++i) std::fill(s + i * len + i + 1, s + (i + 1) * len, -std::numeric_limits<T>::infinity());
  kernels::exp_raw(s, s, len * len, dtype);  // e^{-inf} = 0 above the diagonal
  for (int64_t i = 0; i < len; ++i) {
    T* row = s + i * len;
    T z = 0;
    for (int64_t j = 0; j <= i; ++j) z += row[j];
    const T inv = T(1) / z;
    for (int64_t j = 0; j <= i; ++j) row[j] *= inv;
    std::fill(row + i + 1, row + len, T(0));
  }
}

// q, k, v [N, H, T, d] split out of qkv by engine ops (the composite backward)
struct Heads {
  Tensor q, k, v;
};
Heads split_heads(const Tensor& qkv, const AttentionDims& g) {
  const Tensor x = permute(reshape(qkv, {g.n, g.t, 3, g.heads, g.d()}), {2, 0, 3, 1, 4});
  return {select(x, 0, 0), select(x, 0, 1), select(x, 0, 2)};
}

struct CausalSelfAttentionBackward : Node {
  SavedTensor qkv;
  Tensor weights;  // A [N, H, T, T] from the forward (no graph)
  AttentionDims g{};
  const char* name() const override { return "causal_self_attention"; }

  std::vector<Tensor> backward(const Tensor& grad) override {
    const Tensor x = qkv.unpack(*this);
    if (GradMode::is_enabled()) return {composite(grad, x)};
    const int64_t T = g.t, C = g.c, d = g.d(), H = g.heads;
    const DType dt = x.dtype();
    Tensor dx = Tensor::empty(x.shape(), dt);
    const int chunks = runtime::parallel_chunks(g.pairs(), 2 * g.flops());
    std::vector<Tensor> scratch;
    for (int c = 0; c < chunks; ++c) scratch.push_back(Tensor::empty({T, T}, dt));
    kernels::dispatch_float(dt, "causal_self_attention backward", [&](auto tag) {
      using F = decltype(tag);
      const F *px = x.data<F>(), *pg = grad.data<F>(), *pa = weights.data<F>();
      F* pdx = dx.data<F>();
      runtime::run_chunks(g.pairs(), chunks, [&](int64_t p0, int64_t p1, int chunk) {
        F* ds = scratch[static_cast<size_t>(chunk)].template data<F>();
        for (int64_t p = p0; p < p1; ++p) {
          const int64_t n = p / H, h = p % H;
          const F *q = px + n * T * 3 * C + h * d, *k = q + C, *v = q + 2 * C, *gout = pg + n * T * C + h * d;
          const F* a = pa + p * T * T;
          F *dq = pdx + n * T * 3 * C + h * d, *dk = dq + C, *dv = dq + 2 * C;
          kernels::gemm(false, true, T, T, d, 1.0, gout, C, v, 3 * C, 0.0, ds, T, dt);  // dA = dO V^T
          for (int64_t i = 0; i < T; ++i) {  // dS = A (dA - rowsum(A dA))
            F* r = ds + i * T;
            const F* ar = a + i * T;
            F dot = 0;
            for (int64_t j = 0; j <= i; ++j) dot += ar[j] * r[j];
            for (int64_t j = 0; j <= i; ++j) r[j] = ar[j] * (r[j] - dot);
            std::fill(r + i + 1, r + T, F(0));
          }
          kernels::gemm(false, false, T, d, T, g.scale(), ds, T, k, 3 * C, 0.0, dq, 3 * C, dt);  // dQ = s dS K
          kernels::gemm(true, false, T, d, T, g.scale(), ds, T, q, 3 * C, 0.0, dk, 3 * C, dt);   // dK = s dS^T Q
          kernels::gemm(true, false, T, d, T, 1.0, a, T, gout, C, 0.0, dv, 3 * C, dt);          // dV = A^T dO
        }
      });
    });
    return {dx};
  }

  // The same formulas in engine ops, A recomputed from qkv.
  Tensor composite(const Tensor& grad, const Tensor& x) const {
    const auto [q, k, v] = split_heads(x, g);
    const Tensor a = softmax(matmul(q, transpose(k, 2, 3)) * g.scale() + causal_mask(g.t, g.t, x.dtype()), 3);
    const Tensor go = permute(reshape(grad, {g.n, g.t, g.heads, g.d()}), {0, 2, 1, 3});  // [N, H, T, d]
    const Tensor da = matmul(go, transpose(v, 2, 3));
    const Tensor ds = a * (da - sum(a * da, {3}, true));
    const Tensor dq = matmul(ds, k) * g.scale(), dk = matmul(transpose(ds, 2, 3), q) * g.scale(), dv = matmul(transpose(a, 2, 3), go);
    return reshape(permute(stack({dq, dk, dv}, 0), {1, 3, 0, 2, 4}), {g.n, g.t, 3 * g.c});  // [3, N, H, T, d] -> [N, T, 3, H, d]
  }
  void release_saved() override {
    qkv.reset();
    weights = Tensor();
  }
};

}  // namespace

Tensor causal_mask(int64_t lq, int64_t lk, DType dtype) {
  if (lq < 0 || lq > lk) throw Error("causal_mask: needs 0 <= queries <= keys; got " + std::to_string(lq) + " and " + std::to_string(lk));
  std::vector<double> m(static_cast<size_t>(lq * lk), 0.0);
  for (int64_t i = 0; i < lq; ++i)
    for (int64_t j = lk - lq + i + 1; j < lk; ++j) m[static_cast<size_t>(i * lk + j)] = -std::numeric_limits<double>::infinity();
  return Tensor::from_vector(m, {lq, lk}).to(dtype);
}

Tensor causal_self_attention(const Tensor& qkv, int64_t heads, Tensor* weights) {
  if (qkv.dim() != 3 || heads < 1 || qkv.size(2) % (3 * heads) != 0)
    throw Error("causal_self_attention: needs qkv [N, T, 3C] with C a multiple of the " + std::to_string(heads) + " heads; got " +
                qkv.shape().str());
  const AttentionDims g{qkv.size(0), qkv.size(1), qkv.size(2) / 3, heads};
  const int64_t T = g.t, C = g.c, d = g.d(), H = g.heads;
  const DType dt = qkv.dtype();
  Tensor out = Tensor::empty({g.n, T, C}, dt), a = Tensor::empty({g.n, H, T, T}, dt);
  kernels::dispatch_float(dt, "causal_self_attention", [&](auto tag) {
    using F = decltype(tag);
    const F* px = qkv.data<F>();
    F *po = out.data<F>(), *pa = a.data<F>();
    runtime::run_chunks(g.pairs(), runtime::parallel_chunks(g.pairs(), g.flops()), [&](int64_t p0, int64_t p1, int) {
      for (int64_t p = p0; p < p1; ++p) {
        const int64_t n = p / H, h = p % H;
        const F *q = px + n * T * 3 * C + h * d, *k = q + C, *v = q + 2 * C;
        F* s = pa + p * T * T;
        kernels::gemm(false, true, T, T, d, g.scale(), q, 3 * C, k, 3 * C, 0.0, s, T, dt);  // S = s Q K^T
        causal_softmax(s, T, dt);
        kernels::gemm(false, false, T, d, T, 1.0, s, T, v, 3 * C, 0.0, po + n * T * C + h * d, C, dt);  // O = A V
      }
    });
  });
  if (weights) *weights = a;
  if (!any_requires_grad({&qkv})) return out;
  auto node = std::make_shared<CausalSelfAttentionBackward>();
  node->qkv = SavedTensor::input(qkv);
  node->weights = a;
  node->g = g;
  attach(out, node, {&qkv});
  return out;
}

}  // namespace dgm
