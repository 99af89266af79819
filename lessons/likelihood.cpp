// lessons/likelihood.cpp — what a likelihood means (docs/chapters/likelihood.md).
//
// 1. Cross-entropy = entropy + KL, in nats and in bits.
// 2. Forward vs reverse KL: one Gaussian fitted to two separated modes both
//    ways; mode covering vs mode seeking.
// 3. Compression = likelihood: an rANS coder driven by a trained MADE packs
//    the test digits into about -log2 p(x) bits each, and gets them back bit
//    for bit; gzip and xz on the same bytes.
// 4. The memorization bound: a model that memorises N images scores at most
//    log2 N bits per training image, and is catastrophic on new ones.
// 5. The train/test gap of every model of the harness on the digits, and the
//    overfitting curve of one (train keeps falling, test turns up).
// 6. Sample-based divergences: MMD and its permutation test, a good and a bad
//    model of a 2-D toy, against the closed form.
#include <lzma.h>
#include <zlib.h>

#include <cmath>
#include <iomanip>
#include <iostream>
#include <map>

#include "autograd/graph.h"
#include "autograd/optim.h"
#include "lessons/common/harness.h"
#include "lessons/common/lesson.h"
#include "models/divergences.h"
#include "models/made.h"
#include "models/mixtures.h"
#include "models/toolkit/distributions.h"
#include "models/toolkit/plot.h"
#include "models/toolkit/progress.h"
#include "models/toolkit/rans.h"
#include "models/toolkit/toy2d.h"
#include "models/toolkit/trainer.h"

using namespace dgm;

