// Tests of the sequence models (models/sequence.h, rnn.h, transformer.h, pixelrnn.h): the cells
// against their formulas written out in scalars, the chain rule by enumeration, the
// autoregressive property by the engine's Jacobian, the KV cache against recomputation.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <nlohmann/json.hpp>

#include "autograd/gradcheck.h"
#include "autograd/graph.h"
#include "autograd/ops.h"
#include "models/pixelrnn.h"
#include "models/registry.h"
#include "models/rnn.h"
#include "models/toolkit/datasets.h"
#include "models/toolkit/trainer.h"
#include "models/transformer.h"

using namespace dgm;
using namespace dgm::models;

namespace {

double sigm(double x) { return 1 / (1 + std::exp(-x)); }

std::shared_ptr<SequenceModel> small(const std::string& family, TokenInput input, int64_t V, int64_t L, Generator& gen) {
  if (family == "lstm" || family == "gru") {
    RNNOptions o;
    o.vocab = V, o.length = L, o.input = input, o.cell = family, o.embedding = 4, o.hidden = 5, o.layers = 2;
    return std::make_shared<RNNLM>(o, gen);
  }
  TransformerOptions o;
  o.vocab = V, o.length = L, o.input = input, o.width = 8, o.layers = 2, o.heads = 2, o.dropout = 0;
  o.positions = family == "transformer_sin" ? "sinusoidal" : "learned";
  o.tie_weights = family == "transformer_sin";
  return std::make_shared<Transformer>(o, gen);
}

}  // namespace

TEST_CASE("LSTM and GRU cells: the formulas written out in scalars, and gradcheck + gradgradcheck", "[sequence][rnn]") {
  Generator gen(1);
  LSTMCell lstm(1, 1, gen);
  GRUCell gru(1, 1, gen);
  lstm.to(DType::Float64), gru.to(DType::Float64);
  const double x = 0.7, h = -0.4, c = 0.3;
  auto w = [](const Tensor& t, int64_t i) { return t.at(i); };
  {  // i, f, g, o = rows 0..3
    double pre[4];
    for (int k = 0; k < 4; ++k)
      pre[k] = w(lstm.weight_ih, k) * x + w(lstm.bias_ih, k) + w(lstm.weight_hh, k) * h + w(lstm.bias_hh, k);
    const double c2 = sigm(pre[1]) * c + sigm(pre[0]) * std::tanh(pre[2]), h2 = sigm(pre[3]) * std::tanh(c2);
    auto [hh, cc] = lstm.forward(Tensor::full({1, 1}, x, DType::Float64), Tensor::full({1, 1}, h, DType::Float64),
                                 Tensor::full({1, 1}, c, DType::Float64));
    CHECK(hh.at(0) == Approx(h2).epsilon(1e-14));
    CHECK(cc.at(0) == Approx(c2).epsilon(1e-14));
  }
  {  // r, z, n = rows 0..2
    auto gi = [&](int k) { return w(gru.weight_ih, k) * x + w(gru.bias_ih, k); };
    auto gh = [&](int k) { return w(gru.weight_hh, k) * h + w(gru.bias_hh, k); };
    const double r = sigm(gi(0) + gh(0)), z = sigm(gi(1) + gh(1)), n = std::tanh(gi(2) + r * gh(2));
    const Tensor out = gru.forward(Tensor::full({1, 1}, x, DType::Float64), Tensor::full({1, 1}, h, DType::Float64));
    CHECK(out.at(0) == Approx((1 - z) * n + z * h).epsilon(1e-14));
  }
  Generator g2(2);
  LSTMCell l3(3, 4, g2);
  GRUCell g3(3, 4, g2);
  l3.to(DType::Float64), g3.to(DType::Float64);
  const std::vector<Tensor> in = {g2.normal({2, 3}, 0, 1, DType::Float64), g2.normal({2, 4}, 0, 1, DType::Float64),
                                  g2.normal({2, 4}, 0, 1, DType::Float64)};
  auto f_lstm = [&](const std::vector<Tensor>& v) {
    auto [hh, cc] = l3.forward(v[0], v[1], v[2]);
    return concat({hh, cc}, 1);
  };
  auto f_gru = [&](const std::vector<Tensor>& v) { return g3.forward(v[0], v[1]); };
  CHECK(gradcheck(f_lstm, in).ok);
  CHECK(gradgradcheck(f_lstm, in).ok);
  CHECK(gradcheck(f_gru, {in[0], in[1]}).ok);
  CHECK(gradgradcheck(f_gru, {in[0], in[1]}).ok);
  // the weights' gradients: through the same cell, the weight as the input
  auto f_weight = [&](const std::vector<Tensor>& v) {
    return lstm_update(linear(in[0], v[0]) + linear(in[1], l3.weight_hh, l3.bias_hh), in[2]).first;
  };
  CHECK(gradcheck(f_weight, {l3.weight_ih.detach()}).ok);
}

