// lesson_sequence — sequence models: language modelling with an RNN, PixelRNN's diagonal
// order, and the Transformer, with exact likelihoods on words and images
// (docs/chapters/sequence.md).
//
//   1. the chain rule: every sequence's probability, enumerated, sums to 1 (RNN, Transformer)
//   2. the autoregressive property by the engine's Jacobian: d logit_i / d x_j = 0 for j >= i
//   3. attention: each row of the causal attention matrix sums to 1, zero weight on the future
//   4. backpropagation through time: the LSTM's gradient over 50 steps against central differences,
//      truncated BPTT (same log p, no gradient past a chunk), and gradient clipping
//   5. the diagonal order: 2N - 1 sequential steps (counted on the computation) and the
//      receptive fields of Row LSTM, Diagonal BiLSTM, PixelCNN and the Transformer
//   6. words: the bigram by counting, an LSTM and a Transformer (bits per character), invented
//      words at three temperatures, real words against shuffled letters
//   7. the digits: a Transformer and a Diagonal BiLSTM, one pass vs 64 passes, the KV cache
//      against recomputing the prefix, and its cost against the length
//   8. (full run) a Row LSTM on binarized Fashion-MNIST within a time budget
#include <algorithm>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "autograd/gradcheck.h"
#include "autograd/graph.h"
#include "autograd/ops.h"
#include "autograd/optim.h"
#include "lessons/common/harness.h"
#include "lessons/common/lesson.h"
#include "models/pixelcnn.h"
#include "models/pixelrnn.h"
#include "models/recipes.h"
#include "models/rnn.h"
#include "models/toolkit/image.h"
#include "models/toolkit/plot.h"
#include "models/transformer.h"

using namespace dgm;
using models::SequenceModel;

