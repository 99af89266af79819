// dgm/autograd/runtime.h — the BLAS backend (which OpenBLAS kernel runs) and
// how many threads dgm uses.
//
// Debian's OpenBLAS 0.3.21 does not recognise recent Xeons and falls back to
// its SSE3 "Prescott" kernels (about 4x slower). OpenBLAS picks its kernel
// when it is loaded, before main(), and reads OPENBLAS_CORETYPE then. So
// libdgm, when loaded, checks the kernel OpenBLAS chose against what the CPU
// supports; if it is weaker, it sets OPENBLAS_CORETYPE (SkylakeX on AVX-512,
// Haswell on AVX2) and re-executes the program once, before main() runs.
// An OPENBLAS_CORETYPE already set is respected; DGM_NO_REEXEC=1 turns the
// re-exec off (for debuggers).
#pragma once

#include <string>

namespace dgm::runtime {

std::string blas_core();       // OpenBLAS's kernel name, e.g. "SkylakeX"
std::string blas_core_note();  // how it was chosen, e.g. "set by dgm (CPU has AVX-512; OpenBLAS chose Prescott)"
// The threads dgm runs on: its pool (autograd/parallel.h), which also cuts each BLAS product into
// pieces (kernels::gemm). OpenBLAS itself always runs on the thread that calls it: it is held to one
// thread when libdgm is loaded, so its own workers never wake to compete with dgm's for the cores.
// The count starts as OpenBLAS's default (OPENBLAS_NUM_THREADS, or all cores).
int num_threads();
void set_num_threads(int n);   // n <= 0 means all cores
int hardware_threads();

// The algorithm of 3x3, stride-1 convolutions: Winograd F(2x2, 3x3) (the
// default; autograd/ops/conv_winograd.h) or im2col + GEMM like every other
// convolution. For the tests that compare the two and for benchmarks.
void set_conv_winograd(bool on);
bool conv_winograd();

// Holds dgm to one thread while alive (when `active` and it has more), then
// gives it back its thread count.
class OneThread {
 public:
  explicit OneThread(bool active = true);
  ~OneThread();
  OneThread(const OneThread&) = delete;
  OneThread& operator=(const OneThread&) = delete;

 private:
  int saved_;
};

}  // namespace dgm::runtime