TEST_CASE("sequence models: the probabilities of every sequence sum to 1 (the chain rule)", "[sequence]") {
  Generator gen(3);
  for (const std::string family : {"lstm", "gru", "transformer", "transformer_sin"})
    for (TokenInput input : {TokenInput::Levels, TokenInput::Words}) {
      INFO(family << " " << token_input_name(input));
      auto m = small(family, input, 3, 4, gen);
      m->to(DType::Float64);
      const Tensor seqs = every_sequence(3, 4, input);
      const Tensor lp = m->log_prob(seqs);
      double total = 0;
      for (int64_t i = 0; i < lp.numel(); ++i) total += std::exp(lp.at(i));
      CHECK(total == Approx(1.0).epsilon(1e-12));
    }
  for (const std::string kind : {"row", "diagonal"}) {
    INFO(kind);
    PixelRNNOptions o;
    o.kind = kind, o.levels = 2, o.height = 2, o.width = 2, o.channels = 4, o.hidden = 3, o.layers = 2;
    PixelRNN m(o, gen);
    m.to(DType::Float64);
    const Tensor lp = m.log_prob(m.examples(every_sequence(2, 4, TokenInput::Levels)));
    double total = 0;
    for (int64_t i = 0; i < lp.numel(); ++i) total += std::exp(lp.at(i));
    CHECK(total == Approx(1.0).epsilon(1e-12));
  }
}

TEST_CASE("sequence models: logit i depends on inputs up to i only (the engine's Jacobian)", "[sequence]") {
  Generator gen(4);
  const int64_t L = 5;
  for (const std::string family : {"lstm", "gru", "transformer"}) {
    INFO(family);
    auto m = small(family, TokenInput::Levels, 3, L, gen);
    m->to(DType::Float64);
    const Tensor tokens = Tensor::from_indices({2, 0, 1, 1, 2}, {1, L});
    Tensor e;
    std::function<Tensor(const Tensor&)> f;
    if (auto* r = dynamic_cast<RNNLM*>(m.get())) {
      e = r->embed_inputs(tokens).detach();
      f = [r](const Tensor& x) { return r->logits_from_inputs(x); };
    } else {
      auto* t = dynamic_cast<Transformer*>(m.get());
      e = t->embed_inputs(tokens).detach();
      f = [t](const Tensor& x) { return t->logits_from_inputs(x); };
    }
    const Tensor J = jacobian(f, e);  // [L * V, L * E]
    const int64_t V = 3, E = e.size(2);
    for (int64_t i = 0; i < L; ++i)
      for (int64_t j = 0; j < L; ++j) {
        double block = 0;
        for (int64_t a = 0; a < V; ++a)
          for (int64_t b = 0; b < E; ++b) block += std::abs(J.at((i * V + a) * (L * E) + j * E + b));
        INFO("logit " << i << ", input " << j);
        if (j > i) CHECK(block == 0.0);
        else CHECK(block > 0.0);
      }
  }
  // 6 x 10 images: wide enough for the Row LSTM's triangle to miss the far right of the rows above
  // (16 channels: with a handful, every ReLU of a random network can be off)
  for (const std::string kind : {"row", "diagonal"}) {
    INFO(kind);
    PixelRNNOptions o;
    o.kind = kind, o.levels = 3, o.height = 6, o.width = 10, o.channels = 16, o.hidden = 8, o.layers = 2;
    PixelRNN m(o, gen);
    m.to(DType::Float64);
    const int64_t P = 60;
    const Tensor x = gen.uniform({1, 1, 6, 10}, 0, 1, DType::Float64);
    const Tensor J = jacobian([&](const Tensor& v) { return m.image_logits(v); }, x);  // [3 * 60, 60]
    int64_t seen_before = 0, before = 0;
    for (int64_t p = 0; p < P; ++p)
      for (int64_t q = 0; q < P; ++q) {
        double s = 0;
        for (int64_t a = 0; a < 3; ++a) s += std::abs(J.at((a * P + p) * P + q));
        INFO("pixel " << p << " on pixel " << q);
        if (q >= p) {
          CHECK(s == 0.0);
        } else {
          ++before;
          seen_before += s > 0;
        }
      }
    // the Diagonal BiLSTM sees the whole past; the Row LSTM a triangle of it
    if (kind == "diagonal") CHECK(seen_before == before);
    else CHECK(seen_before < before);
  }
}

