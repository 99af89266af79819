// dgm/autograd/simd.h — the few vector operations dgm's own float32 kernels are written in, once,
// for AVX-512 (16 floats a register) and for AVX2 + FMA (8 floats): the Winograd transforms and
// products (autograd/ops/conv_winograd.cpp). Internal to the engine's .cpp files: it includes
// <immintrin.h>, which no public header does.
//
// DGM_SIMD_F32 is defined where the build's CPU has one of the two (-march=native, CMakeLists.txt's
// DGM_NATIVE); elsewhere (a portable build, another architecture) the kernels keep their plain loops.
//   Vec       kLanes floats; + - * act lane by lane (GCC vector types)
//   Mask      which lanes a load or store touches: lanes(lo, hi) keeps lo <= i < hi
//   load / store           aligned, every lane; loadu / storeu: any address
//   max(a, b)              lane by lane; b where either lane is NaN (as maxps)
//   sum(v)                 the kLanes lanes added, in a fixed order (the same on every call)
//   load(m, p) / store(p, m, v)   only the lanes of m: the others read as 0 and are not written;
//                                 an address under a masked-off lane is never touched (no fault)
//   evens(lo, hi) / odds(lo, hi)  the even / odd entries of the 2 kLanes floats lo:hi
//   zip_lo(a, b) / zip_hi(a, b)   a0 b0 a1 b1 ...: the first / last kLanes of a and b interleaved
#pragma once

#include <algorithm>
#include <cstdint>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#define DGM_SIMD_F32 1
#endif

#if defined(DGM_SIMD_F32)
namespace dgm::simd {

#if defined(__AVX512F__)
constexpr int kLanes = 16;
using Vec = __m512;
using Mask = __mmask16;

inline Mask lanes(int64_t lo, int64_t hi) {
  lo = std::clamp<int64_t>(lo, 0, kLanes), hi = std::clamp<int64_t>(hi, 0, kLanes);
  if (hi <= lo) return 0;
  return static_cast<Mask>(((1u << hi) - 1) & ~((1u << lo) - 1));
}
inline bool any(Mask m) { return m != 0; }
inline Vec zero() { return _mm512_setzero_ps(); }
inline Vec broadcast(float a) { return _mm512_set1_ps(a); }
inline Vec load(const float* p) { return _mm512_load_ps(p); }
inline Vec loadu(const float* p) { return _mm512_loadu_ps(p); }
inline Vec load(Mask m, const float* p) { return _mm512_maskz_loadu_ps(m, p); }
inline void store(float* p, Vec v) { _mm512_store_ps(p, v); }
inline void storeu(float* p, Vec v) { _mm512_storeu_ps(p, v); }
inline void store(float* p, Mask m, Vec v) { _mm512_mask_storeu_ps(p, m, v); }
inline Vec fmadd(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
inline Vec max(Vec a, Vec b) { return _mm512_max_ps(a, b); }  // b where either is NaN
inline float sum(Vec v) { return _mm512_reduce_add_ps(v); }
inline void prefetch(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0); }

inline Vec evens(Vec lo, Vec hi) {
  return _mm512_permutex2var_ps(lo, _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30), hi);
}
inline Vec odds(Vec lo, Vec hi) {
  return _mm512_permutex2var_ps(lo, _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31), hi);
}
inline Vec zip_lo(Vec a, Vec b) {
  return _mm512_permutex2var_ps(a, _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23), b);
}
inline Vec zip_hi(Vec a, Vec b) {
  return _mm512_permutex2var_ps(a, _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31), b);
}

#else  // AVX2 + FMA
constexpr int kLanes = 8;
using Vec = __m256;
using Mask = __m256i;  // all ones in the lanes kept (what vmaskmovps reads: each lane's sign bit)

inline Mask lanes(int64_t lo, int64_t hi) {
  lo = std::clamp<int64_t>(lo, 0, kLanes), hi = std::clamp<int64_t>(hi, 0, kLanes);
  const __m256i i = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_and_si256(_mm256_cmpgt_epi32(i, _mm256_set1_epi32(static_cast<int>(lo) - 1)),
                          _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(hi)), i));
}
inline bool any(Mask m) { return !_mm256_testz_si256(m, m); }
inline Vec zero() { return _mm256_setzero_ps(); }
inline Vec broadcast(float a) { return _mm256_set1_ps(a); }
inline Vec load(const float* p) { return _mm256_load_ps(p); }
inline Vec loadu(const float* p) { return _mm256_loadu_ps(p); }
inline Vec load(Mask m, const float* p) { return _mm256_maskload_ps(p, m); }
inline void store(float* p, Vec v) { _mm256_store_ps(p, v); }
inline void storeu(float* p, Vec v) { _mm256_storeu_ps(p, v); }
inline void store(float* p, Mask m, Vec v) { _mm256_maskstore_ps(p, m, v); }
inline Vec fmadd(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
inline Vec max(Vec a, Vec b) { return _mm256_max_ps(a, b); }  // b where either is NaN
inline float sum(Vec v) {  // (v0 + v4) + (v2 + v6), then + the odd lanes' likewise
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}
inline void prefetch(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0); }

// shuffle_ps takes entries 0, 2 (or 1, 3) of each half of lo and hi: lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6;
// the 64-bit pairs then go back in order: lo0 lo2 lo4 lo6 hi0 hi2 hi4 hi6.
inline Vec evens(Vec lo, Vec hi) {
  const __m256 s = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(s), _MM_SHUFFLE(3, 1, 2, 0)));
}
inline Vec odds(Vec lo, Vec hi) {
  const __m256 s = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(s), _MM_SHUFFLE(3, 1, 2, 0)));
}
// unpacklo / unpackhi interleave within each half (a0 b0 a1 b1 | a4 b4 a5 b5 and a2 b2 a3 b3 | a6 b6 a7 b7);
// the halves are then put in order.
inline Vec zip_lo(Vec a, Vec b) { return _mm256_permute2f128_ps(_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b), 0x20); }
inline Vec zip_hi(Vec a, Vec b) { return _mm256_permute2f128_ps(_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b), 0x31); }
#endif

inline Mask first(int64_t count) { return lanes(0, count); }  // lanes 0 .. count - 1

// The first count lanes from p (the others 0): a plain load where that is all of them.
inline Vec load_first(const float* p, int64_t count) { return count >= kLanes ? loadu(p) : load(first(count), p); }
// The first count lanes of v to p: a plain store where that is all of them. (AMD's AVX2 CPUs take
// many cycles for a masked store, vmaskmovps, where a plain one takes one; AVX-512's are cheap.)
inline void store_first(float* p, int64_t count, Vec v) {
  if (count >= kLanes)
    storeu(p, v);
  else
    store(p, first(count), v);
}

}  // namespace dgm::simd
#endif
