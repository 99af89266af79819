// dgm/homework/likelihood/grader.cpp — the checks of the likelihood homework.
// The rANS step is graded by the engine's decoder (the symbols must come back), by the
// message's length against the ideal -sum log2 p, and against the engine's encoder's
// bytes; the MMD estimate against long-double sums and, for unbiasedness, its average
// over many small samples against the closed form between Gaussians.
#include <algorithm>
#include <cmath>

#include "autograd/random.h"
#include "homework/likelihood/exercises.h"
#include "models/divergences.h"
#include "models/toolkit/rans.h"

namespace hw::likelihood {

using dgm::DType;
using dgm::Generator;
namespace coding = dgm::coding;

namespace {

using LD = long double;

// A message from a skewed source and the table the coder uses for it.
struct Message {
  coding::FrequencyTable table;
  std::vector<int64_t> symbols;
  double ideal_bits = 0;  // sum of -log2(freq / M)
};
Message message(uint64_t seed, int64_t n, std::vector<double> p) {
  Generator gen(seed);
  Message m;
  m.table = coding::quantise(p);
  double total = 0;
  for (double v : p) total += v;
  for (int64_t i = 0; i < n; ++i) {
    double u = gen.uniform01() * total;
    size_t s = 0;
    while (s + 1 < p.size() && u >= p[s]) u -= p[s++];
    m.symbols.push_back(static_cast<int64_t>(s));
    m.ideal_bits += m.table.bits(static_cast<int64_t>(s));
  }
  return m;
}

// The engine's Encoder, with its coding step replaced by the student's.
std::vector<uint8_t> encode_with(const Functions& f, const Message& m) {
  uint32_t state = 1u << 23;
  std::vector<uint8_t> reversed;
  for (auto it = m.symbols.rbegin(); it != m.symbols.rend(); ++it) {  // last in, first out
    const auto s = static_cast<size_t>(*it);
    state = f.rans_put(state, m.table.freq[s], m.table.start[s], reversed);
  }
  std::vector<uint8_t> out = reversed;
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>((state >> (8 * i)) & 0xff));
  std::reverse(out.begin(), out.end());
  return out;
}

const std::vector<std::vector<double>> kSources = {{0.7, 0.2, 0.05, 0.04, 0.01}, {0.5, 0.5}, {0.999, 0.001}};

double mmd_reference(const Tensor& X, const Tensor& Y, double h) {
  const int64_t n = X.size(0), m = Y.size(0), d = X.size(1);
  auto k = [&](const Tensor& A, int64_t i, const Tensor& B, int64_t j) {
    LD sq = 0;
    for (int64_t c = 0; c < d; ++c) sq += std::pow(static_cast<LD>(A.at(i * d + c)) - B.at(j * d + c), 2);
    return std::exp(-sq / (2 * static_cast<LD>(h) * h));
  };
  LD xx = 0, yy = 0, xy = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) if (i != j) xx += k(X, i, X, j);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < m; ++j) if (i != j) yy += k(Y, i, Y, j);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < m; ++j) xy += k(X, i, Y, j);
  return static_cast<double>(xx / (n * (n - 1)) + yy / (m * (m - 1)) - 2 * xy / (n * m));
}

dgm::models::GaussianMixture gaussian(double mean_x, double mean_y) {
  dgm::models::GaussianMixture g;
  g.weights = Tensor::ones({1}, DType::Float64);
  g.means = Tensor::from_vector(std::vector<double>{mean_x, mean_y}, {1, 2});
  g.covs = Tensor::from_vector(std::vector<double>{1, 0, 0, 1}, {1, 2, 2});
  return g;
}

// The mean and standard error of the estimate over `reps` pairs of small samples.
std::pair<double, double> mean_estimate(const Functions& f, const dgm::models::GaussianMixture& P,
                                        const dgm::models::GaussianMixture& Q, int64_t n, int64_t m, int reps, uint64_t seed) {
  Generator gen(seed);
  LD s = 0, s2 = 0;
  for (int r = 0; r < reps; ++r) {
    const double v = f.mmd2_unbiased(P.sample_with_components(n, gen).first, Q.sample_with_components(m, gen).first, 1.0);
    s += v;
    s2 += static_cast<LD>(v) * v;
  }
  const LD mean = s / reps;
  return {static_cast<double>(mean), static_cast<double>(std::sqrt((s2 / reps - mean * mean) / reps))};
}

}  // namespace