namespace {

double total_probability(SequenceModel& m, const Tensor& seqs) {
  const Tensor lp = m.log_prob(seqs);
  long double total = 0;
  for (int64_t i = 0; i < lp.numel(); ++i) total += std::exp(static_cast<long double>(lp.at(i)));
  return static_cast<double>(total);
}

// |d logits_i / d inputs_j| summed over the logits' and the inputs' features: [L, L] (rows i, columns j),
// from the Jacobian of logits [1, L, V] with respect to inputs [1, L, E].
std::vector<std::vector<double>> dependence(const Tensor& J, int64_t L, int64_t out_per_position, int64_t in_per_position) {
  std::vector<std::vector<double>> d(static_cast<size_t>(L), std::vector<double>(static_cast<size_t>(L), 0.0));
  const int64_t cols = L * in_per_position;
  for (int64_t i = 0; i < L; ++i)
    for (int64_t a = 0; a < out_per_position; ++a) {
      const int64_t row = i * out_per_position + a;
      for (int64_t j = 0; j < L; ++j)
        for (int64_t b = 0; b < in_per_position; ++b) d[static_cast<size_t>(i)][static_cast<size_t>(j)] += std::abs(J.at(row * cols + j * in_per_position + b));
    }
  return d;
}

// The largest dependence of logit i on x_j, j >= i (the future), and how many allowed pairs are seen.
// Input j of a teacher-forced model holds x_{j-1} (input 0 is BOS): logit i may see inputs j <= i.
std::pair<double, int64_t> future_and_seen(const std::vector<std::vector<double>>& d) {
  double future = 0;
  int64_t seen = 0;
  const int64_t L = static_cast<int64_t>(d.size());
  for (int64_t i = 0; i < L; ++i)
    for (int64_t j = 0; j < L; ++j) {
      if (j > i) future = std::max(future, d[static_cast<size_t>(i)][static_cast<size_t>(j)]);
      else seen += d[static_cast<size_t>(i)][static_cast<size_t>(j)] > 0;
    }
  return {future, seen};
}

// ---------------------------------------------------------------- 1-3: the chain rule, causality, attention
void chain_rule_and_causality(lesson::Lesson& L, Generator& gen) {
  std::cout << "\n1. The chain rule: p(x) = prod_t p(x_t | x_<t) is a distribution over all sequences\n";
  models::RNNOptions ro;
  ro.vocab = 3, ro.length = 5, ro.input = models::TokenInput::Words, ro.embedding = 4, ro.hidden = 6, ro.layers = 2;
  models::RNNLM rnn(ro, gen);
  models::TransformerOptions to;
  to.vocab = 3, to.length = 5, to.input = models::TokenInput::Levels, to.width = 8, to.layers = 2, to.heads = 2, to.dropout = 0;
  models::Transformer tr(to, gen);
  rnn.to(DType::Float64), tr.to(DType::Float64);
  const Tensor words = models::every_sequence(3, 5, models::TokenInput::Words),
               strings = models::every_sequence(3, 5, models::TokenInput::Levels);
  std::cout << "   an untrained LSTM over " << words.size(0) << " words of up to 5 tokens (2 letters and the end), a Transformer over all "
            << strings.size(0) << " strings of 5 tokens\n";
  L.check_close("sum over every word of p(word), LSTM (enumeration vs 1)", total_probability(rnn, words), 1.0, 1e-12);
  L.check_close("sum over every string of p(string), Transformer (enumeration vs 1)", total_probability(tr, strings), 1.0, 1e-12);

  std::cout << "\n2. The autoregressive property, by the engine's Jacobian d logit_i / d input_j\n";
  const Tensor seq = Tensor::from_indices({2, 0, 1, 1, 2}, {1, 5});
  const Tensor Jr = jacobian([&](const Tensor& e) { return rnn.logits_from_inputs(e); }, rnn.embed_inputs(seq).detach());
  const Tensor Jt = jacobian([&](const Tensor& e) { return tr.logits_from_inputs(e); }, tr.embed_inputs(seq).detach());
  const auto [rf, rs] = future_and_seen(dependence(Jr, 5, 3, ro.embedding));
  const auto [tf, ts] = future_and_seen(dependence(Jt, 5, 3, to.width));
  std::cout << "   input j holds x_{j-1} (input 0 is BOS): logit i may depend on inputs 0..i, the " << 15 << " allowed pairs;"
            << " the LSTM depends on " << rs << ", the Transformer on " << ts << " of them\n";
  L.check_close("LSTM: largest |d logit_i / d x_j| for j >= i (Jacobian vs 0)", rf, 0.0, 0.0);
  L.check_close("Transformer: largest |d logit_i / d x_j| for j >= i (Jacobian vs 0)", tf, 0.0, 0.0);
  L.check_close("LSTM and Transformer: allowed pairs they depend on (Jacobian vs 15 + 15)", static_cast<double>(rs + ts), 30.0, 0.0);

  std::cout << "\n3. Causal attention: softmax(q k^T / sqrt d + M), M = -inf above the diagonal\n";
  Tensor A = tr.attention_weights(seq, 1);  // [1, heads, 5, 5]
  double worst_sum = 0, future = 0;
  for (int64_t h = 0; h < to.heads; ++h)
    for (int64_t i = 0; i < 5; ++i) {
      double s = 0;
      for (int64_t j = 0; j < 5; ++j) {
        const double a = A.at((h * 5 + i) * 5 + j);
        s += a;
        if (j > i) future = std::max(future, std::abs(a));
      }
      worst_sum = std::max(worst_sum, std::abs(s - 1));
    }
  L.check_close("attention rows: largest |sum_j A_ij - 1| (the matrix vs 1)", worst_sum, 0.0, 1e-14);
  L.check_close("attention on the future: largest A_ij, j > i (exactly 0)", future, 0.0, 0.0);
}

// ---------------------------------------------------------------- 4: backpropagation through time
// sqrt(sum of every squared gradient entry): the global norm, written out
double global_norm(const std::vector<Tensor>& params) {
  double s = 0;
  for (const Tensor& p : params)
    for (int64_t i = 0; i < p.grad().numel(); ++i) s += p.grad().at(i) * p.grad().at(i);
  return std::sqrt(s);
}

// The same LSTM trained twice by plain SGD from the same start on the same batches, with and without
// clipping the gradients' global norm at 1: the norm per step (the exploding half of the picture).
// Sequences that need memory: x_t repeats x_{t-10} nine times in ten.
void clipping(lesson::Lesson& L, Generator& gen) {
  const int64_t steps = L.options().quick ? 40 : 150, B = 16, T = 50, V = 5;
  const double lr = 2.0, max_norm = 1.0;
  models::RNNOptions o;
  o.vocab = V, o.length = T, o.input = models::TokenInput::Levels, o.embedding = 8, o.hidden = 32, o.layers = 1;
  const uint64_t seed = gen.randint(0, 1 << 30);
  std::vector<std::vector<double>> rows(static_cast<size_t>(steps), std::vector<double>(5, NAN));
  double worst_identity = 0;  // | ||clipped gradient|| - min(||g||, max) (PyTorch's 1e-6) |, and the reported norm vs ours
  int64_t above = 0;
  for (const bool clip : {false, true}) {
    Generator g(seed);
    models::RNNLM m(o, g);
    m.to(DType::Float64);
    const auto params = m.parameters();
    optim::SGD opt(params, lr);
    for (int64_t step = 0; step < steps; ++step) {
      std::vector<int64_t> x(static_cast<size_t>(B * T));
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < T; ++t)
          x[static_cast<size_t>(b * T + t)] = t >= 10 && g.uniform01() < 0.9 ? x[static_cast<size_t>(b * T + t - 10)] : g.randint(0, V);
      m.zero_grad();
      const Tensor loss = neg(mean(m.log_prob(m.examples(Tensor::from_indices(x, {B, T})))));
      loss.backward();
      const double norm = global_norm(params);
      auto& r = rows[static_cast<size_t>(step)];
      r[0] = static_cast<double>(step);
      r[clip ? 2 : 1] = norm;
      r[clip ? 4 : 3] = loss.item() / static_cast<double>(T) / std::log(2.0);
      if (!std::isfinite(norm)) break;  // the unclipped run diverged: its curve ends here
      if (clip) {
        const double reported = optim::clip_grad_norm_(params, max_norm);
        // PyTorch's rule: g <- g max / (||g|| + 1e-6) when ||g|| > max, so the norm becomes max up to 1e-6 / ||g||
        const double expected = norm > max_norm ? norm * max_norm / (norm + 1e-6) : norm;
        worst_identity = std::max({worst_identity, std::abs(global_norm(params) - expected), std::abs(reported - norm)});
        above += norm > max_norm;
      }
      opt.step();
    }
  }
  L.write_csv("gradient_clipping.csv", {"step", "gradient_norm_unclipped_run", "gradient_norm_clipped_run", "bits_per_token_unclipped_run",
                                        "bits_per_token_clipped_run"},
              rows);
  plot::line_plot(L.path("gradient_clipping.csv"), L.path("gradient_clipping.png"),
                  "an LSTM trained by SGD (lr 2): the gradient's global norm per step", "step", "||g|| before clipping", 1,
                  {{2, "without clipping"}, {3, "clipped at ||g|| = 1"}}, true);
  double peak[2] = {0, 0}, last[2] = {NAN, NAN};
  for (const auto& r : rows)
    for (int k = 0; k < 2; ++k)
      if (std::isfinite(r[static_cast<size_t>(1 + k)])) peak[k] = std::max(peak[k], r[static_cast<size_t>(1 + k)]), last[k] = r[static_cast<size_t>(3 + k)];
  std::cout << "   SGD, lr " << lr << ", " << steps << " steps: the largest gradient norm without clipping " << std::setprecision(3) << peak[0]
            << ", with clipping at 1 " << peak[1] << " (" << above << " steps clipped); the last loss " << last[0] << " vs " << last[1]
            << " bits per token (gradient_clipping.png)\n";
  L.check_close("clipping: the clipped gradient's global norm (summed by hand) vs min(||g||, 1) (PyTorch's +1e-6), largest difference over the steps",
                worst_identity, 0.0, 1e-12);
  L.metric("clipping_largest_gradient_norm_unclipped", peak[0]);
  L.metric("clipping_largest_gradient_norm_clipped", peak[1]);
}

