// dgm/autograd/ops/matmul.cpp — matrix products through BLAS GEMM.
//
// The core op is a (batched) product of op(A) and op(B), op = identity or
// transpose, handed to cblas_{s,d}gemm with transpose flags: a transpose is
// never copied. Its backward is the same op with other flags:
//   C = A B      dA = G B^T     dB = A^T G
//   C = A B^T    dA = G B       dB = G^T A
//   C = A^T B    dA = B G^T     dB = A G
//   C = A^T B^T  dA = B^T G^T   dB = G^T A^T
#include <algorithm>
#include <cstring>
#include <tuple>

#include "autograd/graph.h"
#include "autograd/kernels.h"
#include "autograd/ops.h"
#include "autograd/parallel.h"
#include "autograd/runtime.h"

namespace dgm {

namespace {

// Rows/cols of op(X) for a 2-D or 3-D (batched) X.
struct MatDims {
  int64_t batch, rows, cols, ld;  // ld: the stored row length
};
MatDims mat_dims(const Tensor& x, bool trans) {
  const Shape& s = x.shape();
  size_t r = s.size();
  MatDims d{r == 3 ? s[0] : 1, s[r - 2], s[r - 1], s[r - 1]};
  if (trans) std::swap(d.rows, d.cols);
  return d;
}

std::string op_str(const Tensor& x, bool t) { return x.shape().str() + (t ? "^T" : ""); }

// When dgm's packed product (autograd/packed_gemm.cpp: op(B) copied into panels of two registers'
// width, C written tile by tile from registers) is used instead of OpenBLAS's, for C [rows, cols] =
// A [rows, inner] op(B): float32 on an AVX2 or AVX-512 build, at least kPackedMinRows rows (the
// copy of B is paid once per call), an inner size of at most kPackedMaxInner (a panel's rows stay
// in L1) and at least kPackedMinOut columns (a panel is 16 or 32 columns wide). Inside these
// bounds it took 0.82-1.02 of OpenBLAS's time on one thread (A not transposed, B either way; 1.02
// at 2048 x 128 x 128); past them OpenBLAS was the faster. docs/performance.md (2026-12-05, and
// its night) has the measurements.
constexpr int64_t kPackedMinRows = 256, kPackedMaxInner = 128, kPackedMinOut = 32;
bool packed_is_faster(DType dtype, int64_t rows, int64_t inner, int64_t cols) {
  return dtype == DType::Float32 && kernels::packs_float32() && rows >= kPackedMinRows && inner >= 1 &&
         inner <= kPackedMaxInner && cols >= kPackedMinOut;
}

Tensor gemm_op(const Tensor& a, const Tensor& b, bool ta, bool tb);

// What one small product in a batch costs beyond its FLOPs, counted as FLOPs: ~0.4 us (its call,
// checks and pointers) at ~80 GFLOP/s.
constexpr double kCallFlops = 32768;

struct MatMulBackward : Node {
  SavedTensor a, b;
  bool ta = false, tb = false;
  const char* name() const override { return "matmul"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor ga, gb;
    if (next[0]) {
      Tensor bv = b.unpack(*this);
      if (!ta) ga = tb ? gemm_op(g, bv, false, false) : gemm_op(g, bv, false, true);
      else     ga = tb ? gemm_op(bv, g, true, true) : gemm_op(bv, g, false, true);
    }
    if (next[1]) {
      Tensor av = a.unpack(*this);
      if (!tb) gb = ta ? gemm_op(av, g, false, false) : gemm_op(av, g, true, false);
      else     gb = ta ? gemm_op(g, av, true, true) : gemm_op(g, av, true, false);
    }
    return {ga, gb};
  }
  void release_saved() override { a.reset(), b.reset(); }
};

// op(a) @ op(b) for two 2-D, or two 3-D tensors with the same batch size.
Tensor gemm_op(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  kernels::check_same_float(a, b, "matmul");
  if (a.dim() != b.dim() || a.dim() < 2 || a.dim() > 3)
    throw Error("matmul: cannot multiply " + op_str(a, ta) + " by " + op_str(b, tb));
  MatDims da = mat_dims(a, ta), db = mat_dims(b, tb);
  if (da.cols != db.rows || da.batch != db.batch)
    throw Error("matmul: cannot multiply " + op_str(a, ta) + " by " + op_str(b, tb));
  Shape os = a.dim() == 3 ? Shape{da.batch, da.rows, db.cols} : Shape{da.rows, db.cols};
  Tensor out = Tensor::empty(os, a.dtype());
  const size_t esz = dtype_size(a.dtype());
  const char* pa = static_cast<const char*>(a.impl().storage->data);
  const char* pb = static_cast<const char*>(b.impl().storage->data);
  char* pc = static_cast<char*>(out.impl().storage->data);
  const int64_t sa = da.rows * da.cols, sb = db.rows * db.cols, sc = da.rows * db.cols;
  if (da.cols == 0) {  // an empty inner dimension: the product is all zeros
    std::memset(pc, 0, out.impl().storage->nbytes);
  } else if (da.batch == 1 && !ta && runtime::num_threads() == 1 && packed_is_faster(a.dtype(), da.rows, da.cols, db.cols)) {
    // On one thread only. On two, with OpenBLAS still on its own threads, the backward's products
    // alternated between dgm's pool (dx) and OpenBLAS's (dW): DDPM-2D's 2-thread step went from
    // 1.02-1.05 to 1.29-1.35 ms (docs/performance.md, 2026-12-05 (night)). Since OpenBLAS runs on
    // dgm's pool too (kernels::gemm), the packed dx on two threads measured no faster than
    // OpenBLAS's pieces (2026-12-05, one pool), so it stays on one.
    kernels::gemm_packed(da.rows, pa, da.ld, kernels::pack_b(tb, db.rows, db.cols, pb, db.ld, a.dtype()), false, pc, db.cols);
  } else {
    // A batch of products is shared between dgm's threads, a run of whole products each, when
    // together they are worth it; each product then runs on one thread. The many tiny products of
    // attention over a KV cache (one query against t keys, for each sequence and head) cost a call
    // each more than their FLOPs: each counts as at least kCallFlops.
    const double flops = 2.0 * static_cast<double>(da.rows * db.cols * da.cols);
    const int chunks = runtime::parallel_chunks(da.batch, static_cast<double>(da.batch) * std::max(flops, kCallFlops));
    runtime::run_pieces(da.batch, chunks, [&](int64_t i0, int64_t i1, int) {
      for (int64_t i = i0; i < i1; ++i)
        kernels::gemm(ta, tb, da.rows, db.cols, da.cols, 1.0, pa + i * sa * esz, da.ld, pb + i * sb * esz, db.ld, 0.0,
                      pc + i * sc * esz, db.cols, a.dtype());
    });
  }
  if (!any_requires_grad({&a, &b})) return out;
  auto node = std::make_shared<MatMulBackward>();
  node->ta = ta;
  node->tb = tb;
  if (b.requires_grad()) node->a = SavedTensor::input(a);
  if (a.requires_grad()) node->b = SavedTensor::input(b);
  attach(out, node, {&a, &b});
  return out;
}

}  // namespace

Tensor mm(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  if (a.dim() != 2 || b.dim() != 2)
    throw Error("mm: expects two 2-D tensors, got " + a.shape().str() + " and " + b.shape().str());
  return gemm_op(a, b, ta, tb);
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  auto fail = [&] {
    return Error("matmul: cannot multiply " + a.shape().str() + " by " + b.shape().str());
  };
  if (a.dim() == 0 || b.dim() == 0) throw fail();
  if (a.dim() == 1 && b.dim() == 1) {
    if (a.shape()[0] != b.shape()[0]) throw fail();
    return reshape(gemm_op(unsqueeze(a, 0), unsqueeze(b, 1), false, false), Shape{});
  }
  if (a.dim() == 1) {
    Tensor r = matmul(unsqueeze(a, 0), b);
    return squeeze(r, -2);
  }
  if (b.dim() == 1) {
    Tensor r = matmul(a, unsqueeze(b, 1));
    return squeeze(r, -1);
  }
  const int64_t k = a.shape()[a.dim() - 1];
  if (k != b.shape()[b.dim() - 2]) throw fail();
  if (a.dim() == 2 && b.dim() == 2) return gemm_op(a, b, false, false);
  if (b.dim() == 2) {
    // [..., m, k] @ [k, n]: fold the batch axes into rows, one GEMM.
    Shape os = a.shape();
    os[os.size() - 1] = b.shape()[1];
    return reshape(gemm_op(reshape(a, Shape{-1, k}), b, false, false), os);
  }
  // Batched: broadcast the batch axes, then one GEMM per batch element.
  Shape ba, bb;
  for (size_t i = 0; i + 2 < a.dim(); ++i) ba.push_back(a.shape()[i]);
  for (size_t i = 0; i + 2 < b.dim(); ++i) bb.push_back(b.shape()[i]);
  Shape batch = broadcast_shapes(ba, bb, "matmul");
  const int64_t m = a.shape()[a.dim() - 2], n = b.shape()[b.dim() - 1];
  Shape sa = batch, sb = batch, os = batch;
  sa.push_back(m), sa.push_back(k);
  sb.push_back(k), sb.push_back(n);
  os.push_back(m), os.push_back(n);
  Tensor a3 = reshape(a.shape() == sa ? a : expand(a, sa), Shape{-1, m, k});
  Tensor b3 = reshape(b.shape() == sb ? b : expand(b, sb), Shape{-1, k, n});
  return reshape(gemm_op(a3, b3, false, false), os);
}

// ---------------------------------------------------------------- linear (fused bias), linear + relu
// y = x W^T + b for 2-D x, in one pass over y: the bias goes in with the product, not as its own
// op, and linear_relu's max(., 0) too.
//   dx = g W,   dW = g^T x,   db = sum_rows g
// With relu, y = max(x W^T + b, 0), and the same three with g masked first: g' = g where y > 0, else 0.
//
// Two routes to the same y:
//  - OpenBLAS: y is filled with b (a copy per row), GEMM adds x W^T into it (beta = 1), then relu
//    is a pass over y;
//  - the packed product (autograd/packed_gemm.cpp: W^T copied into panels, the bias and the relu
//    applied to each tile of y while its sums are still in registers), where it is as fast as
//    OpenBLAS or faster (packed_is_faster, above). The backward's dx = g W takes it by the same
//    test, in gemm_op, when dgm runs on one thread.

struct LinearBackward : Node {
  SavedTensor x, w, y;  // y: linear_relu's output, for its mask
  bool relu = false;
  const char* name() const override { return relu ? "linear_relu" : "linear"; }
  std::vector<Tensor> backward(const Tensor& g_in) override {
    Tensor g = g_in, gb;
    if (relu) {
      const Tensor yv = y.unpack(*this);
      // the mask has no gradient of its own (relu'' = 0): under create_graph, g * [y > 0] keeps g's
      // graph. Without a graph, one pass masks g and sums its rows for db, on one thread (a pass
      // long enough for parallel_range to split it masks on its threads, then sums).
      if (GradMode::is_enabled()) g = g * gt(yv, Tensor::zeros({}, yv.dtype()));
      else if (next[2] && runtime::range_pieces(g.numel()) <= 1) std::tie(g, gb) = kernels::relu_grad_and_row_sum(g, yv);
      else g = kernels::scale_where_positive(g, yv, 0.0);
    }
    Tensor gx, gw;
    if (next[0]) gx = mm(g, w.unpack(*this), false, false);
    if (next[1]) gw = mm(g, x.unpack(*this), true, false);
    if (next[2] && !gb.defined()) gb = sum(g, {0});
    return {gx, gw, gb};
  }
  void release_saved() override { x.reset(), w.reset(), y.reset(); }
};

static Tensor linear_fused(const Tensor& x, const Tensor& w, const Tensor& b, bool relu) {
  const char* op = relu ? "linear_relu" : "linear";
  kernels::check_same_float(x, w, op);
  kernels::check_same_float(x, b, op);
  const int64_t n = x.size(0), k = x.size(1), o = w.size(0);
  if (b.dim() != 1 || b.size(0) != o)
    throw Error(std::string(op) + ": bias " + b.shape().str() + " does not match weight " + w.shape().str());
  Tensor out = Tensor::empty({n, o}, x.dtype());
  const void *px = x.impl().storage->data, *pw = w.impl().storage->data, *pb = b.impl().storage->data;
  void* po = out.impl().storage->data;
  if (packed_is_faster(x.dtype(), n, k, o)) {
    kernels::gemm_packed(n, px, k, kernels::pack_b(true, k, o, pw, k, x.dtype()), false, po, o, pb, relu);
  } else {
    kernels::dispatch_float(x.dtype(), op, [&](auto tag) {
      using T = decltype(tag);
      for (int64_t i = 0; i < n; ++i) std::copy_n(static_cast<const T*>(pb), o, static_cast<T*>(po) + i * o);
    });
    if (k > 0) kernels::gemm(false, true, n, o, k, 1.0, px, k, pw, k, 1.0, po, o, x.dtype());
    if (relu) out = kernels::unary::relu(out, op);
  }
  if (!any_requires_grad({&x, &w, &b})) return out;
  auto node = std::make_shared<LinearBackward>();
  node->relu = relu;
  if (w.requires_grad()) node->x = SavedTensor::input(x);
  if (x.requires_grad()) node->w = SavedTensor::input(w);
  attach(out, node, {&x, &w, &b});
  if (relu) node->y = SavedTensor::output(out);
  return out;
}

// x [..., in] W^T + b over the last axis (x of any rank: the leading axes are rows), relu of it if asked.
static Tensor linear_any(const Tensor& x, const Tensor& w, const Tensor& b, bool relu) {
  const char* op = relu ? "linear_relu" : "linear";
  if (w.dim() != 2) throw Error(std::string(op) + ": weight must be 2-D [out, in], got " + w.shape().str());
  if (x.dim() == 0 || x.shape()[x.dim() - 1] != w.shape()[1])
    throw Error(std::string(op) + ": cannot apply weight " + w.shape().str() + " ([out, in]) to input " + x.shape().str());
  auto two_d = [&](const Tensor& x2) {
    if (b.defined()) return linear_fused(x2, w, b, relu);
    return relu ? dgm::relu(mm(x2, w, false, true)) : mm(x2, w, false, true);
  };
  if (x.dim() == 2) return two_d(x);
  Shape os = x.shape();
  os[os.size() - 1] = w.shape()[0];
  return reshape(two_d(reshape(x, Shape{-1, w.shape()[1]})), os);
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) { return linear_any(x, w, b, false); }
Tensor linear_relu(const Tensor& x, const Tensor& w, const Tensor& b) { return linear_any(x, w, b, true); }

}  // namespace dgm
