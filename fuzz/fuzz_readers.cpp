// fuzz/fuzz_readers.cpp — libFuzzer target for the data readers.
// Any input must either parse or raise dgm::Error; a crash, a sanitizer
// report or another exception is a bug. Built and run by scripts/fuzz.sh.
#include <cstdint>
#include <string>

#include "models/toolkit/datasets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    dgm::data::parse_idx(data, size, "fuzz.idx");
  } catch (const dgm::Error&) {
  }
  try {
    dgm::data::parse_digits_csv(std::string(reinterpret_cast<const char*>(data), size), "fuzz.csv");
  } catch (const dgm::Error&) {
  }
  return 0;
}