void bptt(lesson::Lesson& L, Generator& gen) {
  std::cout << "\n4. Backpropagation through time: an LSTM over 50 steps\n";
  models::RNNOptions o;
  o.vocab = 5, o.length = 50, o.input = models::TokenInput::Levels, o.embedding = 4, o.hidden = 8, o.layers = 1;
  models::RNNLM m(o, gen);
  m.to(DType::Float64);
  const Tensor tokens = gen.randint({2, 50}, 0, 5);
  Tensor w;  // W_hh of the LSTM
  for (const auto& [name, p] : m.named_parameters())
    if (name == "cell0.weight_hh") w = p;
  m.zero_grad();
  Tensor loss = neg(sum(m.log_prob(m.examples(tokens))));
  loss.backward();
  const int64_t e = 7;  // one recurrent weight: it acts at every one of the 50 steps
  const double engine = w.grad().at(e), h = 1e-6, w0 = w.at(e);
  auto at = [&](double v) {
    NoGradGuard ng;
    w.data<double>()[e] = v;
    return neg(sum(m.log_prob(m.examples(tokens)))).item();
  };
  const double central = (at(w0 + h) - at(w0 - h)) / (2 * h);
  w.data<double>()[e] = w0;
  L.check_close("d loss / d W_hh[7] over 50 steps (backward vs central difference)", engine, central, 1e-6 * std::max(1.0, std::abs(central)));

  // how far back a step's gradient reaches: ||d log p(x_49 | x_<49) / d e_t|| for t = 0..49
  Tensor in = m.embed_inputs(tokens).detach().set_requires_grad(true);
  Tensor last = select(select(log_softmax(m.logits_from_inputs(in), 2), 1, 49), 1, 0);
  sum(last).backward();
  std::vector<std::vector<double>> rows;
  for (int64_t t = 0; t < 50; ++t) {
    double s = 0;
    for (int64_t b = 0; b < o.embedding; ++b) s += std::pow(in.grad().at(t * o.embedding + b), 2);
    rows.push_back({static_cast<double>(t), std::sqrt(s)});
  }
  L.write_csv("bptt_gradient_norm.csv", {"input_position", "gradient_norm"}, rows);
  plot::line_plot(L.path("bptt_gradient_norm.csv"), L.path("bptt_gradient_norm.png"),
                  "an LSTM: how much the last prediction depends on each earlier input", "input position t", "||d log p(x_49) / d e_t||", 1,
                  {{2, "untrained LSTM"}}, true);
  std::cout << "   ||d log p(x_49 | x_<49) / d e_t||: t = 49: " << std::scientific << std::setprecision(2) << rows[49][1] << ", t = 40: "
            << rows[40][1] << ", t = 0: " << rows[0][1] << std::defaultfloat << " (bptt_gradient_norm.png: it fades going back)\n";

  // truncated BPTT: the same LSTM with its state carried on detached every k = 10 steps
  models::RNNOptions ot = o;
  ot.bptt = 10;
  Generator unused(0);  // its initial weights are replaced by m's (and the lesson's generator is left as it was)
  models::RNNLM twin(ot, unused);
  twin.to(DType::Float64);
  {
    NoGradGuard ng;  // the same weights as m (bptt changes no parameter: the two lists line up)
    const std::vector<Tensor> from = m.parameters();
    std::vector<Tensor> to = twin.parameters();
    for (size_t i = 0; i < to.size(); ++i) to[i].copy_(from[i]);
  }
  double lp_full = 0, lp_truncated = 0;
  {
    NoGradGuard ng;
    lp_full = sum(m.log_prob(m.examples(tokens))).item(), lp_truncated = sum(twin.log_prob(twin.examples(tokens))).item();
  }
  L.check_close("truncated BPTT (k = 10): log p(x) of both sequences, state detached every 10 steps vs not (float64)", lp_truncated, lp_full,
                1e-12 * std::abs(lp_full));
  Tensor in2 = twin.embed_inputs(tokens).detach().set_requires_grad(true);
  sum(select(select(log_softmax(twin.logits_from_inputs(in2), 2), 1, 49), 1, 0)).backward();
  double before = 0, before_full = 0, inside = 0;  // squared norms: t < 40 (earlier chunks), t >= 40 (x_49's chunk) against m's
  for (int64_t t = 0; t < 50; ++t)
    for (int64_t b = 0; b < o.embedding; ++b) {
      const int64_t at = t * o.embedding + b;
      if (t < 40) before += std::pow(in2.grad().at(at), 2), before_full += std::pow(in.grad().at(at), 2);
      else inside += std::pow(in2.grad().at(at) - in.grad().at(at), 2);
    }
  std::cout << "   truncated at k = 10: ||d log p(x_49) / d e_t|| over t < 40: " << std::sqrt(before) << " (through the whole sequence: "
            << std::sqrt(before_full) << ")\n";
  L.check_close("truncated BPTT: ||d log p(x_49) / d e_t|| over t < 40, the chunks before x_49's (engine's backward) vs 0", std::sqrt(before), 0.0,
                0.0);
  L.check_close("truncated BPTT: the gradient over t = 40..49, truncated vs through the whole sequence (norm of the difference)",
                std::sqrt(inside), 0.0, 1e-12);
  clipping(L, gen);
}

