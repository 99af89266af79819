// Reference solution: homework/likelihood/rans_put.cpp.
#include "homework/likelihood/exercises.h"

namespace hw::likelihood {

uint32_t rans_put(uint32_t x, uint32_t freq, uint32_t start, std::vector<uint8_t>& bytes_out) {
  const uint32_t x_max = ((1u << 23 >> 16) << 8) * freq;  // x' < 2^31 needs x < x_max
  while (x >= x_max) {
    bytes_out.push_back(static_cast<uint8_t>(x & 0xff));
    x >>= 8;
  }
  return ((x / freq) << 16) + (x % freq) + start;
}

}  // namespace hw::likelihood
