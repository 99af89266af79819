// dgm/models/sequence.h — what the sequence models share: tokens, the chain rule over
// positions, and sampling one token at a time (docs/chapters/sequence.md).
//
// A sequence model is an autoregressive density over L tokens from a vocabulary of V:
//
//   log p(x) = sum_t log p(x_t | x_<t)                                        (the chain rule)
//
// computed in ONE pass by teacher forcing: the network reads [BOS, x_0, ..., x_{L-2}] and
// returns, at every position t, the logits of x_t's distribution given x_<t.
// The families (models/rnn.h, models/transformer.h, models/pixelrnn.h) say how the logits
// are computed; log_prob, the step-by-step interface and sampling (temperature, top-k) are
// here, once.
//
// Two kinds of examples:
//   Levels  images or vectors in [0, 1] on V grey levels (the digits at 17, binarized
//           Fashion-MNIST at 2): token = round(x (V - 1)); every position counts.
//   Words   token ids (the data set "words"): 0 ends a word, 1..26 are 'a'..'z'; the
//           positions after the first 0 are padding and do not count.
//
// Class-conditional (classes > 0, docs/chapters/conditional.md): the first input is a class
// token, vocab + 1 + y, in place of BOS, so every position's logits read y, and
//   log p(x | y) = sum_t log p(x_t | x_<t, y)
// is exact for every class; log_prob(x) is the mixture (1/K) sum_y p(x | y). A family that
// supports it gives its embedding vocab + 1 + classes rows (models/transformer.h).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "models/density.h"

namespace dgm::models {

enum class TokenInput { Levels, Words };
TokenInput token_input(const std::string& name);  // "levels" or "words"
std::string token_input_name(TokenInput input);

// How a sequence is drawn: logits / temperature, then only the top_k most likely tokens kept (0: all).
struct SampleOptions {
  double temperature = 1.0;
  int64_t top_k = 0;
};
// Every sequence of `length` tokens over `vocab` (int64 [vocab^length, length], in counting order); for
// Words only the distinct words (0 after the first 0 throughout): what a check sums p(x) over.
Tensor every_sequence(int64_t vocab, int64_t length, TokenInput input);

// One draw per row of logits [n, V] (float32 or float64), int64 [n].
Tensor sample_tokens(const Tensor& logits, const SampleOptions& o, Generator& gen);

class SequenceModel : public TrainableDensity, public ConditionalDensity {
 public:
  SequenceModel(int64_t vocab, int64_t length, TokenInput input, int64_t classes = 0);
  int64_t classes() const override { return classes_; }

  int64_t vocab() const { return vocab_; }
  int64_t length() const { return length_; }
  TokenInput input() const { return input_; }
  int64_t bos() const { return vocab_; }  // the start token: one more row in every embedding

  // x (a batch of examples) -> int64 tokens [N, L]; an example of the wrong size or a value
  // off the levels / outside the vocabulary is an error that names it.
  Tensor tokens(const Tensor& x) const;
  // tokens -> examples as the data set holds them: [N, L], or [N, 1, H, W] for an image model
  // (levels: t / (V - 1))
  Tensor examples(const Tensor& tokens) const;
  // [N, L] float: 1 where position t counts (every t for Levels; up to the first 0 for Words).
  Tensor counted(const Tensor& tokens) const;
  // The first input of n sequences, int64 [n]: BOS, or the class tokens vocab + 1 + y (labels
  // required iff classes > 0, each checked).
  Tensor start_tokens(int64_t n, const Tensor& y = Tensor()) const;
  // [N, L] int64: the start token, then tokens shifted right by one (what teacher forcing reads).
  Tensor shifted(const Tensor& tokens, const Tensor& y = Tensor()) const;

  // The logits of every position given the ones before it (and the labels y of a class-conditional
  // model): [N, L, V] (teacher forcing).
  virtual Tensor logits(const Tensor& tokens, const Tensor& y = Tensor()) = 0;
  // log p(x_t | x_<t [, y]) per position, [N, L] (0 where a position does not count).
  Tensor conditionals(const Tensor& tokens, const Tensor& y = Tensor());
  // log p(x) per example, [N], nats: the sum of the counted conditionals (class-conditional: the mixture).
  Tensor log_prob(const Tensor& x) override;
  // log p(x | y): the sum of the conditionals behind the class token.
  Tensor log_prob_given(const Tensor& x, const Tensor& y) override;
  Tensor sample_given(const Tensor& y, Generator& gen) override;
  // The counted positions per example, on average (L for Levels; letters + 1 for Words): bits per
  // dimension over words is bits per character, the end of each word included.
  double values_per_example(const Tensor& x) const override;

  // ---------------------------------------------------------------- one token at a time
  // The model's memory of a prefix: an RNN's state, a Transformer's keys and values; by default
  // the prefix itself, and next() recomputes the whole prefix (L network passes for L tokens).
  struct Cache {
    virtual ~Cache() = default;
    int64_t position = 0;             // how many tokens have been read (BOS included)
    std::vector<int64_t> prefix;      // [n, position] row-major (the default cache's memory)
    int64_t n = 0;
    Tensor labels;                    // a class-conditional model's y (the default next() passes them to logits)
  };
  virtual std::unique_ptr<Cache> start(int64_t n);
  // Reads one token per sequence (int64 [n]; BOS first) and returns the logits of the next, [n, V].
  virtual Tensor next(Cache& cache, const Tensor& token);
  // Whether logits() takes a prefix shorter than L (an RNN, a Transformer: the default next() then runs on
  // the t + 1 tokens read so far, a pass whose cost grows with t); an image model needs all L (padded).
  virtual bool reads_prefixes() const { return false; }
  // log p(x) per example, [N] float64 nats, as the sum of the L conditionals read one step at a time
  // through start/next (the model's state or KV cache; with prefix_only, the default next() above,
  // which recomputes the whole prefix each step): what the one-pass log_prob must equal. No graph.
  // y: a class-conditional model's labels (its log p(x | y)).
  Tensor log_prob_stepwise(const Tensor& x, bool prefix_only = false, const Tensor& y = Tensor());

  Tensor sample(int64_t n, Generator& gen) override { return sample(n, gen, SampleOptions{}); }
  // n examples (as examples() lays them out), drawn token by token through start/next.
  Tensor sample(int64_t n, Generator& gen, const SampleOptions& o);
  // The same, as tokens [n, L]; with y (int64 [n]), one sequence of each label's class.
  Tensor sample_token_ids(int64_t n, Generator& gen, const SampleOptions& o, const Tensor& y = Tensor());

  // The random numbers of dropout (a resumed training restores them).
  Generator* noise_generator() override { return &noise_; }

 protected:
  Generator noise_{0};
  Shape example_shape_;  // one example's shape: [L] unless a family says otherwise ([1, H, W])

 private:
  int64_t vocab_, length_;
  TokenInput input_;
  int64_t classes_;
};

}  // namespace dgm::models