TEST_CASE("one token at a time: the KV cache and the RNN's state give the one-pass logits", "[sequence]") {
  Generator gen(5);
  const int64_t L = 6;
  for (const std::string family : {"lstm", "transformer", "transformer_sin"}) {
    INFO(family);
    auto m = small(family, TokenInput::Levels, 4, L, gen);
    m->to(DType::Float64);
    m->eval();
    const Tensor tokens = Tensor::from_indices({3, 1, 0, 2, 2, 1, 0, 0, 1, 3, 2, 2}, {2, L});
    const Tensor full = m->logits(tokens);  // [2, L, 4]
    auto cache = m->start(2);
    Tensor token = Tensor::from_indices({m->bos(), m->bos()}, {2});
    double worst = 0;
    for (int64_t t = 0; t < L; ++t) {
      const Tensor step = m->next(*cache, token);  // [2, 4]
      for (int64_t r = 0; r < 2; ++r)
        for (int64_t v = 0; v < 4; ++v) worst = std::max(worst, std::abs(step.at(r * 4 + v) - full.at((r * L + t) * 4 + v)));
      token = select(tokens, 1, t).contiguous_copy();
    }
    CHECK(worst <= 1e-12);
    CHECK_THROWS_WITH(m->next(*cache, token), Catch::Contains("after all 6 positions"));
  }
}

TEST_CASE("log_prob_stepwise: L conditionals one step at a time add up to the one-pass log p(x), words to their end", "[sequence]") {
  Generator gen(6);
  const Tensor words = data::encode_words({"abc", "b", "cab"}, 5);  // letters a, b, c; 0 ends a word, then padding
  for (const std::string family : {"lstm", "gru", "transformer"}) {
    INFO(family);
    auto m = small(family, TokenInput::Words, 27, 5, gen);
    m->to(DType::Float64);
    m->eval();
    const Tensor one_pass = m->log_prob(words), cached = m->log_prob_stepwise(words), prefix = m->log_prob_stepwise(words, true);
    REQUIRE(cached.shape() == Shape{3});
    for (int64_t r = 0; r < 3; ++r) {
      CHECK(cached.at(r) == Approx(one_pass.at(r)).epsilon(0).margin(1e-12));
      CHECK(prefix.at(r) == Approx(one_pass.at(r)).epsilon(0).margin(1e-12));
    }
    // what follows a word's end is not part of it: other tokens there change neither route
    const Tensor garbage = Tensor::from_indices({2, 0, 7, 9, 1}, {1, 5});  // "b", its end, then 7, 9, 1
    CHECK(m->log_prob(garbage).at(0) == Approx(one_pass.at(1)).epsilon(0).margin(1e-12));
    CHECK(m->log_prob_stepwise(garbage).at(0) == Approx(one_pass.at(1)).epsilon(0).margin(1e-12));
  }
}

TEST_CASE("causal_mask: -inf exactly where a key comes after its query, for the last queries of a longer prefix", "[sequence]") {
  const double inf = std::numeric_limits<double>::infinity();
  const Tensor square = causal_mask(3, 3, DType::Float64);  // queries at positions 0, 1, 2
  const std::vector<double> want = {0, -inf, -inf, 0, 0, -inf, 0, 0, 0};
  for (int64_t i = 0; i < 9; ++i) CHECK(square.at(i) == want[static_cast<size_t>(i)]);
  const Tensor last = causal_mask(2, 4, DType::Float32);  // queries at positions 2 and 3 of 4 keys
  CHECK(last.dtype() == DType::Float32);
  const std::vector<double> want_last = {0, 0, 0, -inf, 0, 0, 0, 0};
  for (int64_t i = 0; i < 8; ++i) CHECK(last.at(i) == want_last[static_cast<size_t>(i)]);
  CHECK_THROWS_WITH(causal_mask(5, 4, DType::Float64), Catch::Contains("got 5 and 4"));
}

TEST_CASE("causal attention: rows sum to 1, exactly zero on the future, a softmax written out per row", "[sequence]") {
  Generator gen(6);
  const Tensor q = gen.normal({1, 1, 4, 3}, 0, 1, DType::Float64), k = gen.normal({1, 1, 4, 3}, 0, 1, DType::Float64),
               v = gen.normal({1, 1, 4, 3}, 0, 1, DType::Float64);
  Tensor a;
  const Tensor out = causal_attention(q, k, v, &a);
  for (int64_t i = 0; i < 4; ++i) {
    double s[4], z = 0;
    for (int64_t j = 0; j <= i; ++j) {
      double dot = 0;
      for (int64_t d = 0; d < 3; ++d) dot += q.at(i * 3 + d) * k.at(j * 3 + d);
      z += s[j] = std::exp(dot / std::sqrt(3.0));
    }
    for (int64_t j = 0; j < 4; ++j) {
      if (j > i) CHECK(a.at(i * 4 + j) == 0.0);
      else CHECK(a.at(i * 4 + j) == Approx(s[j] / z).epsilon(1e-13));
    }
    for (int64_t d = 0; d < 3; ++d) {
      double o = 0;
      for (int64_t j = 0; j <= i; ++j) o += s[j] / z * v.at(j * 3 + d);
      CHECK(out.at(i * 3 + d) == Approx(o).epsilon(1e-13));
    }
  }
  CHECK(gradcheck([](const std::vector<Tensor>& x) { return causal_attention(x[0], x[1], x[2]); }, {q, k, v}).ok);
  CHECK_THROWS_WITH(causal_attention(q, slice(k, 3, 0, 2), v), Catch::Contains("q [1, 1, 4, 3]"));
}

