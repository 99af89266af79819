// Convolutions, pooling, upsampling, normalisation, dropout, and the masked
// layers' autoregressive property.
#include "helpers.h"
#include "models/pixelcnn.h"

#include "autograd/graph.h"
#include "autograd/nn.h"
#include "autograd/parallel.h"
#include "autograd/runtime.h"

using namespace dgm;
using namespace dgm::test;

namespace {
// Direct convolution by its definition, for comparison.
std::vector<double> naive_conv(const Tensor& x, const Tensor& w, int64_t s, int64_t p, int64_t d) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), O = w.size(0), K = w.size(2);
  const int64_t OH = (H + 2 * p - d * (K - 1) - 1) / s + 1, OW = (W + 2 * p - d * (K - 1) - 1) / s + 1;
  std::vector<double> out;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t oy = 0; oy < OH; ++oy)
        for (int64_t ox = 0; ox < OW; ++ox) {
          double acc = 0;
          for (int64_t c = 0; c < C; ++c)
            for (int64_t i = 0; i < K; ++i)
              for (int64_t j = 0; j < K; ++j) {
                const int64_t iy = oy * s - p + i * d, ix = ox * s - p + j * d;
                if (iy >= 0 && iy < H && ix >= 0 && ix < W)
                  acc += w.at(((o * C + c) * K + i) * K + j) * x.at(((n * C + c) * H + iy) * W + ix);
              }
          out.push_back(acc);
        }
  return out;
}
double dot(const Tensor& a, const Tensor& b) {
  double s = 0;
  for (int64_t i = 0; i < a.numel(); ++i) s += a.at(i) * b.at(i);
  return s;
}
}  // namespace

TEST_CASE("conv2d forward matches the definition", "[conv]") {
  struct Case { int64_t s, p, d; };
  for (Case c : {Case{1, 0, 1}, Case{1, 1, 1}, Case{2, 1, 1}, Case{1, 2, 2}, Case{2, 0, 2}, Case{3, 2, 1}, Case{2, 3, 2}}) {
    INFO("stride " << c.s << " padding " << c.p << " dilation " << c.d);
    Tensor x = randn({2, 3, 7, 6}, 1), w = randn({4, 3, 3, 3}, 2);
    std::vector<double> want = naive_conv(x, w, c.s, c.p, c.d);
    std::vector<double> got = conv2d(x, w, Tensor(), c.s, c.p, c.d).to_vector();
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(want[i]).epsilon(1e-12).margin(1e-12));
  }
}

TEST_CASE("conv_transpose2d is the adjoint of conv2d", "[conv]") {
  Tensor x = randn({2, 3, 7, 7}, 1), w = randn({4, 3, 3, 3}, 2);
  Tensor y = randn({2, 4, 4, 4}, 3);  // conv2d(x, w, stride 2, pad 1) has shape [2, 4, 4, 4]
  const double lhs = dot(conv2d(x, w, Tensor(), 2, 1), y);
  const double rhs = dot(x, conv_transpose2d(y, w, Tensor(), 2, 1));
  CHECK(lhs == Approx(rhs).epsilon(1e-12));
  CHECK(conv_transpose2d(y, w, Tensor(), 2, 1, 1).shape() == Shape{2, 3, 8, 8});  // output_padding
}

TEST_CASE("same-width convolutions (stride 1, output as wide as the input): forward and adjoint", "[conv]") {
  // im2col/col2im copy such a layer's taps as shifted planes: cover
  // non-square kernels (output shorter than the input), dilation, a 7x7
  // kernel on a small image, and an image one row high (whole taps outside).
  struct Case { Shape x, w; int64_t p, d; };
  for (const Case& c : {Case{{2, 3, 6, 5}, {4, 3, 3, 3}, 1, 1}, Case{{1, 2, 6, 7}, {3, 2, 5, 3}, 1, 1},
                        Case{{1, 2, 5, 6}, {2, 2, 3, 3}, 2, 2}, Case{{1, 1, 4, 4}, {3, 1, 7, 7}, 3, 1},
                        Case{{1, 2, 1, 5}, {2, 2, 3, 3}, 1, 1}}) {
    INFO("x " << c.x.str() << " w " << c.w.str() << " padding " << c.p << " dilation " << c.d);
    Tensor x = randn(c.x, 1), w = randn(c.w, 2);
    Tensor y = conv2d(x, w, Tensor(), 1, c.p, c.d);
    REQUIRE(y.shape()[3] == c.x[3]);
    if (c.w[2] == c.w[3]) {  // naive_conv takes square kernels
      std::vector<double> want = naive_conv(x, w, 1, c.p, c.d);
      REQUIRE(want.size() == static_cast<size_t>(y.numel()));
      for (int64_t i = 0; i < y.numel(); ++i) CHECK(y.at(i) == Approx(want[static_cast<size_t>(i)]).epsilon(1e-12).margin(1e-12));
    }
    Tensor v = randn(y.shape(), 3);
    Tensor xt = conv_transpose2d(v, w, Tensor(), 1, c.p, 0, c.d);
    REQUIRE(xt.shape() == x.shape());
    CHECK(dot(y, v) == Approx(dot(x, xt)).epsilon(1e-12));
  }
}

