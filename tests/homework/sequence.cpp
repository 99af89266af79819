// Known wrong solutions of the sequence-models homework lose points.
#include <cmath>
#include <limits>

#include "homework/sequence/exercises.h"
#include "tests/homework/helpers.h"

using namespace hw::sequence;
using hw_test::grade;
using dgm::Tensor;

namespace {
// Attention with a mask that hides j > i + shift (shift -1: the diagonal hidden too), a scale and a softmax axis.
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t shift, double scale, int64_t axis, bool mask = true) {
  const int64_t L = q.size(2);
  std::vector<double> m(static_cast<size_t>(L * L), 0.0);
  for (int64_t i = 0; i < L; ++i)
    for (int64_t j = 0; j < L; ++j)
      if (mask && j > i + shift) m[static_cast<size_t>(i * L + j)] = -std::numeric_limits<double>::infinity();
  const Tensor s = dgm::matmul(q, dgm::transpose(k, 2, 3)) * scale + Tensor::from_vector(m, {L, L}).to(q.dtype());
  return dgm::matmul(dgm::softmax(s, axis), v);
}
double inv_sqrt_d(const Tensor& q) { return 1.0 / std::sqrt(static_cast<double>(q.size(3))); }

std::pair<Tensor, Tensor> lstm_with(const Tensor& x, const Tensor& h, const Tensor& c, const Tensor& W_ih, const Tensor& W_hh, const Tensor& b,
                                    bool swap_if, bool tanh_output) {
  const int64_t H = h.size(1);
  const Tensor gates = dgm::linear(x, W_ih, b) + dgm::linear(h, W_hh);
  Tensor i = dgm::sigmoid(dgm::slice(gates, 1, 0, H)), f = dgm::sigmoid(dgm::slice(gates, 1, H, 2 * H));
  if (swap_if) std::swap(i, f);
  const Tensor g = dgm::tanh(dgm::slice(gates, 1, 2 * H, 3 * H)), pre_o = dgm::slice(gates, 1, 3 * H, 4 * H);
  const Tensor o = tanh_output ? dgm::tanh(pre_o) : dgm::sigmoid(pre_o);
  const Tensor c2 = f * c + i * g;
  return {o * dgm::tanh(c2), c2};
}
}  // namespace

TEST_CASE("sequence homework: wrong causal attentions lose points", "[homework]") {
  Functions f = linked();
  SECTION("the diagonal masked too (a position cannot see itself; row 0 has no key left)") {
    f.causal_self_attention = [](const Tensor& q, const Tensor& k, const Tensor& v) { return attention(q, k, v, -1, inv_sqrt_d(q), 3); };
    hw_test::require_caught(grade(exercises(f), "causal_self_attention"), "long double");
  }
  SECTION("the softmax over the queries' axis") {
    f.causal_self_attention = [](const Tensor& q, const Tensor& k, const Tensor& v) { return attention(q, k, v, 0, inv_sqrt_d(q), 2); };
    const auto r = grade(exercises(f), "causal_self_attention");
    hw_test::require_caught(r, "long double");
    hw_test::require_caught(r, "every output is 1");
  }
  SECTION("no 1 / sqrt(d) scale") {
    f.causal_self_attention = [](const Tensor& q, const Tensor& k, const Tensor& v) { return attention(q, k, v, 0, 1.0, 3); };
    hw_test::require_caught(grade(exercises(f), "causal_self_attention"), "long double");
  }
  SECTION("no mask (the future leaks in)") {
    f.causal_self_attention = [](const Tensor& q, const Tensor& k, const Tensor& v) { return attention(q, k, v, 0, inv_sqrt_d(q), 3, false); };
    const auto r = grade(exercises(f), "causal_self_attention");
    hw_test::require_caught(r, "long double");
    hw_test::require_caught(r, "causal");
  }
  SECTION("detached (no gradient reaches q, k, v)") {
    f.causal_self_attention = [](const Tensor& q, const Tensor& k, const Tensor& v) { return causal_self_attention(q, k, v).detach(); };
    hw_test::require_caught(grade(exercises(f), "causal_self_attention"), "gradcheck");
  }
}

TEST_CASE("sequence homework: wrong LSTM steps lose points", "[homework]") {
  Functions f = linked();
  SECTION("the forget and input gates swapped") {
    f.lstm_step = [](const Tensor& x, const Tensor& h, const Tensor& c, const Tensor& a, const Tensor& b, const Tensor& bias) {
      return lstm_with(x, h, c, a, b, bias, true, false);
    };
    const auto r = grade(exercises(f), "lstm_step");
    hw_test::require_caught(r, "long double");
    hw_test::require_caught(r, "remembers");
  }
  SECTION("tanh for the output gate") {
    f.lstm_step = [](const Tensor& x, const Tensor& h, const Tensor& c, const Tensor& a, const Tensor& b, const Tensor& bias) {
      return lstm_with(x, h, c, a, b, bias, false, true);
    };
    const auto r = grade(exercises(f), "lstm_step");
    hw_test::require_caught(r, "long double");
    hw_test::require_caught(r, "output gate shut");
  }
  SECTION("h' from the old cell (sigmoid(o) tanh(c))") {
    f.lstm_step = [](const Tensor& x, const Tensor& h, const Tensor& c, const Tensor& a, const Tensor& b, const Tensor& bias) {
      const auto [h2, c2] = lstm_step(x, h, c, a, b, bias);
      const int64_t H = h.size(1);
      const Tensor o = dgm::sigmoid(dgm::slice(dgm::linear(x, a, bias) + dgm::linear(h, b), 1, 3 * H, 4 * H));
      return std::pair<Tensor, Tensor>{o * dgm::tanh(c), c2};
    };
    hw_test::require_caught(grade(exercises(f), "lstm_step"), "long double");
  }
}

TEST_CASE("sequence homework: wrong KV-cache steps lose points", "[homework]") {
  Functions f = linked();
  SECTION("the cache never written back (each step sees itself alone)") {
    f.kv_cache_step = [](Tensor& keys, Tensor& values, const Tensor& q, const Tensor& k, const Tensor& v) {
      Tensor kk = keys, vv = values;
      return kv_cache_step(kk, vv, q, k, v);
    };
    const auto r = grade(exercises(f), "kv_cache_step");
    hw_test::require_caught(r, "long double");
    hw_test::require_caught(r, "the cache after 3 steps");
  }
  SECTION("the new key and value put before the old ones") {
    f.kv_cache_step = [](Tensor& keys, Tensor& values, const Tensor& q, const Tensor& k, const Tensor& v) {
      keys = keys.defined() ? dgm::concat({k, keys}, 2) : k;
      values = values.defined() ? dgm::concat({v, values}, 2) : v;
      return dgm::matmul(dgm::softmax(dgm::matmul(q, dgm::transpose(keys, 2, 3)) * inv_sqrt_d(q), 3), values);
    };
    hw_test::require_caught(grade(exercises(f), "kv_cache_step"), "in the order they came");
  }
  SECTION("no 1 / sqrt(d) scale") {
    f.kv_cache_step = [](Tensor& keys, Tensor& values, const Tensor& q, const Tensor& k, const Tensor& v) {
      keys = keys.defined() ? dgm::concat({keys, k}, 2) : k;
      values = values.defined() ? dgm::concat({values, v}, 2) : v;
      return dgm::matmul(dgm::softmax(dgm::matmul(q, dgm::transpose(keys, 2, 3)), 3), values);
    };
    hw_test::require_caught(grade(exercises(f), "kv_cache_step"), "long double");
  }
}