// ---------------------------------------------------------------- 5: the diagonal order and receptive fields
void diagonal_order(lesson::Lesson& L, Generator& gen) {
  std::cout << "\n5. PixelRNN's orders: sequential steps of one pass, and what each pixel sees\n";
  const int64_t N = 8;
  models::PixelRNNOptions o;
  o.levels = 2, o.height = N, o.width = N, o.channels = 16, o.hidden = 8, o.layers = 1;
  o.kind = "row";
  models::PixelRNN row(o, gen);
  o.kind = "diagonal";
  models::PixelRNN diag(o, gen);
  const Tensor x = gen.uniform({1, 1, N, N});
  row.image_logits(x), diag.image_logits(x);
  std::cout << "   counted in the recurrences' loops on 8x8: Row LSTM " << row.sequential_steps() << " steps, Diagonal BiLSTM "
            << diag.sequential_steps() << ", pixel-by-pixel sampling " << N * N << "\n";
  L.check_close("Diagonal BiLSTM's sequential steps on 8x8 (counted vs 2N - 1)", static_cast<double>(diag.sequential_steps()), 2.0 * N - 1, 0.0);
  L.check_close("Row LSTM's sequential steps on 8x8 (counted vs N)", static_cast<double>(row.sequential_steps()), static_cast<double>(N), 0.0);
  L.metric("diagonal_depth_8x8", static_cast<double>(diag.sequential_steps()));

  // receptive fields on a 16x16 image, of pixel (8, 8): |d logits(8, 8) / d x|, one backward pass per logit
  const int64_t S = 16, p = 8 * S + 8;
  models::PixelRNNOptions big = o;
  big.height = big.width = S;
  big.kind = "row";
  models::PixelRNN row16(big, gen);
  big.kind = "diagonal";
  models::PixelRNN diag16(big, gen);
  models::PixelCNN cnn16(2, 16, 2, S, S, gen);
  auto field = [&](const std::function<Tensor(const Tensor&)>& f, int64_t outs) {
    std::vector<double> seen(static_cast<size_t>(S * S), 0.0);
    for (int64_t a = 0; a < outs; ++a) {
      Tensor v = gen.uniform({1, 1, S, S}).set_requires_grad(true);
      const Tensor y = f(v);  // [1, outs, S, S]
      select(reshape(y, {outs * S * S}), 0, a * S * S + p).backward();
      for (int64_t q = 0; q < S * S; ++q) seen[static_cast<size_t>(q)] += std::abs(v.grad().at(q));
    }
    return seen;
  };
  const auto fr = field([&](const Tensor& v) { return row16.image_logits(v); }, 2);
  const auto fd = field([&](const Tensor& v) { return diag16.image_logits(v); }, 2);
  const auto fc = field([&](const Tensor& v) { return cnn16.logits(v); }, 1);
  auto count = [&](const std::vector<double>& f) {
    int64_t n = 0;
    for (int64_t q = 0; q < p; ++q) n += f[static_cast<size_t>(q)] > 0;
    return n;
  };
  int64_t future = 0;
  for (const auto* f : {&fr, &fd, &fc})
    for (int64_t q = p; q < S * S; ++q) future += (*f)[static_cast<size_t>(q)] > 0;
  std::cout << "   16x16, pixel (8, 8) has " << p << " predecessors; it depends on: Row LSTM " << count(fr) << " (a triangle above it), "
            << "Diagonal BiLSTM " << count(fd) << ", PixelCNN (7x7 + two 3x3 blocks) " << count(fc) << " (its blind spot: right of the centre, in the rows above)\n";
  L.check_close("Diagonal BiLSTM: predecessors of pixel (8, 8) of 16x16 it depends on (gradient vs all 136)", static_cast<double>(count(fd)),
                static_cast<double>(p), 0.0);
  L.check_close("Row LSTM, Diagonal BiLSTM, PixelCNN: pixel (8, 8)'s dependence on itself and later pixels (gradient vs 0)",
                static_cast<double>(future), 0.0, 0.0);
  // picture: one panel per model, the pixel itself grey, what it depends on white
  std::vector<float> panels;
  for (const auto* f : {&fr, &fd, &fc})
    for (int64_t q = 0; q < S * S; ++q) panels.push_back(q == p ? 0.5f : ((*f)[static_cast<size_t>(q)] > 0 ? 1.0f : 0.0f));
  image::save_image_grid(L.path("receptive_fields.png"), Tensor::from_vector(panels, {3, 1, S, S}), 3, 8, 2);
  std::cout << "   wrote receptive_fields.png (Row LSTM, Diagonal BiLSTM, PixelCNN; grey: pixel (8, 8), white: what it depends on)\n";
}

