// dgm/autograd/blas.cpp — the one TU that includes <cblas.h>: GEMM, and the
// OpenBLAS kernel / thread settings (see runtime.h). It must not include
// xtensor-blas, whose bundled cblas.h clashes with OpenBLAS's.
#include <cblas.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "autograd/kernels.h"
#include "autograd/runtime.h"

namespace dgm {

namespace kernels {

namespace {

// The cblas entry points of one precision.
struct Sgemm {
  using T = float;
  static constexpr auto gemm = cblas_sgemm;
  static constexpr auto gemv = cblas_sgemv;
};
struct Dgemm {
  using T = double;
  static constexpr auto gemm = cblas_dgemm;
  static constexpr auto gemv = cblas_dgemv;
};

// Matrix elements read by one product's GEMV calls below which it stays on one thread.
constexpr int64_t kGemvSplit = int64_t(1) << 20;

CBLAS_TRANSPOSE op(bool trans) { return trans ? CblasTrans : CblasNoTrans; }
blasint bi(int64_t v) { return static_cast<blasint>(v); }

template <class Blas, class T = typename Blas::T>
void gemm_t(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda, const T* b,
            int64_t ldb, T beta, T* c, int64_t ldc) {
  // Skinny outputs. With op(A) = A or A^T and op(B) likewise:
  //   column j of C = op(A) (column j of op(B))      n <= kGemvRows
  //   row i of C    = op(B)^T (row i of op(A))       m <= kGemvRows
  // each one GEMV over the long operand, read once. C is zeroed first when
  // beta = 0 so that what it held (maybe NaN) is never read.
  const bool few_cols = n <= kGemvRows && n < k, few_rows = m <= kGemvRows && m < k;
  if (few_cols || few_rows) {
    // OpenBLAS splits any GEMV over ~9k elements between its threads, and a
    // worker woken for it spins for ~0.1 s afterwards (sched_yield), taking
    // turns with dgm's own threads (runtime::run_chunks). A GEMV this small
    // gains nothing from a second thread: it runs on the caller alone.
    runtime::OneBlasThread one(m * n * k < kGemvSplit);  // elements read by all the calls together
    if (beta == T(0))
      for (int64_t i = 0; i < m; ++i) std::fill_n(c + i * ldc, n, T(0));
    if (few_cols) {
      for (int64_t j = 0; j < n; ++j)  // op(B)[:, j] is row j of b (tb) or column j (strided)
        Blas::gemv(CblasRowMajor, op(ta), bi(ta ? k : m), bi(ta ? m : k), alpha, a, bi(lda), tb ? b + j * ldb : b + j,
                   bi(tb ? 1 : ldb), beta, c + j, bi(ldc));
    } else {
      for (int64_t i = 0; i < m; ++i)  // op(A)[i, :] is column i of a (ta, strided) or row i
        Blas::gemv(CblasRowMajor, op(!tb), bi(tb ? n : k), bi(tb ? k : n), alpha, b, bi(ldb), ta ? a + i : a + i * lda,
                   bi(ta ? lda : 1), beta, c + i * ldc, 1);
    }
    return;
  }
  // beta = 0: C is zeroed here and GEMM adds into it. OpenBLAS's own pass
  // for beta (sgemm_beta) is several times slower than a memset: it was 10%
  // of an image-flow training step, whose Winograd GEMMs write 16 [O, tiles] outputs.
  if (beta == T(0)) {
    for (int64_t i = 0; i < m; ++i) std::fill_n(c + i * ldc, n, T(0));
    beta = T(1);
  }
  Blas::gemm(CblasRowMajor, op(ta), op(tb), bi(m), bi(n), bi(k), alpha, a, bi(lda), b, bi(ldb), beta, c, bi(ldc));
}

}  // namespace

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const void* a,
          int64_t lda, const void* b, int64_t ldb, double beta, void* c, int64_t ldc, DType dtype) {
  if (m == 0 || n == 0) return;
  if (dtype == DType::Float32)
    gemm_t<Sgemm>(trans_a, trans_b, m, n, k, static_cast<float>(alpha), static_cast<const float*>(a), lda,
                  static_cast<const float*>(b), ldb, static_cast<float>(beta), static_cast<float*>(c), ldc);
  else if (dtype == DType::Float64)
    gemm_t<Dgemm>(trans_a, trans_b, m, n, k, alpha, static_cast<const double*>(a), lda,
                  static_cast<const double*>(b), ldb, beta, static_cast<double*>(c), ldc);
  else
    throw Error("matmul: int64 tensors are not supported (convert with .to(DType::Float32))");
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

OneBlasThread::OneBlasThread(bool active) : saved_(active ? openblas_get_num_threads() : 1) {
  if (saved_ > 1) openblas_set_num_threads(1);
}
OneBlasThread::~OneBlasThread() {
  if (saved_ > 1) openblas_set_num_threads(saved_);
}

}  // namespace runtime
}  // namespace dgm