TEST_CASE("stride-2 convolutions to half size (im2col through parity planes): forward, adjoint, gradcheck", "[conv]") {
  // even H and W, output H/2 x W/2: 4x4 padding 1 (DCGAN), 3x3 padding 1 (U-Net), 2x2 padding 0, a 1x1
  struct Case { Shape x, w; int64_t p; };
  for (const Case& c : {Case{{2, 3, 8, 6}, {4, 3, 4, 4}, 1}, Case{{2, 2, 6, 8}, {3, 2, 3, 3}, 1},
                        Case{{1, 2, 4, 4}, {2, 2, 2, 2}, 0}, Case{{1, 3, 2, 2}, {2, 3, 4, 4}, 1}}) {
    INFO("x " << c.x.str() << " w " << c.w.str() << " padding " << c.p);
    Tensor x = randn(c.x, 1), w = randn(c.w, 2);
    Tensor y = conv2d(x, w, Tensor(), 2, c.p);
    REQUIRE(y.shape() == Shape{c.x[0], c.w[0], c.x[2] / 2, c.x[3] / 2});
    std::vector<double> want = naive_conv(x, w, 2, c.p, 1);
    for (int64_t i = 0; i < y.numel(); ++i) CHECK(y.at(i) == Approx(want[static_cast<size_t>(i)]).epsilon(1e-12).margin(1e-12));
    Tensor v = randn(y.shape(), 3);
    Tensor xt = conv_transpose2d(v, w, Tensor(), 2, c.p, c.x[2] + 2 * c.p - c.w[2] - 2 * (y.size(2) - 1));
    REQUIRE(xt.shape() == x.shape());
    CHECK(dot(y, v) == Approx(dot(x, xt)).epsilon(1e-12));
  }
  require_gradcheck([](const std::vector<Tensor>& v) { return conv2d(v[0], v[1], v[2], 2, 1); },
                    {randn({2, 2, 6, 4}, 1), randn({3, 2, 4, 4}, 2), randn({3}, 3)});
  require_gradcheck([](const std::vector<Tensor>& v) { return conv_transpose2d(v[0], v[1], v[2], 2, 1); },
                    {randn({2, 3, 3, 2}, 1), randn({3, 2, 4, 4}, 2), randn({2}, 3)});
}

TEST_CASE("gradcheck: conv2d", "[gradcheck][conv]") {
  auto f = [](int64_t s, int64_t p, int64_t d) {
    return [=](const std::vector<Tensor>& v) { return conv2d(v[0], v[1], v[2], s, p, d); };
  };
  require_gradcheck(f(1, 1, 1), {randn({2, 2, 5, 5}, 1), randn({3, 2, 3, 3}, 2), randn({3}, 3)});
  require_gradcheck(f(2, 0, 1), {randn({1, 2, 6, 5}, 1), randn({2, 2, 3, 3}, 2), randn({2}, 3)});
  require_gradcheck(f(1, 2, 2), {randn({1, 1, 5, 5}, 1), randn({2, 1, 3, 3}, 2), randn({2}, 3)});
  require_gradcheck(f(1, 0, 1), {randn({2, 3, 3, 4}, 1), randn({2, 3, 1, 1}, 2), randn({2}, 3)});  // 1x1: no im2col
  // stride 1: the input gradient is computed as a convolution with the flipped kernel
  // (padding d (k - 1) - pad): a "valid" 3x3, and a 5x5 padded less than "same"
  require_gradcheck(f(1, 0, 1), {randn({1, 2, 6, 5}, 1), randn({2, 2, 3, 3}, 2), randn({2}, 3)});
  require_gradcheck(f(1, 1, 1), {randn({2, 3, 6, 6}, 1), randn({2, 3, 5, 5}, 2), randn({2}, 3)});
}

