// dgm/homework/flows/grader.cpp — the checks of the flows homework.
// The coupling's log-det is checked against log |det| of the engine's Jacobian, its
// density against a 2-D integral; the bits/dim against a uniform model (exactly
// log2(levels) bits) and against the engine's LogitTransform.
#include <cmath>

#include "autograd/gradcheck.h"
#include "autograd/graph.h"
#include "autograd/random.h"
#include "homework/flows/exercises.h"
#include "models/flows.h"
#include "models/toolkit/linalg.h"

namespace hw::flows {

using dgm::DType;
using dgm::Generator;

namespace {

// A small fixed network: h = tanh(x W1^T + b1), s = 0.8 tanh(h Ws^T + bs), t = h Wt^T + bt.
struct Net {
  Tensor W1, b1, Ws, bs, Wt, bt;
  Net(int64_t D, uint64_t seed) {
    Generator gen(seed);
    W1 = gen.normal({8, D}, 0, 1, DType::Float64);
    b1 = gen.normal({8}, 0, 0.3, DType::Float64);
    Ws = gen.normal({D, 8}, 0, 0.6, DType::Float64);
    bs = gen.normal({D}, 0, 0.3, DType::Float64);
    Wt = gen.normal({D, 8}, 0, 0.6, DType::Float64);
    bt = gen.normal({D}, 0, 0.3, DType::Float64);
  }
  ScaleShift operator()(const Tensor& x) const {
    const Tensor h = dgm::tanh(dgm::linear(x, W1, b1));
    return {0.8 * dgm::tanh(dgm::linear(h, Ws, bs)), dgm::linear(h, Wt, bt)};
  }
};

Tensor mask_of(std::vector<double> b) {
  const int64_t D = static_cast<int64_t>(b.size());
  return Tensor::from_vector(b, {1, D});
}

bool coupled_shapes(Expect& e, const Coupled& c, int64_t N, int64_t D) {
  e.shape_is("y", c.y, {N, D}, "y has the shape of x");
  e.shape_is("log_det", c.log_det, {N}, "one log-det per example: sum over the dimensions (axis 1)");
  return e.ok();
}

// The grader's own coupling layer, so that each of the two exercises is checked against the
// other direction written by the grader, not by the student.
Coupled forward_reference(const Tensor& x, const Tensor& b, const Net& net) {
  const Tensor keep = 1.0 - b;
  const ScaleShift st = net(b * x);
  const Tensor s = st.log_scale * keep;
  return {b * x + keep * (x * dgm::exp(s) + st.shift), dgm::sum(s, {1})};
}
Tensor inverse_reference(const Tensor& y, const Tensor& b, const Net& net) {
  const Tensor keep = 1.0 - b;
  const ScaleShift st = net(b * y);
  return b * y + keep * (y - st.shift) / dgm::exp(st.log_scale * keep);
}

// log p_U(u) for a uniform model is 0, so log p_Y(y) = -sum log |dy/du|, here by central
// differences of y(u) = logit(alpha + (1 - 2 alpha) u), not by its formula.
Tensor uniform_log_p_y(const Tensor& u, double alpha) {
  const int64_t N = u.size(0), D = u.numel() / N;
  std::vector<double> out(static_cast<size_t>(N));
  auto y = [alpha](long double v) { const long double p = alpha + (1 - 2 * alpha) * v; return std::log(p / (1 - p)); };
  for (int64_t n = 0; n < N; ++n) {
    long double s = 0;
    for (int64_t d = 0; d < D; ++d) {
      const long double v = u.at(n * D + d), h = 1e-7L;
      s += std::log((y(v + h) - y(v - h)) / (2 * h));
    }
    out[static_cast<size_t>(n)] = static_cast<double>(-s);
  }
  return Tensor::from_vector(out, {N});
}

}  // namespace

std::vector<Exercise> exercises(const Functions& f) {
  std::vector<Exercise> list;

  // ---------------------------------------------------------------- affine_coupling
  list.push_back({"coupling_forward", "homework/flows/affine_coupling.cpp", 6, {}});
  auto& ac = list.back().checks;
  ac.push_back({"y [N, D], log_det [N]; the masked dimensions pass through unchanged", 1, [f](Expect& e) {
                  const Net net(4, 1);
                  Generator gen(1);
                  const Tensor x = gen.normal({5, 4}, 0, 1, DType::Float64), b = mask_of({1, 0, 1, 0});
                  const Coupled c = f.coupling_forward(x, b, std::cref(net));
                  if (!coupled_shapes(e, c, 5, 4)) return;
                  e.tensors_near("b * y", b * x, b * c.y, 0, "y = b * x + (1 - b) * (...): the b = 1 half is copied");
                }});
  ac.push_back({"the grader's inverse undoes it: forward(inverse(y)) = y (2 masks)", 2, [f](Expect& e) {
                  for (uint64_t seed : {2, 3}) {
                    const Net net(5, seed);
                    Generator gen(seed);
                    const Tensor y = gen.normal({6, 5}, 0, 1.5, DType::Float64);
                    const Tensor b = mask_of(seed == 2 ? std::vector<double>{1, 0, 1, 0, 1} : std::vector<double>{0, 0, 1, 1, 0});
                    const Coupled c = f.coupling_forward(inverse_reference(y, b, net), b, std::cref(net));
                    if (!coupled_shapes(e, c, 6, 5)) return;
                    e.tensors_near("forward(inverse(y)).y", y, c.y, 1e-10,
                                   "y = b * x + (1 - b) * (x * exp(s) + t), with (s, t) = net(b * x)");
                  }
                }, essential});
  ac.push_back({"log_det equals log |det dy/dx| of the engine's Jacobian, example by example", 2, [f](Expect& e) {
                  const Net net(4, 4);
                  Generator gen(4);
                  const Tensor b = mask_of({0, 1, 1, 0});
                  const Tensor x = gen.normal({3, 4}, 0, 1, DType::Float64);
                  const Coupled c = f.coupling_forward(x, b, std::cref(net));
                  if (!coupled_shapes(e, c, 3, 4)) return;
                  for (int64_t n = 0; n < 3; ++n) {
                    const Tensor xn = dgm::slice(x, 0, n, n + 1).contiguous_copy();
                    const Tensor J = dgm::jacobian([&](const Tensor& in) { return f.coupling_forward(in, b, std::cref(net)).y; }, xn);
                    e.near("example " + std::to_string(n) + ": log_det", dgm::linalg::log_abs_det(J), c.log_det.at(n), 1e-10,
                           "only the transformed dimensions (b = 0) are scaled: log_det = sum_d (1 - b_d) s_d; the network must see b * x");
                  }
                }, essential});
  ac.push_back({"two couplings and a N(0, I) prior make a 2-D density that integrates to 1", 1, [f](Expect& e) {
                  const Net net_a(2, 5), net_b(2, 6);
                  const Tensor b1 = mask_of({1, 0}), b2 = mask_of({0, 1});
                  const int64_t n = 321;
                  const double lo = -8, h = 16.0 / (n - 1);
                  std::vector<double> grid;
                  for (int64_t i = 0; i < n; ++i)
                    for (int64_t j = 0; j < n; ++j) { grid.push_back(lo + h * i); grid.push_back(lo + h * j); }
                  const Tensor x = Tensor::from_vector(grid, {n * n, 2});
                  const Coupled c1 = f.coupling_forward(x, b1, std::cref(net_a));
                  if (!coupled_shapes(e, c1, n * n, 2)) return;
                  const Coupled c2 = f.coupling_forward(c1.y, b2, std::cref(net_b));
                  if (!coupled_shapes(e, c2, n * n, 2)) return;
                  const Tensor log_p = -0.5 * dgm::sum(dgm::square(c2.y), {1}) - std::log(2 * M_PI) + c1.log_det + c2.log_det;
                  e.near("integral of p(x) over [-8, 8]^2", 1.0, dgm::sum(dgm::exp(log_p)).item() * h * h, 2e-3,
                         "p(x) = N(f(x); 0, I) |det df/dx|: the log-dets of the layers add");
                }, essential});
  ac.push_back({"gradcheck: y and log_det are differentiable in x", 2, [f](Expect& e) {
                  const Net net(3, 7);
                  Generator gen(7);
                  const Tensor b = mask_of({1, 0, 0}), w = gen.normal({2, 3}, 0, 1, DType::Float64);
                  const auto report = dgm::gradcheck([&](const std::vector<Tensor>& in) {
                    const Coupled c = f.coupling_forward(in[0], b, std::cref(net));
                    return dgm::sum(c.y * w, {1}) + c.log_det;
                  }, {gen.normal({2, 3}, 0, 1, DType::Float64)});
                  e.that(report.ok, report.str(), "use engine ops throughout (no detach, no data<T>() copies)");
                }, essential});

  ac.push_back({"the log-det trains the scale network: d(sum log_det)/d(its weights) equals the grader's", 4, [f](Expect& e) {
                  // The grader's own log-det, sum_d (1 - b_d) s_d(b x), differentiated by the engine: a log-det that is
                  // detached, or sums the wrong dimensions, gives the scale network no (or the wrong) signal to learn from.
                  Net net(4, 8);
                  net.Ws.set_requires_grad(true);
                  net.W1.set_requires_grad(true);
                  Generator gen(8);
                  const Tensor b = mask_of({1, 0, 0, 1}), x = gen.normal({5, 4}, 0, 1, DType::Float64);
                  const Coupled c = f.coupling_forward(x, b, std::cref(net));
                  if (!coupled_shapes(e, c, 5, 4)) return;
                  if (!c.log_det.requires_grad()) {
                    e.that(false, "log_det does not depend on the network's weights (detached, or computed outside the engine)",
                           "log_det = sum over the transformed dimensions of s, the network's own output: keep it in the graph");
                    return;
                  }
                  const Tensor reference = dgm::sum((1.0 - b) * net(b * x).log_scale);
                  const auto want = dgm::grad({reference}, {net.Ws, net.W1});
                  const auto got = dgm::grad({dgm::sum(c.log_det)}, {net.Ws, net.W1});  // zeros where nothing reaches
                  const char* names[] = {"d(sum log_det)/dWs (the scale layer)", "d(sum log_det)/dW1 (the shared hidden layer)"};
                  for (size_t i = 0; i < 2; ++i) {
                    e.tensors_near(names[i], want[i], got[i], 1e-10, "log_det = sum_d (1 - b_d) s_d, with s from the network on b * x, in the graph");
                  }
                }, essential});

  list.push_back({"coupling_inverse", "homework/flows/affine_coupling.cpp", 4, {}});
  auto& ci = list.back().checks;
  ci.push_back({"x [N, D]; the masked dimensions pass through unchanged", 1, [f](Expect& e) {
                  const Net net(4, 1);
                  Generator gen(1);
                  const Tensor y = gen.normal({5, 4}, 0, 1, DType::Float64), b = mask_of({1, 0, 1, 0});
                  const Tensor x = f.coupling_inverse(y, b, std::cref(net));
                  e.shape_is("x", x, {5, 4}, "x has the shape of y");
                  if (!e.ok()) return;
                  e.tensors_near("b * x", b * y, b * x, 0, "x = b * y + (1 - b) * (...): the b = 1 half is copied");
                }});
  ci.push_back({"it undoes the grader's forward: inverse(forward(x)) = x (2 masks): sampling runs it", 5, [f](Expect& e) {
                  for (uint64_t seed : {2, 3}) {
                    const Net net(5, seed);
                    Generator gen(seed);
                    const Tensor x = gen.normal({6, 5}, 0, 1.5, DType::Float64);
                    const Tensor b = mask_of(seed == 2 ? std::vector<double>{1, 0, 1, 0, 1} : std::vector<double>{0, 0, 1, 1, 0});
                    e.tensors_near("inverse(forward(x))", x, f.coupling_inverse(forward_reference(x, b, net).y, b, std::cref(net)), 1e-10,
                                   "x = b * y + (1 - b) * (y - t) * exp(-s), with (s, t) = net(b * y)");
                  }
                }, essential});
  ci.push_back({"and the grader's forward undoes it: forward(inverse(y)) = y", 3, [f](Expect& e) {
                  const Net net(5, 9);
                  Generator gen(9);
                  const Tensor y = gen.normal({6, 5}, 0, 1.5, DType::Float64), b = mask_of({0, 1, 0, 1, 1});
                  e.tensors_near("forward(inverse(y)).y", y, forward_reference(f.coupling_inverse(y, b, std::cref(net)), b, net).y, 1e-10,
                                 "the inverse undoes the shift, then the scale");
                }, essential});
  ci.push_back({"gradcheck: x is differentiable in y", 1, [f](Expect& e) {
                  const Net net(3, 10);
                  Generator gen(10);
                  const Tensor b = mask_of({0, 1, 0});
                  const auto report = dgm::gradcheck([&](const std::vector<Tensor>& in) { return f.coupling_inverse(in[0], b, std::cref(net)); },
                                                     {gen.normal({2, 3}, 0, 1, DType::Float64)});
                  e.that(report.ok, report.str(), "use engine ops throughout (no detach, no data<T>() copies)");
                }});

  // ---------------------------------------------------------------- bits_per_dim
  list.push_back({"dequantize", "homework/flows/bits_per_dim.cpp", 3, {}});
  auto& dq = list.back().checks;
  dq.push_back({"u = (k + noise) / levels, inside k's cube", 1, [f](Expect& e) {
                  Generator gen(1);
                  const Tensor k = gen.randint({4, 6}, 0, 256).to(DType::Float64), noise = gen.uniform({4, 6}, 0, 1, DType::Float64);
                  const Tensor u = f.dequantize(k, noise, 256);
                  e.shape_is("u", u, k.shape(), "u has the shape of k");
                  if (!e.ok()) return;
                  std::vector<double> want;
                  for (int64_t i = 0; i < 24; ++i) want.push_back((k.at(i) + noise.at(i)) / 256.0);
                  e.tensors_near("u", Tensor::from_vector(want, {4, 6}), u, 1e-15,
                                 "divide by levels (256), not levels - 1: the 256 cubes then tile [0, 1)");
                }, essential});

  list.push_back({"bits_per_dim", "homework/flows/bits_per_dim.cpp", 7, {}});
  auto& bp = list.back().checks;
  bp.push_back({"one value per example, for [N, D] and image batches [N, C, H, W]", 1, [f](Expect& e) {
                  Generator gen(2);
                  e.shape_is("bits_per_dim(u [3, 1, 4, 4])",
                             f.bits_per_dim(Tensor::zeros({3}, DType::Float64), gen.uniform({3, 1, 4, 4}, 0, 1, DType::Float64), 256, 0.05), {3},
                             "sum over all the dimensions of an example; D = C H W");
                }});
  bp.push_back({"a uniform model scores exactly log2(levels) bits/dim (levels 256 and 2; alpha 0.05 and 1e-6)", 4, [f](Expect& e) {
                  Generator gen(3);
                  for (int64_t levels : {256, 2})
                    for (double alpha : {0.05, 1e-6}) {
                      const Tensor u = gen.uniform({4, 1, 3, 3}, 0.01, 0.99, DType::Float64);
                      const Tensor got = f.bits_per_dim(uniform_log_p_y(u, alpha), u, levels, alpha);
                      e.shape_is("bits/dim", got, {4}, "");
                      if (!e.ok()) return;
                      for (int64_t n = 0; n < 4; ++n)
                        e.near("levels " + std::to_string(levels) + ", alpha " + fmt(alpha) + ": bits/dim of example " + std::to_string(n),
                               std::log2(static_cast<double>(levels)), got.at(n), 1e-6,
                               "add the logit's log |dy/du| = log(1 - 2 alpha) - log v - log(1 - v), subtract D log levels, divide by D ln 2");
                    }
                }, essential});
  bp.push_back({"agrees with the engine's LogitTransform bookkeeping on a random model", 3, [f](Expect& e) {
                  Generator gen(4);
                  const Tensor u = gen.uniform({5, 12}, 0, 1, DType::Float64), log_p_y = gen.normal({5}, -20, 5, DType::Float64);
                  dgm::models::flows::LogitTransform logit(0.05);
                  const auto flowed = logit.forward_flow(u);
                  const Tensor want = -(log_p_y + flowed.log_det - 12 * std::log(256.0)) / (12 * std::log(2.0));
                  e.tensors_near("bits/dim", want, f.bits_per_dim(log_p_y, u, 256, 0.05), 1e-9,
                                 "log p_U(u) = log p_Y(y) + sum_d log |dy_d/du_d|; bits/dim = -(log p_U(u) - D log levels) / (D ln 2)");
                }, essential});
  // No exercise may call the library's own implementation of itself (grader.h, add_library_check).
  for (auto& ex : list) {
    if (ex.name == "coupling_forward") add_library_check(ex, {"AffineCoupling"});
    if (ex.name == "coupling_inverse") add_library_check(ex, {"AffineCoupling"});
    if (ex.name == "dequantize") add_library_check(ex, {"dequantize_uniform"});
    if (ex.name == "bits_per_dim") add_library_check(ex, {"LogitTransform", "logit_transform", "train::bits_per_dim"});
  }
  return list;
}

}  // namespace hw::flows