TEST_CASE("PixelRNN: skew and unskew, and the recurrences' sequential steps", "[sequence][pixelrnn]") {
  Generator gen(7);
  const Tensor x = gen.normal({2, 3, 4, 5});
  const Tensor s = skew(x);
  CHECK(s.shape() == Shape{2, 3, 4, 8});
  CHECK(s.at(((1 * 3 + 2) * 4 + 2) * 8 + 2 + 3) == x.at(((1 * 3 + 2) * 4 + 2) * 5 + 3));  // (r 2, c 3) -> column 5
  CHECK(s.at(((0 * 3 + 0) * 4 + 3) * 8 + 0) == 0.0f);
  const Tensor back = unskew(s, 5);
  for (int64_t i = 0; i < x.numel(); ++i) REQUIRE(back.at(i) == x.at(i));
  for (const int64_t n : {4, 8}) {
    PixelRNNOptions o;
    o.levels = 2, o.height = n, o.width = n, o.channels = 4, o.hidden = 3, o.layers = 1;
    o.kind = "diagonal";
    PixelRNN d(o, gen);
    o.kind = "row";
    PixelRNN r(o, gen);
    d.log_prob(Tensor::zeros({1, 1, n, n})), r.log_prob(Tensor::zeros({1, 1, n, n}));
    CHECK(d.sequential_steps() == 2 * n - 1);
    CHECK(r.sequential_steps() == n);
  }
}

TEST_CASE("every_sequence: V^L strings, or the distinct words", "[sequence]") {
  CHECK(every_sequence(3, 4, TokenInput::Levels).size(0) == 81);
  // words of up to 4 tokens over 2 letters and the end: ended at position k (2^k) or never (2^4)
  CHECK(every_sequence(3, 4, TokenInput::Words).size(0) == 1 + 2 + 4 + 8 + 16);
  const Tensor w = every_sequence(3, 2, TokenInput::Words);  // 00, 10, 11, 12, 20, 21, 22
  CHECK(w.size(0) == 7);
  CHECK(w.data<int64_t>()[2] == 1);
  CHECK(w.data<int64_t>()[3] == 0);
}

TEST_CASE("sampling: top-k keeps the k likeliest, the temperature reshapes the frequencies", "[sequence]") {
  Generator gen(8);
  const Tensor logits = Tensor::from_vector(std::vector<double>{0.0, 1.0, 2.0, -1.0}, {1, 4});
  for (int i = 0; i < 50; ++i) CHECK(sample_tokens(logits, {1.0, 1}, gen).data<int64_t>()[0] == 2);
  for (int i = 0; i < 50; ++i) {
    const int64_t t = sample_tokens(logits, {1.0, 2}, gen).data<int64_t>()[0];
    CHECK((t == 1 || t == 2));
  }
  // at temperature T the frequencies are softmax(l / T): counted over 20,000 draws
  const double T = 2.0;
  const int n = 20000;
  std::vector<int> count(4, 0);
  const Tensor many = expand(logits, {n, 4}).contiguous_copy();
  const Tensor draws = sample_tokens(many, {T, 0}, gen);
  for (int i = 0; i < n; ++i) ++count[static_cast<size_t>(draws.data<int64_t>()[i])];
  double z = 0;
  for (int v = 0; v < 4; ++v) z += std::exp(logits.at(v) / T);
  for (int v = 0; v < 4; ++v) {
    const double p = std::exp(logits.at(v) / T) / z, se = std::sqrt(p * (1 - p) / n);
    CHECK(std::abs(count[static_cast<size_t>(v)] / double(n) - p) <= 5 * se);
  }
  CHECK_THROWS_WITH(sample_tokens(logits, {0.0, 0}, gen), Catch::Contains("temperature must be positive"));
}