TEST_CASE("3x3 stride-1 convolutions by Winograd F(2x2, 3x3): the definition, im2col's gradients, gradcheck", "[conv][winograd]") {
  // conv2d routes a full 3x3 kernel with stride and dilation 1 (and >= 4
  // channels in and out) to autograd/ops/conv_winograd.cpp. Odd sizes leave
  // tiles hanging over the output's edge; padding 0, 1, 2; a 1-row image;
  // 25 images of 14x14 span two batches of GEMMs (20 images each).
  struct Case { Shape x, w; int64_t p; };
  for (const Case& c : {Case{{2, 5, 7, 6}, {4, 5, 3, 3}, 1}, Case{{2, 4, 7, 6}, {6, 4, 3, 3}, 0},
                        Case{{1, 4, 5, 5}, {4, 4, 3, 3}, 2}, Case{{1, 4, 1, 5}, {5, 4, 3, 3}, 1},
                        Case{{25, 4, 14, 14}, {4, 4, 3, 3}, 1}}) {
    INFO("x " << c.x.str() << " w " << c.w.str() << " padding " << c.p);
    Tensor x = randn(c.x, 1).set_requires_grad(true), w = randn(c.w, 2).set_requires_grad(true), b = randn({c.w[0]}, 3);
    auto run = [&](bool winograd) {
      runtime::set_conv_winograd(winograd);
      Tensor y = conv2d(x, w, b, 1, c.p);
      std::vector<Tensor> g = grad({y}, {x, w}, {randn(y.shape(), 4)});
      runtime::set_conv_winograd(true);
      return std::vector<Tensor>{y, g[0], g[1]};
    };
    std::vector<Tensor> fast = run(true), im2col = run(false);
    std::vector<double> want = naive_conv(x, w, 1, c.p, 1);
    REQUIRE(want.size() == static_cast<size_t>(fast[0].numel()));
    for (int64_t i = 0; i < fast[0].numel(); ++i)
      CHECK(fast[0].at(i) == Approx(want[static_cast<size_t>(i)] + b.at((i / (fast[0].size(2) * fast[0].size(3))) % c.w[0]))
                                 .epsilon(1e-12).margin(1e-12));
    for (int k = 1; k < 3; ++k)
      for (int64_t i = 0; i < fast[k].numel(); ++i) CHECK(fast[k].at(i) == Approx(im2col[k].at(i)).epsilon(1e-12).margin(1e-12));
  }
  // float32: the transforms only add, subtract and halve, so Winograd's
  // rounding error stays within a small factor of im2col's (both against float64)
  Tensor x = randn({3, 8, 28, 28}, 5), w = randn({16, 8, 3, 3}, 6);
  Tensor y64 = conv2d(x, w, Tensor(), 1, 1);
  auto worst_error = [&](bool winograd) {
    runtime::set_conv_winograd(winograd);
    Tensor y32 = conv2d(x.to(DType::Float32), w.to(DType::Float32), Tensor(), 1, 1);
    runtime::set_conv_winograd(true);
    double worst = 0;
    for (int64_t i = 0; i < y64.numel(); ++i) worst = std::max(worst, std::abs(y32.at(i) - y64.at(i)));
    return worst;
  };
  const double winograd_error = worst_error(true), im2col_error = worst_error(false);
  INFO("float32 max |error|: Winograd " << winograd_error << ", im2col " << im2col_error);
  CHECK(winograd_error < 4 * im2col_error);
  CHECK(winograd_error < 1e-4);
  auto f = [](const std::vector<Tensor>& v) { return conv2d(v[0], v[1], v[2], 1, 1); };
  require_gradcheck(f, {randn({2, 4, 5, 4}, 1), randn({4, 4, 3, 3}, 2), randn({4}, 3)});
  require_gradgradcheck([](const std::vector<Tensor>& v) { return conv2d(v[0], v[1], Tensor(), 1, 1); },
                        {randn({1, 4, 4, 3}, 1), randn({4, 4, 3, 3}, 2)});
}

TEST_CASE("Winograd in float32 (vector plane transforms, AVX-512 or AVX2, where the CPU has them) agrees with float64", "[conv][winograd]") {
  // Float32 takes its own plane transforms on AVX-512 and AVX2 (16 or 8 tiles of a row per
  // register, masked loads for the padding); float64 takes the portable loops. An output row of
  // width w takes (w + 1) / 2 + 1 tiles (the last one padding): widths up to 14 fit one AVX2
  // register of tiles and up to 30 one AVX-512 register; 10 and 14 end an AVX2 register inside and
  // at its edge; 33 and 40 (38 outputs) need two AVX-512 registers (three of AVX2), 130 five (nine
  // of AVX2; and a strip of its own: conv_winograd.cpp's
  // forward takes up to 32 tiles (or one tile row) at a time, from one image or from several);
  // odd sizes leave tiles over the edge; padding 0, 1, 2; one row; one column; 4 to 9 output
  // channels (the products take 8 or 6 at a time); four 7x7 images: strips across images, and a
  // last strip shorter than the one before it; 16 -> 16 channels at 28x28 (the U-Net's): one image
  // per batch of the weight gradient, whose vector stores run past a row into the next one's.
  struct Case { Shape x, w; int64_t p; };
  for (const Case& c : {Case{{2, 4, 28, 28}, {5, 4, 3, 3}, 1}, Case{{4, 4, 7, 7}, {4, 4, 3, 3}, 1}, Case{{2, 5, 9, 33}, {4, 5, 3, 3}, 1},
                        Case{{1, 4, 12, 40}, {6, 4, 3, 3}, 0}, Case{{1, 4, 11, 31}, {4, 4, 3, 3}, 2}, Case{{3, 4, 1, 17}, {4, 4, 3, 3}, 1},
                        Case{{1, 4, 6, 1}, {4, 4, 3, 3}, 1}, Case{{1, 4, 30, 30}, {4, 4, 3, 3}, 1}, Case{{2, 4, 5, 130}, {9, 4, 3, 3}, 1},
                        Case{{2, 3, 10, 10}, {7, 3, 3, 3}, 1}, Case{{1, 3, 14, 14}, {8, 3, 3, 3}, 1},
                        Case{{3, 16, 28, 28}, {16, 16, 3, 3}, 1}}) {
    INFO("x " << c.x.str() << " w " << c.w.str() << " padding " << c.p);
    Tensor x = randn(c.x, 11), w = randn(c.w, 12), b = randn({c.w[0]}, 13);
    auto run = [&](DType dt) {
      Tensor xd = x.to(dt).set_requires_grad(true), wd = w.to(dt).set_requires_grad(true);
      Tensor y = conv2d(xd, wd, b.to(dt), 1, c.p);
      Tensor gy = randn(y.shape(), 14).to(dt);
      std::vector<Tensor> g = grad({y}, {xd, wd}, {gy});
      return std::vector<Tensor>{y, g[0], g[1]};
    };
    std::vector<Tensor> f64 = run(DType::Float64), f32 = run(DType::Float32);
    const char* names[] = {"output", "input gradient", "weight gradient"};
    for (int k = 0; k < 3; ++k) {
      double worst = 0, scale = 0;
      for (int64_t i = 0; i < f64[k].numel(); ++i) {
        worst = std::max(worst, std::abs(f32[k].at(i) - f64[k].at(i)));
        scale = std::max(scale, std::abs(f64[k].at(i)));
      }
      INFO(names[k] << ": max |float32 - float64| " << worst << ", max |float64| " << scale);
      CHECK(worst <= 1e-5 * std::max(1.0, scale));
    }
  }
}

