// dgm/homework/sequence/grader.cpp — the checks of the sequence-models homework.
// Causal attention against the attention written out per row in long double, by causality (the
// future's keys and values changed, the past's outputs not), and by gradcheck; the LSTM step against
// its formulas in long double, by what the gates must do when saturated (remember, forget, close),
// and by gradcheck into every weight; the KV-cache step against causal attention over the whole
// prefix, and by the cache it leaves.
#include <cmath>

#include "autograd/gradcheck.h"
#include "autograd/random.h"
#include "homework/sequence/exercises.h"

namespace hw::sequence {

using dgm::DType;
using dgm::Generator;

namespace {

using LD = long double;

Tensor normal(Generator& gen, const dgm::Shape& s, double sd = 1.0) { return gen.normal(s, 0, sd, DType::Float64); }

// softmax_j(q_i . k_j / sqrt d) over j <= last(i), then the weighted values, in long double:
// row i of the [L, d] output of one (n, head) slice; `first_query` is query 0's position.
Tensor attention_reference(const Tensor& q, const Tensor& k, const Tensor& v, int64_t first_query) {
  const int64_t N = q.size(0), Hh = q.size(1), Lq = q.size(2), Lk = k.size(2), d = q.size(3);
  std::vector<double> out(static_cast<size_t>(N * Hh * Lq * d));
  for (int64_t n = 0; n < N * Hh; ++n)
    for (int64_t i = 0; i < Lq; ++i) {
      const int64_t last = first_query + i;
      std::vector<LD> w(static_cast<size_t>(Lk), 0);
      LD top = -INFINITY, z = 0;
      for (int64_t j = 0; j <= last; ++j) {
        LD dot = 0;
        for (int64_t a = 0; a < d; ++a) dot += static_cast<LD>(q.at((n * Lq + i) * d + a)) * k.at((n * Lk + j) * d + a);
        w[static_cast<size_t>(j)] = dot / std::sqrt(static_cast<LD>(d));
        top = std::max(top, w[static_cast<size_t>(j)]);
      }
      for (int64_t j = 0; j <= last; ++j) z += w[static_cast<size_t>(j)] = std::exp(w[static_cast<size_t>(j)] - top);
      for (int64_t a = 0; a < d; ++a) {
        LD o = 0;
        for (int64_t j = 0; j <= last; ++j) o += w[static_cast<size_t>(j)] / z * v.at((n * Lk + j) * d + a);
        out[static_cast<size_t>((n * Lq + i) * d + a)] = static_cast<double>(o);
      }
    }
  return Tensor::from_vector(out, {N, Hh, Lq, d});
}

struct LstmCase {
  Tensor x, h, c, W_ih, W_hh, b;
};
LstmCase lstm_case(uint64_t seed, int64_t N, int64_t I, int64_t H) {
  Generator gen(seed);
  return {normal(gen, {N, I}), normal(gen, {N, H}, 0.5), normal(gen, {N, H}), normal(gen, {4 * H, I}, 0.7), normal(gen, {4 * H, H}, 0.7),
          normal(gen, {4 * H}, 0.5)};
}

LD sigm(LD a) { return 1 / (1 + std::exp(-a)); }

}  // namespace

std::vector<Exercise> exercises(const Functions& f) {
  std::vector<Exercise> list;

  // ---------------------------------------------------------------- causal_self_attention
  list.push_back({"causal_self_attention", "homework/sequence/causal_self_attention.cpp", 10, {}});
  auto& at = list.back().checks;
  at.push_back({"equals the attention written out row by row in long double (N 2, 2 heads, L 5, d 3)", 4, [f](Expect& e) {
                  Generator gen(1);
                  const Tensor q = normal(gen, {2, 2, 5, 3}), k = normal(gen, {2, 2, 5, 3}), v = normal(gen, {2, 2, 5, 3});
                  e.tensors_near("the output", attention_reference(q, k, v, 0), f.causal_self_attention(q, k, v), 1e-12,
                                 "scores q k^T / sqrt(d) ([N, heads, L, L]), -infinity where j > i (the diagonal is allowed: a "
                                 "position sees itself), softmax over the last axis (j), then times v");
                }, essential});
  at.push_back({"causal: changing the keys and values of positions after i leaves outputs 0..i unchanged", 2, [f](Expect& e) {
                  Generator gen(2);
                  const Tensor q = normal(gen, {1, 1, 6, 4}), k = normal(gen, {1, 1, 6, 4}), v = normal(gen, {1, 1, 6, 4});
                  const Tensor base = f.causal_self_attention(q, k, v);
                  for (int64_t i = 0; i < 5 && e.ok(); ++i) {
                    Tensor k2 = k.contiguous_copy(), v2 = v.contiguous_copy();
                    for (int64_t j = i + 1; j < 6; ++j)
                      for (int64_t a = 0; a < 4; ++a) k2.data<double>()[j * 4 + a] += 3.0, v2.data<double>()[j * 4 + a] -= 2.0;
                    const Tensor out = f.causal_self_attention(q, k2, v2);
                    for (int64_t r = 0; r <= i; ++r)
                      for (int64_t a = 0; a < 4; ++a)
                        e.near("output " + std::to_string(r) + "[" + std::to_string(a) + "] after positions > " + std::to_string(i) + " changed",
                               base.at(r * 4 + a), out.at(r * 4 + a), 1e-12,
                               "position r may attend only to positions j <= r: mask the scores above the diagonal before the softmax");
                  }
                }, essential});
  at.push_back({"a weighted mean: with every value 1, every output is 1", 1, [f](Expect& e) {
                  Generator gen(3);
                  const Tensor q = normal(gen, {1, 2, 4, 3}), k = normal(gen, {1, 2, 4, 3});
                  e.tensors_near("the output for v = 1", Tensor::ones({1, 2, 4, 3}, DType::Float64),
                                 f.causal_self_attention(q, k, Tensor::ones({1, 2, 4, 3}, DType::Float64)), 1e-12,
                                 "the weights of a row must sum to 1: softmax over the keys' axis (the last), not the queries'");
                }});
  at.push_back({"gradcheck into q, k and v (the attention layer learns through this)", 3, [f](Expect& e) {
                  Generator gen(4);
                  const auto report = dgm::gradcheck([&](const std::vector<Tensor>& in) { return f.causal_self_attention(in[0], in[1], in[2]); },
                                                     {normal(gen, {1, 2, 4, 3}), normal(gen, {1, 2, 4, 3}), normal(gen, {1, 2, 4, 3})});
                  e.that(report.ok, report.str(), "engine ops only (no values copied out and back): the gradient reaches q, k and v");
                }, essential});

  // ---------------------------------------------------------------- lstm_step
  list.push_back({"lstm_step", "homework/sequence/lstm_step.cpp", 10, {}});
  auto& ls = list.back().checks;
  ls.push_back({"equals the gate formulas in long double (N 3, input 2, hidden 4)", 4, [f](Expect& e) {
                  const LstmCase c = lstm_case(5, 3, 2, 4);
                  const int64_t N = 3, I = 2, H = 4;
                  std::vector<double> hw(static_cast<size_t>(N * H)), cw(static_cast<size_t>(N * H));
                  for (int64_t n = 0; n < N; ++n)
                    for (int64_t u = 0; u < H; ++u) {
                      LD pre[4];
                      for (int g = 0; g < 4; ++g) {
                        const int64_t row = g * H + u;
                        LD s = c.b.at(row);
                        for (int64_t a = 0; a < I; ++a) s += static_cast<LD>(c.W_ih.at(row * I + a)) * c.x.at(n * I + a);
                        for (int64_t a = 0; a < H; ++a) s += static_cast<LD>(c.W_hh.at(row * H + a)) * c.h.at(n * H + a);
                        pre[g] = s;
                      }
                      const LD c2 = sigm(pre[1]) * c.c.at(n * H + u) + sigm(pre[0]) * std::tanh(pre[2]);
                      cw[static_cast<size_t>(n * H + u)] = static_cast<double>(c2);
                      hw[static_cast<size_t>(n * H + u)] = static_cast<double>(sigm(pre[3]) * std::tanh(c2));
                    }
                  const auto [h2, c2] = f.lstm_step(c.x, c.h, c.c, c.W_ih, c.W_hh, c.b);
                  e.tensors_near("c'", Tensor::from_vector(cw, {N, H}), c2, 1e-12,
                                 "c' = sigmoid(f) c + sigmoid(i) tanh(g), the gates in the order i, f, g, o (rows 0..H-1 are i)");
                  e.tensors_near("h'", Tensor::from_vector(hw, {N, H}), h2, 1e-12, "h' = sigmoid(o) tanh(c')");
                }, essential});
  ls.push_back({"remembers: forget gate open (f = +30), input gate shut (i = -30): c' = c", 2, [f](Expect& e) {
                  const int64_t H = 3;
                  Generator gen(6);
                  const Tensor x = normal(gen, {2, 2}), h = normal(gen, {2, H}), c = normal(gen, {2, H});
                  std::vector<double> b(static_cast<size_t>(4 * H), 0.0);
                  for (int64_t u = 0; u < H; ++u) b[static_cast<size_t>(u)] = -30, b[static_cast<size_t>(H + u)] = 30, b[static_cast<size_t>(2 * H + u)] = 1;
                  const auto [h2, c2] = f.lstm_step(x, h, c, Tensor::zeros({4 * H, 2}, DType::Float64), Tensor::zeros({4 * H, H}, DType::Float64),
                                                    Tensor::from_vector(b, {4 * H}));
                  e.tensors_near("c' with f = +30, i = -30", c, c2, 1e-12,
                                 "the forget gate (rows H..2H-1) multiplies the old cell, the input gate (rows 0..H-1) the candidate");
                }, essential});
  ls.push_back({"output gate shut (o = -30): h' = 0", 1, [f](Expect& e) {
                  const int64_t H = 3;
                  Generator gen(7);
                  std::vector<double> b(static_cast<size_t>(4 * H), 0.5);
                  for (int64_t u = 0; u < H; ++u) b[static_cast<size_t>(3 * H + u)] = -30;
                  const auto [h2, c2] = f.lstm_step(normal(gen, {2, 2}), normal(gen, {2, H}), normal(gen, {2, H}), Tensor::zeros({4 * H, 2}, DType::Float64),
                                                    Tensor::zeros({4 * H, H}, DType::Float64), Tensor::from_vector(b, {4 * H}));
                  e.tensors_near("h' with o = -30", Tensor::zeros({2, H}, DType::Float64), h2, 1e-12,
                                 "the output gate is a sigmoid (0 to 1, a gate), not a tanh: h' = sigmoid(o) tanh(c')");
                }});
  ls.push_back({"gradcheck into x, h, c, W_ih, W_hh and b (backpropagation through time runs through this)", 3, [f](Expect& e) {
                  const LstmCase c = lstm_case(8, 2, 3, 2);
                  const auto report = dgm::gradcheck(
                      [&](const std::vector<Tensor>& in) {
                        const auto [h2, c2] = f.lstm_step(in[0], in[1], in[2], in[3], in[4], in[5]);
                        return dgm::concat({h2, c2}, 1);
                      },
                      {c.x, c.h, c.c, c.W_ih, c.W_hh, c.b});
                  e.that(report.ok, report.str(), "engine ops only: the weights learn from this gradient, and h and c pass it to earlier steps");
                }, essential});

  // ---------------------------------------------------------------- kv_cache_step
  list.push_back({"kv_cache_step", "homework/sequence/kv_cache_step.cpp", 10, {}});
  auto& kv = list.back().checks;
  kv.push_back({"6 steps from an empty cache: each output is the last row of causal attention over the prefix (long double)", 4, [f](Expect& e) {
                  Generator gen(9);
                  const Tensor q = normal(gen, {2, 2, 6, 3}), k = normal(gen, {2, 2, 6, 3}), v = normal(gen, {2, 2, 6, 3});
                  const Tensor want = attention_reference(q, k, v, 0);
                  Tensor keys, values;
                  for (int64_t t = 0; t < 6 && e.ok(); ++t) {
                    auto at_t = [&](const Tensor& x) { return dgm::slice(x, 2, t, t + 1).contiguous_copy(); };
                    const Tensor out = f.kv_cache_step(keys, values, at_t(q), at_t(k), at_t(v));
                    e.tensors_near("the output of step " + std::to_string(t), at_t(want), out, 1e-12,
                                   "append the new key and value to the cache, then attend from the new query to all t + 1 positions "
                                   "(scaled by 1 / sqrt(d))");
                  }
                }, essential});
  kv.push_back({"the cache after 3 steps: [N, heads, 3, d], the keys and values in the order they came", 3, [f](Expect& e) {
                  Generator gen(10);
                  const Tensor q = normal(gen, {1, 2, 3, 4}), k = normal(gen, {1, 2, 3, 4}), v = normal(gen, {1, 2, 3, 4});
                  Tensor keys, values;
                  for (int64_t t = 0; t < 3; ++t) {
                    auto at_t = [&](const Tensor& x) { return dgm::slice(x, 2, t, t + 1).contiguous_copy(); };
                    f.kv_cache_step(keys, values, at_t(q), at_t(k), at_t(v));
                  }
                  e.that(keys.defined() && values.defined(), "the cache is still empty after 3 steps", "write the grown cache back into keys and values");
                  if (!e.ok()) return;
                  e.tensors_near("the keys", k, keys, 0, "concatenate along axis 2 (the positions), the new key after the old ones");
                  e.tensors_near("the values", v, values, 0, "concatenate along axis 2 (the positions), the new value after the old ones");
                }, essential});
  kv.push_back({"the first step attends to itself alone: its output is its value", 1, [f](Expect& e) {
                  Generator gen(11);
                  const Tensor q = normal(gen, {2, 1, 1, 3}), k = normal(gen, {2, 1, 1, 3}), v = normal(gen, {2, 1, 1, 3});
                  Tensor keys, values;
                  e.tensors_near("the first output", v, f.kv_cache_step(keys, values, q, k, v), 1e-14,
                                 "with one position in the cache its weight is 1: the output is v");
                }});
  kv.push_back({"gradcheck into the new q, k, v and the cached keys and values", 2, [f](Expect& e) {
                  Generator gen(12);
                  const auto report = dgm::gradcheck(
                      [&](const std::vector<Tensor>& in) {
                        Tensor keys = in[3], values = in[4];
                        return f.kv_cache_step(keys, values, in[0], in[1], in[2]);
                      },
                      {normal(gen, {1, 2, 1, 3}), normal(gen, {1, 2, 1, 3}), normal(gen, {1, 2, 1, 3}), normal(gen, {1, 2, 3, 3}),
                       normal(gen, {1, 2, 3, 3})});
                  e.that(report.ok, report.str(), "engine ops only (concat, matmul, softmax)");
                }});
  for (auto& ex : list) {
    if (ex.name == "causal_self_attention") add_library_check(ex, {"causal_attention", "TransformerBlock"});
    if (ex.name == "lstm_step") add_library_check(ex, {"lstm_update", "LSTMCell"});
    if (ex.name == "kv_cache_step") add_library_check(ex, {"causal_attention", "TransformerBlock", "Transformer"});
  }
  return list;
}

}  // namespace hw::sequence