std::vector<Exercise> exercises(const Functions& f) {
  std::vector<Exercise> list;

  // ---------------------------------------------------------------- rans_put
  list.push_back({"rans_put", "homework/likelihood/rans_put.cpp", 10, {}});
  auto& rp = list.back().checks;
  rp.push_back({"one step from the initial state: x' = (x / f) M + (x mod f) + start, no byte out", 2, [f](Expect& e) {
                  std::vector<uint8_t> bytes;
                  const uint32_t x = (1u << 23) + 12345, got = f.rans_put(x, 3000, 777, bytes);
                  e.near("x'", static_cast<double>((static_cast<uint64_t>(x / 3000) << 16) + x % 3000 + 777), static_cast<double>(got), 0,
                         "x' = (x / freq) * 2^16 + (x mod freq) + start, in integers");
                  e.near("bytes moved out", 0, static_cast<double>(bytes.size()), 0, "x is below x_max: no renormalisation here");
                }, essential});
  rp.push_back({"the engine's decoder gives back 5000 symbols of three sources, exactly", 4, [f](Expect& e) {
                  uint64_t seed = 1;
                  for (const auto& p : kSources) {
                    const Message m = message(seed++, 5000, p);
                    const auto bytes = encode_with(f, m);
                    coding::Decoder dec(bytes);
                    for (size_t i = 0; i < m.symbols.size(); ++i) {
                      int64_t s = -1;
                      try {
                        s = dec.get(m.table);
                      } catch (const dgm::Error& err) {
                        e.that(false, "decoding symbol " + std::to_string(i) + ": " + err.what(), "renormalise before encoding, while x >= x_max");
                        return;
                      }
                      if (s != m.symbols[i]) {
                        e.near("symbol " + std::to_string(i) + " decoded", static_cast<double>(m.symbols[i]), static_cast<double>(s), 0,
                               "x_max = ((2^23 >> 16) << 8) * freq keeps the state below 2^31; the low byte goes out first");
                        return;
                      }
                    }
                    e.that(dec.done(), "every symbol decoded, but the decoder did not end at the initial state with every byte read",
                           "move bytes out only while x >= x_max");
                  }
                }, essential});
  rp.push_back({"the message costs the model's -sum log2 p bits, within 32 bits + 0.1%", 2, [f](Expect& e) {
                  uint64_t seed = 10;
                  for (const auto& p : kSources) {
                    const Message m = message(seed++, 5000, p);
                    const double bits = 8.0 * static_cast<double>(encode_with(f, m).size());
                    e.that(bits <= m.ideal_bits * 1.001 + 32 + 8,
                           "the message took " + fmt(bits) + " bits, the model's code length is " + fmt(m.ideal_bits) + " bits",
                           "each symbol should cost -log2(freq / 2^16) bits: move out only the bytes the renormalisation needs");
                  }
                }, essential});
  rp.push_back({"the bytes equal the engine's encoder's", 2, [f](Expect& e) {
                  const Message m = message(20, 3000, kSources[0]);
                  coding::Encoder enc;
                  for (auto it = m.symbols.rbegin(); it != m.symbols.rend(); ++it) enc.put(m.table, *it);
                  const auto want = enc.finish(), got = encode_with(f, m);
                  e.near("message length in bytes", static_cast<double>(want.size()), static_cast<double>(got.size()), 0, "");
                  if (e.ok() && want != got) e.that(false, "same length, different bytes", "the same two steps, in the same order");
                }});

  // ---------------------------------------------------------------- mmd2_unbiased
  list.push_back({"mmd2_unbiased", "homework/likelihood/mmd2_unbiased.cpp", 10, {}});
  auto& mm = list.back().checks;
  mm.push_back({"equals the long-double sums (n = m and n != m, 3 seeds)", 4, [f](Expect& e) {
                  for (uint64_t seed : {1, 2, 3}) {
                    Generator gen(seed);
                    const Tensor X = gen.normal({12, 2}, 0, 1, DType::Float64), Y = gen.normal({seed == 2 ? int64_t{7} : int64_t{12}, 2}, 0.5, 1.3, DType::Float64);
                    const double h = seed == 3 ? 0.6 : 1.0;
                    e.near("seed " + std::to_string(seed) + ": MMD^2_u", mmd_reference(X, Y, h), f.mmd2_unbiased(X, Y, h), 1e-12,
                           "k(x, y) = exp(-|x - y|^2 / (2 h^2)); leave out i = j within X and within Y; all n m cross pairs");
                  }
                }, essential});
  mm.push_back({"unbiased: averaged over 2000 pairs of samples (n = 6, m = 9) it gives the closed form", 4, [f](Expect& e) {
                  const auto P = gaussian(0, 0), Q = gaussian(1.0, -0.5);
                  const double truth = dgm::models::mmd2_gaussian_mixtures(P, Q, 1.0);
                  const auto [mean, se] = mean_estimate(f, P, Q, 6, 9, 2000, 4);
                  e.near("mean MMD^2_u, N(0, I) vs N((1, -0.5), I)", truth, mean, 4 * se,
                         "with the i = j terms (k = 1) the estimate is biased upwards by about (1/n + 1/m)(1 - E k)");
                  const auto [same, se0] = mean_estimate(f, P, P, 6, 9, 2000, 5);
                  e.near("mean MMD^2_u, P = Q", 0, same, 4 * se0, "under P = Q the unbiased estimate averages to 0");
                }, essential});
  mm.push_back({"symmetric: MMD^2_u(X, Y) = MMD^2_u(Y, X)", 2, [f](Expect& e) {
                  Generator gen(6);
                  const Tensor X = gen.normal({10, 3}, 0, 1, DType::Float64), Y = gen.normal({8, 3}, 1, 1, DType::Float64);
                  e.near("MMD^2_u(Y, X)", f.mmd2_unbiased(X, Y, 1.5), f.mmd2_unbiased(Y, X, 1.5), 1e-12,
                         "divide each within-sample sum by its own n (n - 1)");
                }});
  // No exercise may call the library's own implementation of itself (grader.h, add_library_check).
  for (auto& ex : list) {
    if (ex.name == "rans_put") add_library_check(ex, {"coding::"});
    if (ex.name == "mmd2_unbiased") add_library_check(ex, {"models::mmd2_unbiased"});
  }
  return list;
}

}  // namespace hw::likelihood