TEST_CASE("gradcheck: conv_transpose2d", "[gradcheck][conv]") {
  require_gradcheck([](const std::vector<Tensor>& v) { return conv_transpose2d(v[0], v[1], v[2], 2, 1, 1); },
                    {randn({1, 3, 3, 3}, 1), randn({3, 2, 3, 3}, 2), randn({2}, 3)});
  require_gradcheck([](const std::vector<Tensor>& v) { return conv_transpose2d(v[0], v[1]); },
                    {randn({2, 2, 3, 4}, 1), randn({2, 3, 2, 2}, 2)});
}

TEST_CASE("gradgradcheck: conv2d and conv_transpose2d", "[gradgradcheck][conv]") {
  require_gradgradcheck([](const std::vector<Tensor>& v) { return conv2d(v[0], v[1], Tensor(), 1, 1); },
                        {randn({1, 2, 4, 4}, 1), randn({2, 2, 3, 3}, 2)});
  require_gradgradcheck([](const std::vector<Tensor>& v) { return tanh(conv2d(v[0], v[1], Tensor(), 2, 1)); },
                        {randn({1, 1, 5, 5}, 1), randn({2, 1, 3, 3}, 2)});
  require_gradgradcheck([](const std::vector<Tensor>& v) { return conv_transpose2d(v[0], v[1], Tensor(), 2); },
                        {randn({1, 2, 2, 2}, 1), randn({2, 1, 3, 3}, 2)});
}

TEST_CASE("gradcheck: avg_pool2d, its adjoint, upsample_nearest2d", "[gradcheck][conv]") {
  auto x = randn({2, 2, 6, 6});
  require_gradcheck([](const std::vector<Tensor>& v) { return avg_pool2d(v[0], 2); }, {x});
  require_gradcheck([](const std::vector<Tensor>& v) { return avg_pool2d(v[0], 3, 1); }, {x});
  require_gradcheck([](const std::vector<Tensor>& v) { return avg_pool2d_adjoint(v[0], {2, 2, 6, 6}, 3, 1); },
                    {randn({2, 2, 4, 4})});
  require_gradcheck([](const std::vector<Tensor>& v) { return upsample_nearest2d(v[0], 2); }, {randn({1, 2, 3, 3})});
  require_gradgradcheck([](const std::vector<Tensor>& v) { return square(upsample_nearest2d(avg_pool2d(v[0], 2), 2)); },
                        {randn({1, 1, 4, 4})});
  CHECK(avg_pool2d(Tensor::arange(16, DType::Float64).reshape({1, 1, 4, 4}), 2).to_vector() ==
        std::vector<double>{2.5, 4.5, 10.5, 12.5});
  CHECK(upsample_nearest2d(Tensor::arange(4).reshape({1, 1, 2, 2}), 2).to_vector() ==
        std::vector<double>{0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3, 2, 2, 3, 3});
}

