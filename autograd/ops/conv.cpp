// dgm/autograd/ops/conv.cpp — 2-D convolution (NCHW) through im2col + BLAS GEMM,
// its transpose, and the image ops that go with it (pooling, upsampling).
//
// Three ops close the set under differentiation, so double backward works:
//   y  = conv2d(x, w)                      y[n,o] = sum_{c,i,j} w[o,c,i,j] x[n,c, s*p + d*i - pad, ...]
//   dx = conv_input_grad(g, w)   (the adjoint of conv2d in x, = conv_transpose2d)
//   dw = conv_weight_grad(x, g)  (the adjoint of conv2d in w)
// Because conv2d is bilinear in (x, w):  <conv2d(x, w), g> = <x, conv_input_grad(g, w)>
//                                                          = <w, conv_weight_grad(x, g)>,
// and the backward of each of the three is written with the other two.
#include <algorithm>
#include <cstring>

#include "autograd/graph.h"
#include "autograd/kernels.h"
#include "autograd/ops.h"
#include "autograd/ops/conv_winograd.h"
#include "autograd/parallel.h"
#include "autograd/runtime.h"

namespace dgm {

namespace {

constexpr int64_t kWinogradMinChannels = 4;

struct ConvGeom {
  int64_t n, c, h, w;     // input
  int64_t o, kh, kw;      // weight [o, c, kh, kw]
  int64_t oh, ow;         // output
  int64_t stride, pad, dil;
  std::vector<int64_t> taps;  // the kernel positions i * kw + j in use (all, unless a mask removes some)
  int64_t ckk() const { return c * static_cast<int64_t>(taps.size()); }
  int64_t l() const { return oh * ow; }
  bool all_taps() const { return static_cast<int64_t>(taps.size()) == kh * kw; }
  // A 1x1 convolution with stride 1 and no padding: im2col would be a copy of x.
  bool pointwise() const { return kh == 1 && kw == 1 && stride == 1 && pad == 0; }
};

int64_t conv_out(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dil) {
  return (in + 2 * pad - dil * (k - 1) - 1) / stride + 1;
}

ConvGeom geometry(const Shape& x, const Shape& w, int64_t stride, int64_t pad, int64_t dil, const char* op,
                  const std::vector<int64_t>& taps = {}) {
  if (x.size() != 4 || w.size() != 4)
    throw Error(std::string(op) + ": expects input [N, C, H, W] and weight [O, C, kH, kW], got " + x.str() + " and " + w.str());
  if (x[1] != w[1])
    throw Error(std::string(op) + ": input " + x.str() + " has " + std::to_string(x[1]) + " channels but weight " +
                w.str() + " expects " + std::to_string(w[1]));
  if (stride < 1 || pad < 0 || dil < 1)
    throw Error(std::string(op) + ": stride and dilation must be >= 1 and padding >= 0");
  ConvGeom g{x[0], x[1], x[2], x[3], w[0], w[2], w[3], 0, 0, stride, pad, dil, taps};
  if (g.taps.empty())
    for (int64_t t = 0; t < g.kh * g.kw; ++t) g.taps.push_back(t);
  for (size_t t = 0; t < g.taps.size(); ++t)
    if (g.taps[t] < 0 || g.taps[t] >= g.kh * g.kw || (t > 0 && g.taps[t] <= g.taps[t - 1]))
      throw Error(std::string(op) + ": kernel taps must be increasing positions inside the " + std::to_string(g.kh) +
                  "x" + std::to_string(g.kw) + " kernel");
  g.oh = conv_out(g.h, g.kh, stride, pad, dil);
  g.ow = conv_out(g.w, g.kw, stride, pad, dil);
  if (g.oh <= 0 || g.ow <= 0)
    throw Error(std::string(op) + ": kernel " + w.str() + " does not fit input " + x.str() + " with padding " +
                std::to_string(pad) + " and dilation " + std::to_string(dil));
  return g;
}

// The output columns ox whose input column ix = ox*s - pad + j*d lies inside
// [0, w): a half-open range [lo, hi), so the inner loops need no bounds checks.
inline void valid_columns(const ConvGeom& g, int64_t j, int64_t* lo, int64_t* hi) {
  const int64_t off = j * g.dil - g.pad;  // ix = ox * s + off
  *lo = off >= 0 ? 0 : (-off + g.stride - 1) / g.stride;
  *hi = g.w - 1 - off < 0 ? 0 : std::min(g.ow, (g.w - 1 - off) / g.stride + 1);
  if (*hi < *lo) *hi = *lo;
}

// Calls f(c, t, i, lo, hi, off) for every channel c and kernel tap t = (i, j)
// in use: row c*T + t of the im2col matrix, whose valid output columns are
// [lo, hi) and read input column ox*s + off.
template <class F>
void for_each_tap(const ConvGeom& g, F f) {
  const int64_t nt = static_cast<int64_t>(g.taps.size());
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t t = 0; t < nt; ++t) {
      const int64_t i = g.taps[static_cast<size_t>(t)] / g.kw, j = g.taps[static_cast<size_t>(t)] % g.kw;
      int64_t lo, hi;
      valid_columns(g, j, &lo, &hi);
      f(c, c * nt + t, i, lo, hi, j * g.dil - g.pad);
    }
}

// A "same-width" convolution (stride 1, output as wide as the input, as in
// every PixelCNN layer): output pixel q = oy*w + ox of tap (i, j) reads input
// pixel q + shift, shift = (i*d - pad)*w + (j*d - pad), so a tap's im2col row
// is one contiguous copy of the input plane, shifted, with the rows above or
// below the image and the columns that wrapped round an edge set to zero.
// (Copying it row by row made one memcpy call per 28 floats.)
bool same_width(const ConvGeom& g) { return g.stride == 1 && g.ow == g.w; }

// For tap (i, j) of a same-width convolution: the output rows [*r0, *r1)
// that read inside the image, and the flat range [*q0, *q1) of output pixels
// in them whose shifted input index lies inside the plane.
void shifted_range(const ConvGeom& g, int64_t i, int64_t off, int64_t* r0, int64_t* r1, int64_t* q0, int64_t* q1,
                   int64_t* shift) {
  const int64_t di = i * g.dil - g.pad;  // iy = oy + di
  *r0 = std::clamp<int64_t>(-di, 0, g.oh);
  *r1 = std::clamp<int64_t>(g.h - di, *r0, g.oh);
  *shift = di * g.w + off;
  *q0 = std::clamp<int64_t>(-*shift, *r0 * g.w, *r1 * g.w);
  *q1 = std::clamp<int64_t>(g.h * g.w - *shift, *q0, *r1 * g.w);
}

// Zeroes the output columns [0, lo) and [hi, ow) of rows [r0, r1) of a cols
// row: the pixels whose input column fell outside the image.
// (Column by column, strided: these are one or two entries per image row,
// and a fill per row would be a memset call for each.)
template <class T>
void zero_edge_columns(T* row, const ConvGeom& g, int64_t r0, int64_t r1, int64_t lo, int64_t hi) {
  for (int64_t ox = 0; ox < lo; ++ox)
    for (int64_t oy = r0; oy < r1; ++oy) row[oy * g.ow + ox] = T(0);
  for (int64_t ox = hi; ox < g.ow; ++ox)
    for (int64_t oy = r0; oy < r1; ++oy) row[oy * g.ow + ox] = T(0);
}

// A tap's ranges, worked out once (shifted_range, valid_columns): the same for every channel and image.
struct Shifted {
  int64_t r0, r1, q0, q1, shift, lo, hi;
  Shifted(const ConvGeom& g, int64_t i, int64_t off, int64_t lo_, int64_t hi_) : lo(lo_), hi(hi_) {
    shifted_range(g, i, off, &r0, &r1, &q0, &q1, &shift);
  }
};

// One im2col row of a same-width tap: the plane shifted by (i d - pad) rows
// and `off` columns, zeros where that falls outside it; and its adjoint,
// which adds such a row back into the plane. (The edge columns of the row are
// zeroed first: they would wrap round into the neighbouring image row.)
template <class T>
void copy_shifted(const T* plane, const ConvGeom& g, const Shifted& s, T* row) {
  std::fill_n(row, s.q0, T(0));
  std::copy_n(plane + s.q0 + s.shift, s.q1 - s.q0, row + s.q0);
  std::fill_n(row + s.q1, g.l() - s.q1, T(0));
  zero_edge_columns(row, g, s.r0, s.r1, s.lo, s.hi);
}
template <class T>
void add_shifted(T* row, const ConvGeom& g, const Shifted& s, T* plane) {
  zero_edge_columns(row, g, s.r0, s.r1, s.lo, s.hi);
  T* __restrict dst = plane + s.q0 + s.shift;  // inside the plane: q0 + shift >= 0
  const T* __restrict src = row + s.q0;
  for (int64_t q = 0; q < s.q1 - s.q0; ++q) dst[q] += src[q];
}

// A stride-2 convolution whose output is half its input (even H and W; the
// DCGAN's layers, the U-Net's downsampling): split into its four parity
// planes x_ab[r, c] = x[2r + a, 2c + b], each tap (i, j) reads one of them
// with stride 1, shifted by (floor((i - pad) / 2), floor((j - pad) / 2)):
// a same-width copy of the plane of parities ((i - pad) mod 2, (j - pad) mod 2).
// (Read with stride 2, the rows of 7 to 14 values were a scalar gather.)
bool half_size(const ConvGeom& g) {
  return g.stride == 2 && g.dil == 1 && g.h % 2 == 0 && g.w % 2 == 0 && g.oh == g.h / 2 && g.ow == g.w / 2;
}
// The geometry of one parity plane read by a stride-1 "tap" (sy, sx) = (i, off).
ConvGeom parity_geometry(const ConvGeom& g) {
  ConvGeom p = g;
  p.h = g.h / 2, p.w = g.w / 2, p.stride = 1, p.pad = 0, p.dil = 1;
  return p;
}
struct ParityTap {
  int64_t plane;  // 2a + b
  int64_t sy, sx;
};
ParityTap parity_tap(const ConvGeom& g, int64_t tap) {
  const int64_t di = tap / g.kw - g.pad, dj = tap % g.kw - g.pad;  // floor division by 2 and parity, negatives too
  return {2 * (di & 1) + (dj & 1), di >> 1, dj >> 1};
}
// x [h, w] -> four planes [h/2, w/2], and back (adding)
template <class T>
void split_parities(const T* x, const ConvGeom& g, T* planes) {
  const int64_t hh = g.h / 2, hw = g.w / 2, n = hh * hw;
  for (int64_t r = 0; r < g.h; ++r) {
    const T* __restrict in = x + r * g.w;
    T* __restrict even = planes + (2 * (r & 1)) * n + (r >> 1) * hw;
    T* __restrict odd = even + n;
    for (int64_t c = 0; c < hw; ++c) even[c] = in[2 * c], odd[c] = in[2 * c + 1];
  }
}
// (the four planes cover every pixel once, so this writes x whole: no zero fill before it)
template <class T>
void join_parities(const T* planes, const ConvGeom& g, T* x) {
  const int64_t hh = g.h / 2, hw = g.w / 2, n = hh * hw;
  for (int64_t r = 0; r < g.h; ++r) {
    T* __restrict out = x + r * g.w;
    const T* __restrict even = planes + (2 * (r & 1)) * n + (r >> 1) * hw;
    const T* __restrict odd = even + n;
    for (int64_t c = 0; c < hw; ++c) out[2 * c] = even[c], out[2 * c + 1] = odd[c];
  }
}
// The parity taps of a half-size convolution with their ranges, once per call.
struct ParityShifted {
  ParityTap tap;
  Shifted range;
};
std::vector<ParityShifted> parity_taps(const ConvGeom& g, const ConvGeom& p) {
  std::vector<ParityShifted> out;
  for (int64_t t : g.taps) {
    const ParityTap pt = parity_tap(g, t);
    int64_t lo, hi;
    valid_columns(p, pt.sx, &lo, &hi);
    out.push_back({pt, Shifted(p, pt.sy, pt.sx, lo, hi)});
  }
  return out;
}
template <class T>
std::vector<T>& parity_scratch(const ConvGeom& g) {
  thread_local std::vector<T> planes;
  planes.resize(static_cast<size_t>(g.h * g.w));
  if (checked_memory()) planes.shrink_to_fit();  // sanitizer build: no spare capacity to read past
  return planes;
}

// cols[c*T + t, oy*ow + ox] = x[c, oy*s - pad + i*d, ox*s - pad + j*d] (0 outside),
// for every tap t = (i, j) of the kernel in use; cols's rows are ld apart (ld >= oh ow: several
// images side by side, see images_per_gemm)
template <class T>
void im2col(const T* x, const ConvGeom& g, T* cols, int64_t ld) {
  if (same_width(g)) {
    for_each_tap(g, [&](int64_t c, int64_t r, int64_t i, int64_t lo, int64_t hi, int64_t off) {
      copy_shifted(x + c * g.h * g.w, g, Shifted(g, i, off, lo, hi), cols + r * ld);
    });
    return;
  }
  if (half_size(g)) {
    const ConvGeom p = parity_geometry(g);
    T* planes = parity_scratch<T>(g).data();
    const std::vector<ParityShifted> taps = parity_taps(g, p);
    const int64_t nt = static_cast<int64_t>(taps.size());
    for (int64_t c = 0; c < g.c; ++c) {
      split_parities(x + c * g.h * g.w, g, planes);
      for (int64_t t = 0; t < nt; ++t) {
        const ParityShifted& pt = taps[static_cast<size_t>(t)];
        copy_shifted(planes + pt.tap.plane * p.h * p.w, p, pt.range, cols + (c * nt + t) * ld);
      }
    }
    return;
  }
  for_each_tap(g, [&](int64_t c, int64_t r, int64_t i, int64_t lo, int64_t hi, int64_t off) {
    T* row = cols + r * ld;
    for (int64_t oy = 0; oy < g.oh; ++oy) {
      const int64_t iy = oy * g.stride - g.pad + i * g.dil;
      T* out = row + oy * g.ow;
      if (iy < 0 || iy >= g.h) {
        std::fill_n(out, g.ow, T(0));
        continue;
      }
      const T* in = x + (c * g.h + iy) * g.w;
      std::fill_n(out, lo, T(0));
      if (g.stride == 1) std::copy_n(in + lo + off, hi - lo, out + lo);
      else for (int64_t ox = lo; ox < hi; ++ox) out[ox] = in[ox * g.stride + off];
      std::fill_n(out + hi, g.ow - hi, T(0));
    }
  });
}

// The adjoint of im2col: x[c, iy, ix] = the sum of cols[...] over every patch
// that read it (x is written whole). Same-width and half-size: the rows are
// added back shifted, into the plane or into its parity planes (which are then
// interleaved into x, covering it once: no zero fill of x first).
template <class T>
void col2im(T* cols, const ConvGeom& g, T* x, int64_t ld) {
  if (!half_size(g)) std::fill_n(x, g.c * g.h * g.w, T(0));  // image by image: the adds below find it in cache
  if (same_width(g)) {
    for_each_tap(g, [&](int64_t c, int64_t r, int64_t i, int64_t lo, int64_t hi, int64_t off) {
      add_shifted(cols + r * ld, g, Shifted(g, i, off, lo, hi), x + c * g.h * g.w);
    });
    return;
  }
  if (half_size(g)) {
    const ConvGeom p = parity_geometry(g);
    T* planes = parity_scratch<T>(g).data();
    const std::vector<ParityShifted> taps = parity_taps(g, p);
    const int64_t nt = static_cast<int64_t>(taps.size());
    for (int64_t c = 0; c < g.c; ++c) {
      std::fill_n(planes, g.h * g.w, T(0));
      for (int64_t t = 0; t < nt; ++t) {
        const ParityShifted& pt = taps[static_cast<size_t>(t)];
        add_shifted(cols + (c * nt + t) * ld, p, pt.range, planes + pt.tap.plane * p.h * p.w);
      }
      join_parities(planes, g, x + c * g.h * g.w);
    }
    return;
  }
  for_each_tap(g, [&](int64_t c, int64_t r, int64_t i, int64_t lo, int64_t hi, int64_t off) {
    const T* row = cols + r * ld;
    for (int64_t oy = 0; oy < g.oh; ++oy) {
      const int64_t iy = oy * g.stride - g.pad + i * g.dil;
      if (iy < 0 || iy >= g.h) continue;
      T* out = x + (c * g.h + iy) * g.w;
      const T* in = row + oy * g.ow;
      if (g.stride == 1)
        for (int64_t ox = lo; ox < hi; ++ox) out[ox + off] += in[ox];
      else
        for (int64_t ox = lo; ox < hi; ++ox) out[ox * g.stride + off] += in[ox];
    }
  });
}

// ---- raw kernels (no graph)

// How many images share one GEMM. A small output plane makes a thin GEMM (the DCGAN's 7x7: 49
// columns), which OpenBLAS runs at ~100 GFLOP/s against ~140 for 400 columns (AVX-512, one
// thread, [64 x 512] x [512 x 49] alone): images with fewer than kGemmColumns output pixels go
// side by side, their im2col columns in one matrix [c T, images * oh ow], and the GEMM's output
// (or the output gradient it reads) is copied between the images' planes and one [o, images * oh ow]
// matrix. 1x1 convolutions (no im2col) go one image at a time.
constexpr int64_t kGemmColumns = 384;
int64_t images_per_gemm(const ConvGeom& g) {
  if (g.pointwise() || g.l() >= kGemmColumns / 2) return 1;
  return std::min<int64_t>(g.n, (kGemmColumns + g.l() - 1) / g.l());
}

// The images of a batch are split into chunks run side by side
// (runtime::run_chunks); each chunk gets its own im2col scratch matrix
// [c T, images_per_gemm oh ow] from the tensor allocator's cache (no page faults, no zeroing:
// im2col writes every entry), and with several images per GEMM, a matrix [o, images oh ow].
// Null for 1x1 convolutions, which need none.
struct Chunks {
  int count = 1;
  int64_t images = 1;  // images_per_gemm
  std::vector<Tensor> scratch, gathered;
  Chunks(const ConvGeom& g, DType dtype) : images(images_per_gemm(g)) {
    count = runtime::parallel_chunks(g.n, 2.0 * static_cast<double>(g.n * g.o * g.ckk() * g.l()));
    for (int c = 0; c < count; ++c) {
      scratch.push_back(g.pointwise() ? Tensor() : Tensor::empty({g.ckk() * g.l() * images}, dtype));
      gathered.push_back(images > 1 ? Tensor::empty({g.o * g.l() * images}, dtype) : Tensor());
    }
  }
  template <class T>
  static std::vector<T*> pointers(std::vector<Tensor>& ts) {
    std::vector<T*> p;
    for (auto& t : ts) p.push_back(t.defined() ? t.template data<T>() : nullptr);
    return p;
  }
  template <class T>
  std::vector<T*> cols() { return pointers<T>(scratch); }
  template <class T>
  std::vector<T*> outs() { return pointers<T>(gathered); }
};

// planes [m images][o][l] (images `stride` values apart) <-> mat [o][m l]. gathered() is the
// matrix to hand to GEMM: the planes themselves for one image, else their copy in mat.
template <class T>
const T* gathered(const T* planes, int64_t stride, int64_t m, int64_t o, int64_t l, T* mat) {
  if (m == 1) return planes;
  for (int64_t j = 0; j < m; ++j)
    for (int64_t k = 0; k < o; ++k) std::copy_n(planes + j * stride + k * l, l, mat + k * m * l + j * l);
  return mat;
}
template <class T>
void scatter_planes(const T* mat, int64_t m, int64_t o, int64_t l, T* planes, int64_t stride) {
  for (int64_t j = 0; j < m; ++j)
    for (int64_t k = 0; k < o; ++k) std::copy_n(mat + k * m * l + j * l, l, planes + j * stride + k * l);
}

// The weight as the GEMM sees it, [o, c * T]: w itself when every tap is in
// use, else only the columns of the taps in use.
template <class T>
const T* compact_weight(const Tensor& w, const ConvGeom& g, std::vector<T>& buf) {
  if (g.all_taps()) return w.data<T>();
  const int64_t nt = static_cast<int64_t>(g.taps.size()), kk = g.kh * g.kw;
  buf.resize(static_cast<size_t>(g.o * g.ckk()));
  const T* pw = w.data<T>();
  for (int64_t o = 0; o < g.o; ++o)
    for (int64_t c = 0; c < g.c; ++c)
      for (int64_t t = 0; t < nt; ++t)
        buf[static_cast<size_t>((o * g.c + c) * nt + t)] = pw[(o * g.c + c) * kk + g.taps[static_cast<size_t>(t)]];
  return buf.data();
}

// A full 3x3 kernel, stride and dilation 1, and enough channels on both
// sides for the 16 small GEMMs to beat im2col's one: Winograd F(2x2, 3x3).
bool winograd_applies(const ConvGeom& g) {
  return runtime::conv_winograd() && g.kh == 3 && g.kw == 3 && g.stride == 1 && g.dil == 1 && g.all_taps() &&
         g.c >= kWinogradMinChannels && g.o >= kWinogradMinChannels;
}
winograd::Geometry winograd_geometry(const ConvGeom& g) { return {g.n, g.c, g.h, g.w, g.o, g.pad}; }

// y[n] = W[o, c T] @ im2col(x[n]) (+ b[o]: the output is prefilled with the
// bias and GEMM adds into it with beta = 1, so the bias costs no extra pass)
Tensor conv_forward_raw(const Tensor& x, const Tensor& w, const ConvGeom& g, const Tensor& b = Tensor()) {
  Tensor y = Tensor::empty({g.n, g.o, g.oh, g.ow}, x.dtype());
  kernels::dispatch_float(x.dtype(), "conv2d", [&](auto tag) {
    using T = decltype(tag);
    if (winograd_applies(g)) {
      winograd::forward(x.data<T>(), w.data<T>(), b.defined() ? b.data<T>() : nullptr, y.data<T>(), winograd_geometry(g));
      return;
    }
    Chunks chunks(g, x.dtype());
    const std::vector<T*> cols = chunks.cols<T>(), outs = chunks.outs<T>();
    std::vector<T> wbuf;
    const T* wc = compact_weight(w, g, wbuf);
    const T *px = x.data<T>(), *pb = b.defined() ? b.data<T>() : nullptr;
    T* py = y.data<T>();
    const int64_t xs = g.c * g.h * g.w, ys = g.o * g.l();
    runtime::run_chunks(g.n, chunks.count, [&](int64_t n0, int64_t n1, int c) {
      for (int64_t n = n0; n < n1; n += chunks.images) {
        const int64_t m = std::min(chunks.images, n1 - n), ld = m * g.l();  // images n .. n + m - 1
        T* out = m > 1 ? outs[c] : py + n * ys;  // [o, m l]
        if (pb)
          for (int64_t o = 0; o < g.o; ++o) std::fill_n(out + o * ld, ld, pb[o]);
        if (!g.pointwise())
          for (int64_t j = 0; j < m; ++j) im2col(px + (n + j) * xs, g, cols[c] + j * g.l(), ld);
        kernels::gemm(false, false, g.o, ld, g.ckk(), 1.0, wc, g.ckk(), g.pointwise() ? px + n * xs : cols[c], ld,
                      pb ? 1.0 : 0.0, out, ld, x.dtype());
        if (m > 1) scatter_planes(out, m, g.o, g.l(), py + n * ys, ys);
      }
    });
  });
  return y;
}

// For stride 1, the input gradient is itself a convolution: with the
// kernel flipped and its two channel axes swapped, wf[c, o, i', j'] =
// w[o, c, kh-1-i', kw-1-j'], and padding pad' = d (k - 1) - pad,
//   dx[c, y, x] = sum_{o,i,j} w[o, c, i, j] g[o, y + pad - d i, x + pad - d j] = conv2d(g, wf)[c, y, x].
// Computed this way GEMM writes [C, H W] per image (not the k*k times larger
// [C k k, H W] of W^T g, which OpenBLAS first zeroes), its inner dimension is
// O k k (not O, often 2 to 32), and there is no col2im pass.
bool input_grad_as_conv(const ConvGeom& g) {
  return g.stride == 1 && g.kh == g.kw && !g.pointwise() && g.pad <= g.dil * (g.kh - 1);
}

Tensor conv_input_grad_as_conv(const Tensor& gy, const Tensor& w, const ConvGeom& g) {
  const int64_t kk = g.kh * g.kw;
  Tensor wf = Tensor::zeros({g.c, g.o, g.kh, g.kw}, w.dtype());
  kernels::dispatch_float(w.dtype(), "conv_input_grad", [&](auto tag) {
    using T = decltype(tag);
    const T* pw = w.data<T>();
    T* pf = wf.data<T>();
    for (int64_t o = 0; o < g.o; ++o)
      for (int64_t c = 0; c < g.c; ++c)
        for (int64_t t : g.taps) pf[(c * g.o + o) * kk + (kk - 1 - t)] = pw[(o * g.c + c) * kk + t];
  });
  std::vector<int64_t> flipped;  // tap (i, j) -> (kh-1-i, kw-1-j), i.e. t -> kk-1-t, increasing
  for (auto t = g.taps.rbegin(); t != g.taps.rend(); ++t) flipped.push_back(kk - 1 - *t);
  const ConvGeom g2 = geometry(gy.shape(), wf.shape(), 1, g.dil * (g.kh - 1) - g.pad, g.dil, "conv_input_grad", flipped);
  return conv_forward_raw(gy, wf, g2);  // [n, c, h, w]: stride 1 makes oh + d (k-1) - 2 pad = h
}

// dx[n] = col2im(W^T @ g[n])
Tensor conv_input_grad_raw(const Tensor& gy, const Tensor& w, const ConvGeom& g) {
  if (input_grad_as_conv(g)) return conv_input_grad_as_conv(gy, w, g);
  Tensor dx = Tensor::empty({g.n, g.c, g.h, g.w}, gy.dtype());
  kernels::dispatch_float(gy.dtype(), "conv_input_grad", [&](auto tag) {
    using T = decltype(tag);
    Chunks chunks(g, gy.dtype());
    const std::vector<T*> cols = chunks.cols<T>(), outs = chunks.outs<T>();
    std::vector<T> wbuf;
    const T* wc = compact_weight(w, g, wbuf);
    const T* pg = gy.data<T>();
    T* pdx = dx.data<T>();
    const int64_t xs = g.c * g.h * g.w, ys = g.o * g.l();
    runtime::run_chunks(g.n, chunks.count, [&](int64_t n0, int64_t n1, int c) {
      for (int64_t n = n0; n < n1; n += chunks.images) {
        const int64_t m = std::min(chunks.images, n1 - n), ld = m * g.l();  // images n .. n + m - 1
        const T* gn = gathered(pg + n * ys, ys, m, g.o, g.l(), outs[c]);  // [o, m l]
        kernels::gemm(true, false, g.ckk(), ld, g.o, 1.0, wc, g.ckk(), gn, ld, 0.0, g.pointwise() ? pdx + n * xs : cols[c], ld,
                      gy.dtype());
        if (!g.pointwise())
          for (int64_t j = 0; j < m; ++j) col2im(cols[c] + j * g.l(), g, pdx + (n + j) * xs, ld);
      }
    });
  });
  return dx;
}

// dw = sum_n g[n] @ im2col(x[n])^T, computed transposed, dw^T[c T, o] +=
// im2col(x[n]) @ g[n]^T (accumulated in place by GEMM with beta = 1: the
// long im2col matrix as GEMM's first operand runs ~6% faster in OpenBLAS
// for these shapes; each chunk of images sums into its own dw^T, and the
// chunks' sums are added in order), then written out as [o, c, kh, kw],
// zeros at the taps not in use.
Tensor conv_weight_grad_raw(const Tensor& x, const Tensor& gy, const ConvGeom& g) {
  Tensor dw = Tensor::zeros({g.o, g.c, g.kh, g.kw}, x.dtype());
  kernels::dispatch_float(x.dtype(), "conv_weight_grad", [&](auto tag) {
    using T = decltype(tag);
    if (winograd_applies(g)) {
      winograd::weight_grad(x.data<T>(), gy.data<T>(), dw.data<T>(), winograd_geometry(g));
      return;
    }
    Chunks chunks(g, x.dtype());
    const std::vector<T*> cols = chunks.cols<T>(), outs = chunks.outs<T>();
    const size_t size = static_cast<size_t>(g.ckk() * g.o);
    std::vector<std::vector<T>> partial(static_cast<size_t>(chunks.count), std::vector<T>(size, T(0)));  // [c T, o]
    const T *px = x.data<T>(), *pg = gy.data<T>();
    const int64_t xs = g.c * g.h * g.w, ys = g.o * g.l();
    runtime::run_chunks(g.n, chunks.count, [&](int64_t n0, int64_t n1, int c) {
      for (int64_t n = n0; n < n1; n += chunks.images) {
        const int64_t m = std::min(chunks.images, n1 - n), ld = m * g.l();  // images n .. n + m - 1
        if (!g.pointwise())
          for (int64_t j = 0; j < m; ++j) im2col(px + (n + j) * xs, g, cols[c] + j * g.l(), ld);
        const T* gn = gathered(pg + n * ys, ys, m, g.o, g.l(), outs[c]);  // [o, m l]
        kernels::gemm(false, true, g.ckk(), g.o, ld, 1.0, g.pointwise() ? px + n * xs : cols[c], ld, gn, ld, 1.0,
                      partial[static_cast<size_t>(c)].data(), g.o, x.dtype());
      }
    });
    std::vector<T>& dwt = partial[0];
    for (size_t c = 1; c < partial.size(); ++c)
      for (size_t k = 0; k < size; ++k) dwt[k] += partial[c][k];
    const int64_t nt = static_cast<int64_t>(g.taps.size()), kk = g.kh * g.kw;
    T* pw = dw.data<T>();
    for (int64_t o = 0; o < g.o; ++o)
      for (int64_t c = 0; c < g.c; ++c)
        for (int64_t t = 0; t < nt; ++t)
          pw[(o * g.c + c) * kk + g.taps[static_cast<size_t>(t)]] = dwt[static_cast<size_t>((c * nt + t) * g.o + o)];
  });
  return dw;
}

struct ConvParams {
  int64_t stride = 1, pad = 0, dil = 1;
  std::vector<int64_t> taps;  // empty: the whole kernel
};

Tensor conv_input_grad(const Tensor& gy, const Tensor& w, const Shape& x_shape, const ConvParams& p);
Tensor conv_weight_grad(const Tensor& x, const Tensor& gy, const Shape& w_shape, const ConvParams& p);
Tensor conv_nobias(const Tensor& x, const Tensor& w, const ConvParams& p);

// ---------------------------------------------------------------- conv2d (no bias)
// y = conv(x, w);   dx = conv_input_grad(g, w),  dw = conv_weight_grad(x, g)
// with a bias b:   db = sum of g over the batch and both image axes
struct Conv2dBackward : Node {
  SavedTensor x, w;
  Shape x_shape, w_shape;
  ConvParams p;
  const char* name() const override { return "conv2d"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor gx, gw, gb;
    if (next[0]) gx = conv_input_grad(g, w.unpack(*this), x_shape, p);
    if (next[1]) gw = conv_weight_grad(x.unpack(*this), g, w_shape, p);
    if (next.size() > 2 && next[2]) gb = sum(g, {0, 2, 3});
    if (next.size() > 2) return {gx, gw, gb};
    return {gx, gw};
  }
  void release_saved() override { x.reset(), w.reset(); }
};
Tensor conv_op(const Tensor& x, const Tensor& w, const Tensor& b, const ConvParams& p) {
  kernels::check_same_float(x, w, "conv2d");
  ConvGeom g = geometry(x.shape(), w.shape(), p.stride, p.pad, p.dil, "conv2d", p.taps);
  if (b.defined()) {
    kernels::check_same_float(x, b, "conv2d");
    if (b.dim() != 1 || b.shape()[0] != g.o)
      throw Error("conv2d: bias " + b.shape().str() + " does not match " + std::to_string(g.o) + " output channels");
  }
  Tensor y = conv_forward_raw(x, w, g, b);
  if (!any_requires_grad({&x, &w, &b})) return y;
  auto node = std::make_shared<Conv2dBackward>();
  if (w.requires_grad()) node->x = SavedTensor::input(x);
  if (x.requires_grad()) node->w = SavedTensor::input(w);
  node->x_shape = x.shape();
  node->w_shape = w.shape();
  node->p = p;
  if (b.defined()) attach(y, node, {&x, &w, &b});
  else attach(y, node, {&x, &w});
  return y;
}
Tensor conv_nobias(const Tensor& x, const Tensor& w, const ConvParams& p) { return conv_op(x, w, Tensor(), p); }

// ---------------------------------------------------------------- conv_input_grad (= conv_transpose2d)
// y = conv_input_grad(g, w):  <y, G> = <g, conv(G, w)>
//   dg = conv(G, w),   dw = conv_weight_grad(G, g)
struct ConvInputGradBackward : Node {
  SavedTensor gy, w;
  Shape w_shape;
  ConvParams p;
  const char* name() const override { return "conv_transpose2d"; }
  std::vector<Tensor> backward(const Tensor& G) override {
    Tensor dg, dw;
    if (next[0]) dg = conv_nobias(G, w.unpack(*this), p);
    if (next[1]) dw = conv_weight_grad(G, gy.unpack(*this), w_shape, p);
    return {dg, dw};
  }
  void release_saved() override { gy.reset(), w.reset(); }
};
Tensor conv_input_grad(const Tensor& gy, const Tensor& w, const Shape& x_shape, const ConvParams& p) {
  kernels::check_same_float(gy, w, "conv_transpose2d");
  ConvGeom g = geometry(x_shape, w.shape(), p.stride, p.pad, p.dil, "conv_transpose2d", p.taps);
  if (gy.dim() != 4 || gy.shape()[0] != g.n || gy.shape()[1] != g.o || gy.shape()[2] != g.oh || gy.shape()[3] != g.ow)
    throw Error("conv_transpose2d: input " + gy.shape().str() + " does not fit weight " + w.shape().str() +
                " and output " + x_shape.str());
  Tensor y = conv_input_grad_raw(gy, w, g);
  if (!any_requires_grad({&gy, &w})) return y;
  auto node = std::make_shared<ConvInputGradBackward>();
  if (w.requires_grad()) node->gy = SavedTensor::input(gy);
  if (gy.requires_grad()) node->w = SavedTensor::input(w);
  node->w_shape = w.shape();
  node->p = p;
  attach(y, node, {&gy, &w});
  return y;
}

// ---------------------------------------------------------------- conv_weight_grad
// y = conv_weight_grad(x, g):  <y, G> = <conv(x, G), g>
//   dx = conv_input_grad(g, G),   dg = conv(x, G)
struct ConvWeightGradBackward : Node {
  SavedTensor x, gy;
  Shape x_shape;
  ConvParams p;
  const char* name() const override { return "conv2d_weight_grad"; }
  std::vector<Tensor> backward(const Tensor& G) override {
    Tensor dx, dg;
    if (next[0]) dx = conv_input_grad(gy.unpack(*this), G, x_shape, p);
    if (next[1]) dg = conv_nobias(x.unpack(*this), G, p);
    return {dx, dg};
  }
  void release_saved() override { x.reset(), gy.reset(); }
};
Tensor conv_weight_grad(const Tensor& x, const Tensor& gy, const Shape& w_shape, const ConvParams& p) {
  ConvGeom g = geometry(x.shape(), w_shape, p.stride, p.pad, p.dil, "conv2d_weight_grad", p.taps);
  Tensor y = conv_weight_grad_raw(x, gy, g);
  if (!any_requires_grad({&x, &gy})) return y;
  auto node = std::make_shared<ConvWeightGradBackward>();
  if (gy.requires_grad()) node->x = SavedTensor::input(x);
  if (x.requires_grad()) node->gy = SavedTensor::input(gy);
  node->x_shape = x.shape();
  node->p = p;
  attach(y, node, {&x, &gy});
  return y;
}

Tensor add_channel_bias(const Tensor& y, const Tensor& b, const char* op) {
  if (!b.defined()) return y;
  if (b.dim() != 1 || b.shape()[0] != y.shape()[1])
    throw Error(std::string(op) + ": bias " + b.shape().str() + " does not match " + std::to_string(y.shape()[1]) +
                " output channels");
  return y + reshape(b, {1, -1, 1, 1});
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, int64_t stride, int64_t padding, int64_t dilation) {
  return conv_op(x, w, b, ConvParams{stride, padding, dilation, {}});
}

// The kept positions of a [kH, kW] 0/1 mask, in raster order: the taps the
// im2col/GEMM loops run over (the others are never computed).
Tensor masked_conv2d(const Tensor& x, const Tensor& w, const Tensor& kernel_mask, const Tensor& b, int64_t stride,
                     int64_t padding, int64_t dilation) {
  if (w.dim() != 4 || kernel_mask.shape() != Shape{w.shape()[2], w.shape()[3]})
    throw Error("masked_conv2d: kernel mask " + kernel_mask.shape().str() + " must be [kH, kW] of weight " +
                w.shape().str());
  std::vector<int64_t> taps;
  for (int64_t t = 0; t < kernel_mask.numel(); ++t) {
    const double m = kernel_mask.at(t);
    if (m != 0 && m != 1) throw Error("masked_conv2d: the kernel mask holds " + std::to_string(m) + "; it must be 0 or 1");
    if (m == 1) taps.push_back(t);
  }
  if (taps.empty()) throw Error("masked_conv2d: the kernel mask keeps no position");
  return conv_op(x, w, b, ConvParams{stride, padding, dilation, taps});
}

Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& b, int64_t stride, int64_t padding,
                        int64_t output_padding, int64_t dilation) {
  if (x.dim() != 4 || w.dim() != 4 || x.shape()[1] != w.shape()[0])
    throw Error("conv_transpose2d: expects input [N, Cin, H, W] and weight [Cin, Cout, kH, kW], got " +
                x.shape().str() + " and " + w.shape().str());
  if (output_padding < 0 || output_padding >= std::max(stride, dilation))
    throw Error("conv_transpose2d: output_padding must be in [0, max(stride, dilation))");
  const int64_t oh = (x.shape()[2] - 1) * stride - 2 * padding + dilation * (w.shape()[2] - 1) + output_padding + 1;
  const int64_t ow = (x.shape()[3] - 1) * stride - 2 * padding + dilation * (w.shape()[3] - 1) + output_padding + 1;
  Shape out{x.shape()[0], w.shape()[1], oh, ow};
  return add_channel_bias(conv_input_grad(x, w, out, ConvParams{stride, padding, dilation, {}}), b, "conv_transpose2d");
}

