// dgm/autograd/ops/norm.cpp — normalisation layers (group_norm, layer_norm: fused ops, forward and
// backward side by side, the backward in engine ops under create_graph) and dropout.
#include <algorithm>
#include <cmath>
#include <utility>

#include "autograd/graph.h"
#include "autograd/kernels.h"
#include "autograd/ops.h"
#include "autograd/parallel.h"
#include "autograd/random.h"

namespace dgm {

// ---------------------------------------------------------------- group_norm
// One fused op (the U-Net and the DCGAN generator normalise every block; as
// eight engine ops it was eight passes forward and more backward). For image
// n and group k, over its m = (C / G) * H * W values (contiguous in NCHW):
//   mu = mean x,   var = mean (x - mu)^2,   r = 1 / sqrt(var + eps),
//   xhat = (x - mu) r,   y = w[c] xhat + b[c]
// Backward, with gh = w[c] g (the gradient reaching xhat) and means over the group:
//   dx = r (gh - mean(gh) - xhat mean(gh xhat))
//   dw[c] = sum over n and positions of g xhat,   db[c] = sum of g
// Under create_graph the backward is the same formula in engine ops (so it
// can be differentiated again); otherwise one pass of raw loops.
namespace {

struct GroupNormGeom {
  int64_t n, c, groups, spatial;  // x viewed as [n, c, spatial]
  int64_t per_group() const { return c / groups; }
  int64_t m() const { return per_group() * spatial; }
  Shape per_channel(const Shape& x) const {
    Shape s{1, c};
    for (size_t i = 2; i < x.size(); ++i) s.push_back(1);
    return s;
  }
};

// sum of (x - shift)^2 and of (x - shift) over n values, in 8 double lanes
template <class T>
void centred_sums(const T* x, int64_t n, double shift, double* sum, double* sum_sq) {
  double s[8] = {}, q[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) {
      const double d = static_cast<double>(x[i + l]) - shift;
      s[l] += d, q[l] += d * d;
    }
  for (; i < n; ++i) {
    const double d = static_cast<double>(x[i]) - shift;
    s[0] += d, q[0] += d * d;
  }
  *sum = *sum_sq = 0;
  for (int l = 0; l < 8; ++l) *sum += s[l], *sum_sq += q[l];
}

// sum of g and of g (x - shift) over n values, in 8 double lanes
template <class T>
void grad_sums(const T* g, const T* x, int64_t n, double shift, double* sum_g, double* sum_gx) {
  double s[8] = {}, q[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) {
      const double gi = static_cast<double>(g[i + l]);
      s[l] += gi, q[l] += gi * (static_cast<double>(x[i + l]) - shift);
    }
  for (; i < n; ++i) {
    const double gi = static_cast<double>(g[i]);
    s[0] += gi, q[0] += gi * (static_cast<double>(x[i]) - shift);
  }
  *sum_g = *sum_gx = 0;
  for (int l = 0; l < 8; ++l) *sum_g += s[l], *sum_gx += q[l];
}

// y = a x + b over n values
template <class T>
void affine(const T* __restrict x, int64_t n, T a, T b, T* __restrict y) {
  for (int64_t i = 0; i < n; ++i) y[i] = a * x[i] + b;
}

// y = a g + b x + c over n values
template <class T>
void affine2(const T* __restrict g, const T* __restrict x, int64_t n, T a, T b, T c, T* __restrict y) {
  for (int64_t i = 0; i < n; ++i) y[i] = a * g[i] + b * x[i] + c;
}

// Forward: y, and each group's mean and 1 / sqrt(var + eps).
Tensor group_norm_forward(const Tensor& x, const Tensor& w, const Tensor& b, const GroupNormGeom& g, double eps,
                          std::vector<double>& mean, std::vector<double>& rstd) {
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  mean.assign(static_cast<size_t>(g.n * g.groups), 0.0);
  rstd.assign(mean.size(), 0.0);
  kernels::dispatch_float(x.dtype(), "group_norm", [&](auto tag) {
    using T = decltype(tag);
    const T *px = x.data<T>(), *pw = w.defined() ? w.data<T>() : nullptr, *pb = b.defined() ? b.data<T>() : nullptr;
    T* py = y.data<T>();
    auto normalise = [&](int64_t ng) {  // block ng = (image, group)
      const T* xg = px + ng * g.m();
      double s, q;
      centred_sums(xg, g.m(), static_cast<double>(xg[0]), &s, &q);  // shifted by one value: no cancellation
      const double mu_shift = s / static_cast<double>(g.m());
      const double var = std::max(0.0, q / static_cast<double>(g.m()) - mu_shift * mu_shift);
      const double mu = static_cast<double>(xg[0]) + mu_shift, r = 1.0 / std::sqrt(var + eps);
      mean[static_cast<size_t>(ng)] = mu, rstd[static_cast<size_t>(ng)] = r;
      for (int64_t j = 0; j < g.per_group(); ++j) {
        const int64_t c = (ng % g.groups) * g.per_group() + j;
        const double a = r * (pw ? static_cast<double>(pw[c]) : 1.0);
        const double shift = (pb ? static_cast<double>(pb[c]) : 0.0) - mu * a;
        affine(xg + j * g.spatial, g.spatial, static_cast<T>(a), static_cast<T>(shift), py + ng * g.m() + j * g.spatial);
      }
    };
    runtime::parallel_range(g.n * g.groups, [&](int64_t begin, int64_t end, int) {
      for (int64_t ng = begin; ng < end; ++ng) normalise(ng);
    }, g.m());
  });
  return y;
}

struct GroupNormBackward : Node {
  SavedTensor x, w;
  GroupNormGeom geom;
  double eps = 0;
  std::vector<double> group_mean, group_rstd;  // per (image, group)
  bool has_weight = false;
  const char* name() const override { return "group_norm"; }

