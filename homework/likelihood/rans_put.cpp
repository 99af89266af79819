// Homework, likelihood chapter, exercise 1 (10 points): a likelihood is a code length.
//   grade: make grade CHAPTER=likelihood      (the math: docs/chapters/likelihood.md, section 3)
#include "homework/likelihood/exercises.h"

namespace hw::likelihood {

// rANS (Duda 2013) keeps the whole message in one integer state x. A model's probability
// of symbol s is quantised to freq / M, M = 2^16, and `start` is the sum of the frequencies
// of the symbols before s. Coding s makes the state about M / freq times larger, i.e.
// -log2(freq / M) bits more: an ideal code for the model.
//
//   1. renormalise: while x >= x_max = ((2^23 >> 16) << 8) * freq, move the low byte out:
//          bytes_out.push_back(x & 0xff);  x >>= 8;
//      (the state lives in [2^23, 2^31); this keeps the next x below 2^31);
//   2. encode:  x' = (x / freq) * M + (x mod freq) + start          (integer division)
//
// Return x'. The grader encodes messages with your step (symbols pushed in reverse) and
// decodes them with the engine's coding::Decoder (models/toolkit/rans.h); the bytes must
// come back as the symbols, and the message must cost close to -sum log2 p bits.
uint32_t rans_put(uint32_t state, uint32_t freq, uint32_t start, std::vector<uint8_t>& bytes_out) {
  DGM_TODO("rans_put");
}

}  // namespace hw::likelihood
