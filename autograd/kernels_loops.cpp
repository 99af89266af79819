// dgm/autograd/kernels_loops.cpp — broadcasting, reductions, copies: plain
// loops over flat buffers (the compiler vectorises the inner loops).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "autograd/kernels.h"
#include "autograd/parallel.h"

namespace dgm::kernels {

void check_same_float(const Tensor& a, const Tensor& b, const char* op) {
  if (a.dtype() != b.dtype())
    throw Error(std::string(op) + ": dtype mismatch, " + dtype_name(a.dtype()) + " " + a.shape().str() +
                " vs " + dtype_name(b.dtype()) + " " + b.shape().str());
  if (!is_floating(a.dtype()))
    throw Error(std::string(op) + ": int64 tensors are not supported here (convert with .to(DType::Float32))");
}

namespace {

// Up to Shape::kMaxDims integers (strides, loop counters) on the stack: these
// loops run in every elementwise op, and heap vectors here were a visible
// share of a step on small tensors.
struct Dims {
  std::array<int64_t, Shape::kMaxDims> v{};
  size_t n = 0;
  Dims() = default;
  Dims(size_t count, int64_t value) : n(count) { std::fill_n(v.begin(), count, value); }
  size_t size() const { return n; }
  bool empty() const { return n == 0; }
  void push_back(int64_t x) { v[n++] = x; }
  int64_t& back() { return v[n - 1]; }
  int64_t operator[](size_t i) const { return v[i]; }
  int64_t& operator[](size_t i) { return v[i]; }
};

// Strides of `s` when broadcast to `out` (0 along broadcast axes).
Dims broadcast_strides(const Shape& s, const Shape& out) {
  Dims st(out.size(), 0);
  const size_t off = out.size() - s.size();
  int64_t stride = 1;
  for (size_t i = s.size(); i-- > 0;) {
    st[off + i] = s[i] == 1 ? 0 : stride;
    stride *= s[i];
  }
  return st;
}

// Walks `out` in row-major order, reading a and b at their (broadcast)
// strides. Adjacent axes that are contiguous for both operands are merged
// first, so the inner loop is as long as possible.
template <class T, class F>
void broadcast_loop(const T* a, const T* b, T* out, const Shape& os, const Dims& sa, const Dims& sb, F f) {
  Dims dims, xa, xb;
  for (size_t i = 0; i < os.size(); ++i) {
    if (os[i] == 1) continue;
    if (!dims.empty() && xa.back() == sa[i] * os[i] && xb.back() == sb[i] * os[i]) {
      dims.back() *= os[i];
      xa.back() = sa[i];
      xb.back() = sb[i];
    } else {
      dims.push_back(os[i]);
      xa.push_back(sa[i]);
      xb.push_back(sb[i]);
    }
  }
  if (dims.empty()) {
    out[0] = f(a[0], b[0]);
    return;
  }
  const int64_t n = dims.back(), ia = xa.back(), ib = xb.back();
  // Short rows against one row repeated over them ([512, 2] * [1, 2]): the
  // repeated row is tiled to a width near 64, and the loop runs over long
  // contiguous stretches instead of 2-element rows.
  if (dims.size() == 2 && n < 32 && ia == 1 && ib == 1 &&
      ((xa[0] == n && xb[0] == 0) || (xa[0] == 0 && xb[0] == n))) {
    const bool a_full = xa[0] == n;
    // (named pointers: g++ 12 with -fsanitize=undefined miscompiles a
    // subscripted conditional, (c ? b : a)[i], reading a[0] for every i)
    const T* repeated = a_full ? b : a;
    const T* whole = a_full ? a : b;
    const int64_t width = (64 / n) * n, total = dims[0] * n;
    T tile[64];
    for (int64_t l = 0; l < width; ++l) tile[l] = repeated[l % n];
    for (int64_t start = 0; start < total; start += width) {
      const int64_t len = std::min(width, total - start);
      const T* full = whole + start;
      T* ro = out + start;
      if (a_full)
        for (int64_t l = 0; l < len; ++l) ro[l] = f(full[l], tile[l]);
      else
        for (int64_t l = 0; l < len; ++l) ro[l] = f(tile[l], full[l]);
    }
    return;
  }
  const size_t outer_dims = dims.size() - 1;
  Dims idx(outer_dims, 0);
  int64_t outer = 1;
  for (size_t i = 0; i < outer_dims; ++i) outer *= dims[i];
  int64_t pa = 0, pb = 0;
  for (int64_t o = 0; o < outer; ++o) {
    const T* ra = a + pa;
    const T* rb = b + pb;
    T* ro = out + o * n;
    if (ia == 1 && ib == 1)
      for (int64_t j = 0; j < n; ++j) ro[j] = f(ra[j], rb[j]);
    else if (ia == 1 && ib == 0)
      for (int64_t j = 0; j < n; ++j) ro[j] = f(ra[j], rb[0]);
    else if (ia == 0 && ib == 1)
      for (int64_t j = 0; j < n; ++j) ro[j] = f(ra[0], rb[j]);
    else
      for (int64_t j = 0; j < n; ++j) ro[j] = f(ra[j * ia], rb[j * ib]);
    // advance the odometer over the outer axes
    for (size_t k = outer_dims; k-- > 0;) {
      pa += xa[k];
      pb += xb[k];
      if (++idx[k] < dims[k]) break;
      pa -= xa[k] * dims[k];
      pb -= xb[k] * dims[k];
      idx[k] = 0;
    }
  }
}

template <class T, class F>
void apply_binary(const Tensor& a, const Tensor& b, Tensor& out, F f) {
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  T* po = out.data<T>();
  const int64_t n = out.numel();
  if (a.shape() == b.shape()) {
    runtime::parallel_range(n, [&](int64_t begin, int64_t end, int) {
      for (int64_t i = begin; i < end; ++i) po[i] = f(pa[i], pb[i]);
    });
  } else if (b.numel() == 1 && a.numel() == n) {
    const T s = pb[0];
    runtime::parallel_range(n, [&](int64_t begin, int64_t end, int) {
      for (int64_t i = begin; i < end; ++i) po[i] = f(pa[i], s);
    });
  } else if (a.numel() == 1 && b.numel() == n) {
    const T s = pa[0];
    runtime::parallel_range(n, [&](int64_t begin, int64_t end, int) {
      for (int64_t i = begin; i < end; ++i) po[i] = f(s, pb[i]);
    });
  } else {
    broadcast_loop(pa, pb, po, out.shape(), broadcast_strides(a.shape(), out.shape()),
                   broadcast_strides(b.shape(), out.shape()), f);
  }
}

// out[i] = sum_j x[j * inner + i]: the column sums of an [n, inner] block.
// A short row (a bias gradient of 2 or 8 outputs) would make the inner loop
// too short to vectorise, so the block is read as rows of `width` elements,
// a multiple of inner near 64, summed lane by lane; lane l then holds part
// of column l % inner.
// The sum of n contiguous values, in double: 16 independent lanes (the
// compiler vectorises them; a single accumulator chain cannot be), each block
// of 1024 values folded into the double total, so a float lane never adds more
// than 64 values before it is. A block shorter than 1024 (a row of 784 pixels)
// goes through the lanes too, all but its last n mod 16 values: one chain of
// 784 dependent additions took 4 times as long as the lanes.
template <class T>
double sum_contiguous(const T* __restrict x, int64_t n) {
  constexpr int kLanes = 16;
  constexpr int64_t kBlock = 1024;
  double total = 0;
  for (int64_t i = 0; i < n; i += kBlock) {
    const int64_t len = std::min(kBlock, n - i), in_lanes = len / kLanes * kLanes;
    T lanes[kLanes] = {};
    for (int64_t j = 0; j < in_lanes; j += kLanes)
      for (int l = 0; l < kLanes; ++l) lanes[l] += x[i + j + l];
    double block = 0;
    for (int l = 0; l < kLanes; ++l) block += static_cast<double>(lanes[l]);
    for (int64_t j = in_lanes; j < len; ++j) block += static_cast<double>(x[i + j]);
    total += block;
  }
  return total;
}

// With kMasked, the rows summed are those of x' = x where y > 0, else 0 (relu's backward), and x'
// is written to xm on the way: one pass for relu's gradient and the bias's.
template <class T, bool kMasked = false>
void sum_rows(const T* __restrict x, int64_t n, int64_t inner, T* __restrict out, const T* __restrict y = nullptr,
              T* __restrict xm = nullptr) {
  const int64_t width = inner >= 64 ? inner : inner * (64 / inner);
  const int64_t total = n * inner, full = total / width;
  T lanes[128];  // width < 128 when inner < 64
  T* __restrict acc = inner >= 64 ? out : lanes;
  auto value = [&](int64_t f) {
    if constexpr (!kMasked) return x[f];
    else return xm[f] = (y[f] > T(0) ? T(1) : T(0)) * x[f];  // scale_where_positive_range's form
  };
  std::fill_n(acc, width, T(0));
  for (int64_t r = 0; r < full; ++r)
    for (int64_t l = 0; l < width; ++l) acc[l] += value(r * width + l);
  for (int64_t f = full * width; f < total; ++f) acc[f - full * width] += value(f);  // the last partial row
  if (acc == out) return;
  std::fill_n(out, inner, T(0));
  for (int64_t l = 0; l < width; ++l) out[l % inner] += acc[l];
}

}  // namespace

Tensor binary(Binary op, const Tensor& a, const Tensor& b, const char* name) {
  check_same_float(a, b, name);
  Shape os = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = Tensor::empty(os, a.dtype());
  dispatch_float(a.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    switch (op) {
      case Binary::Add: apply_binary<T>(a, b, out, [](T x, T y) { return x + y; }); break;
      case Binary::Sub: apply_binary<T>(a, b, out, [](T x, T y) { return x - y; }); break;
      case Binary::Mul: apply_binary<T>(a, b, out, [](T x, T y) { return x * y; }); break;
      case Binary::Div: apply_binary<T>(a, b, out, [](T x, T y) { return x / y; }); break;
      case Binary::Pow: apply_binary<T>(a, b, out, [](T x, T y) { return std::pow(x, y); }); break;
      case Binary::Max: apply_binary<T>(a, b, out, [](T x, T y) { return x >= y ? x : y; }); break;
      case Binary::Min: apply_binary<T>(a, b, out, [](T x, T y) { return x <= y ? x : y; }); break;
      case Binary::Eq: apply_binary<T>(a, b, out, [](T x, T y) { return T(x == y); }); break;
      case Binary::Ne: apply_binary<T>(a, b, out, [](T x, T y) { return T(x != y); }); break;
      case Binary::Lt: apply_binary<T>(a, b, out, [](T x, T y) { return T(x < y); }); break;
      case Binary::Le: apply_binary<T>(a, b, out, [](T x, T y) { return T(x <= y); }); break;
      case Binary::Gt: apply_binary<T>(a, b, out, [](T x, T y) { return T(x > y); }); break;
      case Binary::Ge: apply_binary<T>(a, b, out, [](T x, T y) { return T(x >= y); }); break;
    }
  });
  return out;
}

