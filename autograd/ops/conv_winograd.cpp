// dgm/autograd/ops/conv_winograd.cpp — see conv_winograd.h.
//
// F(2x2, 3x3) computes a 2x2 block of outputs of a 3x3 correlation from the
// 4x4 block d of input under it with 16 multiplications instead of 36:
//   Y = A^T [ (G w G^T) ⊙ (B^T d B) ] A                       (one channel pair)
// with
//   B^T = [1  0 -1  0]      G = [ 1    0    0 ]      A^T = [1  1  1  0]
//         [0  1  1  0]          [1/2  1/2  1/2]            [0  1 -1 -1]
//         [0 -1  1  0]          [1/2 -1/2  1/2]
//         [0  1  0 -1]          [ 0    0    1 ]
// Summed over input channels, each of the 16 positions xi of the 4x4
// "Winograd domain" is one matrix product over all tiles at once:
//   M_xi[o, t] = sum_c U_xi[o, c] V_xi[c, t],   U = G w G^T,  V = B^T d B,
// so a convolution becomes 16 GEMMs of [O, C] x [C, tiles] between two cheap
// transforms (input: 4x4 -> 16 values per tile; output: 16 -> 2x2). The
// GEMMs do 2.25x fewer multiplications than im2col's, and V holds 4 values
// per input pixel where im2col's matrix holds 9.
//
// The weight gradient comes from differentiating the same formula. Y is linear
// in U, so with dM = A dY A^T (the output gradient of each tile taken back to
// the Winograd domain; zero where the tile hangs over the output's edge):
//   dU_xi[o, c] = sum_t dM_xi[o, t] V_xi[c, t],    dw = G^T dU G.
// (The input gradient is a stride-1 3x3 convolution with the flipped kernel,
// conv.cpp's conv_input_grad_as_conv, so it comes through forward().)
#include "autograd/ops/conv_winograd.h"

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "autograd/kernels.h"
#include "autograd/parallel.h"
#include "autograd/runtime.h"
#include "autograd/simd.h"
#include "autograd/tensor.h"