// ---------------------------------------------------------------- 6: words
struct Bigram {
  std::vector<double> logp;  // [27 + 1 (start)][27]: log p(next | previous), add-one smoothed
  double log_prob(const Tensor& tokens, int64_t row) const {
    double s = 0;
    int64_t prev = 27;  // start
    for (int64_t t = 0; t < tokens.size(1); ++t) {
      const int64_t v = static_cast<int64_t>(tokens.at(row * tokens.size(1) + t));
      s += logp[static_cast<size_t>(prev * 27 + v)];
      if (v == 0) break;
      prev = v;
    }
    return s;
  }
};

Bigram count_bigrams(const Tensor& train) {
  std::vector<double> n(28 * 27, 1.0);  // add-one
  const int64_t L = train.size(1);
  for (int64_t r = 0; r < train.size(0); ++r) {
    int64_t prev = 27;
    for (int64_t t = 0; t < L; ++t) {
      const int64_t v = static_cast<int64_t>(train.at(r * L + t));
      n[static_cast<size_t>(prev * 27 + v)] += 1;
      if (v == 0) break;
      prev = v;
    }
  }
  Bigram b;
  b.logp.resize(n.size());
  for (int64_t a = 0; a < 28; ++a) {
    double z = 0;
    for (int64_t v = 0; v < 27; ++v) z += n[static_cast<size_t>(a * 27 + v)];
    for (int64_t v = 0; v < 27; ++v) b.logp[static_cast<size_t>(a * 27 + v)] = std::log(n[static_cast<size_t>(a * 27 + v)] / z);
  }
  return b;
}

int64_t token_count(const Tensor& tokens) {  // letters and ends
  int64_t n = 0;
  for (int64_t r = 0; r < tokens.size(0); ++r)
    for (int64_t t = 0; t < tokens.size(1); ++t) {
      ++n;
      if (tokens.at(r * tokens.size(1) + t) == 0) break;
    }
  return n;
}

