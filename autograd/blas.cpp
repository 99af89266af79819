// dgm/autograd/blas.cpp — the one TU that includes <cblas.h>: GEMM, and the
// OpenBLAS kernel / thread settings (see runtime.h). It must not include
// xtensor-blas, whose bundled cblas.h clashes with OpenBLAS's.
#include <cblas.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "autograd/kernels.h"
#include "autograd/parallel.h"
#include "autograd/runtime.h"
#include "autograd/simd.h"

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

// Matrix elements read by one skinny product (below) up to which float32 takes the one-pass loops.
constexpr int64_t kGemvSplit = int64_t(1) << 20;

CBLAS_TRANSPOSE op(bool trans) { return trans ? CblasTrans : CblasNoTrans; }
blasint bi(int64_t v) { return static_cast<blasint>(v); }

// ---------------------------------------------------------------- skinny products, one pass
// C = op(A) op(B) with at most kGemvRows (4) columns, or rows, of output, float32 on an AVX2 or
// AVX-512 build: D[r, j] = sum_p L(r, p) S(p, j) for r < R, j < s, where L [R, k] is the long
// operand, read once, and S [k, s] the short one, gathered first into s contiguous vectors
// sv[j kp + p] (zero past k, up to kp, a whole number of registers). One GEMV per column of C
// would read L s times: OpenBLAS's took 6.5-7 us for [512 x 64] [64 x 2] on Zen 3 (19-20 GFLOP/s).
// L is stored one of two ways, and each has its loop; both write D as d[j R + r]:
//   dots:  L(r, p) = l[r ldl + p], a row per r: s dot products, kLanes partial sums each, then
//          their lanes added (simd::sum, a fixed order);
//   axpys: L(r, p) = l[p ldl + r], a row per p: D[:, j] += S(p, j) L[p, :] over a block of r's
//          whose sums stay in registers for the whole of p.
#if defined(DGM_SIMD_F32)
using simd::kLanes;
using simd::Vec;

template <int S>
void dots(const float* l, int64_t ldl, int64_t R, int64_t k, const float* sv, int64_t kp, float* d) {
  const int64_t whole = k / kLanes * kLanes;
  for (int64_t r = 0; r < R; ++r) {
    const float* row = l + r * ldl;
    Vec acc[S];
    for (int j = 0; j < S; ++j) acc[j] = simd::zero();
    for (int64_t p = 0; p < whole; p += kLanes) {
      const Vec v = simd::loadu(row + p);
      for (int j = 0; j < S; ++j) acc[j] = simd::fmadd(v, simd::loadu(sv + j * kp + p), acc[j]);
    }
    if (whole < k) {  // the row's last, partial register (sv is zero past k)
      const Vec v = simd::load_first(row + whole, k - whole);
      for (int j = 0; j < S; ++j) acc[j] = simd::fmadd(v, simd::loadu(sv + j * kp + whole), acc[j]);
    }
    for (int j = 0; j < S; ++j) d[j * R + r] = simd::sum(acc[j]);
  }
}

// One block of r's: V registers from r0, the last one holding only `last` of its lanes (the others
// read as 0 and are not written).
template <int S, int V>
void axpy_block(const float* l, int64_t ldl, int64_t R, int64_t r0, int64_t k, const float* sv, int64_t kp, float* d,
                int64_t last = kLanes) {
  Vec acc[S][V];
  for (int j = 0; j < S; ++j)
    for (int v = 0; v < V; ++v) acc[j][v] = simd::zero();
  for (int64_t p = 0; p < k; ++p) {
    const float* row = l + p * ldl + r0;
    Vec x[V];
    for (int v = 0; v < V; ++v) x[v] = simd::load_first(row + v * kLanes, v + 1 < V ? kLanes : last);
    for (int j = 0; j < S; ++j) {
      const Vec c = simd::broadcast(sv[j * kp + p]);
      for (int v = 0; v < V; ++v) acc[j][v] = simd::fmadd(c, x[v], acc[j][v]);
    }
  }
  for (int j = 0; j < S; ++j)
    for (int v = 0; v < V; ++v) simd::store_first(d + j * R + r0 + v * kLanes, v + 1 < V ? kLanes : last, acc[j][v]);
}

