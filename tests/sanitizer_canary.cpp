// tests/sanitizer_canary.cpp — deliberate memory errors and undefined behaviour, one per mode.
//
// Built only in the sanitizer build (make test SANITIZE=1). Each ctest case `sanitizer_catches_<mode>`
// passes only when the sanitizer's report for that bug appears and the program stops there: it proves
// that build-asan really is a sanitizer build, that the engine's tensor buffers are checked (a
// caching allocator that rounds sizes up would hide the first two bugs), that LeakSanitizer is on,
// and that undefined behaviour halts instead of printing and going on.
//
//   sanitizer_canary tensor-read-past-end N   reads element N of an N-element tensor
//   sanitizer_canary tensor-use-after-free    reads a tensor's buffer after the tensor is gone
//   sanitizer_canary vector-read-past-end N   the same read on a std::vector
//   sanitizer_canary signed-overflow N        INT_MAX + N (N from the command line, not folded away)
//   sanitizer_canary leak                     loses a heap block
//
// The sizes come from the command line so that the compiler cannot see the bug and remove it.
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "autograd/tensor.h"

namespace {

// The test-only helpers with the bugs. `volatile` keeps each read.
float read_tensor_element(const dgm::Tensor& t, long i) {
  const volatile float* p = t.data<float>();
  return p[i];
}

float read_vector_element(const std::vector<float>& v, long i) {
  const volatile float* p = v.data();
  return p[i];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: sanitizer_canary MODE [N]\n");
    return 2;
  }
  const std::string mode = argv[1];
  const long n = argc > 2 ? std::atol(argv[2]) : 8;
  std::printf("sanitizer_canary: %s (checked_memory %s)\n", mode.c_str(), dgm::checked_memory() ? "on" : "off");
  std::fflush(stdout);
  float x = 0;
  if (mode == "tensor-read-past-end") {
    const dgm::Tensor t = dgm::Tensor::zeros({n});
    x = read_tensor_element(t, n);
  } else if (mode == "tensor-use-after-free") {
    const float* stale = nullptr;
    {
      dgm::Tensor t = dgm::Tensor::zeros({n});
      stale = t.data<float>();
    }
    x = *static_cast<const volatile float*>(stale);
  } else if (mode == "vector-read-past-end") {
    const std::vector<float> v(static_cast<size_t>(n));
    x = read_vector_element(v, n);
  } else if (mode == "signed-overflow") {
    volatile int big = INT_MAX;
    x = static_cast<float>(big + static_cast<int>(n));
  } else if (mode == "leak") {
    volatile int* lost = new int[static_cast<size_t>(n)];
    lost[0] = 1;
    lost = nullptr;
  } else {
    std::fprintf(stderr, "sanitizer_canary: unknown mode '%s'\n", mode.c_str());
    return 2;
  }
  if (mode == "leak") {
    std::printf("sanitizer_canary: exiting; LeakSanitizer looks for lost blocks now\n");
    return 0;
  }
  // Only reached when the sanitizer missed the bug.
  std::printf("sanitizer_canary: continued after the bug (read %g)\n", static_cast<double>(x));
  return 0;
}