TEST_CASE("words: the list's lowercase words as tokens, the end token counted once", "[sequence][data]") {
  const auto w = data::parse_word_list("apple\nBob\nit's\ncafé\nzebra\r\n\nq\n");
  REQUIRE(w == std::vector<std::string>{"apple", "zebra", "q"});
  const Tensor t = data::encode_words(w, 8);
  CHECK(t.shape() == Shape{3, 8});
  CHECK(t.at(0) == 1.0f);   // 'a'
  CHECK(t.at(5) == 0.0f);   // the end
  CHECK(data::decode_word(t, 1) == "zebra");
  CHECK_THROWS_WITH(data::encode_words({"abcdefgh"}, 8), Catch::Contains("at most 7"));
  Generator gen(9);
  auto m = small("lstm", TokenInput::Words, 27, 8, gen);
  const Tensor counted = m->counted(m->tokens(t));
  double n = 0;
  for (int64_t i = 0; i < counted.numel(); ++i) n += counted.at(i);
  CHECK(n == 6 + 6 + 2);  // each word's letters and its end
  // bits per dimension over words divides by those counted tokens, not by the padded length 8
  CHECK(m->values_per_example(t) == Approx((6.0 + 6 + 2) / 3).epsilon(1e-15));
  m->eval();
  const train::Evaluation ev = train::evaluate(*m, t);
  CHECK(ev.bits_per_dim == Approx(ev.nll_nats / ((6.0 + 6 + 2) / 3) / std::log(2.0)).epsilon(1e-12));
  auto levels = small("lstm", TokenInput::Levels, 4, 8, gen);
  CHECK(levels->values_per_example(Tensor::zeros({2, 8})) == 8.0);
  CHECK_THROWS_WITH(m->tokens(Tensor::full({1, 8}, 27.0)), Catch::Contains("not one of the 27 token ids"));
}

TEST_CASE("sequence models in the registry: built from their configs, which they report back", "[sequence]") {
  Generator gen(10);
  for (const auto& [model, config] : std::vector<std::pair<std::string, std::string>>{
           {"rnn", R"({"vocab": 27, "length": 24, "input": "words", "cell": "gru", "embedding": 8, "hidden": 16, "layers": 1, "dropout": 0.0})"},
           {"rnn", R"({"vocab": 5, "length": 30, "input": "levels", "cell": "lstm", "embedding": 4, "hidden": 8, "layers": 2, "dropout": 0.0, "bptt": 10})"},
           {"transformer", R"({"vocab": 17, "length": 64, "input": "levels", "width": 16, "layers": 1, "heads": 2, "dropout": 0.1, "positions": "learned", "tie_weights": true})"},
           {"pixelrnn", R"({"kind": "row", "levels": 17, "height": 8, "width": 8, "channels": 8, "hidden": 8, "layers": 1})"}}) {
    auto m = make_model(model, config, gen);
    CHECK(nlohmann::json::parse(m->config_json()) == nlohmann::json::parse(config));
  }
  CHECK_THROWS_WITH(make_model("transformer", R"({"vocab": 17, "length": 64, "input": "levels", "width": 10, "layers": 1, "heads": 4, "dropout": 0, "positions": "learned", "tie_weights": false})", gen),
                    Catch::Contains("multiple of the heads"));
}

TEST_CASE("words: wamerican's list splits 90 / 5 / 5, disjoint, the same on every run", "[sequence][data]") {
  data::WordSet train, validation, test;
  try {
    train = data::words(data::Split::Train), validation = data::words(data::Split::Validation), test = data::words(data::Split::Test);
  } catch (const data::DataNotFound& e) {
    WARN("skipped: " << e.what());
    return;
  }
  CHECK(train.size() + validation.size() + test.size() == 63875);  // the lowercase a-z lines of wamerican 2020.12.07
  CHECK(validation.size() == 63875 / 20);
  std::set<std::string> seen(train.words.begin(), train.words.end());
  for (const auto& w : validation.words) CHECK(seen.insert(w).second);
  for (const auto& w : test.words) CHECK(seen.insert(w).second);
  CHECK(data::words(data::Split::Test).words == test.words);
  CHECK(data::decode_word(test.tokens, 0) == test.words[0]);
}