template <int S>
void axpys(const float* l, int64_t ldl, int64_t R, int64_t k, const float* sv, int64_t kp, float* d) {
  constexpr int V = S == 1 ? 8 : S == 2 ? 4 : 2;  // registers per block of r: S V sums in 8 registers
  int64_t r0 = 0;
  for (; r0 + V * kLanes <= R; r0 += V * kLanes) axpy_block<S, V>(l, ldl, R, r0, k, sv, kp, d);
  for (; r0 + kLanes <= R; r0 += kLanes) axpy_block<S, 1>(l, ldl, R, r0, k, sv, kp, d);  // then a register at a time
  if (r0 < R) axpy_block<S, 1>(l, ldl, R, r0, k, sv, kp, d, R - r0);                      // and the last, partial one
}

// C = alpha op(A) op(B) + beta C, n <= kGemvRows < k (few_cols), or else m <= kGemvRows < k as
// C^T = op(B)^T op(A)^T. beta = 0 never reads C.
void skinny(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const float* b,
            int64_t ldb, float beta, float* c, int64_t ldc, bool few_cols) {
  const int64_t s = few_cols ? n : m, R = few_cols ? m : n, kp = (k + kLanes - 1) / kLanes * kLanes;
  // the long operand L(r, p): op(A)(r, p) (few_cols), or op(B)(p, r)
  const float* l = few_cols ? a : b;
  const int64_t ldl = few_cols ? lda : ldb;
  const bool by_rows = few_cols ? !ta : tb;
  // the short one S(p, j): op(B)(p, j) (few_cols), or op(A)(j, p)
  // sv and d in this thread's scratch (a sampling loop makes many small products: no allocation each)
  thread_local std::vector<float> scratch;
  if (scratch.size() < static_cast<size_t>(s * (kp + R))) scratch.resize(static_cast<size_t>(s * (kp + R)));
  float *sv = scratch.data(), *d = sv + s * kp;
  for (int64_t j = 0; j < s; ++j) {
    for (int64_t p = 0; p < k; ++p) sv[j * kp + p] = few_cols ? (tb ? b[j * ldb + p] : b[p * ldb + j]) : (ta ? a[p * lda + j] : a[j * lda + p]);
    std::fill(sv + j * kp + k, sv + (j + 1) * kp, 0.0f);
  }
  auto run = [&](auto S) {
    constexpr int kS = decltype(S)::value;
    if (by_rows) dots<kS>(l, ldl, R, k, sv, kp, d);
    else axpys<kS>(l, ldl, R, k, sv, kp, d);
  };
  switch (s) {
    case 1: run(std::integral_constant<int, 1>()); break;
    case 2: run(std::integral_constant<int, 2>()); break;
    case 3: run(std::integral_constant<int, 3>()); break;
    default: run(std::integral_constant<int, 4>()); break;
  }
  for (int64_t j = 0; j < s; ++j)
    for (int64_t r = 0; r < R; ++r) {
      float& out = few_cols ? c[r * ldc + j] : c[j * ldc + r];
      const float v = alpha * d[j * R + r];
      out = beta == 0.0f ? v : v + beta * out;
    }
}
static_assert(kGemvRows <= 4, "skinny() has loops for up to 4 columns of output");
#endif

