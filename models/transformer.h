// dgm/models/transformer.h — a decoder-only Transformer (Vaswani et al. 2017; GPT-2's
// pre-LayerNorm blocks) as an autoregressive density (docs/chapters/sequence.md, eqs. 5-8).
//
//   h_0 = E[x_{t-1}] + P[t]                                       (token + position)
//   a   = h + Attention(LN(h))      causal multi-head self-attention
//   h'  = a + W_2 GELU(W_1 LN(a))                                  (the MLP, 4x wide)
//   p(x_t | x_<t) = softmax(W_out LN(h_layers)[t])
//
// Every position is computed at once in training (the causal mask hides the future);
// sampling keeps each layer's keys and values (the KV cache), so a new token costs one
// position's work, not the whole prefix's.
#pragma once

#include <memory>
#include <vector>

#include "models/sequence.h"

namespace dgm::models {

// Causal self-attention of q, k, v [N, heads, L, d] (eq. 6):
//   A = softmax(q k^T / sqrt(d) + M),  M_ij = -inf for j > i,   out = A v   [N, heads, L, d]
// `weights`, if given, receives A [N, heads, L, L]. With fewer queries than keys (a cached
// step: the queries are the last positions), query i sits at position Lk - Lq + i.
Tensor causal_attention(const Tensor& q, const Tensor& k, const Tensor& v, Tensor* weights = nullptr);

struct TransformerOptions {
  int64_t vocab = 17, length = 64;
  TokenInput input = TokenInput::Levels;
  int64_t width = 128, layers = 4, heads = 4;
  double dropout = 0.1;
  std::string positions = "learned";  // "learned" or "sinusoidal"
  bool tie_weights = false;           // the output layer reuses the token embedding (W_out = E)
  int64_t classes = 0;                // > 0: class-conditional, a class token in place of BOS (models/sequence.h)
};

class TransformerBlock : public nn::Module {
 public:
  TransformerBlock(int64_t width, int64_t heads, double dropout, Generator& gen, Generator& noise);
  // h [N, L, C] -> [N, L, C]. With a cache (keys, values [N, heads, T, d], grown here) the input
  // holds the new positions only.
  Tensor forward(const Tensor& h, Tensor* keys = nullptr, Tensor* values = nullptr, Tensor* weights = nullptr);
  Tensor ln1_weight, ln1_bias, ln2_weight, ln2_bias;

 private:
  int64_t width_, heads_;
  double dropout_;
  Generator& noise_;
  std::shared_ptr<nn::Linear> qkv_, proj_, fc1_, fc2_;
};

class Transformer : public SequenceModel {
 public:
  Transformer(const TransformerOptions& o, Generator& gen);
  std::string name() const override { return "transformer"; }
  std::string config_json() const override;
  Tensor logits(const Tensor& tokens, const Tensor& y = Tensor()) override;  // [N, L, V], one pass
  // The two halves of logits(): the token embeddings of [BOS, x_0 .. x_{L-2}], [N, L, C], and the
  // network from them (positions added there; the lesson differentiates with respect to these).
  Tensor embed_inputs(const Tensor& tokens, const Tensor& y = Tensor());
  Tensor logits_from_inputs(const Tensor& inputs);
  // The attention weights of one layer on tokens, [N, heads, L, L] (the lesson's picture).
  Tensor attention_weights(const Tensor& tokens, int64_t layer);
  // The KV cache: each layer's keys and values of the positions read so far.
  std::unique_ptr<Cache> start(int64_t n) override;
  Tensor next(Cache& cache, const Tensor& token) override;
  bool reads_prefixes() const override { return true; }
  const TransformerOptions& options() const { return o_; }

 private:
  struct KV : Cache {
    std::vector<Tensor> keys, values;
  };
  Tensor embed(const Tensor& input_tokens);                            // [N, T] int64 -> [N, T, C]
  Tensor add_positions(const Tensor& e, int64_t first_position);     // + P[first ..], dropout
  Tensor head(const Tensor& h);                                       // [N, T, C] -> [N, T, V]
  TransformerOptions o_;
  Tensor token_embedding_, position_embedding_, lnf_weight_, lnf_bias_;
  std::vector<std::shared_ptr<TransformerBlock>> blocks_;
  std::shared_ptr<nn::Linear> out_;  // absent when the weights are tied
};

}  // namespace dgm::models