TEST_CASE("lstm_sequence, the fused LSTM layer: the cell step by step, gradcheck and gradgradcheck", "[sequence][rnn][gradcheck]") {
  Generator gen(11);
  LSTMCell cell(3, 4, gen);
  cell.to(DType::Float64);
  const int64_t N = 2, L = 5;
  const Tensor x = gen.normal({N, L, 3}, 0, 1, DType::Float64), h0 = gen.normal({N, 4}, 0, 0.5, DType::Float64),
               c0 = gen.normal({N, 4}, 0, 0.5, DType::Float64);
  const Tensor fused = lstm_sequence(linear(x, cell.weight_ih, cell.bias_ih) + cell.bias_hh, h0, c0, cell.weight_hh);
  Tensor h = h0, c = c0;
  double worst = 0;
  for (int64_t t = 0; t < L; ++t) {
    std::tie(h, c) = cell.forward(select(x, 1, t), h, c);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t u = 0; u < 4; ++u) worst = std::max(worst, std::abs(h.at(n * 4 + u) - fused.at((n * L + t) * 4 + u)));
  }
  CHECK(worst <= 1e-14);
  // gradients of the raw-loop backward (and, under create_graph, of the engine-op one)
  const std::vector<Tensor> in = {gen.normal({N, L, 16}, 0, 1, DType::Float64), h0, c0, gen.normal({16, 4}, 0, 0.5, DType::Float64)};
  auto f = [](const std::vector<Tensor>& v) { return lstm_sequence(v[0], v[1], v[2], v[3]); };
  CHECK(gradcheck(f, in).ok);
  CHECK(gradgradcheck(f, in).ok);
  // the two backward routes agree: raw loops (no graph) vs engine ops (create_graph)
  std::vector<Tensor> leaves;
  for (const Tensor& t : in) leaves.push_back(t.detach().contiguous_copy().set_requires_grad(true));
  const Tensor gout = gen.normal({N, L, 4}, 0, 1, DType::Float64);
  const auto fast = dgm::grad({f(leaves)}, leaves, {gout});
  const auto slow = dgm::grad({f(leaves)}, leaves, {gout}, false, true);
  for (size_t k = 0; k < leaves.size(); ++k)
    for (int64_t e = 0; e < fast[k].numel(); ++e) CHECK(fast[k].at(e) == Approx(slow[k].at(e)).margin(1e-13));
  CHECK_THROWS_WITH(lstm_sequence(in[0], in[1], in[2], gen.normal({12, 4}, 0, 1, DType::Float64)), Catch::Contains("W_hh [12, 4]"));
  // float32 (where the CPU has AVX-512, W_hh packed once for all steps: autograd/packed_gemm.cpp)
  // against float64 (through BLAS), at a batch and width that are not multiples of its tiles
  const int64_t n = 11, l = 6, hd = 40;
  const std::vector<Tensor> raw = {gen.normal({n, l, 4 * hd}, 0, 1, DType::Float64), gen.normal({n, hd}, 0, 0.5, DType::Float64),
                                   gen.normal({n, hd}, 0, 0.5, DType::Float64), gen.normal({4 * hd, hd}, 0, 0.3, DType::Float64)};
  std::vector<Tensor> p64, p32;
  for (const Tensor& t : raw) {
    p64.push_back(t.detach().contiguous_copy().set_requires_grad(true));
    p32.push_back(t.detach().to(DType::Float32).set_requires_grad(true));
  }
  const Tensor go = gen.normal({n, l, hd}, 0, 1, DType::Float64);
  const Tensor y64 = f(p64), y32 = f(p32);
  for (int64_t e = 0; e < y64.numel(); ++e) REQUIRE(y32.at(e) == Approx(y64.at(e)).margin(1e-5));
  const auto g64 = dgm::grad({y64}, p64, {go}), g32 = dgm::grad({y32}, p32, {go.to(DType::Float32)});
  for (size_t k = 0; k < p64.size(); ++k)
    for (int64_t e = 0; e < g64[k].numel(); ++e) REQUIRE(g32[k].at(e) == Approx(g64[k].at(e)).margin(1e-4));
}