namespace dgm {

namespace {
bool winograd_enabled = true;
}  // namespace

void runtime::set_conv_winograd(bool on) { winograd_enabled = on; }
bool runtime::conv_winograd() { return winograd_enabled; }

namespace winograd {

namespace {

// The images of a chunk go through the transforms and the 16 GEMMs a few at
// a time: as many as keep a batch's V and M (16 values per tile for each
// input and output channel) within about half of a core's L2 cache
// (1 MiB here), so the GEMMs read V and the output transform reads M from
// L2 right after they were written. (1 image of the U-Net's 28x28 at 16
// channels, 2 of the image flow's 14x14 at 32.) Measured on this machine:
// k_unet28_b64 298 -> 274 ms and i_realnvp_img_b64 489 -> 459 ms (1 thread,
// best of 3) against batches of 4 MiB.
constexpr int64_t kBatchBytes = 512 * 1024;

// The tiles of one image: th rows of k = tw + 1, where tw tiles cover the
// output's width (the last may hang over its edge) and the extra column of
// each row is padding whose output is dropped. With it, the transforms below
// run as flat loops over a whole plane (tile t + k is the tile below tile t,
// and the next one's input columns start 2 further on), which the compiler
// vectorises; the GEMMs do 1/k more work for it.
struct Tiling {
  int64_t th, tw, k;
  explicit Tiling(const Geometry& g) : th((g.oh() + 1) / 2), tw((g.ow() + 1) / 2), k(tw + 1) {}
  int64_t per_image() const { return th * k; }
  int64_t quarter() const { return (th + 1) * k; }  // one parity plane of the padded input, below
};

// How many chunks of images run side by side (runtime::run_chunks): by the GEMMs' multiply-adds.
int chunk_count(const Geometry& g, const Tiling& tl) {
  return runtime::parallel_chunks(g.n, 2.0 * 16.0 * static_cast<double>(g.n * tl.per_image() * g.o * g.c));
}

// The padded input plane P (P[y][x] = x[y - pad, x - pad], zeros outside),
// (2 th + 2) x 2k, split by the parities (a, b) of its rows and columns:
//   q[2a + b][i * k + j] = P[2i + a][2j + b],   i in [0, th + 1), j in [0, k).
// Tile t = ty * k + tx reads P rows 2ty .. 2ty + 3, columns 2tx .. 2tx + 3:
// in the quarters, entries t and t + 1 (columns) of rows t and t + k.
// out[m] = in[2 m], m < n: one parity of an input row's columns
template <class T>
void every_other(int64_t n, const T* __restrict in, T* __restrict out) {
  for (int64_t m = 0; m < n; ++m) out[m] = in[2 * m];
}

template <class T>
void split_input(const T* plane, const Geometry& g, const Tiling& tl, T* q) {
  std::fill_n(q, 4 * tl.quarter(), T(0));
  for (int64_t iy = 0; iy < g.h; ++iy) {
    const int64_t y = iy + g.pad;
    for (int64_t b = 0; b < 2; ++b) {
      const int64_t ix0 = ((b - g.pad) % 2 + 2) % 2;  // the first input column x with x + pad of parity b
      if (ix0 >= g.w) continue;
      every_other((g.w - ix0 + 1) / 2, plane + iy * g.w + ix0,
                  q + (2 * (y & 1) + b) * tl.quarter() + (y >> 1) * tl.k + (ix0 + g.pad) / 2);
    }
  }
}

// The three combinations the transforms are made of, each over n values of
// four (or two) rows at once. (Separate functions with restrict parameters:
// that is what lets the compiler vectorise them.)
//   B^T:  (x0, x1, x2, x3) -> (x0 - x2, x1 + x2, x2 - x1, x1 - x3)
template <class T>
void combine_bt(int64_t n, const T* __restrict x0, const T* __restrict x1, const T* __restrict x2,
                const T* __restrict x3, T* __restrict y0, T* __restrict y1, T* __restrict y2, T* __restrict y3) {
  for (int64_t i = 0; i < n; ++i) {
    y0[i] = x0[i] - x2[i];
    y1[i] = x1[i] + x2[i];
    y2[i] = x2[i] - x1[i];
    y3[i] = x1[i] - x3[i];
  }
}
//   A^T:  (x0, x1, x2, x3) -> (x0 + x1 + x2 + c, x1 - x2 - x3 + c)
template <class T>
void combine_at(int64_t n, const T* __restrict x0, const T* __restrict x1, const T* __restrict x2,
                const T* __restrict x3, T c, T* __restrict y0, T* __restrict y1) {
  for (int64_t i = 0; i < n; ++i) {
    y0[i] = x0[i] + x1[i] + x2[i] + c;
    y1[i] = x1[i] - x2[i] - x3[i] + c;
  }
}
//   A:    (x0, x1) -> (x0, x0 + x1, x0 - x1, -x1)
template <class T>
void combine_a(int64_t n, const T* __restrict x0, const T* __restrict x1, T* __restrict y0, T* __restrict y1,
               T* __restrict y2, T* __restrict y3) {
  for (int64_t i = 0; i < n; ++i) {
    y0[i] = x0[i];
    y1[i] = x0[i] + x1[i];
    y2[i] = x0[i] - x1[i];
    y3[i] = -x1[i];
  }
}

// V[xi][t] = (B^T d B)[xi] for the tiles t of one plane (V's rows xs apart).
// Columns first (d B): for each row parity a, the columns 2tx .. 2tx + 3 of
// tile t are entries t, t + 1 of the even and odd quarters (h[a][0..3], the
// last entry of each, read only by the padding tile of the last row, zero);
// then rows (B^T .): rows 2ty .. 2ty + 3 are entries t, t + k of h[0], h[1].
template <class T>
void transform_input_plane(const T* q, const Tiling& tl, T* h, T* V, int64_t xs) {
  const int64_t nq = tl.quarter(), nt = tl.per_image();
  for (int a = 0; a < 2; ++a) {
    const T *e = q + (2 * a) * nq, *o = q + (2 * a + 1) * nq;  // even columns 2j, odd columns 2j + 1
    T* ha = h + (4 * a) * nq;
    combine_bt(nq - 1, e, o, e + 1, o + 1, ha, ha + nq, ha + 2 * nq, ha + 3 * nq);
    for (int j = 0; j < 4; ++j) ha[j * nq + nq - 1] = T(0);
  }
  for (int j = 0; j < 4; ++j) {
    const T *even = h + j * nq, *odd = h + (4 + j) * nq;  // rows 2ty and 2ty + 1 of column j
    combine_bt(nt, even, odd, even + tl.k, odd + tl.k, V + j * xs, V + (4 + j) * xs, V + (8 + j) * xs, V + (12 + j) * xs);
  }
}

// The outputs of one plane from M[xi][t] (rows xs apart): Y = A^T m A, rows
// (A^T m) into r[i][j], then columns, as the four parity planes
// y[2i + j][t] = out[2ty + i, 2tx + j] (plus the bias), then interleaved into
// the output plane, dropping what lies past its edges.
template <class T>
void transform_output_plane(const T* M, int64_t xs, const Tiling& tl, T bias, T* tmp, T* out, int64_t oh, int64_t ow) {
  const int64_t nt = tl.per_image();
  T *r = tmp, *y = tmp + 8 * nt;  // r[i][j] at (4 i + j) nt
  for (int j = 0; j < 4; ++j)
    combine_at(nt, M + j * xs, M + (4 + j) * xs, M + (8 + j) * xs, M + (12 + j) * xs, T(0), r + j * nt, r + (4 + j) * nt);
  for (int i = 0; i < 2; ++i) {
    const T* ri = r + 4 * i * nt;
    combine_at(nt, ri, ri + nt, ri + 2 * nt, ri + 3 * nt, bias, y + (2 * i) * nt, y + (2 * i + 1) * nt);
  }
  for (int64_t oy = 0; oy < oh; ++oy) {
    const T *ye = y + (2 * (oy & 1)) * nt + (oy >> 1) * tl.k, *yo = ye + nt;
    T* row = out + oy * ow;
    for (int64_t tx = 0; tx < ow / 2; ++tx) row[2 * tx] = ye[tx], row[2 * tx + 1] = yo[tx];
    if (ow & 1) row[ow - 1] = ye[ow / 2];
  }
}

// dM[xi][t] = (A dy A^T)[xi] for the tiles of one plane of the output
// gradient, the adjoint of transform_output_plane: dy's four parity planes
// (zeros past the edges, so the padding tiles get dM = 0), rows (A dy) into
// c[a][j], then columns.
template <class T>
void transform_output_grad_plane(const T* gy, int64_t oh, int64_t ow, const Tiling& tl, T* tmp, T* dM, int64_t xs) {
  const int64_t nt = tl.per_image();
  T *dy = tmp, *c = tmp + 4 * nt;  // dy[2i + j] = gy[2ty + i, 2tx + j];  c[a][j] at (2 a + j) nt
  std::fill_n(dy, 4 * nt, T(0));
  for (int64_t oy = 0; oy < oh; ++oy) {
    T *ye = dy + (2 * (oy & 1)) * nt + (oy >> 1) * tl.k, *yo = ye + nt;
    const T* row = gy + oy * ow;
    for (int64_t tx = 0; tx < ow / 2; ++tx) ye[tx] = row[2 * tx], yo[tx] = row[2 * tx + 1];
    if (ow & 1) ye[ow / 2] = row[ow - 1];
  }
  for (int j = 0; j < 2; ++j)
    combine_a(nt, dy + j * nt, dy + (2 + j) * nt, c + j * nt, c + (2 + j) * nt, c + (4 + j) * nt, c + (6 + j) * nt);
  for (int a = 0; a < 4; ++a)
    combine_a(nt, c + (2 * a) * nt, c + (2 * a + 1) * nt, dM + (4 * a) * xs, dM + (4 * a + 1) * xs,
              dM + (4 * a + 2) * xs, dM + (4 * a + 3) * xs);
}

#if defined(DGM_SIMD_F32)
// Float32 on AVX-512 or AVX2 (everything the engine trains; float64 and other CPUs take the loops
// above), written once in autograd/simd.h's vectors of kLanes floats (16 or 8):
// - The three plane transforms with one register per kLanes tiles of a tile row: each computes its
//   4x4 (or 2x2) values for those tiles side by side, straight from the input, M or the output
//   gradient, with no parity planes in memory. A row of the (padded) plane is read as two
//   registers, its even and odd columns taken apart by two permutes; the loads are masked to the
//   plane's columns, so the zero padding and the tiles past the edge cost nothing. Every value is
//   the same sum, in the same order, as in the loops above (each lane does what one iteration did).
// - forward() in strips of a few tile rows (32 tiles or more): V for the strip, its 16 products, its
//   outputs, before the next strip, so V and M stay in cache (L1/L2) instead of going out to
//   memory and back; the products are dgm's own (strip_gemm: register tiles of sums), which for
//   these small shapes (O, C <= 64 by 32 tiles) beat a call into OpenBLAS, and they write M
//   without the zero fill of kernels::gemm.
// Measured in docs/performance.md (2026-12-04, Winograd on AVX-512; 2026-12-04, evening, on AVX2).
namespace f32 {

using simd::kLanes;
using simd::Mask;
using simd::Vec;

// kLanes columns of a row from column x on, zero where the column lies outside [0, w): the padding.
// The mask and offset are the same for every row, so they are worked out once. (Masked-off lanes
// are never read, so x may be negative or run past the row.)
struct Cols {
  Mask mask;
  int64_t x;
  bool inside;  // all kLanes columns lie in the row: a plain load
  Cols(int64_t x_, int64_t w) : mask(simd::lanes(-x_, w - x_)), x(x_), inside(x_ >= 0 && x_ + kLanes <= w) {}
  Vec load(const float* row) const {
    const float* p = reinterpret_cast<const float*>(reinterpret_cast<uintptr_t>(row) + x * int64_t(sizeof(float)));
    return inside ? simd::loadu(p) : simd::load(mask, p);
  }
};

// The transforms into V and dM store whole registers, also where a tile row ends inside one: a
// masked store costs many cycles on AMD's AVX2 CPUs. The last register of a row then writes up to
// kLanes - 1 floats past the row: into the next tile row's first places, which are written after
// it (the registers of tiles go from a row's last to its first, and the rows in order), or past the
// last tile, into the kLanes floats every row of V and dM has to spare (strip_row, Plan's ld).
// last_register(k): where the last register of a row of k tiles starts.
inline int64_t last_register(int64_t k) { return (k - 1) / kLanes * kLanes; }

// transform_input_plane from the input plane itself, for the tile rows [ty0, ty1) (tile row ty
// written from V + (ty - ty0) rs on, rs >= k). Tile tx = s + l (lane l) reads the padded columns
// 2tx .. 2tx + 3, i.e. input columns 2s - pad + 2l + j: the even and odd lanes of the 2 kLanes
// columns from 2s - pad (j = 0, 1) and of the 2 kLanes from two further on (j = 2, 3).
void transform_input_rows(const float* plane, const Geometry& g, const Tiling& tl, int64_t ty0, int64_t ty1, float* V, int64_t xs,
                          int64_t rs) {
  for (int64_t s = last_register(tl.k); s >= 0; s -= kLanes) {  // whole stores (see last_register)
    const int64_t x = 2 * s - g.pad;
    const Cols a0c(x, g.w), a1c(x + kLanes, g.w), b0c(x + 2, g.w), b1c(x + kLanes + 2, g.w);
    const int64_t ahead_rows = 2 * (ty1 - ty0);
    // h[j] = (d B)[row][j] for padded row y: B^T on the row's four columns
    auto columns = [&](int64_t y, Vec h[4]) {
      const int64_t iy = y - g.pad;
      if (iy < 0 || iy >= g.h) {
        h[0] = h[1] = h[2] = h[3] = simd::zero();
        return;
      }
      const float* row = plane + iy * g.w;
      const Vec a0 = a0c.load(row), a1 = a1c.load(row), b0 = b0c.load(row), b1 = b1c.load(row);
      // the rows the next strip of this plane reads (prefetch never faults, past the plane or not)
      const char* ahead = reinterpret_cast<const char*>(row + ahead_rows * g.w + std::max<int64_t>(0, x));
      for (int line = 0; line < kLanes * 8; line += 64) simd::prefetch(ahead + line);
      const Vec x0 = simd::evens(a0, a1), x1 = simd::odds(a0, a1), x2 = simd::evens(b0, b1), x3 = simd::odds(b0, b1);
      h[0] = x0 - x2, h[1] = x1 + x2, h[2] = x2 - x1, h[3] = x1 - x3;
    };
    Vec r[4][4];  // the column combinations of tile row ty's four padded rows 2ty .. 2ty + 3
    columns(2 * ty0, r[0]);
    columns(2 * ty0 + 1, r[1]);
    for (int64_t ty = ty0; ty < ty1; ++ty) {
      columns(2 * ty + 2, r[2]);
      columns(2 * ty + 3, r[3]);
      float* v = V + (ty - ty0) * rs + s;
      for (int j = 0; j < 4; ++j) {  // B^T on the rows: V[4i + j]
        simd::storeu(v + j * xs, r[0][j] - r[2][j]);
        simd::storeu(v + (4 + j) * xs, r[1][j] + r[2][j]);
        simd::storeu(v + (8 + j) * xs, r[2][j] - r[1][j]);
        simd::storeu(v + (12 + j) * xs, r[1][j] - r[3][j]);
      }
      for (int j = 0; j < 4; ++j) r[0][j] = r[2][j], r[1][j] = r[3][j];  // the next tile row starts two rows down
    }
  }
}

// transform_output_plane into the output plane itself, for the tile rows [ty0, ty1) (tile row ty
// read from M + (ty - ty0) rs on, rs >= k): A^T m A for kLanes tiles, then each output row's two
// columns per tile interleaved (zip) and stored masked to the plane's width.
void transform_output_rows(const float* M, int64_t xs, const Tiling& tl, int64_t ty0, int64_t ty1, int64_t rs, float bias,
                           float* out, int64_t oh, int64_t ow) {
  const Vec c = simd::broadcast(bias);
  // Whole stores too, also where a row ends inside a register (see last_register): what runs past
  // an output row lands on the rows after it, written later, except past the plane's last row.
  for (int64_t s = last_register(tl.k); s >= 0; s -= kLanes) {
    const int64_t cols = ow - 2 * s;  // the output columns of these tiles (2 kLanes or fewer)
    for (int64_t ty = ty0; ty < ty1; ++ty) {
      const float* m = M + (ty - ty0) * rs + s;
      Vec r[2][4];  // A^T on the rows (tiles past the row's k read what lies there, and are dropped)
      for (int j = 0; j < 4; ++j) {
        const Vec x0 = simd::loadu(m + j * xs), x1 = simd::loadu(m + (4 + j) * xs);
        const Vec x2 = simd::loadu(m + (8 + j) * xs), x3 = simd::loadu(m + (12 + j) * xs);
        r[0][j] = x0 + x1 + x2, r[1][j] = x1 - x2 - x3;
      }
      for (int i = 0; i < 2 && 2 * ty + i < oh; ++i) {  // then on the columns: out[2ty + i][2tx + j]
        const Vec y0 = r[i][0] + r[i][1] + r[i][2] + c, y1 = r[i][1] - r[i][2] - r[i][3] + c;
        float* row = out + (2 * ty + i) * ow + 2 * s;
        const int64_t room = std::min<int64_t>(2 * kLanes, (oh - 2 * ty - i) * ow - 2 * s);  // up to the plane's end
        simd::store_first(row, room, simd::zip_lo(y0, y1));
        if (cols > kLanes) simd::store_first(row + kLanes, room - kLanes, simd::zip_hi(y0, y1));
      }
    }
  }
}

// transform_output_grad_plane from the output gradient itself: each tile's 2x2 of dy (zero past
// the edges: masked loads), taken apart into even and odd columns, then A dy A^T.
void transform_output_grad_plane(const float* gy, int64_t oh, int64_t ow, const Tiling& tl, float* dM, int64_t xs) {
  for (int64_t s = last_register(tl.k); s >= 0; s -= kLanes) {  // whole stores (see last_register)
    const Cols a0c(2 * s, ow), a1c(2 * s + kLanes, ow);
    for (int64_t ty = 0; ty < tl.th; ++ty) {
      Vec d[2][2];  // d[i][j] = gy[2ty + i][2tx + j]
      for (int i = 0; i < 2; ++i) {
        if (2 * ty + i >= oh) {
          d[i][0] = d[i][1] = simd::zero();
          continue;
        }
        const float* row = gy + (2 * ty + i) * ow;
        const Vec a0 = a0c.load(row), a1 = a1c.load(row);
        d[i][0] = simd::evens(a0, a1), d[i][1] = simd::odds(a0, a1);
      }
      Vec c[4][2];  // A on the rows
      for (int j = 0; j < 2; ++j) c[0][j] = d[0][j], c[1][j] = d[0][j] + d[1][j], c[2][j] = d[0][j] - d[1][j], c[3][j] = -d[1][j];
      float* m = dM + ty * tl.k + s;
      for (int a = 0; a < 4; ++a) {  // then on the columns: dM[4a + j]
        simd::storeu(m + (4 * a) * xs, c[a][0]);
        simd::storeu(m + (4 * a + 1) * xs, c[a][0] + c[a][1]);
        simd::storeu(m + (4 * a + 2) * xs, c[a][0] - c[a][1]);
        simd::storeu(m + (4 * a + 3) * xs, -c[a][1]);
      }
    }
  }
}

void transform_input_plane(const float* plane, const Geometry& g, const Tiling& tl, float* V, int64_t xs) {
  transform_input_rows(plane, g, tl, 0, tl.th, V, xs, tl.k);
}

// M[o][j] = sum_c U[o][c] V[c][j] for R rows o and W kLanes columns j (W registers), V's and M's
// rows ld apart (aligned to 64 bytes). Per c: W loads of V's row, then per row one broadcast of
// U[o][c] and W fused multiply-adds into the sums held in R x W registers: 8 x 2 of AVX-512's 32
// registers, 6 x 2 of AVX2's 16 (with 2 for V's row and 1 for the broadcast).
constexpr int kTileRows = kLanes == 16 ? 8 : 6;
constexpr int kTileRegisters = 2;
template <int R, int W>
void strip_tile(int64_t c_count, const float* U, const float* V, int64_t ld, float* M) {
  Vec acc[R][W];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int w = 0; w < W; ++w) acc[r][w] = simd::zero();
  for (int64_t c = 0; c < c_count; ++c) {
    Vec v[W];
#pragma GCC unroll 4
    for (int w = 0; w < W; ++w) v[w] = simd::load(V + c * ld + kLanes * w);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const Vec u = simd::broadcast(U[r * c_count + c]);
#pragma GCC unroll 4
      for (int w = 0; w < W; ++w) acc[r][w] = simd::fmadd(u, v[w], acc[r][w]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int w = 0; w < W; ++w) simd::store(M + r * ld + kLanes * w, acc[r][w]);
}

// The last rows_left (< kTileRows) rows of a strip_rows call: one tile of exactly that many rows.
template <int W, int R = 1>
void strip_last_rows(int64_t rows_left, int64_t c_count, const float* U, const float* V, int64_t ld, float* M) {
  if constexpr (R < kTileRows) {
    if (rows_left == R) return strip_tile<R, W>(c_count, U, V, ld, M);
    strip_last_rows<W, R + 1>(rows_left, c_count, U, V, ld, M);
  }
}

// M [o_count, W kLanes] = U [o_count, c_count] V [c_count, W kLanes]: rows in tiles of kTileRows,
// then what is left.
template <int W>
void strip_rows(int64_t o_count, int64_t c_count, const float* U, const float* V, int64_t ld, float* M) {
  int64_t o = 0;
  for (; o + kTileRows <= o_count; o += kTileRows) strip_tile<kTileRows, W>(c_count, U + o * c_count, V, ld, M + o * ld);
  strip_last_rows<W>(o_count - o, c_count, U + o * c_count, V, ld, M + o * ld);
}
// M [o_count, width] = U [o_count, c_count] V [c_count, width], width a multiple of kLanes:
// kTileRegisters registers of columns at a time, then one.
void strip_gemm(int64_t o_count, int64_t c_count, int64_t width, const float* U, const float* V, int64_t ld, float* M) {
  constexpr int64_t step = kTileRegisters * kLanes;
  int64_t j = 0;
  for (; j + step <= width; j += step) strip_rows<kTileRegisters>(o_count, c_count, U, V + j, ld, M + j);
  for (; j < width; j += kLanes) strip_rows<1>(o_count, c_count, U, V + j, ld, M + j);
}
// How many tiles one strip holds: the transforms' output for all 16 positions and every channel
// stays in cache between the three steps (16 x (C + O) x 48 floats: 96 KB at 16 + 16 channels).
// Measured (conv2d alone, one thread): 32 tiles ran the U-Net's 28x28 layers 5-10% faster than 64.
constexpr int64_t kStripTiles = 32;
int64_t strip_capacity(const Tiling& tl) { return std::max<int64_t>(kStripTiles, (tl.k + 15) / 16 * 16); }
// The rows of V and M in a strip are 16 floats longer than its capacity, and the 16 positions'
// blocks of rows (channels x strip_row) one cache line further apart than their size: the 16 rows
// that the input transform writes together, and the GEMMs read, must not lie a multiple of 4 KB
// apart (all in one set of L1's ways). With 64 channels and no padding, the blocks were exactly
// 20 KB apart, and the 64 -> 32 channel 14x14 convolution took 2.9-3.0 ms instead of 2.0-2.2.
int64_t strip_row(const Tiling& tl) { return strip_capacity(tl) + 16; }
int64_t strip_position(int64_t channels, const Tiling& tl) { return channels * strip_row(tl) + 16; }

// forward() for the images [n0, n1) in strips: whole tile rows, of one image or of several
// (t counts the strip's tiles in order), up to strip_capacity tiles. For each strip: V for every
// channel (transform_input_rows), the 16 products M_xi = U_xi V_xi (strip_gemm, into M directly:
// no zero fill), then the output rows. V [16][C][ld] and M [16][O][ld] (ld = strip_row, the 16
// blocks strip_position apart): the chunk's scratch.
void forward_strips(const float* x, const float* U, const float* b, float* y, const Geometry& g, const Tiling& tl, int64_t n0,
                    int64_t n1, float* V, float* M) {
  const int64_t cap = strip_capacity(tl), ld = strip_row(tl), oh = g.oh(), ow = g.ow();
  const int64_t xv = strip_position(g.c, tl), xm = strip_position(g.o, tl);
  // A tile row of 9 to 16 tiles takes 16 places in the strip: its stores and loads are whole,
  // aligned registers (a row of 15 at 15-float offsets crossed a cache line at almost every store),
  // for 1/k more work in the products.
  const int64_t rs = tl.k > 8 && tl.k <= 16 ? 16 : tl.k;
  struct Rows { int64_t n, ty0, ty1, at; };  // tile rows [ty0, ty1) of image n, from tile `at` of the strip on
  std::vector<Rows> strip;
  int64_t used = 0;
  auto flush = [&] {
    for (const Rows& r : strip)
      for (int64_t c = 0; c < g.c; ++c)
        transform_input_rows(x + (r.n * g.c + c) * g.h * g.w, g, tl, r.ty0, r.ty1, V + c * ld + r.at, xv, rs);
    const int64_t width = (used + 15) / 16 * 16;
    for (int xi = 0; xi < 16; ++xi) strip_gemm(g.o, g.c, width, U + xi * g.o * g.c, V + xi * xv, ld, M + xi * xm);
    for (const Rows& r : strip)
      for (int64_t o = 0; o < g.o; ++o)
        transform_output_rows(M + o * ld + r.at, xm, tl, r.ty0, r.ty1, rs, b ? b[o] : 0.0f, y + (r.n * g.o + o) * oh * ow, oh, ow);
    strip.clear();
    used = 0;
  };
  for (int64_t n = n0; n < n1; ++n)
    for (int64_t ty = 0; ty < tl.th;) {
      if (used + rs > cap) flush();
      const int64_t rows = std::min<int64_t>(tl.th - ty, (cap - used) / rs);  // as many of this image's rows as fit
      strip.push_back({n, ty, ty + rows, used});
      used += rows * rs;
      ty += rows;
    }
  if (used) flush();
}

// forward() in float32: the images split between threads, each chunk with its strips' scratch
// (V zeroed once: the columns past a strip's last tile are computed, never read).
void forward(const float* x, const float* U, const float* b, float* y, const Geometry& g) {
  const Tiling tl(g);
  const int chunks = chunk_count(g, tl);
  std::vector<Tensor> vs, ms;
  for (int c = 0; c < chunks; ++c) {
    vs.push_back(Tensor::zeros({16 * strip_position(g.c, tl)}, DType::Float32));
    ms.push_back(Tensor::empty({16 * strip_position(g.o, tl)}, DType::Float32));
  }
  runtime::run_chunks(g.n, chunks, [&](int64_t begin, int64_t end, int c) {
    forward_strips(x, U, b, y, g, tl, begin, end, vs[static_cast<size_t>(c)].data<float>(), ms[static_cast<size_t>(c)].data<float>());
  });
}

}  // namespace f32
#endif

// u = G k G^T (4x4 from the 3x3 kernel k)
template <class T>
void kernel_tile(const T* k, T u[16]) {
  T r[4][3];
  for (int j = 0; j < 3; ++j) {
    r[0][j] = k[j];
    r[1][j] = T(0.5) * (k[j] + k[3 + j] + k[6 + j]);
    r[2][j] = T(0.5) * (k[j] - k[3 + j] + k[6 + j]);
    r[3][j] = k[6 + j];
  }
  for (int i = 0; i < 4; ++i) {
    u[4 * i + 0] = r[i][0];
    u[4 * i + 1] = T(0.5) * (r[i][0] + r[i][1] + r[i][2]);
    u[4 * i + 2] = T(0.5) * (r[i][0] - r[i][1] + r[i][2]);
    u[4 * i + 3] = r[i][2];
  }
}

// k = G^T u G (3x3 from 4x4), the adjoint of kernel_tile
template <class T>
void kernel_tile_adjoint(const T u[16], T* k) {
  T r[3][4];
  for (int j = 0; j < 4; ++j) {
    r[0][j] = u[j] + T(0.5) * (u[4 + j] + u[8 + j]);
    r[1][j] = T(0.5) * (u[4 + j] - u[8 + j]);
    r[2][j] = T(0.5) * (u[4 + j] + u[8 + j]) + u[12 + j];
  }
  for (int i = 0; i < 3; ++i) {
    k[3 * i + 0] = r[i][0] + T(0.5) * (r[i][1] + r[i][2]);
    k[3 * i + 1] = T(0.5) * (r[i][1] - r[i][2]);
    k[3 * i + 2] = T(0.5) * (r[i][1] + r[i][2]) + r[i][3];
  }
}

// V[xi, c, t] for the images [n0, n1); t = (n - n0) * tiles per image + ty * k + tx, row stride ld.
template <class T>
void transform_input(const T* x, const Geometry& g, const Tiling& tl, int64_t n0, int64_t n1, T* V, int64_t ld, T* tmp) {
  T *q = tmp, *h = q + 4 * tl.quarter();  // tmp: 12 quarters
  for (int64_t n = n0; n < n1; ++n)
    for (int64_t c = 0; c < g.c; ++c) {
#if defined(DGM_SIMD_F32)
      if constexpr (std::is_same_v<T, float>) {
        f32::transform_input_plane(x + (n * g.c + c) * g.h * g.w, g, tl, V + c * ld + (n - n0) * tl.per_image(), g.c * ld);
        continue;
      }
#endif
      split_input(x + (n * g.c + c) * g.h * g.w, g, tl, q);
      transform_input_plane(q, tl, h, V + c * ld + (n - n0) * tl.per_image(), g.c * ld);
    }
}

// U[xi, o, c] = (G w[o, c] G^T)[xi]
template <class T>
std::vector<T> transform_kernel(const T* w, const Geometry& g) {
  std::vector<T> U(static_cast<size_t>(16 * g.o * g.c));
  const int64_t oc = g.o * g.c;
  for (int64_t k = 0; k < oc; ++k) {
    T u[16];
    kernel_tile(w + 9 * k, u);
    for (int xi = 0; xi < 16; ++xi) U[static_cast<size_t>(xi * oc + k)] = u[xi];
  }
  return U;
}

// How many images go into one batch of GEMMs (see kBatchBytes).
int64_t images_per_batch(const Geometry& g, const Tiling& tl, int64_t element_size) {
  const int64_t per_image = 16 * (g.c + g.o) * tl.per_image() * element_size;
  return std::max<int64_t>(1, kBatchBytes / per_image);
}

template <class T>
constexpr DType dtype_of() {
  return std::is_same_v<T, float> ? DType::Float32 : DType::Float64;
}

// What forward and weight_grad share: the tiling, the batches of images,
// how many chunks run side by side (runtime::run_chunks), and each chunk's
// scratch from the tensor allocator's cache (every entry is written before
// it is read): V [16, C, ld], M [16, O, ld] (M holds dM in weight_grad; ld
// is 16 floats longer than a batch's tiles, for the vector transforms' whole
// stores, f32::last_register),
// and 12 quarters for the plane transforms (the input transform's split
// quarters and column combinations; the output transforms need 12 planes of
// tiles, and a plane of tiles is smaller than a quarter).
template <class T>
struct Plan {
  Tiling tl;
  int64_t per_batch, ld;
  int chunks;
  std::vector<Tensor> v, m, tmp;
  explicit Plan(const Geometry& g)
      : tl(g), per_batch(images_per_batch(g, tl, sizeof(T))), ld(per_batch * tl.per_image() + 16),
        chunks(chunk_count(g, tl)) {
    for (int c = 0; c < chunks; ++c) {
      v.push_back(Tensor::empty({16 * g.c * ld}, dtype_of<T>()));
      m.push_back(Tensor::empty({16 * g.o * ld}, dtype_of<T>()));
      tmp.push_back(Tensor::empty({12 * tl.quarter()}, dtype_of<T>()));
    }
  }
  // Runs f(n0, n1, V, M, tmp, chunk) for the batches of images of each chunk.
  template <class F>
  void run(int64_t n, F f) {
    runtime::run_chunks(n, chunks, [&](int64_t begin, int64_t end, int c) {
      const auto i = static_cast<size_t>(c);
      for (int64_t n0 = begin; n0 < end; n0 += per_batch)
        f(n0, std::min(end, n0 + per_batch), v[i].template data<T>(), m[i].template data<T>(),
          tmp[i].template data<T>(), c);
    });
  }
};

}  // namespace

template <class T>
void forward(const T* x, const T* w, const T* b, T* y, const Geometry& g) {
  const std::vector<T> U = transform_kernel(w, g);
#if defined(DGM_SIMD_F32)
  if constexpr (std::is_same_v<T, float>) {  // strips that stay in cache, and dgm's own small products
    f32::forward(x, U.data(), b, y, g);
    return;
  }
#endif
  Plan<T> plan(g);
  const Tiling& tl = plan.tl;
  const int64_t ld = plan.ld, oh = g.oh(), ow = g.ow();
  plan.run(g.n, [&](int64_t n0, int64_t n1, T* V, T* M, T* tmp, int) {
    transform_input(x, g, tl, n0, n1, V, ld, tmp);
    for (int xi = 0; xi < 16; ++xi)  // M_xi = U_xi V_xi
      kernels::gemm(false, false, g.o, (n1 - n0) * tl.per_image(), g.c, 1.0, U.data() + xi * g.o * g.c, g.c,
                    V + xi * g.c * ld, ld, 0.0, M + xi * g.o * ld, ld, dtype_of<T>());
    for (int64_t n = n0; n < n1; ++n)
      for (int64_t o = 0; o < g.o; ++o)
        transform_output_plane(M + o * ld + (n - n0) * tl.per_image(), g.o * ld, tl, b ? b[o] : T(0), tmp,
                               y + (n * g.o + o) * oh * ow, oh, ow);
  });
}

template <class T>
void weight_grad(const T* x, const T* gy, T* dw, const Geometry& g) {
  Plan<T> plan(g);
  const Tiling& tl = plan.tl;
  const int64_t ld = plan.ld, oh = g.oh(), ow = g.ow();
  const size_t u_size = static_cast<size_t>(16 * g.o * g.c);
  std::vector<std::vector<T>> dU(static_cast<size_t>(plan.chunks), std::vector<T>(u_size, T(0)));  // [xi, o, c] per chunk
  plan.run(g.n, [&](int64_t n0, int64_t n1, T* V, T* dM, T* tmp, int chunk) {
    transform_input(x, g, tl, n0, n1, V, ld, tmp);
    for (int64_t n = n0; n < n1; ++n)
      for (int64_t o = 0; o < g.o; ++o) {
        const T* g_plane = gy + (n * g.o + o) * oh * ow;
        T* m = dM + o * ld + (n - n0) * tl.per_image();
#if defined(DGM_SIMD_F32)
        if constexpr (std::is_same_v<T, float>) {
          f32::transform_output_grad_plane(g_plane, oh, ow, tl, m, g.o * ld);
          continue;
        }
#endif
        transform_output_grad_plane(g_plane, oh, ow, tl, tmp, m, g.o * ld);
      }
    for (int xi = 0; xi < 16; ++xi)  // dU_xi += dM_xi V_xi^T
      kernels::gemm(false, true, g.o, g.c, (n1 - n0) * tl.per_image(), 1.0, dM + xi * g.o * ld, ld, V + xi * g.c * ld,
                    ld, 1.0, dU[static_cast<size_t>(chunk)].data() + xi * g.o * g.c, g.c, dtype_of<T>());
  });
  for (size_t c = 1; c < dU.size(); ++c)
    for (size_t k = 0; k < u_size; ++k) dU[0][k] += dU[c][k];
  const int64_t oc = g.o * g.c;
  for (int64_t k = 0; k < oc; ++k) {
    T u[16];
    for (int xi = 0; xi < 16; ++xi) u[xi] = dU[0][static_cast<size_t>(xi * oc + k)];
    kernel_tile_adjoint(u, dw + 9 * k);
  }
}

template void forward<float>(const float*, const float*, const float*, float*, const Geometry&);
template void forward<double>(const double*, const double*, const double*, double*, const Geometry&);
template void weight_grad<float>(const float*, const float*, float*, const Geometry&);
template void weight_grad<double>(const double*, const double*, double*, const Geometry&);

}  // namespace winograd
}  // namespace dgm
