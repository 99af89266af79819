// dgm/models/toolkit/rans.cpp
#include "models/toolkit/rans.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "autograd/tensor.h"

namespace dgm::coding {

namespace {
constexpr uint32_t kLow = 1u << 23;  // the state lives in [kLow, kLow * 256)
}

double FrequencyTable::bits(int64_t symbol) const {
  return kScaleBits - std::log2(static_cast<double>(freq.at(static_cast<size_t>(symbol))));
}

FrequencyTable quantise(const std::vector<double>& p) {
  const size_t K = p.size();
  if (K == 0 || K > kScale) throw Error("coding::quantise: needs 1 to 65536 symbols, got " + std::to_string(K));
  double total = 0;
  for (double v : p) {
    if (!(v >= 0) || !std::isfinite(v)) throw Error("coding::quantise: a probability is negative or not finite");
    total += v;
  }
  if (!(total > 0)) throw Error("coding::quantise: the probabilities sum to 0");
  FrequencyTable t;
  t.freq.resize(K);
  t.start.resize(K);
  const double spare = static_cast<double>(kScale - K);  // what is left after the floor of 1 each
  uint32_t used = 0;
  for (size_t s = 0; s < K; ++s) {
    t.freq[s] = 1 + static_cast<uint32_t>(std::floor(p[s] / total * spare));
    used += t.freq[s];
  }
  const size_t top = static_cast<size_t>(std::max_element(p.begin(), p.end()) - p.begin());
  t.freq[top] += kScale - used;  // floors leave a remainder: the likeliest symbol takes it
  uint32_t c = 0;
  for (size_t s = 0; s < K; ++s) {
    t.start[s] = c;
    c += t.freq[s];
  }
  return t;
}

Encoder::Encoder() : state_(kLow) {}

void Encoder::put(const FrequencyTable& table, int64_t symbol) {
  if (symbol < 0 || static_cast<size_t>(symbol) >= table.freq.size())
    throw Error("coding::Encoder: symbol " + std::to_string(symbol) + " is outside the table's " +
                std::to_string(table.freq.size()) + " symbols");
  const uint32_t f = table.freq[static_cast<size_t>(symbol)], c = table.start[static_cast<size_t>(symbol)];
  // Move bytes out until the new state fits below kLow * 256: x' < 2^31 needs x < (kLow >> 16) * 256 * f.
  const uint32_t x_max = ((kLow >> kScaleBits) << 8) * f;
  while (state_ >= x_max) {
    reversed_.push_back(static_cast<uint8_t>(state_ & 0xff));
    state_ >>= 8;
  }
  state_ = ((state_ / f) << kScaleBits) + (state_ % f) + c;
}

std::vector<uint8_t> Encoder::finish() {
  std::vector<uint8_t> out = reversed_;
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>((state_ >> (8 * i)) & 0xff));
  std::reverse(out.begin(), out.end());  // the state's 4 bytes first (high byte first), then the rest
  return out;
}

Decoder::Decoder(const std::vector<uint8_t>& message) : message_(message) {
  if (message.size() < 4)
    throw Error("coding::Decoder: a message has at least its 4-byte state, got " + std::to_string(message.size()) +
                " bytes");
  for (int i = 0; i < 4; ++i) state_ = (state_ << 8) | message_[pos_++];
}

int64_t Decoder::get(const FrequencyTable& table) {
  const uint32_t slot = state_ & (kScale - 1);
  // the symbol whose interval [start, start + freq) holds the slot
  const size_t s = static_cast<size_t>(std::upper_bound(table.start.begin(), table.start.end(), slot) - table.start.begin()) - 1;
  state_ = table.freq[s] * (state_ >> kScaleBits) + slot - table.start[s];
  while (state_ < kLow) {
    if (pos_ >= message_.size()) throw Error("coding::Decoder: the message ended early (truncated, or decoded with other tables)");
    state_ = (state_ << 8) | message_[pos_++];
  }
  return static_cast<int64_t>(s);
}

bool Decoder::done() const { return pos_ == message_.size() && state_ == kLow; }

}  // namespace dgm::coding