TEST_CASE("truncated BPTT: the same log p(x), and no gradient reaches back past the start of a chunk", "[sequence][rnn]") {
  const Tensor tokens = Tensor::from_indices({3, 1, 0, 2, 2, 1, 0, 0, 1, 2, 2, 3, 1, 0, 3, 3, 2, 1}, {2, 9});
  for (const std::string cell : {"lstm", "gru"}) {
    INFO(cell);
    RNNOptions o;
    o.vocab = 4, o.length = 9, o.input = TokenInput::Levels, o.cell = cell, o.embedding = 3, o.hidden = 5, o.layers = 2;
    Generator ga(21), gb(21);  // the same seed: the same parameters
    RNNLM full(o, ga);
    o.bptt = 4;  // chunks [0, 4), [4, 8), [8, 9)
    RNNLM truncated(o, gb);
    full.to(DType::Float64), truncated.to(DType::Float64);
    const Tensor in_f = full.embed_inputs(tokens).detach().set_requires_grad(true);
    const Tensor in_t = truncated.embed_inputs(tokens).detach().set_requires_grad(true);
    const Tensor lf = full.logits_from_inputs(in_f), lt = truncated.logits_from_inputs(in_t);
    for (int64_t e = 0; e < lf.numel(); ++e) REQUIRE(lt.at(e) == Approx(lf.at(e)).epsilon(0).margin(1e-14));
    // d (the logits at position 6) / d e_j, per input position j
    sum(select(lf, 1, 6)).backward();
    sum(select(lt, 1, 6)).backward();
    auto norm_at = [&](const Tensor& g, int64_t j) {
      double s = 0;
      for (int64_t n = 0; n < 2; ++n)
        for (int64_t b = 0; b < 3; ++b) s += std::pow(g.at((n * 9 + j) * 3 + b), 2);
      return std::sqrt(s);
    };
    for (int64_t j = 0; j < 4; ++j) {  // before the chunk of position 6: the full model's gradient, the truncated one's none
      CHECK(norm_at(in_f.grad(), j) > 1e-6);
      CHECK(norm_at(in_t.grad(), j) == 0.0);
    }
    for (int64_t j = 4; j < 9; ++j)  // inside it (and the future, zero in both): every path stays within the chunk
      for (int64_t n = 0; n < 2; ++n)
        for (int64_t b = 0; b < 3; ++b) CHECK(in_t.grad().at((n * 9 + j) * 3 + b) == Approx(in_f.grad().at((n * 9 + j) * 3 + b)).epsilon(0).margin(1e-13));
  }
  RNNOptions bad;
  bad.bptt = -1;
  Generator g(1);
  CHECK_THROWS_WITH(RNNLM(bad, g), Catch::Contains("bptt must be 0"));
}

TEST_CASE("causal_self_attention, the fused op: the engine-op composition, gradcheck and gradgradcheck", "[sequence][transformer][gradcheck]") {
  Generator gen(12);
  const int64_t N = 2, T = 5, H = 2, d = 3, C = H * d;
  const Tensor qkv = gen.normal({N, T, 3 * C}, 0, 1, DType::Float64);
  // route 2: heads split by engine ops, models::causal_attention (what the KV cache runs)
  const Tensor split = permute(reshape(qkv, {N, T, 3, H, d}), {2, 0, 3, 1, 4});
  Tensor a_ref, a_fused;
  const Tensor ref = reshape(permute(causal_attention(select(split, 0, 0), select(split, 0, 1), select(split, 0, 2), &a_ref), {0, 2, 1, 3}),
                             {N, T, C});
  const Tensor fused = causal_self_attention(qkv, H, &a_fused);
  REQUIRE(fused.shape() == Shape{N, T, C});
  REQUIRE(a_fused.shape() == Shape{N, H, T, T});
  double worst = 0, future = 0;
  for (int64_t e = 0; e < fused.numel(); ++e) worst = std::max(worst, std::abs(fused.at(e) - ref.at(e)));
  for (int64_t e = 0; e < a_fused.numel(); ++e) {
    worst = std::max(worst, std::abs(a_fused.at(e) - a_ref.at(e)));
    if ((e % T) > (e / T) % T) future = std::max(future, std::abs(a_fused.at(e)));
  }
  CHECK(worst <= 1e-14);
  CHECK(future == 0.0);
  auto f = [&](const std::vector<Tensor>& v) { return causal_self_attention(v[0], H); };
  CHECK(gradcheck(f, {qkv}).ok);
  CHECK(gradgradcheck(f, {qkv}).ok);
  // the raw backward (no graph) against the engine-op one (create_graph) and against the composition's
  const Tensor leaf = qkv.detach().contiguous_copy().set_requires_grad(true), gout = gen.normal({N, T, C}, 0, 1, DType::Float64);
  const auto fast = dgm::grad({f({leaf})}, {leaf}, {gout});
  const auto slow = dgm::grad({f({leaf})}, {leaf}, {gout}, false, true);
  const Tensor s2 = permute(reshape(leaf, {N, T, 3, H, d}), {2, 0, 3, 1, 4});
  const auto comp = dgm::grad({reshape(permute(causal_attention(select(s2, 0, 0), select(s2, 0, 1), select(s2, 0, 2)), {0, 2, 1, 3}), {N, T, C})},
                              {leaf}, {gout});
  for (int64_t e = 0; e < leaf.numel(); ++e) {
    CHECK(fast[0].at(e) == Approx(slow[0].at(e)).margin(1e-13));
    CHECK(fast[0].at(e) == Approx(comp[0].at(e)).margin(1e-13));
  }
  CHECK_THROWS_WITH(causal_self_attention(gen.normal({2, 5, 10}, 0, 1, DType::Float64), 2), Catch::Contains("[2, 5, 10]"));
}

