// dgm/autograd/packed_gemm.cpp — C = A op(B) (+ C) with op(B) packed once and multiplied many times:
// an RNN's recurrent weights, read at every step of a sequence (autograd/ops/recurrent.cpp).
//
// cblas_sgemm copies both operands into its own panel layout on every call. At an LSTM step
// (A: 64 states x 256, op(B): the 256 x 1024 recurrent weights) copying the same B again at each of
// the 64 steps is ~20% of the product's time. Here op(B) [k, n] is copied once, into panels of two
// registers of columns (32 on AVX-512, 16 on AVX2), each panel's k rows contiguous (32 KB for
// k = 256 on AVX-512: it stays in L1 while the panel is used). C is computed in tiles of up to
// kTileRows rows (8 on AVX-512, 6 on AVX2) x the panel's columns, in registers of sums: per k, two
// loads of the panel's row, then for each row one broadcast of A[r][k] and two fused
// multiply-adds. Every sum runs over k in order, like the textbook loop. Written once over
// autograd/simd.h.
//
// Measured on the LSTM's steps (one thread, Zen 5, float32; bench/compare.sh --only lstm for the
// whole training step): forward 64 x 1024 x 256, 99 GFLOP/s against OpenBLAS's 78; backward
// 64 x 256 x 1024, 103 against 85 (docs/performance.md).
//
// Float32 on a CPU with AVX-512 or AVX2 only. Otherwise (float64, which the gradchecks use; a
// portable build) the packing keeps a pointer to B and the product is kernels::gemm.
#include <algorithm>
#include <string>

#include "autograd/kernels.h"
#include "autograd/parallel.h"
#include "autograd/simd.h"

namespace dgm::kernels {

namespace {
#if defined(DGM_SIMD_F32)
using simd::kLanes;
using simd::Vec;
constexpr int64_t kPanel = 2 * kLanes;           // columns per panel: two registers
constexpr int kTileRows = kLanes == 16 ? 8 : 6;  // rows of C per tile: 8 x 2 of AVX-512's 32 registers, 6 x 2 of AVX2's 16

// C[R rows, the panel's columns] (=|+=) A[R rows, k] panel[k, kPanel]; only the first `cols` columns
// exist (the last panel may be narrower). The epilogue, on the sums still in registers: + the
// panel's `bias` (when given), then max(., 0) (relu; a NaN stays NaN, as PyTorch's relu).
template <int R>
void tile(int64_t k, const float* a, int64_t lda, const float* panel, float* c, int64_t ldc, int64_t cols, bool accumulate,
          const float* bias, bool relu) {
  Vec lo[R], hi[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) lo[r] = hi[r] = simd::zero();
  for (int64_t i = 0; i < k; ++i) {
    const Vec b0 = simd::loadu(panel + i * kPanel), b1 = simd::loadu(panel + i * kPanel + kLanes);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const Vec ar = simd::broadcast(a[r * lda + i]);
      lo[r] = simd::fmadd(ar, b0, lo[r]);
      hi[r] = simd::fmadd(ar, b1, hi[r]);
    }
  }
  const Vec bias_lo = bias ? simd::load_first(bias, cols) : simd::zero();
  const Vec bias_hi = bias && cols > kLanes ? simd::load_first(bias + kLanes, cols - kLanes) : simd::zero();
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    float* cr = c + r * ldc;
    if (accumulate) {
      lo[r] = lo[r] + simd::load_first(cr, cols);
      hi[r] = hi[r] + simd::load_first(cr + kLanes, cols - kLanes);
    }
    if (bias) lo[r] = lo[r] + bias_lo, hi[r] = hi[r] + bias_hi;
    if (relu) lo[r] = simd::max(simd::zero(), lo[r]), hi[r] = simd::max(simd::zero(), hi[r]);  // NaN stays NaN, as relu's
    simd::store_first(cr, cols, lo[r]);
    if (cols > kLanes) simd::store_first(cr + kLanes, cols - kLanes, hi[r]);
  }
}