TEST_CASE("upsample_nearest2d: values and the one-pass backward against their definitions, scales 2 and 3", "[conv][threads]") {
  // Large enough (2^20 output values at scale 2) to be split between threads
  // when there are two. The backward without create_graph is one pass of
  // block sums; with it, s^2 avg_pool2d(g, s) in engine ops.
  for (int64_t s : {2, 3}) {
    for (DType dtype : {DType::Float64, DType::Float32}) {
      Tensor x = randn({4, 16, 64 / s, 64 / s}, 1).to(dtype).set_requires_grad(true);
      Tensor y = upsample_nearest2d(x, s);
      Tensor g = randn(y.shape(), 2).to(dtype);
      const int64_t h = x.size(2), w = x.size(3);
      for (int64_t i = 0; i < y.numel(); i += 97) {  // y[m, i, j] = x[m, i / s, j / s]
        const int64_t j = i % (w * s), r = (i / (w * s)) % (h * s), m = i / (w * s * h * s);
        REQUIRE(y.at(i) == x.at((m * h + r / s) * w + j / s));
      }
      const Tensor one_pass = grad({upsample_nearest2d(x, s)}, {x}, {g})[0];
      const Tensor composite = grad({upsample_nearest2d(x, s)}, {x}, {g}, false, /*create_graph=*/true)[0];
      REQUIRE(one_pass.shape() == x.shape());
      for (int64_t k = 0; k < x.numel(); k += 31) {  // dx[m, i, j] = sum of g over its block, summed here in long double
        const int64_t j = k % w, i = (k / w) % h, m = k / (w * h);
        long double block = 0;
        for (int64_t a = 0; a < s; ++a)
          for (int64_t b = 0; b < s; ++b) block += g.at(((m * h * s) + i * s + a) * w * s + j * s + b);
        const double tol = dtype == DType::Float64 ? 1e-13 : 1e-5;
        REQUIRE(one_pass.at(k) == Approx(static_cast<double>(block)).margin(tol));
        REQUIRE(composite.at(k) == Approx(static_cast<double>(block)).margin(tol));
      }
    }
  }
}

TEST_CASE("gradcheck: layer_norm and group_norm", "[gradcheck][norm]") {
  require_gradcheck([](const std::vector<Tensor>& v) { return layer_norm(v[0], 1, v[1], v[2]); },
                    {randn({3, 5}, 1), randn({5}, 2), randn({5}, 3)});
  require_gradcheck([](const std::vector<Tensor>& v) { return layer_norm(v[0], 2); }, {randn({2, 3, 4}, 1)});
  require_gradcheck([](const std::vector<Tensor>& v) { return group_norm(v[0], 2, v[1], v[2]); },
                    {randn({2, 4, 3, 3}, 1), randn({4}, 2), randn({4}, 3)});
  Tensor y = layer_norm(randn({4, 8}) * 3.0 + 1.0, 1);
  CHECK(std::abs(mean(y, {1}).at(0)) < 1e-12);
  CHECK(mean(square(y), {1}).at(0) == Approx(1.0).epsilon(1e-4));
}

TEST_CASE("group_norm, one fused op, equals its definition in engine ops: values, gradients, second gradients", "[norm]") {
  // the definition: standardise each (image, group) block, then scale and shift per channel
  auto by_definition = [](const Tensor& x, int64_t groups, const Tensor& w, const Tensor& b) {
    Tensor xs = reshape(x, {x.size(0), groups, -1});
    Tensor centred = xs - mean(xs, {2}, true);
    Tensor y = reshape(centred / sqrt(mean(square(centred), {2}, true) + 1e-5), x.shape());
    return y * reshape(w, {1, -1, 1, 1}) + reshape(b, {1, -1, 1, 1});
  };
  for (DType dtype : {DType::Float64, DType::Float32}) {
    INFO((dtype == DType::Float64 ? "float64" : "float32"));
    const double tol = dtype == DType::Float64 ? 1e-12 : 2e-5;
    // an offset of 1000 (a sum of squares about zero would lose float32's digits)
    Tensor x = (randn({3, 6, 5, 7}, 1) * 2.0 + 1000.0).to(dtype).set_requires_grad(true);
    Tensor w = randn({6}, 2).to(dtype).set_requires_grad(true), b = randn({6}, 3).to(dtype).set_requires_grad(true);
    Tensor v = randn({3, 6, 5, 7}, 4).to(dtype);
    Tensor fused = group_norm(x, 3, w, b), reference = by_definition(x.to(DType::Float64), 3, w.to(DType::Float64), b.to(DType::Float64));
    std::vector<Tensor> gf = grad({fused}, {x, w, b}, {v});
    std::vector<Tensor> gr = grad({reference}, {x, w, b}, {v.to(DType::Float64)});
    for (int64_t i = 0; i < fused.numel(); ++i) REQUIRE(fused.at(i) == Approx(reference.at(i)).margin(tol * 10));
    for (int k = 0; k < 3; ++k) {
      INFO("gradient " << k);
      double scale = 0;
      for (int64_t i = 0; i < gr[k].numel(); ++i) scale = std::max(scale, std::abs(gr[k].at(i)));
      for (int64_t i = 0; i < gf[k].numel(); ++i) REQUIRE(gf[k].at(i) == Approx(gr[k].at(i)).margin(tol * 10 * scale));
    }
  }
  // no weight or bias; a 3-D input; the double backward runs the engine-op form of the backward
  require_gradcheck([](const std::vector<Tensor>& v) { return group_norm(v[0], 2); }, {randn({2, 4, 5}, 1)});
  require_gradgradcheck([](const std::vector<Tensor>& v) { return group_norm(v[0], 2, v[1], v[2]); },
                        {randn({2, 4, 2, 3}, 1), randn({4}, 2), randn({4}, 3)});
}

