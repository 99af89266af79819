// dgm/models/rnn.h — recurrent language models: the LSTM and the GRU cell, and a character
// model of words or pixels built from them (docs/chapters/sequence.md, eqs. 2-4).
//
// An RNN carries the whole prefix in a fixed-size state: h_t = cell(embed(x_{t-1}), h_{t-1}),
// and p(x_t | x_<t) = softmax(W h_t + b). Trained by teacher forcing (one pass over the true
// sequence, backpropagation through time); sampled one token at a time from the state, so a
// token costs the same at every position.
#pragma once

#include <memory>
#include <vector>

#include "models/sequence.h"

namespace dgm::models {

// The LSTM's update from its pre-activations gates = [i, f, g, o] (PyTorch's order) stacked
// along `axis` (4H of them) and the old cell c:
//   c' = sigmoid(f) * c + sigmoid(i) * tanh(g),   h' = sigmoid(o) * tanh(c')
// Returns {h', c'}. The LSTM cell and PixelRNN's Row and Diagonal LSTMs share it.
std::pair<Tensor, Tensor> lstm_update(const Tensor& gates, const Tensor& c, int64_t axis = 1);

// What the recurrent cells share: `gates` blocks of `hidden` rows in W_ih [gates H, input],
// W_hh [gates H, H] and the biases, PyTorch's names and initialisation (every entry U(+-1/sqrt(H))).
class RecurrentCell : public nn::Module {
 public:
  int64_t hidden() const { return hidden_; }
  Tensor weight_ih, weight_hh, bias_ih, bias_hh;

 protected:
  RecurrentCell(const char* name, int64_t gates, int64_t input, int64_t hidden, Generator& gen);
  int64_t hidden_;
};

// Long short-term memory (Hochreiter & Schmidhuber 1997), parameters named as PyTorch's nn.LSTMCell:
//   [i, f, g, o] = W_ih x + b_ih + W_hh h + b_hh,  then lstm_update.
class LSTMCell : public RecurrentCell {
 public:
  LSTMCell(int64_t input, int64_t hidden, Generator& gen) : RecurrentCell("LSTMCell", 4, input, hidden, gen) {}
  std::pair<Tensor, Tensor> forward(const Tensor& x, const Tensor& h, const Tensor& c);  // {h', c'}
};

// Gated recurrent unit (Cho et al. 2014), PyTorch's nn.GRUCell:
//   r = sigmoid(W_ir x + b_ir + W_hr h + b_hr),  z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
//   n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),  h' = (1 - z) * n + z * h
class GRUCell : public RecurrentCell {
 public:
  GRUCell(int64_t input, int64_t hidden, Generator& gen) : RecurrentCell("GRUCell", 3, input, hidden, gen) {}
  Tensor forward(const Tensor& x, const Tensor& h);
};

struct RNNOptions {
  int64_t vocab = 27, length = 24;
  TokenInput input = TokenInput::Words;
  std::string cell = "lstm";  // "lstm" or "gru"
  int64_t embedding = 32, hidden = 256, layers = 1;
  double dropout = 0;         // between layers and before the output layer
  // Truncated backpropagation through time: every `bptt` steps the state carries on detached, so a
  // gradient reaches back at most to the start of its chunk (0: through the whole sequence). The
  // forward pass, and so log p(x), is the same.
  int64_t bptt = 0;
};

// The language model: embedding -> `layers` cells -> a linear map to the V logits.
class RNNLM : public SequenceModel {
 public:
  RNNLM(const RNNOptions& o, Generator& gen);
  std::string name() const override { return "rnn"; }
  std::string config_json() const override;  // {"vocab", "length", "input", "cell", "embedding", "hidden", "layers", "dropout"}, and "bptt" if > 0
  Tensor logits(const Tensor& tokens, const Tensor& y = Tensor()) override;  // one pass, teacher forcing: [N, L, V] (unconditional: no y)
  // The two halves of logits(): the embedded inputs [BOS, x_0 .. x_{L-2}] -> [N, L, E], and the
  // network from them (the lesson differentiates the logits with respect to these inputs).
  Tensor embed_inputs(const Tensor& tokens, const Tensor& y = Tensor());
  Tensor logits_from_inputs(const Tensor& inputs);
  std::unique_ptr<Cache> start(int64_t n) override;
  Tensor next(Cache& cache, const Tensor& token) override;  // one cell step per layer
  bool reads_prefixes() const override { return true; }
  // The top layer's hidden states h_1 .. h_L, [N, L, H] (the lesson's gradient-over-time picture).
  Tensor hidden_states(const Tensor& inputs);  // inputs: embed_inputs(tokens)
  const RNNOptions& options() const { return o_; }

 private:
  struct State : Cache {
    std::vector<Tensor> h, c;
  };
  // One time step of every layer: the embedded input -> the top layer's output; h, c updated.
  Tensor step(const Tensor& input, std::vector<Tensor>& h, std::vector<Tensor>& c);
  RNNOptions o_;
  Tensor embedding_;
  std::vector<std::shared_ptr<LSTMCell>> lstm_;
  std::vector<std::shared_ptr<GRUCell>> gru_;
  std::shared_ptr<nn::Linear> head_;
};

}  // namespace dgm::models