TEST_CASE("class-conditional Transformer: a class token; p(x | y) sums to 1 for every class, p(x) is their mixture, the KV cache agrees",
          "[sequence][transformer][conditional]") {
  Generator gen(21);
  TransformerOptions o;
  o.vocab = 3, o.length = 3, o.width = 8, o.layers = 2, o.heads = 2, o.dropout = 0, o.classes = 4;
  Transformer m(o, gen);
  m.to(DType::Float64);
  CHECK(m.classes() == 4);
  const Tensor all = every_sequence(3, 3, TokenInput::Levels);  // 27 sequences
  const int64_t n = all.size(0);
  std::vector<double> p_given(static_cast<size_t>(4 * n));
  for (int64_t y = 0; y < 4; ++y) {
    const Tensor lp = m.log_prob_given(all, Tensor::full({n}, static_cast<double>(y), DType::Int64));
    double total = 0;
    for (int64_t i = 0; i < n; ++i) total += p_given[static_cast<size_t>(y * n + i)] = std::exp(lp.at(i));
    INFO("class " << y);
    CHECK(total == Approx(1.0).epsilon(1e-12));
  }
  // the classes differ (each class token is its own embedding row), and p(x) = (1/4) sum_y p(x | y)
  CHECK(std::abs(p_given[0] - p_given[static_cast<size_t>(n)]) > 1e-6);
  const Tensor mix = m.log_prob(all);
  for (int64_t i = 0; i < n; ++i) {
    double p = 0;
    for (int64_t y = 0; y < 4; ++y) p += p_given[static_cast<size_t>(y * n + i)] / 4;
    CHECK(mix.at(i) == Approx(std::log(p)).epsilon(1e-12));
  }
  // one pass vs one token at a time, through the KV cache and through the whole prefix, given the labels
  const Tensor y = gen.randint(Shape{n}, 0, 4);
  const Tensor one = m.log_prob_given(all, y);
  const Tensor cached = m.log_prob_stepwise(all, false, y), prefix = m.log_prob_stepwise(all, true, y);
  for (int64_t i = 0; i < n; ++i) {
    CHECK(cached.at(i) == Approx(one.at(i)).epsilon(1e-12));
    CHECK(prefix.at(i) == Approx(one.at(i)).epsilon(1e-12));
  }
  // the config round-trips, and an unconditional config stays without the field
  CHECK(nlohmann::json::parse(m.config_json()).at("classes") == 4);
  o.classes = 0;
  CHECK_FALSE(nlohmann::json::parse(Transformer(o, gen).config_json()).contains("classes"));
}

TEST_CASE("class-conditional Transformer: samples given y follow p(x | y) (every sequence counted), labels checked", "[sequence][transformer][conditional]") {
  Generator gen(22);
  TransformerOptions o;
  o.vocab = 2, o.length = 2, o.width = 8, o.layers = 1, o.heads = 2, o.dropout = 0, o.classes = 2;
  Transformer m(o, gen);
  {
    NoGradGuard ng;  // a larger spread than the 0.02 init, so the classes differ clearly
    for (Tensor& p : m.parameters()) p.copy_(p + gen.normal(p.shape(), 0, 0.5));
  }
  const Tensor all = every_sequence(2, 2, TokenInput::Levels);  // 00 01 10 11
  const int64_t draws = 20000;
  for (int64_t y = 0; y < 2; ++y) {
    INFO("class " << y);
    const Tensor labels = Tensor::full({draws}, static_cast<double>(y), DType::Int64);
    const Tensor s = m.sample_token_ids(draws, gen, SampleOptions{}, labels);
    std::vector<int64_t> count(4, 0);
    for (int64_t i = 0; i < draws; ++i) ++count[static_cast<size_t>(2 * s.data<int64_t>()[2 * i] + s.data<int64_t>()[2 * i + 1])];
    NoGradGuard ng;
    const Tensor lp = m.log_prob_given(all, Tensor::full({4}, static_cast<double>(y), DType::Int64));
    for (int64_t k = 0; k < 4; ++k) {
      const double p = std::exp(lp.at(k)), se = std::sqrt(p * (1 - p) / draws);
      CHECK(std::abs(static_cast<double>(count[static_cast<size_t>(k)]) / draws - p) <= 4 * se);
    }
  }
  CHECK_THROWS_WITH(m.log_prob_given(all, Tensor::from_indices({0, 2, 1, 0}, {4})), Catch::Contains("label 2 of example 1"));
  CHECK_THROWS_WITH(m.logits(all), Catch::Contains("needs labels"));
  auto plain = small("lstm", TokenInput::Levels, 2, 2, gen);
  CHECK_THROWS_WITH(plain->logits(all, Tensor::from_indices({0, 1, 1, 0}, {4})), Catch::Contains("unconditional"));
}