  std::vector<Tensor> backward(const Tensor& g) override {
    const Tensor xv = x.unpack(*this), wv = has_weight ? w.unpack(*this) : Tensor();
    if (GradMode::is_enabled()) return composite(g, xv, wv);
    Tensor gx = next[0] ? Tensor::empty(xv.shape(), xv.dtype()) : Tensor();
    // dw and db summed per piece of the (image, group) blocks, then in order
    const int pieces = runtime::range_pieces(geom.n * geom.groups, geom.m());
    std::vector<std::vector<double>> dws(static_cast<size_t>(pieces), std::vector<double>(static_cast<size_t>(geom.c), 0.0));
    std::vector<std::vector<double>> dbs = dws;
    kernels::dispatch_float(xv.dtype(), "group_norm backward", [&](auto tag) {
      using T = decltype(tag);
      const T *px = xv.data<T>(), *pg = g.data<T>(), *pw = has_weight ? wv.data<T>() : nullptr;
      const int64_t cg = geom.per_group(), hw = geom.spatial;
      // block ng = (image, group): its dx, and its part of dw and db
      auto block = [&](int64_t ng, std::vector<double>& dw, std::vector<double>& db) {
        const double mu = group_mean[static_cast<size_t>(ng)], r = group_rstd[static_cast<size_t>(ng)];
        const int64_t c0 = (ng % geom.groups) * cg;
        double sum_gh = 0, sum_ghx = 0;  // sum of gh, and of gh (x - mu)
        for (int64_t j = 0; j < cg; ++j) {
          double sum_g, sum_gx;  // over channel c0 + j: sum of g, and of g (x - mu)
          grad_sums(pg + ng * geom.m() + j * hw, px + ng * geom.m() + j * hw, hw, mu, &sum_g, &sum_gx);
          const double wc = pw ? static_cast<double>(pw[c0 + j]) : 1.0;
          sum_gh += wc * sum_g, sum_ghx += wc * sum_gx;
          db[static_cast<size_t>(c0 + j)] += sum_g;
          dw[static_cast<size_t>(c0 + j)] += r * sum_gx;
        }
        if (!gx.defined()) return;
        // dx = r w g - r mean(gh) - (x - mu) r^3 mean(gh (x - mu))
        const double mean_gh = sum_gh / static_cast<double>(geom.m());
        const double k = r * r * r * sum_ghx / static_cast<double>(geom.m());
        T* pgx = gx.template data<T>();
        for (int64_t j = 0; j < cg; ++j) {
          const double wc = pw ? static_cast<double>(pw[c0 + j]) : 1.0;
          const int64_t off = ng * geom.m() + j * hw;
          affine2(pg + off, px + off, hw, static_cast<T>(r * wc), static_cast<T>(-k), static_cast<T>(k * mu - r * mean_gh),
                  pgx + off);
        }
      };
      runtime::parallel_range(geom.n * geom.groups, [&](int64_t begin, int64_t end, int piece) {
        for (int64_t ng = begin; ng < end; ++ng) block(ng, dws[static_cast<size_t>(piece)], dbs[static_cast<size_t>(piece)]);
      }, geom.m());
    });
    std::vector<double>& dw = dws[0];
    std::vector<double>& db = dbs[0];
    for (size_t p = 1; p < dws.size(); ++p)
      for (size_t c = 0; c < dw.size(); ++c) dw[c] += dws[p][c], db[c] += dbs[p][c];
    Tensor gw, gb;
    if (next.size() > 1 && next[1]) gw = Tensor::from_vector(dw, {geom.c}).to(xv.dtype());
    if (next.size() > 2 && next[2]) gb = Tensor::from_vector(db, {geom.c}).to(xv.dtype());
    return {gx, gw, gb};
  }