// out = (y > 0 ? 1 : neg) g, branch-free (a select, then a multiply): the
// sign of y is a coin flip, so a branch would mispredict half the time; this
// form (restrict parameters: no aliasing) vectorises.
template <class T>
void scale_where_positive_range(const T* __restrict g, const T* __restrict y, T neg, T* __restrict out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = (y[i] > T(0) ? T(1) : neg) * g[i];
}

Tensor scale_where_positive(const Tensor& g, const Tensor& y, double negative) {
  check_same_float(g, y, "relu backward");
  if (g.shape() != y.shape())
    throw Error("relu backward: gradient " + g.shape().str() + " does not match " + y.shape().str());
  Tensor out = Tensor::empty(g.shape(), g.dtype());
  dispatch_float(g.dtype(), "relu backward", [&](auto tag) {
    using T = decltype(tag);
    const T *pg = g.data<T>(), *py = y.data<T>();
    T* po = out.data<T>();
    runtime::parallel_range(out.numel(), [&](int64_t begin, int64_t end, int) {
      scale_where_positive_range(pg + begin, py + begin, static_cast<T>(negative), po + begin, end - begin);
    });
  });
  return out;
}

std::pair<Tensor, Tensor> relu_grad_and_row_sum(const Tensor& g, const Tensor& y) {
  check_same_float(g, y, "linear_relu backward");
  if (g.shape() != y.shape() || g.dim() != 2)
    throw Error("linear_relu backward: gradient " + g.shape().str() + " and output " + y.shape().str() +
                " must be one 2-D shape [rows, cols]");
  Tensor masked = Tensor::empty(g.shape(), g.dtype()), sums = Tensor::empty({g.size(1)}, g.dtype());
  dispatch_float(g.dtype(), "linear_relu backward", [&](auto tag) {
    using T = decltype(tag);
    const int64_t rows = g.size(0), cols = g.size(1);
    if (cols > 1) return sum_rows<T, true>(g.data<T>(), rows, cols, sums.data<T>(), y.data<T>(), masked.data<T>());
    scale_where_positive_range(g.data<T>(), y.data<T>(), T(0), masked.data<T>(), rows);  // one column: reduce_axis's sum
    sums.data<T>()[0] = static_cast<T>(sum_contiguous(masked.data<T>(), rows));
  });
  return {masked, sums};
}