TEST_CASE("layer_norm, one fused op, equals its definition in engine ops: values, gradients, second gradients", "[norm]") {
  // the definition: standardise each row of the last two axes, then scale and shift per position of the row
  auto by_definition = [](const Tensor& x, const Tensor& w, const Tensor& b) {
    Tensor centred = x - mean(x, {-1, -2}, true);
    return centred / sqrt(mean(square(centred), {-1, -2}, true) + 1e-5) * w + b;
  };
  for (DType dtype : {DType::Float64, DType::Float32}) {
    INFO((dtype == DType::Float64 ? "float64" : "float32"));
    const double tol = dtype == DType::Float64 ? 1e-12 : 2e-5;
    Tensor x = (randn({3, 5, 4, 6}, 1) * 2.0 + 1000.0).to(dtype).set_requires_grad(true);  // far from 0: float32's digits
    Tensor w = randn({4, 6}, 2).to(dtype).set_requires_grad(true), b = randn({4, 6}, 3).to(dtype).set_requires_grad(true);
    Tensor v = randn({3, 5, 4, 6}, 4).to(dtype);
    Tensor fused = layer_norm(x, 2, w, b), reference = by_definition(x.to(DType::Float64), w.to(DType::Float64), b.to(DType::Float64));
    std::vector<Tensor> gf = grad({fused}, {x, w, b}, {v});
    std::vector<Tensor> gr = grad({reference}, {x, w, b}, {v.to(DType::Float64)});
    for (int64_t i = 0; i < fused.numel(); ++i) REQUIRE(fused.at(i) == Approx(reference.at(i)).margin(tol * 10));
    for (int k = 0; k < 3; ++k) {
      INFO("gradient " << k);
      REQUIRE(gf[k].shape() == gr[k].shape());
      double scale = 0;
      for (int64_t i = 0; i < gr[k].numel(); ++i) scale = std::max(scale, std::abs(gr[k].at(i)));
      for (int64_t i = 0; i < gf[k].numel(); ++i) REQUIRE(gf[k].at(i) == Approx(gr[k].at(i)).margin(tol * 10 * scale));
    }
  }
  // rows split between threads: the same result as one thread
  Tensor big = randn({512, 1024}, 5);
  Tensor w = randn({1024}, 6).set_requires_grad(true);
  Tensor g = randn({512, 1024}, 7);
  std::vector<Tensor> two, single;
  {
    const test::Threads two_threads(2);  // the count before is back after the block, even if a REQUIRE throws
    two = grad({layer_norm(big, 1, w)}, {w}, {g});
    runtime::set_num_threads(1);
    single = grad({layer_norm(big, 1, w)}, {w}, {g});
  }
  for (int64_t i = 0; i < 1024; ++i) REQUIRE(two[0].at(i) == Approx(single[0].at(i)).margin(1e-4 * std::abs(single[0].at(i)) + 1e-4));
  require_gradgradcheck([](const std::vector<Tensor>& v) { return layer_norm(v[0], 1, v[1], v[2]); },
                        {randn({3, 5}, 1), randn({5}, 2), randn({5}, 3)});
  CHECK_THROWS_WITH(layer_norm(randn({3, 5}), 1, randn({4})), Catch::Contains("[4] must have the normalised shape [5]"));
}

TEST_CASE("dropout: train mode drops and rescales, eval mode is the identity", "[norm]") {
  Generator g(3);
  Tensor x = Tensor::ones({100000}, DType::Float64);
  Tensor y = dropout(x, 0.3, true, g);
  double zeros = 0;
  for (double v : y.to_vector()) {
    zeros += v == 0;
    REQUIRE((v == 0 || v == Approx(1 / 0.7)));
  }
  CHECK(zeros / 100000 == Approx(0.3).margin(0.01));
  CHECK(mean(y).item() == Approx(1.0).margin(0.01));
  CHECK(dropout(x, 0.3, false, g).same(x));
  require_gradcheck([](const std::vector<Tensor>& v) { Generator gg(5); return dropout(v[0], 0.5, true, gg); },
                    {randn({3, 4})});
}

TEST_CASE("conv modules: shapes and parameter names", "[nn][conv]") {
  Generator g(0);
  nn::Conv2d c(3, 8, 3, g, 2, 1);
  CHECK(c.forward(Tensor::zeros({2, 3, 16, 16})).shape() == Shape{2, 8, 8, 8});
  nn::ConvTranspose2d t(8, 3, 4, g, 2, 1);
  CHECK(t.forward(Tensor::zeros({2, 8, 8, 8})).shape() == Shape{2, 3, 16, 16});
  CHECK(c.named_parameters()[0].first == "weight");
  models::MaskedConv2d m(1, 4, 5, models::MaskType::A, g);
  CHECK(m.named_buffers()[0].first == "mask");
}