namespace {

constexpr double kLn2 = 0.69314718055994530942;

// Grey levels 0..16 of the digits' images [N, 1, 8, 8] as symbols, row-major [N * 64].
std::vector<int64_t> symbols_of(const Tensor& images) {
  const Tensor idx = dist::levels_to_index(reshape(images, {images.size(0), -1}), 17);
  std::vector<int64_t> s(static_cast<size_t>(idx.numel()));
  for (int64_t i = 0; i < idx.numel(); ++i) s[static_cast<size_t>(i)] = static_cast<int64_t>(idx.at(i));
  return s;
}

// ------------------------------------------------------------ 1. cross-entropy = entropy + KL
void cross_entropy(lesson::Lesson& L, const lesson::DigitSplits& d) {
  std::cout << "\n-- 1. Cross-entropy = entropy + KL. p: the grey levels of the test digits' pixels (17 values);\n"
               "   q: a model of them, the training pixels' histogram with add-one smoothing\n";
  const std::vector<int64_t> train = symbols_of(d.train.images), test = symbols_of(d.test.images);
  std::vector<double> p(17, 0), q(17, 1);  // q: add-one
  for (int64_t s : test) p[static_cast<size_t>(s)] += 1.0 / static_cast<double>(test.size());
  for (int64_t s : train) q[static_cast<size_t>(s)] += 1;
  double qs = 0;
  for (double v : q) qs += v;
  for (double& v : q) v /= qs;
  // route (a): the average code length of the test pixels under q, one pixel at a time
  double ce_nats = 0, ce_bits = 0;
  for (int64_t s : test) {
    ce_nats -= std::log(q[static_cast<size_t>(s)]) / static_cast<double>(test.size());
    ce_bits -= std::log2(q[static_cast<size_t>(s)]) / static_cast<double>(test.size());
  }
  // route (b): H(p) and KL(p || q) from the two histograms
  double H = 0, KL = 0;
  for (size_t k = 0; k < 17; ++k)
    if (p[k] > 0) {
      H -= p[k] * std::log(p[k]);
      KL += p[k] * std::log(p[k] / q[k]);
    }
  std::cout << std::fixed << std::setprecision(6) << "   H(p) = " << H << " nats, KL(p || q) = " << KL << " nats, "
            << "uniform over 17 levels: ln 17 = " << std::log(17.0) << " nats\n";
  L.check_close("cross-entropy, the mean of -ln q(x) over the test pixels vs H(p) + KL(p || q), nats", ce_nats, H + KL, 1e-10);
  std::cout << "   in bits: " << ce_bits << " per pixel (nats / ln 2; step 3 measures bits as an actual code's length)\n";
  L.check_le("Gibbs' inequality: 0 <= KL(p || q)", 0.0, KL);
  std::cout << "   per 8x8 image (if pixels were independent): " << std::setprecision(2) << 64 * ce_bits << " bits; "
            << "the models below do far better by modelling the pixels jointly\n";
}

// ------------------------------------------------------------ 2. forward vs reverse KL
// p(x) = 0.5 N(-3, 0.5^2) + 0.5 N(3, 0.5^2); q(x) = N(m, s^2).
double log_p_mixture(double x) {
  auto comp = [](double x, double mu) { return -0.5 * std::pow((x - mu) / 0.5, 2) - std::log(0.5 * std::sqrt(2 * M_PI)); };
  const double a = comp(x, -3), b = comp(x, 3), m = std::max(a, b);
  return m + std::log(0.5 * std::exp(a - m) + 0.5 * std::exp(b - m));
}
double log_normal(double x, double m, double s) { return -0.5 * std::pow((x - m) / s, 2) - std::log(s * std::sqrt(2 * M_PI)); }

// KL(a || b) = int a log(a / b) by Simpson's rule on [-12, 12] (plain doubles).
double kl_quadrature(const std::function<double(double)>& log_a, const std::function<double(double)>& log_b) {
  const int n = 24000;
  const double lo = -12, h = 24.0 / n;
  std::vector<double> f(n + 1);
  for (int i = 0; i <= n; ++i) {
    const double x = lo + i * h, la = log_a(x);
    f[static_cast<size_t>(i)] = la < -700 ? 0.0 : std::exp(la) * (la - log_b(x));
  }
  return lesson::simpson(f, h);
}

struct Gaussian1D {
  double m, s;
};

// Minimises a KL over (m, log s) with Adam through the engine; the
// expectation is a fixed quadrature (deterministic gradients).
//   forward:  KL(p || q) = -H(p) - E_p[log q],  E_p by quadrature in x
//   reverse:  KL(q || p) = E_q[log q - log p],   x = m + s eps (reparameterised), E over eps by quadrature
Gaussian1D fit_gaussian(bool forward, double m0) {
  const int n = 1200;
  std::vector<double> grid(n + 1), weight(n + 1);
  const double lo = -8.0, hi = 8.0, h = (hi - lo) / n;
  for (int i = 0; i <= n; ++i) {
    const double x = lo + i * h, simpson_w = (i == 0 || i == n) ? 1 : (i % 2 ? 4 : 2);
    grid[static_cast<size_t>(i)] = x;
    // forward: x-grid weights p(x) dx; reverse: eps-grid weights phi(eps) d eps
    weight[static_cast<size_t>(i)] = simpson_w * h / 3 * (forward ? std::exp(log_p_mixture(x)) : std::exp(log_normal(x, 0, 1)));
  }
  const Tensor G = Tensor::from_vector(grid, {n + 1}), W = Tensor::from_vector(weight, {n + 1});
  Tensor m = Tensor::scalar(m0, DType::Float64).set_requires_grad(true);
  Tensor log_s = Tensor::scalar(0.0, DType::Float64).set_requires_grad(true);
  optim::Adam opt({m, log_s}, 0.05);
  for (int step = 0; step < 3000; ++step) {
    opt.zero_grad();
    const Tensor s = exp(log_s);
    Tensor loss;
    if (forward) {  // -E_p log q (H(p) is a constant)
      loss = sum(W * (0.5 * pow((G - m) / s, 2.0) + log_s));
    } else {  // E_q[log q(x) - log p(x)], x = m + s eps
      const Tensor x = m + s * G;
      const Tensor log_q = -0.5 * pow(G, 2.0) - log_s;
      const Tensor a = -0.5 * pow((x + 3.0) / 0.5, 2.0), b = -0.5 * pow((x - 3.0) / 0.5, 2.0);
      const Tensor log_p = logsumexp(stack({a, b}, 0), {0}) + std::log(0.5 / (0.5 * std::sqrt(2 * M_PI)));
      loss = sum(W * (log_q - std::log(std::sqrt(2 * M_PI)) - log_p));
    }
    loss.backward();
    opt.step();
    if (step == 2000) opt.set_lr(0.005);
  }
  return {m.item(), std::exp(log_s.item())};
}

void kl_both_ways(lesson::Lesson& L) {
  std::cout << "\n-- 2. Forward vs reverse KL: fit q = N(m, s^2) to p = 0.5 N(-3, 0.5^2) + 0.5 N(3, 0.5^2)\n"
               "   forward KL(p || q) (maximum likelihood) by Adam through the engine; closed form: q matches p's\n"
               "   mean 0 and variance 0.25 + 9 = 9.25. Reverse KL(q || p) (variational inference) by Adam on the\n"
               "   reparameterised objective, from m = +1 and from m = -1\n";
  const Gaussian1D fwd = fit_gaussian(true, 1.0), rev_r = fit_gaussian(false, 1.0), rev_l = fit_gaussian(false, -1.0);
  std::cout << std::fixed << std::setprecision(5) << "   forward: m = " << fwd.m << ", s^2 = " << fwd.s * fwd.s << "\n"
            << "   reverse from +1: m = " << rev_r.m << ", s = " << rev_r.s << ";  from -1: m = " << rev_l.m << ", s = " << rev_l.s << "\n";
  L.check_close("forward KL: the fitted mean vs the closed form E_p[x] = 0", fwd.m, 0.0, 1e-3);
  L.check_close("forward KL: the fitted variance vs the closed form Var_p[x] = 9.25", fwd.s * fwd.s, 9.25, 1e-3);
  L.check_close("reverse KL from m = +1: the mean settles on the mode at +3", rev_r.m, 3.0, 1e-3);
  L.check_close("reverse KL from m = -1: the mean settles on the mode at -3", rev_l.m, -3.0, 1e-3);
  L.check_close("reverse KL: the standard deviation is the mode's own, 0.5", rev_r.s, 0.5, 1e-3);
  auto lq = [](Gaussian1D g) { return [g](double x) { return log_normal(x, g.m, g.s); }; };
  const double rev_cost = kl_quadrature(lq(rev_r), log_p_mixture);
  L.check_close("KL(q_reverse || p) by quadrature vs ln 2 (q sees half of p's mass: -log 0.5)", rev_cost, std::log(2.0), 1e-6);
  const double f_f = kl_quadrature(log_p_mixture, lq(fwd)), f_r = kl_quadrature(log_p_mixture, lq(rev_r));
  const double r_f = kl_quadrature(lq(fwd), log_p_mixture);
  std::cout << std::setprecision(3) << "   KL(p || q):  q_forward " << f_f << ", q_reverse " << f_r << " nats\n"
            << "   KL(q || p):  q_forward " << r_f << ", q_reverse " << rev_cost << " nats\n";
  L.check_le("each fit wins its own objective: KL(p || q_forward) <= KL(p || q_reverse)", f_f, f_r);
  L.check_le("each fit wins its own objective: KL(q_reverse || p) <= KL(q_forward || p)", rev_cost, r_f);
  std::vector<std::vector<double>> rows;
  for (double x = -7; x <= 7.0001; x += 0.02)
    rows.push_back({x, std::exp(log_p_mixture(x)), std::exp(log_normal(x, fwd.m, fwd.s)), std::exp(log_normal(x, rev_r.m, rev_r.s))});
  L.write_csv("kl_both_ways.csv", {"x", "p", "q_forward_kl", "q_reverse_kl"}, rows);
  plot::line_plot(L.path("kl_both_ways.csv"), L.path("kl_both_ways.png"), "one Gaussian fitted to two modes", "x", "density", 1,
                  {{2, "p (data)"}, {3, "q by forward KL: covers both modes"}, {4, "q by reverse KL: seeks one mode"}});
  std::cout << "   wrote kl_both_ways.png\n";
  L.metric("forward_kl_fit_variance", fwd.s * fwd.s);
  L.metric("reverse_kl_fit_mean", rev_r.m);
}

// ------------------------------------------------------------ 3. compression = likelihood
// The probabilities MADE gives dimension order[i] of every image, given the
// dimensions before it (the rest of `known` is zero and unseen by the masks),
// quantised to rANS tables. Encoder and decoder call exactly this on exactly
// the same inputs, so their tables agree bit for bit.
std::vector<coding::FrequencyTable> tables_at(models::MADE& made, const Tensor& known, int64_t i) {
  NoGradGuard ng;
  const int64_t N = known.size(0), D = made.dims(), K = made.levels(), d = made.order()[static_cast<size_t>(i)];
  const Tensor logits = made.logits(known).contiguous_copy();  // [N, K, D]
  std::vector<coding::FrequencyTable> t(static_cast<size_t>(N));
  std::vector<double> p(static_cast<size_t>(K));
  for (int64_t n = 0; n < N; ++n) {
    double top = -INFINITY;
    for (int64_t k = 0; k < K; ++k) top = std::max(top, logits.at((n * K + k) * D + d));
    for (int64_t k = 0; k < K; ++k) p[static_cast<size_t>(k)] = std::exp(logits.at((n * K + k) * D + d) - top);
    t[static_cast<size_t>(n)] = coding::quantise(p);
  }
  return t;
}

std::vector<uint8_t> gzip_bytes(const std::vector<uint8_t>& raw) {
  uLongf size = compressBound(raw.size());
  std::vector<uint8_t> out(size);
  if (compress2(out.data(), &size, raw.data(), raw.size(), 9) != Z_OK) throw Error("zlib compress2 failed");
  out.resize(size);
  return out;
}

std::vector<uint8_t> xz_bytes(const std::vector<uint8_t>& raw) {
  std::vector<uint8_t> out(raw.size() + raw.size() / 2 + 1024);
  size_t pos = 0;
  if (lzma_easy_buffer_encode(9 | LZMA_PRESET_EXTREME, LZMA_CHECK_NONE, nullptr, raw.data(), raw.size(), out.data(), &pos,
                              out.size()) != LZMA_OK)
    throw Error("lzma_easy_buffer_encode failed");
  out.resize(pos);
  return out;
}

struct CompressionResult {
  double compressed_bpd = 0, model_bpd = 0;
  bool exact = false;
};

CompressionResult compression(lesson::Lesson& L, models::MADE& made, const Tensor& test_images) {
  const int64_t N = test_images.size(0), D = made.dims();
  std::cout << "\n-- 3. Compression = likelihood: rANS (2^16-quantised probabilities) driven by the MADE, on the " << N
            << " test digits\n   (one message for the whole set; symbols in the order the decoder needs them: dimension by "
               "dimension, image by image)\n";
  const std::vector<int64_t> sym = symbols_of(test_images);
  progress::Stopwatch clock;
  // the tables in decoding order, computed from the images known so far
  std::vector<std::vector<coding::FrequencyTable>> tables(static_cast<size_t>(D));
  Tensor known = Tensor::zeros({N, D});
  for (int64_t i = 0; i < D; ++i) {
    tables[static_cast<size_t>(i)] = tables_at(made, known, i);
    const int64_t d = made.order()[static_cast<size_t>(i)];
    for (int64_t n = 0; n < N; ++n) known.data<float>()[n * D + d] = static_cast<float>(sym[static_cast<size_t>(n * D + d)]) / 16.f;
  }
  coding::Encoder enc;
  double ideal_bits = 0;
  for (int64_t i = D - 1; i >= 0; --i)
    for (int64_t n = N - 1; n >= 0; --n) {
      const auto& t = tables[static_cast<size_t>(i)][static_cast<size_t>(n)];
      const int64_t s = sym[static_cast<size_t>(n * D + made.order()[static_cast<size_t>(i)])];
      enc.put(t, s);
      ideal_bits += t.bits(s);
    }
  const std::vector<uint8_t> message = enc.finish();
  const double encode_seconds = clock.seconds();
  // decode: the decoder sees only the message and the model
  clock.restart();
  coding::Decoder dec(message);
  Tensor decoded = Tensor::zeros({N, D});
  std::vector<int64_t> back(sym.size(), -1);
  for (int64_t i = 0; i < D; ++i) {
    const auto t = tables_at(made, decoded, i);
    const int64_t d = made.order()[static_cast<size_t>(i)];
    for (int64_t n = 0; n < N; ++n) {
      const int64_t s = dec.get(t[static_cast<size_t>(n)]);
      back[static_cast<size_t>(n * D + d)] = s;
      decoded.data<float>()[n * D + d] = static_cast<float>(s) / 16.f;
    }
  }
  const double decode_seconds = clock.seconds();
  int64_t wrong = 0;
  for (size_t k = 0; k < sym.size(); ++k) wrong += back[k] != sym[k];

  const double dims = static_cast<double>(N * D);
  const train::Evaluation ev = train::evaluate(made, reshape(test_images, {N, D}));
  CompressionResult r;
  r.model_bpd = ev.bits_per_dim;
  r.compressed_bpd = 8.0 * static_cast<double>(message.size()) / dims;
  r.exact = wrong == 0 && dec.done();
  std::vector<uint8_t> raw(sym.begin(), sym.end());
  const double gz = 8.0 * static_cast<double>(gzip_bytes(raw).size()) / dims, xz = 8.0 * static_cast<double>(xz_bytes(raw).size()) / dims;
  std::cout << std::fixed << std::setprecision(4) << "   bits per dimension on the same " << N << " images:\n"
            << "     one byte per pixel                 8.0000\n"
            << "     a fixed-length code, log2 17       " << std::log2(17.0) << "\n"
            << "     gzip -9                            " << gz << "\n"
            << "     xz -9e                             " << xz << "\n"
            << "     the MADE's NLL, -log2 p(x) / D     " << r.model_bpd << "\n"
            << "     rANS with the MADE                 " << r.compressed_bpd << "   (" << message.size() << " bytes, "
            << std::setprecision(1) << 8.0 * message.size() / N << " bits per image; encode " << std::setprecision(2)
            << encode_seconds << " s, decode " << decode_seconds << " s)\n";
  std::cout << "   (the coder can come out a little under the model's NLL: a quantised probability is at least 2^-16, so a\n"
               "    pixel the model thought nearly impossible costs at most 16 bits here, and more than that in its NLL)\n";
  const double tol = 0.01 * r.model_bpd + 8.0 * 4 / dims;
  L.check_close("compressed size vs the model's NLL, bits/dim (tolerance 1% + the 4-byte final state)", r.compressed_bpd,
                r.model_bpd, tol);
  L.check_close("compressed bits vs the ideal code length sum -log2(f/2^16) of the quantised tables, bits/dim", r.compressed_bpd,
                ideal_bits / dims, 8.0 * 6 / dims);
  L.check_close("decoding gives back every image bit for bit: wrong symbols", static_cast<double>(wrong), 0.0, 0.0);
  L.check_close("the decoder read every byte and ended in the encoder's initial state", dec.done() ? 1.0 : 0.0, 1.0, 0.0);
  L.write_csv("compression.csv", {"raw_bpd", "fixed_length_bpd", "gzip_bpd", "xz_bpd", "model_nll_bpd", "rans_bpd"},
              {{8.0, std::log2(17.0), gz, xz, r.model_bpd, r.compressed_bpd}});
  L.metric("compressed_bpd", r.compressed_bpd);
  L.metric("model_nll_bpd", r.model_bpd);
  L.metric("decode_exact", r.exact ? 1 : 0);
  L.metric("gzip_bpd", gz);
  L.metric("xz_bpd", xz);
  return r;
}

// ------------------------------------------------------------ 4. the memorization bound
void memorization(lesson::Lesson& L, const lesson::DigitSplits& d, models::MADE& made) {
  const int64_t N = d.train.size(), D = 64;
  const double eps = 0.01, log2_uniform = D * std::log2(17.0);
  std::cout << "\n-- 4. The memorization bound: p_mem(x) = (1 - eps) #{n: x_n = x} / N + eps 17^-64, eps = " << eps
            << ", N = " << N << " training images\n";
  const std::vector<int64_t> train = symbols_of(d.train.images), test = symbols_of(d.test.images);
  std::map<std::vector<int64_t>, int64_t> count;
  for (int64_t n = 0; n < N; ++n) ++count[std::vector<int64_t>(train.begin() + n * D, train.begin() + (n + 1) * D)];
  auto bits = [&](const std::vector<int64_t>& s, int64_t n) {
    const auto it = count.find(std::vector<int64_t>(s.begin() + n * D, s.begin() + (n + 1) * D));
    const double c = it == count.end() ? 0.0 : static_cast<double>(it->second);
    // -log2 of the sum of the two terms, added in the log domain (17^-64 is 2^-261.6)
    const double a = c > 0 ? std::log2((1 - eps) * c / N) : -INFINITY, b = std::log2(eps) - log2_uniform;
    const double m = std::max(a, b);
    return -(m + std::log2(std::exp2(a - m) + std::exp2(b - m)));
  };
  double train_bits = 0, test_bits = 0;
  for (int64_t n = 0; n < N; ++n) train_bits += bits(train, n) / N;
  const int64_t Nt = d.test.size();
  int64_t seen = 0;
  for (int64_t n = 0; n < Nt; ++n) {
    test_bits += bits(test, n) / Nt;
    seen += count.count(std::vector<int64_t>(test.begin() + n * D, test.begin() + (n + 1) * D));
  }
  const double bound = std::log2(static_cast<double>(N)) - std::log2(1 - eps);
  const double made_train = train::evaluate(made, reshape(d.train.images, {N, D})).nll_nats / kLn2;
  const double made_test = train::evaluate(made, reshape(d.test.images, {Nt, D})).nll_nats / kLn2;
  std::cout << std::fixed << std::setprecision(2) << "   bits per image        train      test\n"
            << "   memorizer        " << std::setw(10) << train_bits << std::setw(10) << test_bits << "   (" << seen << " of " << Nt
            << " test images occur in the training set)\n"
            << "   MADE             " << std::setw(10) << made_train << std::setw(10) << made_test << "\n"
            << "   uniform          " << std::setw(10) << log2_uniform << std::setw(10) << log2_uniform << "\n"
            << "   the bound log2 N: " << std::log2(static_cast<double>(N)) << " bits for this training set; "
            << std::log2(50000.0) << " bits for N = 50,000 (MNIST's training set), i.e. " << std::setprecision(3)
            << std::log2(50000.0) / 784 << " bits/dim there\n";
  L.check_le("memorizer: train bits per image <= log2 N - log2(1 - eps), counted image by image vs the closed form", train_bits,
             bound + 1e-9);
  L.check_le("memorizer: on test images it is worse than the uniform model (64 log2 17 bits)", log2_uniform, test_bits);
  L.check_le("the MADE cannot beat the memorizer on its training images", train_bits, made_train);
  L.metric("memorization_bound_bits", std::log2(static_cast<double>(N)));
  L.metric("memorizer_train_bits", train_bits);
  L.metric("memorizer_test_bits", test_bits);
}

// ------------------------------------------------------------ 5. the train/test gap
void gaps(lesson::Lesson& L, const lesson::harness::DataSet& digits, const std::vector<models::Recipe>& recipes,
          const lesson::harness::Row& made_row, const lesson::harness::Settings& s, Generator& gen) {
  std::cout << "\n-- 5. The train/test gap of every model of the harness (lesson_leaderboard) on the digits";
  std::vector<lesson::harness::Row> rows = {made_row};
  const std::vector<models::Recipe> rest(recipes.begin() + 1, recipes.end());
  const auto more = lesson::harness::run_table(rest, digits, s, gen);
  rows.insert(rows.end(), more.begin(), more.end());
  std::cout << "\n" << lesson::harness::markdown(rows) << "\n";
  lesson::harness::write_csv(L.path("gaps.csv"), rows);
  for (const auto& r : rows) L.metric(r.tag + "_gap_nats", r.gap_nats);

  const bool quick = L.options().quick;
  const int64_t n_small = 100;
  const models::Recipe& recipe = models::recipe("digits_made");  // the full MADE of the recipe, on a tenth of its data
  std::cout << "   Overfitting, watched: a " << recipe.title(false) << " on only the first " << n_small
            << " training digits, no early stopping; its NLL on them and on the validation digits\n";
  auto model = models::build(recipe, false, gen);
  auto& made = *model;
  train::FitOptions o;
  o.epochs = L.epochs(quick ? 60 : 150, 150);
  o.batch_size = 25;
  o.keep_best = false;
  o.tag = "overfitting_made";
  o.recipe = recipe.tag;
  L.configure(o);  // the output folder, --resume, --epochs, --lr
  o.curve_title = "MADE on 100 digits: train keeps falling, validation turns up";
  const Tensor small = reshape(slice(digits.train, 0, 0, n_small), {n_small, 64});
  const Tensor val = reshape(digits.validation, {digits.validation.size(0), 64});
  std::vector<std::vector<double>> curve;
  o.extra_columns = {"train_nll_nats_exact"};
  o.extra = [&] { return std::vector<double>{train::evaluate(made, small).nll_nats}; };
  const train::FitResult fr = train::fit(made, small, val, gen, o);
  size_t best = 0;
  for (size_t e = 0; e < fr.curve.size(); ++e)
    if (fr.curve[e][2] < fr.curve[best][2]) best = e;
  const auto& last = fr.curve.back();
  std::cout << std::fixed << std::setprecision(2) << "   validation is lowest at epoch " << static_cast<int>(fr.curve[best][0]) << ": "
            << fr.curve[best][2] << " nats (train " << fr.curve[best][3] << "); at the last epoch " << static_cast<int>(last[0])
            << ": validation " << last[2] << ", train " << last[3] << "   (overfitting_made_curve.png)\n";
  L.check_le("overfitting: the training NLL keeps falling after the validation minimum", last[3], fr.curve[best][3]);
  L.check_le("overfitting: the validation NLL turns up, by at least 1 nat, after its minimum", fr.curve[best][2] + 1.0, last[2]);
  L.metric("overfitting_best_validation_epoch", fr.curve[best][0]);
}

// ------------------------------------------------------------ 6. MMD
models::GaussianMixture eight_gaussians() {
  const data::Modes modes = data::toy_modes(data::Toy::EightGaussians);
  models::GaussianMixture g;
  const int64_t K = modes.centres.size(0);
  g.weights = Tensor::full({K}, 1.0 / static_cast<double>(K), DType::Float64);
  g.means = modes.centres.to(DType::Float64);
  g.covs = Tensor::zeros({K, 2, 2}, DType::Float64);
  for (int64_t k = 0; k < K; ++k) g.covs.data<double>()[k * 4] = g.covs.data<double>()[k * 4 + 3] = modes.sigma * modes.sigma;
  return g;
}

void mmd(lesson::Lesson& L, Generator& gen) {
  const bool quick = L.options().quick;
  const int64_t n = quick ? 300 : 500;
  const double h = 0.5;
  std::cout << "\n-- 6. MMD between model samples and held-out data, 8 Gaussians on a circle (Gaussian kernel, h = " << h << ")\n"
               "   good model: a mixture of 8 Gaussians fitted by EM; bad model: one Gaussian (EM with K = 1)\n";
  const models::GaussianMixture truth = eight_gaussians();
  const Tensor train = data::sample_toy(data::Toy::EightGaussians, 4000, gen).to(DType::Float64);
  // EM finds a local optimum: keep the best of 5 k-means++ starts (scikit-learn's n_init)
  auto best_of_starts = [&](int64_t K) {
    models::GaussianMixture best;
    double best_ll = -INFINITY;
    for (int start = 0; start < 5; ++start) {
      models::GaussianMixture g = models::init_kmeans_pp(train, K, gen);
      models::fit_em(g, train, 300, 1e-10);
      if (const double ll = g.total_log_likelihood(train); ll > best_ll) best_ll = ll, best = g;
    }
    return best;
  };
  models::GaussianMixture good = best_of_starts(8), bad = best_of_starts(1);
  const int R = quick ? 10 : 20;
  std::vector<std::vector<double>> scatter;
  for (auto [name, model] : {std::pair<const char*, models::GaussianMixture*>{"good", &good}, {"bad", &bad}}) {
    const double exact = models::mmd2_gaussian_mixtures(truth, *model, h);
    std::vector<double> est;
    for (int r = 0; r < R; ++r)
      est.push_back(models::mmd2_unbiased(data::sample_toy(data::Toy::EightGaussians, n, gen), model->sample(n, gen), h));
    const auto [m, se] = lesson::mean_and_se(est);
    const Tensor held_out = data::sample_toy(data::Toy::EightGaussians, n, gen), samples = model->sample(n, gen);
    const models::MMDTest t = models::mmd_permutation_test(held_out, samples, h, quick ? 100 : 200, gen);
    std::cout << std::scientific << std::setprecision(3) << "   " << name << " model: MMD^2 closed form " << exact << ", estimate "
              << m << " +- " << se << " (" << R << " pairs of " << n << " samples); one test: MMD^2_u " << t.mmd2
              << ", permutation p = " << std::fixed << std::setprecision(4) << t.p_value << "\n";
    L.check_close(std::string(name) + " model: the unbiased MMD^2 estimate (mean of " + std::to_string(R) +
                      ") vs the closed form over component pairs, 4 standard errors",
                  m, exact, 4 * se);
    if (std::string(name) == "bad") L.check_le("bad model: the permutation test rejects it, p <= 0.01", t.p_value, 0.01);
    L.metric(std::string("mmd2_") + name, exact);
    L.metric(std::string("mmd_p_value_") + name, t.p_value);
    for (int64_t i = 0; i < n; ++i) scatter.push_back({samples.at(2 * i), samples.at(2 * i + 1), name[0] == 'g' ? 1.0 : 2.0});
    if (name[0] == 'g')
      for (int64_t i = 0; i < n; ++i) scatter.push_back({held_out.at(2 * i), held_out.at(2 * i + 1), 0.0});
  }
  L.check_le("the good model is closer: MMD^2(truth, good) <= MMD^2(truth, bad), closed forms",
             models::mmd2_gaussian_mixtures(truth, good, h), models::mmd2_gaussian_mixtures(truth, bad, h));
  L.write_csv("mmd_samples.csv", {"x", "y", "source_0data_1good_2bad"}, scatter);
  plot::scatter_plot(L.path("mmd_samples.csv"), L.path("mmd_samples.png"), "held-out data (0), good model (1), bad model (2)", 3, 3);
  std::cout << "   wrote mmd_samples.png\n";
}

}  // namespace