Tensor expand(const Tensor& x, const Shape& shape) {
  Shape check = broadcast_shapes(x.shape(), shape, "expand");
  if (check != shape)
    throw Error("expand: cannot broadcast " + x.shape().str() + " to " + shape.str());
  Tensor out = Tensor::empty(shape, x.dtype());
  if (x.dtype() == DType::Int64) {
    // Index tensors: a simple element walk.
    Dims st = broadcast_strides(x.shape(), shape);
    const int64_t* px = x.data<int64_t>();
    int64_t* po = out.data<int64_t>();
    Dims idx(shape.size(), 0);
    for (int64_t o = 0; o < out.numel(); ++o) {
      int64_t off = 0;
      for (size_t k = 0; k < shape.size(); ++k) off += idx[k] * st[k];
      po[o] = px[off];
      for (size_t k = shape.size(); k-- > 0;) {
        if (++idx[k] < shape[k]) break;
        idx[k] = 0;
      }
    }
    return out;
  }
  dispatch_float(x.dtype(), "expand", [&](auto tag) {
    using T = decltype(tag);
    Dims st = broadcast_strides(x.shape(), shape);
    broadcast_loop(x.data<T>(), x.data<T>(), out.data<T>(), shape, st, st, [](T v, T) { return v; });
  });
  return out;
}