// A word's letters shuffled (the end kept at the end): the same letters, another order.
Tensor shuffle_letters(const Tensor& tokens, Generator& gen) {
  Tensor out = tokens.contiguous_copy();
  const int64_t L = tokens.size(1);
  for (int64_t r = 0; r < tokens.size(0); ++r) {
    int64_t len = 0;
    while (len < L && out.at(r * L + len) != 0) ++len;
    for (int64_t i = len - 1; i > 0; --i) std::swap(out.data<float>()[r * L + i], out.data<float>()[r * L + gen.randint(0, i + 1)]);
  }
  return out;
}

void words(lesson::Lesson& L, Generator& gen) {
  std::cout << "\n6. Words: a character model of English words (Debian's wamerican)\n";
  const data::DataSet d = lesson::harness::data_for("words", L.options());
  std::cout << "   " << d.description << "\n";
  const int64_t test_tokens = token_count(d.test);
  const Bigram bigram = count_bigrams(d.train);
  double bigram_nats = 0;
  for (int64_t r = 0; r < d.test.size(0); ++r) bigram_nats -= bigram.log_prob(d.test, r);
  const double bigram_bpc = bigram_nats / static_cast<double>(test_tokens) / std::log(2.0);
  std::cout << "   bigram by counting (add-one): " << std::fixed << std::setprecision(3) << bigram_bpc << " bits per character (" << test_tokens
            << " test tokens: letters and ends), " << std::setprecision(2) << bigram_nats / d.test.size(0) << " nats per word\n";
  L.metric("words_test_bpc_bigram", bigram_bpc);

  for (const std::string tag : {"words_lstm", "words_transformer"}) {
    const models::Recipe& r = models::recipe(tag);
    auto m = std::dynamic_pointer_cast<SequenceModel>(models::build(r, L.options().quick, gen));
    train::FitOptions o = L.training(r);
    o.data_transform = d.name + ": " + d.description;
    o.y_label = "nats per word";
    const auto f = train::fit(*m, d.train, d.validation, gen, o);
    m->eval();
    const train::Evaluation ev = train::evaluate(*m, d.test);
    const double bpc = ev.nll_nats * static_cast<double>(d.test.size(0)) / static_cast<double>(test_tokens) / std::log(2.0);
    const double bpc_se = ev.nll_se * static_cast<double>(d.test.size(0)) / static_cast<double>(test_tokens) / std::log(2.0);
    // the evaluation's bits/dim divides by the model's own count (its end-of-word mask), the line above by the lesson's
    L.check_close(tag + ": bits per character, the evaluation's (the model's mask) vs the lesson's count of letters and ends",
                  ev.bits_per_dim, bpc, 1e-9 * bpc);
    std::cout << "   " << r.title(L.options().quick) << ": " << std::setprecision(3) << bpc << " +- " << bpc_se << " bits per character, "
              << std::setprecision(2) << ev.nll_nats << " nats per word (test; " << f.steps << " steps, " << std::setprecision(0) << f.seconds
              << " s)\n";
    const std::string key = tag == "words_lstm" ? "words_test_bpc_rnn" : "words_test_bpc_transformer";
    L.metric(key, bpc, bpc_se);
    L.metric(tag + "_test_nll_nats_per_word", ev.nll_nats, ev.nll_se);
    if (!L.options().quick)
      L.check_le(std::string(tag == "words_lstm" ? "words, the LSTM" : "words, the Transformer") + ": bits per character <= 0.85 x the bigram's (test)",
                 bpc, 0.85 * bigram_bpc);
    // invented words at three temperatures
    std::ostringstream text;
    for (const double T : {0.5, 1.0, 1.5}) {
      const Tensor s = m->sample_token_ids(12, gen, {T, 0});
      text << "T = " << T << ":";
      std::cout << "   " << tag << " at T = " << std::setprecision(1) << T << ":";
      for (int64_t i = 0; i < 12; ++i) {
        const std::string w = data::decode_word(s, i);
        text << " " << w;
        if (i < 8) std::cout << " " << w;
      }
      text << "\n";
      std::cout << "\n";
    }
    L.write_text(tag + "_samples.txt", text.str());
    if (tag == "words_lstm") {
      // real words against the same letters shuffled: the model has learned which orders are English
      NoGradGuard ng;
      const Tensor real = slice(d.test, 0, 0, 1000), shuffled = shuffle_letters(real, gen);
      const double nll_real = -mean(m->log_prob(real)).item(), nll_shuffled = -mean(m->log_prob(shuffled)).item();
      std::cout << "   1,000 test words: " << std::setprecision(2) << nll_real << " nats per word; their letters shuffled: " << nll_shuffled << "\n";
      L.check_le("LSTM: NLL of real words <= NLL of the same letters shuffled (nats per word)", nll_real, nll_shuffled);
    }
  }
}