// ---------------------------------------------------------------- avg_pool2d and its adjoint
namespace {
struct PoolGeom {
  int64_t nc, h, w, k, s, oh, ow;
};
PoolGeom pool_geometry(const Shape& x, int64_t k, int64_t s, const char* op) {
  if (x.size() != 4) throw Error(std::string(op) + ": expects [N, C, H, W], got " + x.str());
  if (k < 1 || s < 1) throw Error(std::string(op) + ": kernel and stride must be >= 1");
  if (x[2] < k || x[3] < k)
    throw Error(std::string(op) + ": kernel " + std::to_string(k) + " is larger than the image " + x.str());
  return {x[0] * x[1], x[2], x[3], k, s, (x[2] - k) / s + 1, (x[3] - k) / s + 1};
}
}  // namespace

struct AvgPoolBackward : Node {
  Shape in_shape;
  int64_t k = 2, s = 2;
  const char* name() const override { return "avg_pool2d"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {avg_pool2d_adjoint(g, in_shape, k, s)}; }
};
// y[p] = (1/k^2) sum of the k x k window of x at p;   dx = avg_pool2d_adjoint(g)
Tensor avg_pool2d(const Tensor& x, int64_t k, int64_t stride) {
  if (stride <= 0) stride = k;
  PoolGeom p = pool_geometry(x.shape(), k, stride, "avg_pool2d");
  Tensor y = Tensor::empty({x.shape()[0], x.shape()[1], p.oh, p.ow}, x.dtype());
  kernels::dispatch_float(x.dtype(), "avg_pool2d", [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    const T inv = T(1) / static_cast<T>(k * k);
    for (int64_t m = 0; m < p.nc; ++m)
      for (int64_t oy = 0; oy < p.oh; ++oy)
        for (int64_t ox = 0; ox < p.ow; ++ox) {
          T acc = 0;
          for (int64_t i = 0; i < k; ++i)
            for (int64_t j = 0; j < k; ++j) acc += px[(m * p.h + oy * stride + i) * p.w + ox * stride + j];
          py[(m * p.oh + oy) * p.ow + ox] = acc * inv;
        }
  });
  if (any_requires_grad({&x})) {
    auto node = std::make_shared<AvgPoolBackward>();
    node->in_shape = x.shape();
    node->k = k;
    node->s = stride;
    attach(y, node, {&x});
  }
  return y;
}