// The last rows_left (< kTileRows) rows: one tile of exactly that many rows.
template <int R = 1>
void last_rows(int64_t rows_left, int64_t k, const float* a, int64_t lda, const float* panel, float* c, int64_t ldc, int64_t cols,
               bool accumulate, const float* bias, bool relu) {
  if constexpr (R < kTileRows) {
    if (rows_left == R) return tile<R>(k, a, lda, panel, c, ldc, cols, accumulate, bias, relu);
    last_rows<R + 1>(rows_left, k, a, lda, panel, c, ldc, cols, accumulate, bias, relu);
  }
}

void tiles(int64_t rows, int64_t k, const float* a, int64_t lda, const float* panel, float* c, int64_t ldc, int64_t cols,
           bool accumulate, const float* bias, bool relu) {
  int64_t r = 0;
  for (; r + kTileRows <= rows; r += kTileRows)
    tile<kTileRows>(k, a + r * lda, lda, panel, c + r * ldc, ldc, cols, accumulate, bias, relu);
  last_rows(rows - r, k, a + r * lda, lda, panel, c + r * ldc, ldc, cols, accumulate, bias, relu);  // a batch that is not a multiple
}
#else
constexpr int64_t kPanel = 32;  // (unused: nothing is packed)
#endif

bool packs(DType dtype) {
#if defined(DGM_SIMD_F32)
  return dtype == DType::Float32;
#else
  (void)dtype;
  return false;
#endif
}
}  // namespace

PackedB pack_b(bool trans_b, int64_t k, int64_t n, const void* b, int64_t ldb, DType dtype) {
  PackedB p;
  p.k = k, p.n = n, p.dtype = dtype, p.b = b, p.trans = trans_b, p.ldb = ldb;
  if (!packs(dtype)) return p;
  const int64_t panels = (n + kPanel - 1) / kPanel;
  p.panels.assign(static_cast<size_t>(panels * k * kPanel), 0.0f);  // zero past column n
  const float* src = static_cast<const float*>(b);
  for (int64_t q = 0; q < panels; ++q) {
    float* dst = p.panels.data() + q * k * kPanel;
    const int64_t j0 = q * kPanel, width = std::min(kPanel, n - j0);
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < width; ++j)  // op(B)[i][j0 + j]: B[j0 + j][i] if trans_b, else B[i][j0 + j]
        dst[i * kPanel + j] = trans_b ? src[(j0 + j) * ldb + i] : src[i * ldb + j0 + j];
  }
  return p;
}

void gemm_packed(int64_t m, const void* a, int64_t lda, const PackedB& b, bool accumulate, void* c, int64_t ldc, const void* bias,
                 bool relu) {
  if (b.panels.empty()) {
    gemm(false, b.trans, m, b.n, b.k, 1.0, a, lda, b.b, b.ldb, accumulate ? 1.0 : 0.0, c, ldc, b.dtype);
    if (bias || relu)  // the epilogue as its own pass
      dispatch_float(b.dtype, "gemm_packed", [&](auto tag) {
        using T = decltype(tag);
        const T* pb = static_cast<const T*>(bias);
        for (int64_t i = 0; i < m; ++i) {
          T* row = static_cast<T*>(c) + i * ldc;
          for (int64_t j = 0; j < b.n; ++j) {
            if (pb) row[j] += pb[j];
            if (relu) row[j] = row[j] < T(0) ? T(0) : row[j];  // NaN stays NaN, as relu's
          }
        }
      });
    return;
  }
#if defined(DGM_SIMD_F32)
  const int64_t panels = (b.n + kPanel - 1) / kPanel, k = b.k, n = b.n;
  if (m <= 0 || panels == 0) return;
  const float* pa = static_cast<const float*>(a);
  const float* pbias = static_cast<const float*>(bias);
  float* pc = static_cast<float*>(c);
  // the panels split between threads (each its own columns of C)
  runtime::run_chunks(panels, runtime::parallel_chunks(panels, 2.0 * static_cast<double>(m * n * k)), [&](int64_t q0, int64_t q1, int) {
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t j0 = q * kPanel;
      tiles(m, k, pa, lda, b.panels.data() + q * k * kPanel, pc + j0, ldc, std::min(kPanel, n - j0), accumulate,
            pbias ? pbias + j0 : nullptr, relu);
    }
  });
#endif
}

bool packs_float32() {
#if defined(DGM_SIMD_F32)
  return true;
#else
  return false;
#endif
}

}  // namespace dgm::kernels