int main(int argc, char** argv) {
  lesson::Lesson L("likelihood", "what a likelihood means: cross-entropy, KL both ways, compression, memorization, the train/test gap");
  lesson::harness::Settings hs;
  std::string runs = "runs";
  L.app().add_option("--runs", runs, "Where the lessons' checkpoints are looked for (the harness loads before it trains)")
      ->capture_default_str();
  return L.run(argc, argv, [&] {
    const auto& opt = L.options();
    Generator gen(opt.seed);
    hs = lesson::harness::settings_from(opt, runs);
    const lesson::DigitSplits d = lesson::load_digits(opt);
    cross_entropy(L, d);
    kl_both_ways(L);

    const lesson::harness::DataSet digits = lesson::harness::data_for("digits17", opt);
    const auto recipes = models::recipes_on("digits17");  // digits_made first
    std::cout << "\n   The MADE of steps 3-5: ";
    const lesson::harness::Obtained made = lesson::harness::obtain(recipes[0], digits, hs, gen);
    std::cout << made.source << "\n";
    auto& m = dynamic_cast<models::MADE&>(*made.model);
    compression(L, m, d.test.images);
    memorization(L, d, m);
    gaps(L, digits, recipes, lesson::harness::evaluate(recipes[0], digits, made)[0], hs, gen);
    mmd(L, gen);
  });
}