  // The same gradients in engine ops (differentiable again).
  std::vector<Tensor> composite(const Tensor& g, const Tensor& xv, const Tensor& wv) const {
    const Shape per_channel = geom.per_channel(xv.shape());
    const Shape grouped{geom.n, geom.groups, -1};
    Tensor xs = reshape(xv, grouped);
    Tensor centred = xs - mean(xs, {2}, true);
    Tensor r = 1.0 / sqrt(mean(square(centred), {2}, true) + eps);
    Tensor xhat = centred * r;
    Tensor gh = reshape(wv.defined() ? g * reshape(wv, per_channel) : g, grouped);
    Tensor gx, gw, gb;
    if (next[0]) gx = reshape(r * (gh - mean(gh, {2}, true) - xhat * mean(gh * xhat, {2}, true)), xv.shape());
    Axes all_but_channel{0};
    for (size_t i = 2; i < xv.dim(); ++i) all_but_channel.push_back(static_cast<int64_t>(i));
    if (next.size() > 1 && next[1]) gw = sum(g * reshape(xhat, xv.shape()), all_but_channel);
    if (next.size() > 2 && next[2]) gb = sum(g, all_but_channel);
    return {gx, gw, gb};
  }
  void release_saved() override { x.reset(), w.reset(); }
};

}  // namespace

Tensor group_norm(const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias, double eps) {
  if (x.dim() < 2 || groups < 1 || x.shape()[1] % groups != 0)
    throw Error("group_norm: " + std::to_string(groups) + " groups do not divide the channels of " + x.shape().str());
  const int64_t c = x.shape()[1];
  for (const Tensor* t : {&weight, &bias})
    if (t->defined()) {
      if (t->shape() != Shape{c})
        throw Error("group_norm: weight/bias " + t->shape().str() + " must be [" + std::to_string(c) + "]");
      kernels::check_same_float(x, *t, "group_norm");
    }
  GroupNormGeom geom{x.shape()[0], c, groups, c == 0 ? 0 : x.numel() / std::max<int64_t>(1, x.shape()[0] * c)};
  std::vector<double> group_mean, group_rstd;
  Tensor y = group_norm_forward(x, weight, bias, geom, eps, group_mean, group_rstd);
  if (!any_requires_grad({&x, &weight, &bias})) return y;
  auto node = std::make_shared<GroupNormBackward>();
  node->group_mean = std::move(group_mean);
  node->group_rstd = std::move(group_rstd);
  node->x = SavedTensor::input(x);
  if (weight.defined()) node->w = SavedTensor::input(weight);
  node->geom = geom;
  node->eps = eps;
  node->has_weight = weight.defined();
  attach(y, node, {&x, &weight, &bias});
  return y;
}

// ---------------------------------------------------------------- layer_norm
// One fused op over rows of D values (the last k axes; a Transformer block normalises twice).
// Per row:  mu = mean x,  var = mean (x - mu)^2,  r = 1 / sqrt(var + eps),  xhat = (x - mu) r,
//           y = w xhat + b                                   (w, b: one value per column of the row)
// Backward, with gh = w g (the gradient reaching xhat) and means over the row:
//   dx = r (gh - mean(gh) - xhat mean(gh xhat)),   dw = sum over rows of g xhat,   db = sum of g
// Without a graph one pass each way (dw, db summed per piece of rows, then in order); under
// create_graph the same formulas in engine ops.
namespace {

struct LayerNormBackward : Node {
  SavedTensor x, w;
  int64_t rows = 0, cols = 0;
  double eps = 0;
  std::vector<double> row_mean, row_rstd;
  bool has_weight = false;
  Shape norm_shape;
  const char* name() const override { return "layer_norm"; }

