// dgm/autograd/blas.cpp — the one TU that includes <cblas.h>: GEMM, and the
// OpenBLAS kernel / thread settings (see runtime.h). It must not include
// xtensor-blas, whose bundled cblas.h clashes with OpenBLAS's.
#include <cblas.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "autograd/kernels.h"
#include "autograd/runtime.h"

namespace dgm {

namespace kernels {

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const void* a,
          int64_t lda, const void* b, int64_t ldb, double beta, void* c, int64_t ldc, DType dtype) {
  if (m == 0 || n == 0) return;
  const CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
  const CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
  if (dtype == DType::Float32) {
    cblas_sgemm(CblasRowMajor, ta, tb, static_cast<blasint>(m), static_cast<blasint>(n),
                static_cast<blasint>(k), static_cast<float>(alpha), static_cast<const float*>(a),
                static_cast<blasint>(lda), static_cast<const float*>(b), static_cast<blasint>(ldb),
                static_cast<float>(beta), static_cast<float*>(c), static_cast<blasint>(ldc));
  } else if (dtype == DType::Float64) {
    cblas_dgemm(CblasRowMajor, ta, tb, static_cast<blasint>(m), static_cast<blasint>(n),
                static_cast<blasint>(k), alpha, static_cast<const double*>(a),
                static_cast<blasint>(lda), static_cast<const double*>(b), static_cast<blasint>(ldb),
                beta, static_cast<double*>(c), static_cast<blasint>(ldc));
  } else {
    throw Error("matmul: int64 tensors are not supported (convert with .to(DType::Float32))");
  }
}

}  // namespace kernels

namespace runtime {

namespace {

// A function-local static: the constructor below may run before this TU's
// ordinary globals are initialised.
std::string& core_note() {
  static std::string note = "chosen by OpenBLAS from the CPU";
  return note;
}

// OpenBLAS x86 kernel families ranked by the instruction set they use.
int core_rank(const std::string& core) {
  static const char* avx512[] = {"SkylakeX", "Cooperlake", "SapphireRapids"};
  static const char* avx2[] = {"Haswell", "Zen", "Skylake"};
  for (const char* c : avx512)
    if (strcasecmp(core.c_str(), c) == 0) return 3;
  for (const char* c : avx2)
    if (strcasecmp(core.c_str(), c) == 0) return 2;
  if (strcasecmp(core.c_str(), "Sandybridge") == 0) return 1;
  return 0;  // Prescott, Core2, Nehalem, ... (SSE only)
}

// Runs when libdgm is loaded (after OpenBLAS, which it depends on, has chosen
// its kernel). glibc passes argc/argv/envp to ELF constructors.
__attribute__((constructor)) void select_openblas_core(int argc, char** argv, char**) {
  const char* chosen = openblas_get_corename();
  if (std::getenv("OPENBLAS_CORETYPE")) {
    core_note() = std::getenv("DGM_REEXECED") ? std::string("set by dgm (") + std::getenv("DGM_REEXECED") + ")"
                                              : "OPENBLAS_CORETYPE=" + std::string(std::getenv("OPENBLAS_CORETYPE")) + " from the environment";
    return;
  }
  if (!chosen || argc < 1 || !argv || !argv[0] || std::getenv("DGM_NO_REEXEC")) return;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  const char* want = nullptr;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
    want = "SkylakeX";
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    want = "Haswell";
  if (!want || core_rank(chosen) >= core_rank(want)) return;
  std::string why = std::string("CPU has ") + (core_rank(want) == 3 ? "AVX-512" : "AVX2") +
                    "; OpenBLAS chose " + chosen;
  setenv("OPENBLAS_CORETYPE", want, 1);
  setenv("DGM_REEXECED", why.c_str(), 1);
  std::fflush(nullptr);
  execv("/proc/self/exe", argv);
  // exec failed: carry on with the kernel OpenBLAS chose.
  unsetenv("OPENBLAS_CORETYPE");
  core_note() = "OpenBLAS's choice (re-exec to " + std::string(want) + " failed)";
#endif
}

}  // namespace

std::string blas_core() {
  const char* c = openblas_get_corename();
  std::string s = c ? c : "unknown";
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

std::string blas_core_note() { return core_note(); }

int blas_threads() { return openblas_get_num_threads(); }

int hardware_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

void set_num_threads(int n) { openblas_set_num_threads(n <= 0 ? hardware_threads() : n); }

}  // namespace runtime
}  // namespace dgm