// ---------------------------------------------------------------- the autoregressive property
TEST_CASE("MaskedLinear (MADE masks): output i never depends on inputs at or after i in the ordering", "[masked]") {
  const int64_t D = 6, H = 16;
  Generator g(4);
  // degrees: a random ordering of the inputs, hidden degrees in [1, D-1]
  Tensor order = g.permutation(D);
  std::vector<int64_t> m_in(D), m_h1(H), m_h2(H);
  for (int64_t i = 0; i < D; ++i) m_in[static_cast<size_t>(order.at(i))] = i + 1;
  for (auto& m : m_h1) m = g.randint(1, D);
  for (auto& m : m_h2) m = g.randint(1, D);
  auto mask = [](const std::vector<int64_t>& out, const std::vector<int64_t>& in, bool strict) {
    Tensor t = Tensor::zeros({int64_t(out.size()), int64_t(in.size())});
    for (size_t o = 0; o < out.size(); ++o)
      for (size_t i = 0; i < in.size(); ++i)
        t.data<float>()[o * in.size() + i] = strict ? out[o] > in[i] : out[o] >= in[i];
    return t;
  };
  nn::MaskedLinear l1(D, H, mask(m_h1, m_in, false), g), l2(H, H, mask(m_h2, m_h1, false), g),
      l3(H, D, mask(m_in, m_h2, true), g);
  Tensor x = g.normal({1, D}).set_requires_grad(true);
  Tensor out = l3.forward(relu(l2.forward(relu(l1.forward(x)))));
  int64_t zeros_required = 0, nonzero = 0;
  for (int64_t i = 0; i < D; ++i) {
    Tensor v = Tensor::zeros({1, D});
    v.data<float>()[i] = 1;
    Tensor gx = grad({out}, {x}, {v}, /*retain_graph=*/true)[0];
    for (int64_t j = 0; j < D; ++j) {
      if (m_in[j] >= m_in[i]) {
        CHECK(gx.at(j) == 0.0);
        ++zeros_required;
      } else {
        nonzero += gx.at(j) != 0.0;
      }
    }
  }
  CHECK(zeros_required == D * (D + 1) / 2);
  CHECK(nonzero > 0);  // the network is not trivially disconnected
}

TEST_CASE("MaskedConv2d (PixelCNN A then B): pixel p never depends on pixels at or after p", "[masked]") {
  Generator g(5);
  models::MaskedConv2d a(1, 8, 5, models::MaskType::A, g), b1(8, 8, 3, models::MaskType::B, g), b2(8, 1, 3, models::MaskType::B, g);
  const int64_t S = 6;
  Tensor x = g.normal({1, 1, S, S}).set_requires_grad(true);
  Tensor out = b2.forward(relu(b1.forward(relu(a.forward(x)))));
  int64_t nonzero = 0;
  for (int64_t p = 0; p < S * S; ++p) {
    Tensor v = Tensor::zeros({1, 1, S, S});
    v.data<float>()[p] = 1;
    Tensor gx = grad({out}, {x}, {v}, true)[0];
    for (int64_t q = p; q < S * S; ++q) CHECK(gx.at(q) == 0.0);
    for (int64_t q = 0; q < p; ++q) nonzero += gx.at(q) != 0.0;
  }
  CHECK(nonzero > 0);
}

TEST_CASE("MaskedConv2d with colour channels: channel c of pixel p sees channels < c of p only", "[masked]") {
  Generator g(6);
  const int64_t S = 4, C = 3;
  models::MaskedConv2d a(C, 6, 3, models::MaskType::A, g, C), b(6, C, 3, models::MaskType::B, g, C);
  Tensor x = g.normal({1, C, S, S}).set_requires_grad(true);
  Tensor out = b.forward(tanh(a.forward(x)));  // tanh: no unit is switched off
  for (int64_t c = 0; c < C; ++c)
    for (int64_t p = 0; p < S * S; ++p) {
      Tensor v = Tensor::zeros({1, C, S, S});
      v.data<float>()[c * S * S + p] = 1;
      Tensor gx = grad({out}, {x}, {v}, true)[0];
      for (int64_t c2 = 0; c2 < C; ++c2)
        for (int64_t q = 0; q < S * S; ++q) {
          const bool later = q > p || (q == p && c2 >= c);
          if (later) CHECK(gx.at(c2 * S * S + q) == 0.0);
        }
      if (c > 0) CHECK(gx.at((c - 1) * S * S + p) != 0.0);  // the earlier colour at the same pixel is seen
    }
}