// ---------------------------------------------------------------- 7: the digits
void digits(lesson::Lesson& L, Generator& gen) {
  std::cout << "\n7. The 8x8 digits at 17 levels: a Transformer and a Diagonal BiLSTM\n";
  const data::DataSet d = lesson::harness::data_for("digits17", L.options());
  const Tensor flat_train = reshape(d.train, {d.train.size(0), -1}), flat_val = reshape(d.validation, {d.validation.size(0), -1}),
               flat_test = reshape(d.test, {d.test.size(0), -1});
  std::shared_ptr<models::Transformer> transformer;
  for (const std::string tag : {"digits_transformer", "digits_pixelrnn"}) {
    const models::Recipe& r = models::recipe(tag);
    auto m = std::dynamic_pointer_cast<SequenceModel>(models::build(r, L.options().quick, gen));
    train::FitOptions o = L.training(r);
    o.data_transform = d.name + ": " + d.description;
    const auto f = train::fit(*m, r.flat ? flat_train : d.train, r.flat ? flat_val : d.validation, gen, o);
    m->eval();
    const train::Evaluation ev = train::evaluate(*m, r.flat ? flat_test : d.test);
    std::cout << "   " << r.title(L.options().quick) << ": test NLL " << std::fixed << std::setprecision(2) << ev.nll_nats << " +- " << ev.nll_se
              << " nats (" << std::setprecision(3) << ev.bits_per_dim << " bits/dim); " << f.steps << " steps, " << std::setprecision(0)
              << f.seconds << " s\n";
    L.metric(tag == "digits_transformer" ? "digits_test_nll_nats_transformer" : "digits_test_nll_nats_pixelrnn", ev.nll_nats, ev.nll_se);
    const Tensor samples = reshape(m->sample(32, gen), {32, 1, 8, 8});
    image::save_image_grid(L.path(tag + "_samples.png"), samples, 8, image::upscale_for(8), 2);
    std::cout << "   wrote " << tag << "_samples.png\n";
    if (!L.options().quick)
      L.check_le(std::string(tag == "digits_transformer" ? "digits, the Transformer" : "digits, the Diagonal BiLSTM") +
                     ": test NLL <= 95 nats (the MADE's 97.6)",
                 ev.nll_nats, 95.0);
    if (tag == "digits_transformer") transformer = std::dynamic_pointer_cast<models::Transformer>(m);
  }

  // one pass vs 64 passes, on the trained Transformer: log p(x) by teacher forcing, and as the
  // sum of 64 conditionals each computed from its prefix alone (the default next(): the whole prefix again)
  models::Transformer& m = *transformer;
  const Tensor x = slice(flat_test, 0, 0, 4), tokens = m.tokens(x);
  const Tensor one_pass = m.log_prob(x);
  const Tensor stepwise = m.log_prob_stepwise(x, /*prefix_only=*/true);
  double worst = 0;
  for (int64_t r = 0; r < 4; ++r) worst = std::max(worst, std::abs(stepwise.at(r) - one_pass.at(r)));
  std::cout << "   log p(x) of test image 0: " << std::setprecision(4) << one_pass.at(0) << " nats in one pass, " << stepwise.at(0)
            << " as 64 conditionals from 64 passes\n";
  L.check_close("Transformer: log p(x) one pass vs the sum of 64 one-prefix passes (nats, float32)", worst, 0.0, 1e-3);

  // the KV cache in float64: cached steps vs recomputing the whole prefix
  m.to(DType::Float64);
  double kv = 0;
  {
    NoGradGuard ng;
    auto cached = m.start(4);
    auto prefix = m.SequenceModel::start(4);
    Tensor token = Tensor::from_indices(std::vector<int64_t>(4, m.bos()), {4});
    for (int64_t t = 0; t < 64; ++t) {
      const Tensor a = m.next(*cached, token), b = m.SequenceModel::next(*prefix, token);
      for (int64_t i = 0; i < a.numel(); ++i) kv = std::max(kv, std::abs(a.at(i) - b.at(i)));
      token = select(tokens, 1, t).contiguous_copy();
    }
  }
  L.check_close("KV cache: logits of 64 cached steps vs the prefix recomputed (float64, max |diff|)", kv, 0.0, 1e-12);
  L.metric("kv_cache_max_abs_diff", kv);
  m.to(DType::Float32);

  // cost against the length: seconds per sequence of n tokens, cached and recomputed
  std::vector<std::vector<double>> rows;
  for (const int64_t n : {8, 16, 32, 64}) {
    NoGradGuard ng;
    double secs[2];
    for (int k = 0; k < 2; ++k) {
      progress::Stopwatch clock;
      auto c = k == 0 ? m.start(16) : m.SequenceModel::start(16);
      Tensor token = Tensor::from_indices(std::vector<int64_t>(16, m.bos()), {16});
      for (int64_t t = 0; t < n; ++t) token = models::sample_tokens(k == 0 ? m.next(*c, token) : m.SequenceModel::next(*c, token), {}, gen);
      secs[k] = clock.seconds();
    }
    rows.push_back({static_cast<double>(n), secs[0], secs[1]});
  }
  L.write_csv("kv_cache_cost.csv", {"tokens", "cached_seconds", "recomputed_seconds"}, rows);
  plot::line_plot(L.path("kv_cache_cost.csv"), L.path("kv_cache_cost.png"), "sampling 16 sequences: the KV cache against the prefix recomputed",
                  "tokens drawn", "seconds", 1, {{2, "KV cache"}, {3, "prefix recomputed"}}, true, true);
  std::cout << "   16 sequences of 64 tokens: " << std::setprecision(3) << rows.back()[1] << " s with the cache, " << rows.back()[2]
            << " s recomputing every prefix (kv_cache_cost.png)\n";
}

