// dgm/models/rnn.cpp
#include "models/rnn.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "autograd/graph.h"

namespace dgm::models {

std::pair<Tensor, Tensor> lstm_update(const Tensor& gates, const Tensor& c, int64_t axis) {
  const int64_t H = gates.size(axis) / 4;
  const Tensor i = sigmoid(slice(gates, axis, 0, H)), f = sigmoid(slice(gates, axis, H, 2 * H));
  const Tensor g = tanh(slice(gates, axis, 2 * H, 3 * H)), o = sigmoid(slice(gates, axis, 3 * H, 4 * H));
  const Tensor c2 = f * c + i * g;
  return {o * tanh(c2), c2};
}

RecurrentCell::RecurrentCell(const char* name, int64_t gates, int64_t input, int64_t hidden, Generator& gen) : hidden_(hidden) {
  if (input <= 0 || hidden <= 0)
    throw Error(std::string(name) + ": sizes must be positive, got input " + std::to_string(input) + ", hidden " + std::to_string(hidden));
  const double b = 1.0 / std::sqrt(static_cast<double>(hidden));
  weight_ih = register_parameter("weight_ih", gen.uniform({gates * hidden, input}, -b, b));
  weight_hh = register_parameter("weight_hh", gen.uniform({gates * hidden, hidden}, -b, b));
  bias_ih = register_parameter("bias_ih", gen.uniform({gates * hidden}, -b, b));
  bias_hh = register_parameter("bias_hh", gen.uniform({gates * hidden}, -b, b));
}

std::pair<Tensor, Tensor> LSTMCell::forward(const Tensor& x, const Tensor& h, const Tensor& c) {
  return lstm_update(linear(x, weight_ih, bias_ih) + linear(h, weight_hh, bias_hh), c, 1);
}

Tensor GRUCell::forward(const Tensor& x, const Tensor& h) {
  const int64_t H = hidden_;
  const Tensor gi = linear(x, weight_ih, bias_ih), gh = linear(h, weight_hh, bias_hh);  // [N, 3H]: r, z, n
  const Tensor r = sigmoid(slice(gi, 1, 0, H) + slice(gh, 1, 0, H));
  const Tensor z = sigmoid(slice(gi, 1, H, 2 * H) + slice(gh, 1, H, 2 * H));
  const Tensor n = tanh(slice(gi, 1, 2 * H, 3 * H) + r * slice(gh, 1, 2 * H, 3 * H));
  return (1.0 - z) * n + z * h;
}

// ---------------------------------------------------------------- the language model

RNNLM::RNNLM(const RNNOptions& o, Generator& gen) : SequenceModel(o.vocab, o.length, o.input), o_(o) {
  if (o.cell != "lstm" && o.cell != "gru") throw Error("RNNLM: unknown cell '" + o.cell + "' (lstm or gru)");
  if (o.layers < 1) throw Error("RNNLM: needs at least one layer");
  if (o.bptt < 0) throw Error("RNNLM: bptt must be 0 (no truncation) or a number of steps, got " + std::to_string(o.bptt));
  embedding_ = register_parameter("embedding", gen.normal({o.vocab + 1, o.embedding}));  // + BOS, N(0, 1) as nn.Embedding
  for (int64_t l = 0; l < o.layers; ++l) {
    const int64_t in = l == 0 ? o.embedding : o.hidden;
    if (o.cell == "lstm")
      lstm_.push_back(register_module("cell" + std::to_string(l), std::make_shared<LSTMCell>(in, o.hidden, gen)));
    else
      gru_.push_back(register_module("cell" + std::to_string(l), std::make_shared<GRUCell>(in, o.hidden, gen)));
  }
  head_ = register_module("head", std::make_shared<nn::Linear>(o.hidden, o.vocab, gen));
}

std::string RNNLM::config_json() const {
  nlohmann::json j{{"vocab", o_.vocab},   {"length", o_.length}, {"input", token_input_name(o_.input)},
                   {"cell", o_.cell},     {"embedding", o_.embedding}, {"hidden", o_.hidden},
                   {"layers", o_.layers}, {"dropout", o_.dropout}};
  if (o_.bptt > 0) j["bptt"] = o_.bptt;  // named only when it truncates (the configs of before it stay as they were)
  return j.dump();
}

Tensor RNNLM::step(const Tensor& input, std::vector<Tensor>& h, std::vector<Tensor>& c) {
  Tensor x = input;
  for (size_t l = 0; l < h.size(); ++l) {
    if (l > 0 && o_.dropout > 0) x = dropout(x, o_.dropout, is_training(), noise_);
    if (!lstm_.empty()) {
      std::tie(h[l], c[l]) = lstm_[l]->forward(x, h[l], c[l]);
    } else {
      h[l] = gru_[l]->forward(x, h[l]);
    }
    x = h[l];
  }
  return x;
}

Tensor RNNLM::embed_inputs(const Tensor& tokens, const Tensor& y) {
  const Tensor in = shifted(tokens, y);  // (labels are an error: the RNN is unconditional, classes 0)
  const int64_t n = in.size(0), L = in.size(1);
  return reshape(index_select(embedding_, 0, reshape(in, {n * L})), {n, L, o_.embedding});
}

Tensor RNNLM::hidden_states(const Tensor& inputs) {
  const int64_t n = inputs.size(0), L = inputs.size(1);
  if (!lstm_.empty()) {
    // an LSTM layer is one op over the whole sequence (autograd/ops/recurrent.cpp): the input projections
    // of every step by one linear, then the recurrence (eq. 2) with backpropagation through time
    const int64_t chunk = o_.bptt > 0 ? std::min(o_.bptt, L) : L;  // truncated BPTT: chunks of `bptt` steps
    Tensor x = inputs;
    for (size_t l = 0; l < lstm_.size(); ++l) {
      if (l > 0 && o_.dropout > 0) x = dropout(x, o_.dropout, is_training(), noise_);
      const LSTMCell& cell = *lstm_[l];
      const Tensor a = linear(x, cell.weight_ih, cell.bias_ih + cell.bias_hh);  // every step's input projection; b_ih + b_hh: one bias
      Tensor h = Tensor::zeros({n, o_.hidden}, inputs.dtype()), c = h;
      if (chunk == L) {
        x = lstm_sequence(a, h, c, cell.weight_hh);
        continue;
      }
      std::vector<Tensor> parts;
      for (int64_t t0 = 0; t0 < L; t0 += chunk) {  // the state enters each chunk detached (4c)
        const int64_t t1 = std::min(L, t0 + chunk);
        Tensor c_end;
        parts.push_back(lstm_sequence(slice(a, 1, t0, t1), h, c, cell.weight_hh, &c_end));
        h = select(parts.back(), 1, t1 - t0 - 1).detach(), c = c_end;
      }
      x = concat(parts, 1);
    }
    return x;  // [N, L, H]
  }
  std::vector<Tensor> h(static_cast<size_t>(o_.layers), Tensor::zeros({n, o_.hidden}, inputs.dtype())), c = h;
  std::vector<Tensor> outs;
  for (int64_t t = 0; t < L; ++t) {
    if (o_.bptt > 0 && t > 0 && t % o_.bptt == 0)  // truncated BPTT: the state goes on detached (4c)
      for (size_t l = 0; l < h.size(); ++l) h[l] = h[l].detach(), c[l] = c[l].detach();
    outs.push_back(step(select(inputs, 1, t), h, c));  // h_t = cell(e_t, h_{t-1})
  }
  return stack(outs, 1);  // [N, L, H]
}

Tensor RNNLM::logits(const Tensor& tokens, const Tensor& y) { return logits_from_inputs(embed_inputs(tokens, y)); }

Tensor RNNLM::logits_from_inputs(const Tensor& inputs) {
  Tensor h = hidden_states(inputs);
  if (o_.dropout > 0) h = dropout(h, o_.dropout, is_training(), noise_);
  return head_->forward(h);
}

std::unique_ptr<SequenceModel::Cache> RNNLM::start(int64_t n) {
  auto s = std::make_unique<State>();
  s->n = n;
  s->h.assign(static_cast<size_t>(o_.layers), Tensor::zeros({n, o_.hidden}, embedding_.dtype()));
  s->c = s->h;
  return s;
}

Tensor RNNLM::next(Cache& cache, const Tensor& token) {
  auto& s = dynamic_cast<State&>(cache);
  if (s.position >= length()) throw Error("rnn: next() after all " + std::to_string(length()) + " positions");
  ++s.position;
  return head_->forward(step(index_select(embedding_, 0, token), s.h, s.c));
}

}  // namespace dgm::models