TEST_CASE("masked_conv2d equals conv2d with the masked weight, values and gradients", "[conv][masked]") {
  Generator g(8);
  Tensor x = g.normal({2, 3, 6, 5}, 0, 1, DType::Float64).set_requires_grad(true);
  Tensor w = g.normal({4, 3, 3, 3}, 0, 1, DType::Float64).set_requires_grad(true);
  Tensor b = g.normal({4}, 0, 1, DType::Float64);
  auto kernel_mask = [](const std::vector<int64_t>& kept) {
    Tensor m = Tensor::zeros({3, 3}, DType::Float64);
    for (int64_t t : kept) m.data<double>()[t] = 1;
    return m;
  };
  const Tensor causal = kernel_mask({0, 1, 2, 3, 4});  // the first half in raster order, centre included
  Tensor a = masked_conv2d(x, w, causal, b, 1, 1), ref = conv2d(x, w * reshape(causal, {1, 1, 3, 3}), b, 1, 1);
  for (int64_t i = 0; i < a.numel(); ++i) CHECK(a.at(i) == Approx(ref.at(i)).epsilon(1e-12).margin(1e-12));
  Tensor v = g.normal(a.shape(), 0, 1, DType::Float64);
  auto ga = grad({a}, {x, w}, {v}), gr = grad({ref}, {x, w}, {v});
  for (int k = 0; k < 2; ++k)
    for (int64_t i = 0; i < ga[k].numel(); ++i) CHECK(ga[k].at(i) == Approx(gr[k].at(i)).epsilon(1e-12).margin(1e-12));
  const Tensor sparse = kernel_mask({0, 2, 4, 7});
  require_gradcheck([&](const std::vector<Tensor>& p) { return masked_conv2d(p[0], p[1], sparse, Tensor(), 2, 1); },
                    {randn({1, 2, 5, 5}, 1), randn({2, 2, 3, 3}, 2)});
  require_gradgradcheck([&](const std::vector<Tensor>& p) { return masked_conv2d(p[0], p[1], causal, Tensor(), 1, 1); },
                        {randn({1, 2, 4, 4}, 1), randn({2, 2, 3, 3}, 2)});
  CHECK_THAT(error_of([&] { masked_conv2d(x, w, Tensor::zeros({3, 3}), b, 1, 1); }), Catch::Contains("keeps no position"));
  CHECK_THAT(error_of([&] { masked_conv2d(x, w, Tensor::ones({2, 3}), b, 1, 1); }), Catch::Contains("[2, 3]"));
}

TEST_CASE("conv2d split over images on two threads gives the single-thread results", "[conv][threads]") {
  // Large enough (75 MFLOP) that the images are split between two threads,
  // each with single-threaded GEMMs: outputs and input gradients must be
  // bit-identical, weight gradients (summed per chunk, then added) equal to
  // rounding.
  const test::Threads restore(runtime::num_threads());  // run() sets the count; it is back at the end, even if a REQUIRE throws
  Tensor x = randn({8, 16, 32, 32}, 1).set_requires_grad(true), w = randn({32, 16, 3, 3}, 2).set_requires_grad(true);
  Tensor b = randn({32}, 3), v = randn({8, 32, 32, 32}, 4);
  auto run = [&](int threads) {
    runtime::set_num_threads(threads);
    Tensor causal = Tensor::from_vector(std::vector<double>{1, 1, 1, 1, 1, 0, 0, 0, 0}, {3, 3});
    Tensor y = masked_conv2d(x, w, causal, b, 1, 1);
    std::vector<Tensor> g = grad({y}, {x, w}, {v});
    return std::vector<Tensor>{y, g[0], g[1]};
  };
  std::vector<Tensor> one = run(1), two = run(2);
  runtime::set_num_threads(2);
  REQUIRE(runtime::parallel_chunks(8, 75e6) == 2);
  for (int k = 0; k < 2; ++k)
    for (int64_t i = 0; i < one[k].numel(); ++i) REQUIRE(one[k].at(i) == two[k].at(i));
  for (int64_t i = 0; i < one[2].numel(); ++i) REQUIRE(two[2].at(i) == Approx(one[2].at(i)).epsilon(1e-12).margin(1e-10));
}

TEST_CASE("elementwise ops and group_norm split over two threads give the single-thread results", "[threads][norm]") {
  // 2^20 values: large enough (runtime::parallel_range) for two pieces
  const test::Threads restore(runtime::num_threads());  // run() sets the count; it is back at the end, even if a REQUIRE throws
  Tensor x = randn({8, 32, 64, 64}, 1).set_requires_grad(true), y = randn({8, 32, 64, 64}, 2);
  Tensor w = randn({32}, 3).set_requires_grad(true), b = randn({32}, 4).set_requires_grad(true);
  Tensor v = randn({8, 32, 64, 64}, 5);
  auto run = [&](int threads) {
    runtime::set_num_threads(threads);
    Tensor h = group_norm(relu(x * y + 1.0) + silu(x), 8, w, b);
    std::vector<Tensor> g = grad({h}, {x, w, b}, {v});
    return std::vector<Tensor>{h, g[0], g[1], g[2]};
  };
  std::vector<Tensor> one = run(1), two = run(2);
  runtime::set_num_threads(2);
  REQUIRE(runtime::range_pieces(x.numel()) == 2);
  // values and the input gradient are computed per value or per (image, group): bit-identical;
  // dw and db are sums over the pieces, added in order: equal to rounding
  for (int k = 0; k < 2; ++k)
    for (int64_t i = 0; i < one[k].numel(); ++i) REQUIRE(one[k].at(i) == two[k].at(i));
  for (int k = 2; k < 4; ++k)
    for (int64_t i = 0; i < one[k].numel(); ++i) REQUIRE(two[k].at(i) == Approx(one[k].at(i)).epsilon(1e-5));
}