// ---------------------------------------------------------------- 8: a Row LSTM on binarized Fashion-MNIST (full run)
void fashion(lesson::Lesson& L, Generator& gen, double minutes) {
  std::cout << "\n8. Binarized Fashion-MNIST (784 tokens): a Row LSTM within a time budget\n";
  const data::DataSet d = lesson::harness::data_for("fashion_binarized", L.options());
  std::cout << "   " << d.description << "\n";
  const models::Recipe& r = models::recipe("fashion_pixelrnn");
  auto m = std::dynamic_pointer_cast<SequenceModel>(models::build(r, false, gen));
  train::FitOptions o = L.training(r);
  if (L.options().epochs == 0) o.max_seconds = minutes * 60;  // --epochs: that many passes instead
  o.data_transform = d.name + ": " + d.description;
  if (d.prepare) o.prepare = [&d, &gen](const Tensor& x) { return d.prepare(x, gen); };  // binarized afresh every batch
  const auto f = train::fit(*m, d.train, d.validation, gen, o);
  m->eval();
  const train::Evaluation test = train::evaluate(*m, d.test, 250);
  const train::Evaluation tr = train::evaluate(*m, slice(d.train_eval, 0, 0, d.test.size(0)), 250);
  std::cout << "   " << r.title(false) << ": test NLL " << std::fixed << std::setprecision(2) << test.nll_nats << " +- " << test.nll_se
            << " nats (" << std::setprecision(3) << test.bits_per_dim << " bits/dim), train " << std::setprecision(2) << tr.nll_nats << "; "
            << f.steps << " steps (" << std::setprecision(1) << static_cast<double>(f.steps * r.full.batch_size) / static_cast<double>(d.train.size(0))
            << " passes), " << std::setprecision(0) << f.seconds << " s\n";
  L.metric("fashion_test_nll_nats_pixelrnn", test.nll_nats, test.nll_se);
  L.metric("fashion_train_nll_nats_pixelrnn", tr.nll_nats);
  L.check_le("binarized Fashion, the Row LSTM: test NLL below the uniform model's 784 ln 2 = 543 nats", test.nll_nats, 784 * std::log(2.0));
  const Tensor samples = m->sample(16, gen);
  image::save_image_grid(L.path("fashion_pixelrnn_samples.png"), samples, 8, image::upscale_for(28), 2);
  std::cout << "   wrote fashion_pixelrnn_samples.png\n";
}

}  // namespace

int main(int argc, char** argv) {
  lesson::Lesson L("sequence", "sequence models: an RNN language model, PixelRNN's diagonal order, the Transformer and its KV cache");
  bool skip_words = false, skip_fashion = false;
  L.app().add_flag("--skip-words", skip_words, "Leave out the word models (section 6)");
  L.app().add_flag("--skip-fashion", skip_fashion, "Leave out the Row LSTM on binarized Fashion-MNIST (section 8, full runs only)");
  double minutes = models::recipe("fashion_pixelrnn").full.minutes;
  L.app().add_option("--minutes", minutes, "Training time of the Row LSTM on binarized Fashion-MNIST, minutes (section 8)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  return L.run(argc, argv, [&] {
    Generator gen(L.options().seed);
    chain_rule_and_causality(L, gen);
    bptt(L, gen);
    diagonal_order(L, gen);
    if (!skip_words) words(L, gen);
    digits(L, gen);
    if (!L.options().quick && !skip_fashion) {
      try {
        fashion(L, gen, minutes);
      } catch (const data::DataNotFound& e) {
        std::cout << "   skipped binarized Fashion-MNIST: " << e.what() << "\n";
      }
    }
  });
}