struct AvgPoolAdjointBackward : Node {
  int64_t k = 2, s = 2;
  const char* name() const override { return "avg_pool2d_adjoint"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {avg_pool2d(g, k, s)}; }
};
// The adjoint of avg_pool2d: spreads each g[p] / k^2 over its window (overlaps add).
Tensor avg_pool2d_adjoint(const Tensor& g, const Shape& in_shape, int64_t k, int64_t stride) {
  PoolGeom p = pool_geometry(in_shape, k, stride, "avg_pool2d_adjoint");
  Tensor dx = Tensor::zeros(in_shape, g.dtype());
  kernels::dispatch_float(g.dtype(), "avg_pool2d_adjoint", [&](auto tag) {
    using T = decltype(tag);
    const T* pg = g.data<T>();
    T* pd = dx.data<T>();
    const T inv = T(1) / static_cast<T>(k * k);
    for (int64_t m = 0; m < p.nc; ++m)
      for (int64_t oy = 0; oy < p.oh; ++oy)
        for (int64_t ox = 0; ox < p.ow; ++ox) {
          const T v = pg[(m * p.oh + oy) * p.ow + ox] * inv;
          for (int64_t i = 0; i < k; ++i)
            for (int64_t j = 0; j < k; ++j) pd[(m * p.h + oy * stride + i) * p.w + ox * stride + j] += v;
        }
  });
  if (any_requires_grad({&g})) {
    auto node = std::make_shared<AvgPoolAdjointBackward>();
    node->k = k;
    node->s = stride;
    attach(dx, node, {&g});
  }
  return dx;
}