Tensor reduce_axis(Reduce op, const Tensor& x, size_t axis) {
  const Shape& s = x.shape();
  int64_t outer = 1, inner = 1, n = s[axis];
  for (size_t i = 0; i < axis; ++i) outer *= s[i];
  for (size_t i = axis + 1; i < s.size(); ++i) inner *= s[i];
  Shape os = s;
  os[axis] = 1;
  if (n == 0 && op != Reduce::Sum)
    throw Error(std::string(op == Reduce::Max ? "max" : "min") + ": cannot reduce an empty axis of " + s.str());
  Tensor out = Tensor::empty(os, x.dtype());
  dispatch_float(x.dtype(), "reduce", [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* po = out.data<T>();
    for (int64_t o = 0; o < outer; ++o) {
      const T* base = px + o * n * inner;
      T* ro = po + o * inner;
      if (inner == 1) {
        if (op == Reduce::Sum) {
          ro[0] = static_cast<T>(sum_contiguous(base, n));
        } else {
          T m = base[0];
          for (int64_t j = 1; j < n; ++j) m = op == Reduce::Max ? std::max(m, base[j]) : std::min(m, base[j]);
          ro[0] = m;
        }
        continue;
      }
      if (op == Reduce::Sum) {
        sum_rows(base, n, inner, ro);
      } else {
        std::copy_n(base, inner, ro);
        for (int64_t j = 1; j < n; ++j)
          for (int64_t i = 0; i < inner; ++i) {
            T v = base[j * inner + i];
            ro[i] = op == Reduce::Max ? std::max(ro[i], v) : std::min(ro[i], v);
          }
      }
    }
  });
  return out;
}

Tensor reduce_all(Reduce op, const Tensor& x) {
  Tensor flat = Tensor(x.impl_ptr());
  Tensor out = Tensor::empty(Shape{}, x.dtype());
  if (x.numel() == 0 && op != Reduce::Sum)
    throw Error(std::string(op == Reduce::Max ? "max" : "min") + ": cannot reduce an empty tensor");
  dispatch_float(x.dtype(), "reduce", [&](auto tag) {
    using T = decltype(tag);
    const T* p = flat.data<T>();
    const int64_t n = flat.numel();
    if (op == Reduce::Sum) {
      out.data<T>()[0] = static_cast<T>(sum_contiguous(p, n));
    } else {
      T m = p[0];
      for (int64_t i = 1; i < n; ++i) m = op == Reduce::Max ? std::max(m, p[i]) : std::min(m, p[i]);
      out.data<T>()[0] = m;
    }
  });
  return out;
}

Tensor permute(const Tensor& x, const std::vector<size_t>& order) {
  const Shape& s = x.shape();
  Shape os;
  std::vector<int64_t> xs = contiguous_strides(s), st(order.size());
  for (size_t i = 0; i < order.size(); ++i) {
    os.push_back(s[order[i]]);
    st[i] = xs[order[i]];
  }
  Tensor out = Tensor::empty(os, x.dtype());
  const size_t esz = dtype_size(x.dtype());
  const char* px = static_cast<const char*>(x.impl().storage->data);
  char* po = static_cast<char*>(out.impl().storage->data);
  const size_t nd = os.size();
  if (nd == 0 || out.numel() == 0) {
    std::memcpy(po, px, esz * static_cast<size_t>(out.numel()));
    return out;
  }
  const int64_t inner = os[nd - 1], inner_stride = st[nd - 1];
  std::vector<int64_t> idx(nd - 1, 0);
  int64_t off = 0;
  const int64_t outer = out.numel() / std::max<int64_t>(inner, 1);
  auto copy_row = [&](auto tag, int64_t o) {
    using T = decltype(tag);
    const T* src = reinterpret_cast<const T*>(px) + off;
    T* dst = reinterpret_cast<T*>(po) + o * inner;
    for (int64_t j = 0; j < inner; ++j) dst[j] = src[j * inner_stride];
  };
  for (int64_t o = 0; o < outer; ++o) {
    if (esz == 4) copy_row(uint32_t{}, o);  // a permutation only moves bits
    else copy_row(uint64_t{}, o);
    for (size_t k = nd - 1; k-- > 0;) {
      off += st[k];
      if (++idx[k] < os[k]) break;
      off -= st[k] * os[k];
      idx[k] = 0;
    }
  }
  return out;
}

}  // namespace dgm::kernels