template <class Blas, class T = typename Blas::T>
void gemm_t(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda, const T* b,
            int64_t ldb, T beta, T* c, int64_t ldc) {
  // Skinny outputs. With op(A) = A or A^T and op(B) likewise:
  //   column j of C = op(A) (column j of op(B))      n <= kGemvRows
  //   row i of C    = op(B)^T (row i of op(A))       m <= kGemvRows
  // Float32 up to kGemvSplit elements read, on an AVX2 or AVX-512 build: skinny() above, one
  // pass over the long operand, on this thread. Otherwise one GEMV per column (or row) of C, each
  // over the long operand. C is zeroed first when beta = 0 so that what it held (maybe NaN) is
  // never read.
  const bool few_cols = n <= kGemvRows && n < k, few_rows = m <= kGemvRows && m < k;
#if defined(DGM_SIMD_F32)
  if constexpr (std::is_same_v<T, float>)
    if ((few_cols || few_rows) && m * n * k < kGemvSplit) return skinny(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, few_cols);
#endif
  if (few_cols || few_rows) {
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

namespace {
// One product on this thread: OpenBLAS's GEMM, its GEMV, or the one-pass skinny product above.
void gemm_here(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const void* a, int64_t lda,
               const void* b, int64_t ldb, double beta, void* c, int64_t ldc, DType dtype) {
  if (dtype == DType::Float32)
    gemm_t<Sgemm>(trans_a, trans_b, m, n, k, static_cast<float>(alpha), static_cast<const float*>(a), lda,
                  static_cast<const float*>(b), ldb, static_cast<float>(beta), static_cast<float*>(c), ldc);
  else if (dtype == DType::Float64)
    gemm_t<Dgemm>(trans_a, trans_b, m, n, k, alpha, static_cast<const double*>(a), lda,
                  static_cast<const double*>(b), ldb, beta, static_cast<double*>(c), ldc);
  else
    throw Error("matmul: int64 tensors are not supported (convert with .to(DType::Float32))");
}
}  // namespace

// ---------------------------------------------------------------- one pool of threads
// On more than one thread, a product is cut here into pieces of C, each a single-threaded call on
// one of dgm's threads (runtime::run_chunks), rather than left to OpenBLAS's own threads. Two
// pools on the same cores take turns: an OpenBLAS worker spins (sched_yield) for ~0.1 s after each
// call, and dgm's pool runs the convolutions, the packed products and the elementwise passes in
// between, so with both pools a training step's products and everything else fought for the
// second core. With one pool, measured 2026-12-05 on 2 threads (docs/performance.md, medians of 4
// alternating rounds): DDPM-2D 1.27 -> 1.03 ms, the VAE 4.17 -> 3.63, the Transformer 236 -> 189,
// the LSTM 84 -> 69. Its sampling went 58 -> 62 (each product woke a pool thread that had slept
// through the attention in between) until that attention's batch of tiny products was shared
// between the threads too (gemm_op in ops/matmul.cpp): 49.
// C is cut along its longer side, rows of op(A) or columns of op(B), into parallel_chunks pieces
// (at least 2 MFLOP each); a product too small to cut runs on the calling thread. OpenBLAS itself
// is held to one thread for good (runtime::set_num_threads sets dgm's count, not OpenBLAS's).
GemmPlan gemm_plan(int64_t m, int64_t n, int64_t k) {
  const bool by_rows = m >= n;
  const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  return {runtime::parallel_chunks(by_rows ? m : n, flops), by_rows};
}

void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const void* a, int64_t lda, const void* b,
          int64_t ldb, double beta, void* c, int64_t ldc, DType dtype) {
  if (m == 0 || n == 0) return;
  const GemmPlan plan = gemm_plan(m, n, k);  // one chunk on one thread, and inside a chunk (run_chunks holds dgm to one)
  const int64_t esz = static_cast<int64_t>(dtype_size(dtype));
  const char* pa = static_cast<const char*>(a);
  const char* pb = static_cast<const char*>(b);
  char* pc = static_cast<char*>(c);
  runtime::run_pieces(plan.by_rows ? m : n, plan.chunks, [&](int64_t i0, int64_t i1, int) {
    if (plan.by_rows)  // rows i0..i1 of op(A): rows of A, or its columns (ta); rows of C
      gemm_here(ta, tb, i1 - i0, n, k, alpha, pa + (ta ? i0 : i0 * lda) * esz, lda, b, ldb, beta, pc + i0 * ldc * esz, ldc, dtype);
    else  // columns i0..i1 of op(B): columns of B, or its rows (tb); columns of C
      gemm_here(ta, tb, m, i1 - i0, k, alpha, a, lda, pb + (tb ? i0 * ldb : i0) * esz, ldb, beta, pc + i0 * esz, ldc, dtype);
  });
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

namespace {
// dgm's thread count. It starts as the count OpenBLAS chose when it was loaded (OPENBLAS_NUM_THREADS,
// or all cores), and OpenBLAS is then held to one thread for good: every BLAS call runs on the
// thread that makes it, and dgm's pool (autograd/parallel.h) is the only one (kernels::gemm cuts a
// product between its threads). A function-local static: set up on first use, once.
std::atomic<int>& count_of_threads() {
  static std::atomic<int> count{[] {
    const int n = std::max(1, openblas_get_num_threads());
    openblas_set_num_threads(1);
    return n;
  }()};
  return count;
}
// ... and at the latest when libdgm is loaded, before any BLAS call (models/toolkit/linalg.cpp's LAPACK too).
__attribute__((constructor)) void hold_openblas_to_one_thread() { (void)count_of_threads(); }
}  // namespace

int num_threads() { return count_of_threads().load(std::memory_order_relaxed); }

int hardware_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

void set_num_threads(int n) { count_of_threads().store(n <= 0 ? hardware_threads() : n, std::memory_order_relaxed); }

OneThread::OneThread(bool active) : saved_(active ? num_threads() : 1) {
  if (saved_ > 1) count_of_threads().store(1, std::memory_order_relaxed);
}
OneThread::~OneThread() {
  if (saved_ > 1) count_of_threads().store(saved_, std::memory_order_relaxed);
}

}  // namespace runtime
}  // namespace dgm