// ---------------------------------------------------------------- upsample_nearest2d
// y[n,c,i,j] = x[n,c,i/s,j/s];   dx[n,c,i,j] = sum of g over its s x s block
// (= s^2 avg_pool2d(g, s): that composite is the backward under create_graph;
// otherwise one pass, block_sum below). Both kernels go plane by plane, in
// pieces on the threads when large (runtime::parallel_range).
namespace {
// dx[m, i, j] = sum_{a, b < s} g[m, i s + a, j s + b] for the planes [m0, m1)
template <class T>
void block_sum(const T* g, T* dx, int64_t h, int64_t w, int64_t s, int64_t m0, int64_t m1) {
  const int64_t gw = w * s;
  for (int64_t m = m0; m < m1; ++m)
    for (int64_t i = 0; i < h; ++i) {
      T* out = dx + (m * h + i) * w;
      std::fill_n(out, w, T(0));
      for (int64_t a = 0; a < s; ++a) {
        const T* row = g + (m * h * s + i * s + a) * gw;
        for (int64_t b = 0; b < s; ++b)
          for (int64_t j = 0; j < w; ++j) out[j] += row[j * s + b];
      }
    }
}
}  // namespace

struct UpsampleBackward : Node {
  int64_t s = 2;
  const char* name() const override { return "upsample_nearest2d"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    if (GradMode::is_enabled()) return {avg_pool2d(g, s, s) * static_cast<double>(s * s)};
    const int64_t h = g.shape()[2] / s, w = g.shape()[3] / s, nc = g.shape()[0] * g.shape()[1];
    Tensor dx = Tensor::empty({g.shape()[0], g.shape()[1], h, w}, g.dtype());
    kernels::dispatch_float(g.dtype(), "upsample_nearest2d_backward", [&](auto tag) {
      using T = decltype(tag);
      runtime::parallel_range(nc, [&](int64_t m0, int64_t m1, int) { block_sum(g.data<T>(), dx.data<T>(), h, w, s, m0, m1); },
                              h * w * s * s);
    });
    return {dx};
  }
};
Tensor upsample_nearest2d(const Tensor& x, int64_t scale) {
  if (x.dim() != 4) throw Error("upsample_nearest2d: expects [N, C, H, W], got " + x.shape().str());
  if (scale < 1) throw Error("upsample_nearest2d: scale must be >= 1");
  const int64_t h = x.shape()[2], w = x.shape()[3], nc = x.shape()[0] * x.shape()[1], ow = w * scale;
  Tensor y = Tensor::empty({x.shape()[0], x.shape()[1], h * scale, ow}, x.dtype());
  kernels::dispatch_float(x.dtype(), "upsample_nearest2d", [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    runtime::parallel_range(nc, [&](int64_t m0, int64_t m1, int) {
      for (int64_t m = m0; m < m1; ++m)
        for (int64_t i = 0; i < h; ++i) {  // input row i: widened once, then copied to output rows i s .. i s + s - 1
          T* first = py + (m * h + i) * scale * ow;
          const T* row = px + (m * h + i) * w;
          for (int64_t b = 0; b < scale; ++b)
            for (int64_t j = 0; j < w; ++j) first[j * scale + b] = row[j];
          for (int64_t a = 1; a < scale; ++a) std::copy_n(first, ow, first + a * ow);
        }
    }, h * w * scale * scale);
  });
  if (any_requires_grad({&x})) {
    auto node = std::make_shared<UpsampleBackward>();
    node->s = scale;
    attach(y, node, {&x});
  }
  return y;
}

}  // namespace dgm
