// dgm/models/transformer.cpp
#include "models/transformer.h"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "autograd/graph.h"

namespace dgm::models {

Tensor causal_attention(const Tensor& q, const Tensor& k, const Tensor& v, Tensor* weights) {
  if (q.dim() != 4 || k.shape() != v.shape() || k.dim() != 4 || q.size(3) != k.size(3) || q.size(0) != k.size(0) ||
      q.size(1) != k.size(1) || q.size(2) > k.size(2))
    throw Error("causal_attention: q, k, v must be [N, heads, L, d] with as many keys as values and no more queries; got q " +
                q.shape().str() + ", k " + k.shape().str() + ", v " + v.shape().str());
  const int64_t Lq = q.size(2), Lk = k.size(2), d = q.size(3);
  Tensor scores = matmul(q, transpose(k, 2, 3)) * (1.0 / std::sqrt(static_cast<double>(d)));  // [N, h, Lq, Lk]
  // M: query i (at position Lk - Lq + i) may not see key j > Lk - Lq + i; e^{-inf} = 0 exactly.
  // One query (a KV-cache step) sees every key: no mask.
  if (Lq > 1) scores = scores + causal_mask(Lq, Lk, scores.dtype());
  const Tensor a = softmax(scores, 3);
  if (weights) *weights = a;
  return matmul(a, v);
}

TransformerBlock::TransformerBlock(int64_t width, int64_t heads, double dropout, Generator& gen, Generator& noise)
    : width_(width), heads_(heads), dropout_(dropout), noise_(noise) {
  if (width % heads != 0)
    throw Error("Transformer: the width " + std::to_string(width) + " must be a multiple of the heads " + std::to_string(heads));
  ln1_weight = register_parameter("ln1.weight", Tensor::ones({width}));
  ln1_bias = register_parameter("ln1.bias", Tensor::zeros({width}));
  ln2_weight = register_parameter("ln2.weight", Tensor::ones({width}));
  ln2_bias = register_parameter("ln2.bias", Tensor::zeros({width}));
  qkv_ = register_module("qkv", std::make_shared<nn::Linear>(width, 3 * width, gen));
  proj_ = register_module("proj", std::make_shared<nn::Linear>(width, width, gen));
  fc1_ = register_module("fc1", std::make_shared<nn::Linear>(width, 4 * width, gen));
  fc2_ = register_module("fc2", std::make_shared<nn::Linear>(4 * width, width, gen));
}

Tensor TransformerBlock::forward(const Tensor& h, Tensor* keys, Tensor* values, Tensor* weights) {
  const int64_t N = h.size(0), T = h.size(1), C = width_, H = heads_, d = C / H;
  // attention: q, k, v of every position [N, T, 3C]
  const Tensor qkv = qkv_->forward(layer_norm(h, 1, ln1_weight, ln1_bias));
  Tensor heads_out;
  if (!keys) {  // the whole sequence at once: one op, the same formula (autograd/ops/attention.cpp)
    heads_out = causal_self_attention(qkv, H, weights);
  } else {  // the cache: split into heads [N, H, T, d], the new positions' keys and values after the old ones
    const Tensor split = permute(reshape(qkv, {N, T, 3, H, d}), {2, 0, 3, 1, 4});
    Tensor q = select(split, 0, 0), k = select(split, 0, 1), v = select(split, 0, 2);
    if (keys->defined()) k = concat({*keys, k}, 2), v = concat({*values, v}, 2);
    *keys = k, *values = v;
    heads_out = reshape(permute(causal_attention(q, k, v, weights), {0, 2, 1, 3}), {N, T, C});
  }
  const Tensor a = h + dropout(proj_->forward(heads_out), dropout_, is_training(), noise_);
  const Tensor m = fc2_->forward(gelu(fc1_->forward(layer_norm(a, 1, ln2_weight, ln2_bias))));
  return a + dropout(m, dropout_, is_training(), noise_);
}

Transformer::Transformer(const TransformerOptions& o, Generator& gen) : SequenceModel(o.vocab, o.length, o.input, o.classes), o_(o) {
  if (o.positions != "learned" && o.positions != "sinusoidal")
    throw Error("Transformer: unknown positions '" + o.positions + "' (learned or sinusoidal)");
  if (o.layers < 1 || o.heads < 1 || o.width < 1) throw Error("Transformer: layers, heads and width must be positive");
  const int64_t C = o.width, L = o.length;
  // + BOS, + a class token per class (GPT-2's 0.02)
  token_embedding_ = register_parameter("token_embedding", gen.normal({o.vocab + 1 + o.classes, C}, 0.0, 0.02));
  if (o.positions == "learned") {
    position_embedding_ = register_parameter("position_embedding", gen.normal({L, C}, 0.0, 0.02));
  } else {  // P[t, 2i] = sin(t / 10000^(2i/C)), P[t, 2i+1] = cos(...)
    std::vector<float> p(static_cast<size_t>(L * C));
    for (int64_t t = 0; t < L; ++t)
      for (int64_t i = 0; i < C; ++i) {
        const double angle = static_cast<double>(t) / std::pow(10000.0, static_cast<double>(2 * (i / 2)) / static_cast<double>(C));
        p[static_cast<size_t>(t * C + i)] = static_cast<float>(i % 2 == 0 ? std::sin(angle) : std::cos(angle));
      }
    position_embedding_ = register_buffer("position_embedding", Tensor::from_vector(p, {L, C}));
  }
  for (int64_t l = 0; l < o.layers; ++l)
    blocks_.push_back(register_module("block" + std::to_string(l), std::make_shared<TransformerBlock>(C, o.heads, o.dropout, gen, noise_)));
  lnf_weight_ = register_parameter("lnf.weight", Tensor::ones({C}));
  lnf_bias_ = register_parameter("lnf.bias", Tensor::zeros({C}));
  if (!o.tie_weights) out_ = register_module("out", std::make_shared<nn::Linear>(C, o.vocab, gen));
}

std::string Transformer::config_json() const {
  nlohmann::json c{{"vocab", o_.vocab},   {"length", o_.length},   {"input", token_input_name(o_.input)},
                   {"width", o_.width},   {"layers", o_.layers},   {"heads", o_.heads},
                   {"dropout", o_.dropout}, {"positions", o_.positions}, {"tie_weights", o_.tie_weights}};
  if (o_.classes > 0) c["classes"] = o_.classes;
  return c.dump();
}

Tensor Transformer::embed(const Tensor& input_tokens) {
  const int64_t N = input_tokens.size(0), T = input_tokens.size(1);
  return reshape(index_select(token_embedding_, 0, reshape(input_tokens, {N * T})), {N, T, o_.width});
}

Tensor Transformer::add_positions(const Tensor& e, int64_t first) {
  return dropout(e + slice(position_embedding_, 0, first, first + e.size(1)).to(e.dtype()), o_.dropout, is_training(), noise_);
}

Tensor Transformer::embed_inputs(const Tensor& tokens, const Tensor& y) { return embed(shifted(tokens, y)); }

Tensor Transformer::head(const Tensor& h) {
  const Tensor z = layer_norm(h, 1, lnf_weight_, lnf_bias_);
  if (out_) return out_->forward(z);
  return linear(z, slice(token_embedding_, 0, 0, o_.vocab));  // tied: the logit of v is <z, E[v]>
}

Tensor Transformer::logits(const Tensor& tokens, const Tensor& y) { return logits_from_inputs(embed_inputs(tokens, y)); }

Tensor Transformer::logits_from_inputs(const Tensor& inputs) {
  Tensor h = add_positions(inputs, 0);
  for (auto& b : blocks_) h = b->forward(h);
  return head(h);
}

Tensor Transformer::attention_weights(const Tensor& tokens, int64_t layer) {
  if (layer < 0 || layer >= o_.layers) throw Error("Transformer::attention_weights: no layer " + std::to_string(layer));
  Tensor h = add_positions(embed_inputs(tokens), 0), w;
  for (int64_t l = 0; l <= layer; ++l) h = blocks_[static_cast<size_t>(l)]->forward(h, nullptr, nullptr, l == layer ? &w : nullptr);
  return w;
}

std::unique_ptr<SequenceModel::Cache> Transformer::start(int64_t n) {
  auto c = std::make_unique<KV>();
  c->n = n;
  c->keys.resize(blocks_.size()), c->values.resize(blocks_.size());
  return c;
}

Tensor Transformer::next(Cache& cache, const Tensor& token) {
  auto& kv = dynamic_cast<KV&>(cache);
  const int64_t t = kv.position;
  if (t >= length()) throw Error("transformer: next() after all " + std::to_string(length()) + " positions");
  Tensor h = add_positions(embed(reshape(token, {kv.n, 1})), t);  // the one new position
  for (size_t l = 0; l < blocks_.size(); ++l) h = blocks_[l]->forward(h, &kv.keys[l], &kv.values[l]);
  ++kv.position;
  return select(head(h), 1, 0);
}

}  // namespace dgm::models