  std::vector<Tensor> backward(const Tensor& g) override {
    const Tensor xv = x.unpack(*this), wv = has_weight ? w.unpack(*this) : Tensor();
    if (GradMode::is_enabled()) return composite(g, xv, wv);
    Tensor gx = next[0] ? Tensor::empty(xv.shape(), xv.dtype()) : Tensor();
    const bool want_w = next.size() > 1 && next[1], want_b = next.size() > 2 && next[2];
    const int pieces = runtime::range_pieces(rows, cols);
    std::vector<std::vector<double>> dws(static_cast<size_t>(pieces), std::vector<double>(static_cast<size_t>(cols), 0.0)), dbs = dws;
    kernels::dispatch_float(xv.dtype(), "layer_norm backward", [&](auto tag) {
      using T = decltype(tag);
      const T *px = xv.data<T>(), *pg = g.data<T>(), *pw = has_weight ? wv.data<T>() : nullptr;
      T* pgx = gx.defined() ? gx.template data<T>() : nullptr;
      runtime::parallel_range(rows, [&](int64_t begin, int64_t end, int piece) {
        double* dw = dws[static_cast<size_t>(piece)].data();
        double* db = dbs[static_cast<size_t>(piece)].data();
        for (int64_t m = begin; m < end; ++m) {
          const T *xr = px + m * cols, *gr = pg + m * cols;
          const double mu = row_mean[static_cast<size_t>(m)], r = row_rstd[static_cast<size_t>(m)];
          double sum_gh = 0, sum_ghx = 0;  // sum of gh, and of gh (x - mu)
          for (int64_t j = 0; j < cols; ++j) {
            const double gj = static_cast<double>(gr[j]), xm = static_cast<double>(xr[j]) - mu;
            const double gh = pw ? gj * static_cast<double>(pw[j]) : gj;
            sum_gh += gh, sum_ghx += gh * xm;
            dw[j] += gj * xm * r, db[j] += gj;
          }
          if (!pgx) continue;
          // dx = r w g - r mean(gh) - (x - mu) r^3 mean(gh (x - mu))
          const T a = static_cast<T>(r), k = static_cast<T>(r * r * r * sum_ghx / static_cast<double>(cols));
          const T c = static_cast<T>(-r * sum_gh / static_cast<double>(cols)), mu_t = static_cast<T>(mu);
          T* out = pgx + m * cols;
          for (int64_t j = 0; j < cols; ++j) out[j] = a * (pw ? pw[j] * gr[j] : gr[j]) + c - k * (xr[j] - mu_t);
        }
      }, cols);
    });
    for (size_t p = 1; p < dws.size(); ++p)
      for (size_t j = 0; j < static_cast<size_t>(cols); ++j) dws[0][j] += dws[p][j], dbs[0][j] += dbs[p][j];
    Tensor gw, gb;
    if (want_w) gw = Tensor::from_vector(dws[0], norm_shape).to(xv.dtype());
    if (want_b) gb = Tensor::from_vector(dbs[0], norm_shape).to(xv.dtype());
    return {gx, gw, gb};
  }

