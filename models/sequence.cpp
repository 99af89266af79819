// dgm/models/sequence.cpp
#include "models/sequence.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "autograd/graph.h"
#include "models/conditional.h"

namespace dgm::models {

TokenInput token_input(const std::string& name) {
  if (name == "levels") return TokenInput::Levels;
  if (name == "words") return TokenInput::Words;
  throw Error("sequence model: unknown input '" + name + "' (levels or words)");
}

std::string token_input_name(TokenInput input) { return input == TokenInput::Levels ? "levels" : "words"; }

Tensor every_sequence(int64_t vocab, int64_t length, TokenInput input) {
  int64_t total = 1;
  for (int64_t i = 0; i < length; ++i) {
    total *= vocab;
    if (total > 10000000) throw Error("every_sequence: " + std::to_string(vocab) + "^" + std::to_string(length) + " sequences are too many");
  }
  std::vector<int64_t> out;
  int64_t count = 0;
  std::vector<int64_t> s(static_cast<size_t>(length));
  for (int64_t code = 0; code < total; ++code) {
    int64_t c = code;
    for (int64_t i = length - 1; i >= 0; --i) s[static_cast<size_t>(i)] = c % vocab, c /= vocab;
    bool canonical = true, ended = false;
    for (int64_t v : s) {
      if (ended && v != 0) canonical = false;
      if (v == 0) ended = true;
    }
    if (input == TokenInput::Words && !canonical) continue;
    out.insert(out.end(), s.begin(), s.end());
    ++count;
  }
  return Tensor::from_indices(out, {count, length});
}

Tensor sample_tokens(const Tensor& logits, const SampleOptions& o, Generator& gen) {
  if (logits.dim() != 2) throw Error("sample_tokens: logits must be [n, V], got " + logits.shape().str());
  if (!(o.temperature > 0)) throw Error("sample_tokens: the temperature must be positive, got " + std::to_string(o.temperature));
  const Tensor l = logits.to(DType::Float64).contiguous_copy();
  const int64_t n = l.size(0), V = l.size(1), k = o.top_k > 0 ? std::min(o.top_k, V) : V;
  std::vector<int64_t> out(static_cast<size_t>(n));
  std::vector<double> p(static_cast<size_t>(V));
  std::vector<int64_t> order(static_cast<size_t>(V));
  for (int64_t r = 0; r < n; ++r) {
    const double* row = l.data<double>() + r * V;
    std::iota(order.begin(), order.end(), 0);
    // the k largest logits (ties: the smaller index first, so a draw is reproducible)
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [&](int64_t a, int64_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
    const double top = row[order[0]];
    double total = 0;
    for (int64_t j = 0; j < k; ++j) total += p[static_cast<size_t>(j)] = std::exp((row[order[static_cast<size_t>(j)]] - top) / o.temperature);
    double u = gen.uniform01() * total;
    int64_t pick = order[static_cast<size_t>(k - 1)];
    for (int64_t j = 0; j < k; ++j) {
      u -= p[static_cast<size_t>(j)];
      if (u < 0) {
        pick = order[static_cast<size_t>(j)];
        break;
      }
    }
    out[static_cast<size_t>(r)] = pick;
  }
  return Tensor::from_indices(out, {n});
}

SequenceModel::SequenceModel(int64_t vocab, int64_t length, TokenInput input, int64_t classes)
    : example_shape_{length}, vocab_(vocab), length_(length), input_(input), classes_(classes) {
  if (vocab < 2) throw Error("sequence model: the vocabulary needs at least 2 tokens, got " + std::to_string(vocab));
  if (length < 1) throw Error("sequence model: the length must be positive, got " + std::to_string(length));
  if (classes < 0) throw Error("sequence model: classes must be >= 0 (0: unconditional), got " + std::to_string(classes));
}

Tensor SequenceModel::tokens(const Tensor& x) const {
  if (x.dtype() == DType::Int64) {
    if (x.dim() != 2 || x.size(1) != length_)
      throw Error(name() + ": tokens must be [N, " + std::to_string(length_) + "], got " + x.shape().str());
    for (int64_t i = 0; i < x.numel(); ++i)
      if (x.data<int64_t>()[i] < 0 || x.data<int64_t>()[i] >= vocab_)
        throw Error(name() + ": token " + std::to_string(x.data<int64_t>()[i]) + " is outside the vocabulary of " + std::to_string(vocab_));
    return x;
  }
  const int64_t n = x.dim() > 0 ? x.size(0) : 0;
  if (x.dim() < 2 || x.numel() != n * length_)
    throw Error(name() + ": each example must hold " + std::to_string(length_) + " tokens, got a batch " + x.shape().str());
  const Tensor v = x.detach().to(DType::Float64).contiguous_copy();
  std::vector<int64_t> t(static_cast<size_t>(n * length_));
  const double scale = input_ == TokenInput::Levels ? static_cast<double>(vocab_ - 1) : 1.0;
  for (int64_t i = 0; i < n * length_; ++i) {
    const double s = v.data<double>()[i] * scale, r = std::round(s);
    if (!(std::abs(s - r) < 1e-3) || r < 0 || r >= static_cast<double>(vocab_))
      throw Error(name() + ": value " + std::to_string(v.data<double>()[i]) + " of example " + std::to_string(i / length_) +
                  " is not one of the " + std::to_string(vocab_) + (input_ == TokenInput::Levels ? " levels" : " token ids"));
    t[static_cast<size_t>(i)] = static_cast<int64_t>(r);
  }
  return Tensor::from_indices(t, {n, length_});
}

Tensor SequenceModel::examples(const Tensor& tokens) const {
  const Tensor f = tokens.to(DType::Float32);
  Shape shape{tokens.size(0)};
  for (int64_t d : example_shape_) shape.push_back(d);
  return reshape(input_ == TokenInput::Levels ? f / static_cast<double>(vocab_ - 1) : f, shape);
}

Tensor SequenceModel::counted(const Tensor& tokens) const {
  const int64_t n = tokens.size(0), L = tokens.size(1);
  std::vector<float> m(static_cast<size_t>(n * L), 1.0f);
  if (input_ == TokenInput::Words)
    for (int64_t r = 0; r < n; ++r) {
      bool ended = false;  // the end token itself counts; what follows it does not
      for (int64_t t = 0; t < L; ++t) {
        m[static_cast<size_t>(r * L + t)] = ended ? 0.0f : 1.0f;
        if (tokens.data<int64_t>()[r * L + t] == 0) ended = true;
      }
    }
  return Tensor::from_vector(m, {n, L});
}

double SequenceModel::values_per_example(const Tensor& x) const {
  const Tensor c = counted(tokens(x));
  double n = 0;
  for (int64_t i = 0; i < c.numel(); ++i) n += c.at(i);
  return n / static_cast<double>(x.size(0));
}

Tensor SequenceModel::start_tokens(int64_t n, const Tensor& y) const {
  if (classes_ > 0 && !y.defined())
    throw Error(name() + ": a class-conditional model (" + std::to_string(classes_) + " classes) needs labels");
  if (classes_ == 0 && y.defined()) throw Error(name() + ": labels given to an unconditional model (classes 0)");
  std::vector<int64_t> s(static_cast<size_t>(n), bos());
  if (y.defined()) {
    check_labels(y, n, classes_, name());
    for (int64_t r = 0; r < n; ++r) s[static_cast<size_t>(r)] = bos() + 1 + static_cast<int64_t>(y.at(r));  // the class token
  }
  return Tensor::from_indices(s, {n});
}

Tensor SequenceModel::shifted(const Tensor& tokens, const Tensor& y) const {
  const int64_t n = tokens.size(0), L = tokens.size(1);
  const Tensor first = start_tokens(n, y);
  std::vector<int64_t> s(static_cast<size_t>(n * L));
  for (int64_t r = 0; r < n; ++r) {
    s[static_cast<size_t>(r * L)] = first.data<int64_t>()[r];
    for (int64_t t = 1; t < L; ++t) s[static_cast<size_t>(r * L + t)] = tokens.data<int64_t>()[r * L + t - 1];
  }
  return Tensor::from_indices(s, {n, L});
}

Tensor SequenceModel::conditionals(const Tensor& tokens, const Tensor& y) {
  const Tensor lp = log_softmax(logits(tokens, y), 2);                // [N, L, V]
  const Tensor picked = squeeze(gather(lp, 2, unsqueeze(tokens, 2)), 2);  // log p(x_t | x_<t), [N, L]
  return input_ == TokenInput::Words ? picked * counted(tokens).to(picked.dtype()) : picked;  // levels: every position counts
}

Tensor SequenceModel::log_prob(const Tensor& x) {
  if (classes_ > 0) return uniform_mixture_log_prob(*this, x);
  return sum(conditionals(tokens(x)), {1});
}

Tensor SequenceModel::log_prob_given(const Tensor& x, const Tensor& y) { return sum(conditionals(tokens(x), y), {1}); }

Tensor SequenceModel::sample_given(const Tensor& y, Generator& gen) {
  return examples(sample_token_ids(y.numel(), gen, SampleOptions{}, y));
}

// ---------------------------------------------------------------- one token at a time

std::unique_ptr<SequenceModel::Cache> SequenceModel::start(int64_t n) {
  auto c = std::make_unique<Cache>();
  c->n = n;
  return c;
}

// The default: the whole prefix again (a model that reads prefixes gets the t + 1 inputs read so far;
// another gets them padded to L, and the logits at t do not see the padding), and the logits at the
// last position read.
Tensor SequenceModel::next(Cache& cache, const Tensor& token) {
  const int64_t n = cache.n, L = length_, t = cache.position;
  if (t >= L) throw Error(name() + ": next() after all " + std::to_string(L) + " positions");
  // prefix holds the tokens read after BOS; the logits at t read BOS, x_0 .. x_{t-1}
  if (t > 0)
    for (int64_t r = 0; r < n; ++r) cache.prefix.push_back(token.data<int64_t>()[r]);
  ++cache.position;
  const int64_t width = reads_prefixes() ? t + 1 : L;  // tokens x_0 .. x_{width-1}; only x_<t are read at t
  std::vector<int64_t> full(static_cast<size_t>(n * width), 0);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < t; ++j) full[static_cast<size_t>(r * width + j)] = cache.prefix[static_cast<size_t>(j * n + r)];
  const Tensor l = logits(Tensor::from_indices(full, {n, width}), cache.labels);  // [n, width, V]
  return select(l, 1, t);
}

Tensor SequenceModel::log_prob_stepwise(const Tensor& x, bool prefix_only, const Tensor& y) {
  NoGradGuard ng;
  const Tensor tokens = this->tokens(x), count = counted(tokens);
  const int64_t N = tokens.size(0), L = tokens.size(1), V = vocab_;
  std::vector<double> total(static_cast<size_t>(N), 0.0);
  auto cache = prefix_only ? SequenceModel::start(N) : start(N);
  cache->labels = y;
  Tensor token = start_tokens(N, y);
  for (int64_t t = 0; t < L; ++t) {
    const Tensor l = prefix_only ? SequenceModel::next(*cache, token) : next(*cache, token);
    const Tensor lp = log_softmax(l.to(DType::Float64), 1);  // [N, V]: log p(x_t = v | x_<t)
    token = select(tokens, 1, t).contiguous_copy();
    for (int64_t n = 0; n < N; ++n) total[static_cast<size_t>(n)] += count.at(n * L + t) * lp.at(n * V + token.data<int64_t>()[n]);
  }
  return Tensor::from_vector(total, {N});
}

Tensor SequenceModel::sample_token_ids(int64_t n, Generator& gen, const SampleOptions& o, const Tensor& y) {
  NoGradGuard ng;
  // a class-conditional model asked for samples without labels: a class for each, uniformly
  const Tensor labels = classes_ > 0 && !y.defined() ? gen.randint(Shape{n}, 0, classes_) : y;
  Tensor token = start_tokens(n, labels);
  const bool was_training = is_training();
  eval();
  auto cache = start(n);
  cache->labels = labels;
  std::vector<int64_t> out(static_cast<size_t>(n * length_), 0);
  std::vector<bool> ended(static_cast<size_t>(n), false);
  for (int64_t t = 0; t < length_; ++t) {
    token = sample_tokens(next(*cache, token), o, gen);
    for (int64_t r = 0; r < n; ++r) {
      int64_t& v = token.data<int64_t>()[r];
      if (ended[static_cast<size_t>(r)]) v = 0;  // a finished word is padded with the end token
      out[static_cast<size_t>(r * length_ + t)] = v;
      if (input_ == TokenInput::Words && v == 0) ended[static_cast<size_t>(r)] = true;
    }
  }
  train(was_training);
  return Tensor::from_indices(out, {n, length_});
}

Tensor SequenceModel::sample(int64_t n, Generator& gen, const SampleOptions& o) {
  return examples(sample_token_ids(n, gen, o));
}

}  // namespace dgm::models
