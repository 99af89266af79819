// fuzz/fuzz_checkpoint.cpp — libFuzzer target for the safetensors reader.
// Any input must either parse or raise dgm::Error; a crash, a sanitizer
// report, a huge allocation or another exception is a bug. Built and run by
// scripts/fuzz.sh; its seeds are fuzz/corpus/checkpoint/ (a valid checkpoint
// and the corrupt ones of the numpy round trip).
#include <cstdint>

#include "autograd/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    dgm::parse_safetensors(data, size, "fuzz.safetensors");
  } catch (const dgm::Error&) {
  }
  return 0;
}