  // The same gradients in engine ops (differentiable again), the row statistics recomputed.
  std::vector<Tensor> composite(const Tensor& g, const Tensor& xv, const Tensor& wv) const {
    const Tensor xs = reshape(xv, {rows, cols}), gs = reshape(g, {rows, cols});
    const Tensor centred = xs - mean(xs, {1}, true);
    const Tensor r = 1.0 / sqrt(mean(square(centred), {1}, true) + eps);
    const Tensor xhat = centred * r;
    const Tensor gh = wv.defined() ? gs * reshape(wv, {cols}) : gs;
    Tensor gx, gw, gb;
    if (next[0]) gx = reshape(r * (gh - mean(gh, {1}, true) - xhat * mean(gh * xhat, {1}, true)), xv.shape());
    if (next.size() > 1 && next[1]) gw = reshape(sum(gs * xhat, {0}), norm_shape);
    if (next.size() > 2 && next[2]) gb = reshape(sum(gs, {0}), norm_shape);
    return {gx, gw, gb};
  }
  void release_saved() override { x.reset(), w.reset(); }
};

}  // namespace

Tensor layer_norm(const Tensor& x, int64_t k, const Tensor& weight, const Tensor& bias, double eps) {
  if (k < 1 || k > static_cast<int64_t>(x.dim()))
    throw Error("layer_norm: cannot normalise the last " + std::to_string(k) + " axes of " + x.shape().str());
  Shape norm_shape;
  int64_t cols = 1;
  for (size_t i = x.dim() - static_cast<size_t>(k); i < x.dim(); ++i) norm_shape.push_back(x.shape()[i]), cols *= x.shape()[i];
  for (const Tensor* t : {&weight, &bias})
    if (t->defined()) {
      if (t->shape() != norm_shape)
        throw Error("layer_norm: weight/bias " + t->shape().str() + " must have the normalised shape " + norm_shape.str());
      kernels::check_same_float(x, *t, "layer_norm");
    }
  const int64_t rows = cols == 0 ? 0 : x.numel() / cols;
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  std::vector<double> row_mean(static_cast<size_t>(rows)), row_rstd(static_cast<size_t>(rows));
  kernels::dispatch_float(x.dtype(), "layer_norm", [&](auto tag) {
    using T = decltype(tag);
    const T *px = x.data<T>(), *pw = weight.defined() ? weight.data<T>() : nullptr, *pb = bias.defined() ? bias.data<T>() : nullptr;
    T* py = y.data<T>();
    runtime::parallel_range(rows, [&](int64_t begin, int64_t end, int) {
      for (int64_t m = begin; m < end; ++m) {
        const T* xr = px + m * cols;
        double s, q;
        centred_sums(xr, cols, static_cast<double>(xr[0]), &s, &q);  // shifted by one value: no cancellation
        const double shift_mean = s / static_cast<double>(cols);
        const double var = std::max(0.0, q / static_cast<double>(cols) - shift_mean * shift_mean);
        const double mu = static_cast<double>(xr[0]) + shift_mean, r = 1.0 / std::sqrt(var + eps);
        row_mean[static_cast<size_t>(m)] = mu, row_rstd[static_cast<size_t>(m)] = r;
        const T mu_t = static_cast<T>(mu), r_t = static_cast<T>(r);
        T* out = py + m * cols;
        for (int64_t j = 0; j < cols; ++j) {
          const T xhat = (xr[j] - mu_t) * r_t;
          out[j] = (pw ? pw[j] * xhat : xhat) + (pb ? pb[j] : T(0));
        }
      }
    }, cols);
  });
  if (!any_requires_grad({&x, &weight, &bias})) return y;
  auto node = std::make_shared<LayerNormBackward>();
  node->x = SavedTensor::input(x);
  if (weight.defined()) node->w = SavedTensor::input(weight);
  node->rows = rows, node->cols = cols, node->eps = eps, node->has_weight = weight.defined(), node->norm_shape = norm_shape;
  node->row_mean = std::move(row_mean), node->row_rstd = std::move(row_rstd);
  attach(y, node, {&x, &weight, &bias});
  return y;
}

// y = x * m / (1 - p),  m ~ Bernoulli(1 - p);   dy/dx = m / (1 - p)
Tensor dropout(const Tensor& x, double p, bool training, Generator& gen) {
  if (!(p >= 0.0 && p < 1.0)) throw Error("dropout: p must be in [0, 1), got " + std::to_string(p));
  if (!training || p == 0.0) return x;
  Tensor keep = gen.bernoulli(x.shape(), 1.0 - p, x.dtype());
  return x * (keep * (1.0 / (1.0 - p)));
}

}  // namespace dgm
