// dgm/autograd/packed_gemm.cpp — C = A op(B) (+ C) with op(B) packed once and multiplied many times:
// an RNN's recurrent weights, read at every step of a sequence (autograd/ops/recurrent.cpp).
//
// cblas_sgemm copies both operands into its own panel layout on every call. At an LSTM step
// (A: 64 states x 256, op(B): the 256 x 1024 recurrent weights) copying the same B again at each of
// the 64 steps is ~20% of the product's time. Here op(B) [k, n] is copied once, into panels of 32
// columns, each panel's k rows of 32 floats contiguous (32 KB for k = 256: it stays in L1 while the
// panel is used). C is computed in tiles of up to 8 rows x 32 columns, 16 AVX-512 registers of sums:
// per k, two loads of the panel's row, then for each of the 8 rows one broadcast of A[r][k] and two
// fused multiply-adds. Every sum runs over k in order, like the textbook loop.
//
// Measured on the LSTM's steps (one thread, Zen 5, float32; bench/compare.sh --only lstm for the
// whole training step): forward 64 x 1024 x 256, 99 GFLOP/s against OpenBLAS's 78; backward
// 64 x 256 x 1024, 103 against 85 (docs/performance.md).
//
// Float32 on a CPU with AVX-512 only. Otherwise (float64, which the gradchecks use; a build without
// AVX-512) the packing keeps a pointer to B and the product is kernels::gemm.
#include <algorithm>
#include <string>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "autograd/kernels.h"
#include "autograd/parallel.h"

namespace dgm::kernels {

namespace {
constexpr int64_t kPanel = 32;  // columns per panel: two 16-float AVX-512 registers
constexpr int kTileRows = 8;    // rows of C per tile: 8 x 2 registers of sums

#if defined(__AVX512F__)
// C[R rows, the panel's columns] (=|+=) A[R rows, k] panel[k, 32]; masks m0, m1 keep the columns
// that exist (the last panel may be narrower than 32).
template <int R>
void tile(int64_t k, const float* a, int64_t lda, const float* panel, float* c, int64_t ldc, __mmask16 m0, __mmask16 m1,
          bool accumulate) {
  __m512 lo[R], hi[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) lo[r] = hi[r] = _mm512_setzero_ps();
  for (int64_t i = 0; i < k; ++i) {
    const __m512 b0 = _mm512_loadu_ps(panel + i * kPanel), b1 = _mm512_loadu_ps(panel + i * kPanel + 16);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 ar = _mm512_set1_ps(a[r * lda + i]);
      lo[r] = _mm512_fmadd_ps(ar, b0, lo[r]);
      hi[r] = _mm512_fmadd_ps(ar, b1, hi[r]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    float* cr = c + r * ldc;
    if (accumulate) {
      lo[r] = _mm512_add_ps(lo[r], _mm512_maskz_loadu_ps(m0, cr));
      hi[r] = _mm512_add_ps(hi[r], _mm512_maskz_loadu_ps(m1, cr + 16));
    }
    _mm512_mask_storeu_ps(cr, m0, lo[r]);
    _mm512_mask_storeu_ps(cr + 16, m1, hi[r]);
  }
}

void tiles(int64_t rows, int64_t k, const float* a, int64_t lda, const float* panel, float* c, int64_t ldc, __mmask16 m0,
           __mmask16 m1, bool accumulate) {
  int64_t r = 0;
  for (; r + kTileRows <= rows; r += kTileRows) tile<kTileRows>(k, a + r * lda, lda, panel, c + r * ldc, ldc, m0, m1, accumulate);
  const float* ar = a + r * lda;
  float* cr = c + r * ldc;
  switch (rows - r) {  // the last rows (a batch that is not a multiple of 8)
    case 1: tile<1>(k, ar, lda, panel, cr, ldc, m0, m1, accumulate); break;
    case 2: tile<2>(k, ar, lda, panel, cr, ldc, m0, m1, accumulate); break;
    case 3: tile<3>(k, ar, lda, panel, cr, ldc, m0, m1, accumulate); break;
    case 4: tile<4>(k, ar, lda, panel, cr, ldc, m0, m1, accumulate); break;
    case 5: tile<5>(k, ar, lda, panel, cr, ldc, m0, m1, accumulate); break;
    case 6: tile<6>(k, ar, lda, panel, cr, ldc, m0, m1, accumulate); break;
    case 7: tile<7>(k, ar, lda, panel, cr, ldc, m0, m1, accumulate); break;
    default: break;
  }
}

__mmask16 first(int64_t count) { return count >= 16 ? __mmask16(0xFFFF) : count <= 0 ? __mmask16(0) : __mmask16((1u << count) - 1); }
#endif

bool packs(DType dtype) {
#if defined(__AVX512F__)
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

void gemm_packed(int64_t m, const void* a, int64_t lda, const PackedB& b, bool accumulate, void* c, int64_t ldc) {
  if (b.panels.empty()) {
    gemm(false, b.trans, m, b.n, b.k, 1.0, a, lda, b.b, b.ldb, accumulate ? 1.0 : 0.0, c, ldc, b.dtype);
    return;
  }
#if defined(__AVX512F__)
  const int64_t panels = (b.n + kPanel - 1) / kPanel, k = b.k, n = b.n;
  if (m <= 0 || panels == 0) return;
  const float* pa = static_cast<const float*>(a);
  float* pc = static_cast<float*>(c);
  // the panels split between threads (each its own columns of C)
  runtime::run_chunks(panels, runtime::parallel_chunks(panels, 2.0 * static_cast<double>(m * n * k)), [&](int64_t q0, int64_t q1, int) {
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t j0 = q * kPanel;
      tiles(m, k, pa, lda, b.panels.data() + q * k * kPanel, pc + j0, ldc, first(n - j0), first(n - j0 - 16), accumulate);
    }
  });
#endif
}

}  // namespace dgm::kernels
