// dgm/models/toolkit/rans.h — an entropy coder: a model's probabilities in,
// bytes out, about -log2 p(symbol) bits per symbol (docs/chapters/likelihood.md).
//
// rANS (range asymmetric numeral systems; Duda 2013, in the byte-wise form of
// Giesen's ryg_rans): the whole message is one integer state x. Coding symbol s
// whose probability is quantised to f_s / M (M = 2^16, start c_s = f_0 + ... + f_{s-1}):
//   encode   x' = (x / f_s) M + c_s + (x mod f_s)            x' ~ x M / f_s: log2(M / f_s) bits more
//   decode   slot = x' mod M;  s = the symbol with c_s <= slot < c_s + f_s;
//            x = f_s (x' / M) + slot - c_s
// The state is kept in [2^23, 2^31) by moving bytes out (encoder) and in
// (decoder). rANS is last in, first out: the encoder takes the symbols in the
// reverse of the order the decoder gives them back, so a model that needs the
// decoded symbols to predict the next one (an autoregressive model) first
// computes every distribution in decoding order, then encodes backwards.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace dgm::coding {

constexpr int kScaleBits = 16;  // probabilities are quantised to multiples of 2^-16
constexpr uint32_t kScale = 1u << kScaleBits;

// A quantised distribution: integer frequencies summing to 2^16, every one at
// least 1 (a symbol the model thinks impossible must still be codable), and
// their cumulative starts.
struct FrequencyTable {
  std::vector<uint32_t> freq, start;
  // -log2 (f_s / 2^16): the bits symbol s costs
  double bits(int64_t symbol) const;
};
// Quantises probabilities p (any non-negative numbers, normalised here) to a
// FrequencyTable: f_s = 1 + floor(p_s (2^16 - K)), the remainder given to the
// most probable symbol. Deterministic: the same p gives the same table.
FrequencyTable quantise(const std::vector<double>& p);

class Encoder {
 public:
  Encoder();
  // Pushes one symbol (call in the reverse of decoding order).
  void put(const FrequencyTable& table, int64_t symbol);
  // The finished message: the final state (4 bytes) and the bytes moved out, in decoding order.
  std::vector<uint8_t> finish();

 private:
  uint32_t state_;
  std::vector<uint8_t> reversed_;  // bytes in the order written (the reverse of reading order)
};

class Decoder {
 public:
  // Throws if the message is shorter than its 4-byte state.
  explicit Decoder(const std::vector<uint8_t>& message);
  int64_t get(const FrequencyTable& table);  // the next symbol
  // True when every byte was read and the state is back at its initial value:
  // the message was decoded exactly as it was encoded.
  bool done() const;

 private:
  const std::vector<uint8_t>& message_;
  size_t pos_ = 0;
  uint32_t state_ = 0;
};

}  // namespace dgm::coding
