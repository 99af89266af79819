// dgm/autograd/parallel.h — internal: running a kernel's independent pieces
// (the images of a batch, the pieces of a product) on several threads.
//
// This is dgm's only pool of threads. OpenBLAS runs every call on the thread
// that makes it (runtime.h); kernels::gemm cuts a product into pieces of C,
// and a convolution, a loop of small per-image products with im2col/col2im
// copies between them, splits its images between the threads, so both cores
// stay busy through the copies too. While chunks run, dgm counts one thread:
// a chunk's own products and passes are not cut again.
//
// The chunks run on a pool of threads started on first use and kept (one
// fewer than the thread count: the caller works too). Starting a std::thread
// per call cost ~50 us and started the second chunk late; a pool thread is
// woken through an atomic counter it is spinning on (or, after 200 us idle,
// sleeping on). The caller and the pool threads then take the chunks one at
// a time from a shared counter, so on a busy machine, where another process
// holds a core and a pool thread is not running, the caller runs that
// thread's chunk itself instead of waiting for it. Chunk c always covers the
// same range and gets index c, so results do not depend on which thread ran it.
#pragma once

#include <cstdint>
#include <functional>

namespace dgm::runtime {

// How many chunks to split n items into: up to num_threads(), only when the
// work (FLOPs) is large enough to pay for handing out chunks (2 MFLOP each), at most n.
int parallel_chunks(int64_t n, double flops);

// Runs f(begin, end, chunk) for `chunks` contiguous ranges covering [0, n),
// the first on the calling thread, the others on the pool; rethrows the
// first exception a chunk threw. Called from inside a chunk, or while
// another thread's chunks run, it runs the chunks one after another on the
// calling thread (same indices, same result).
// f must not record graph nodes (the graph is built by one thread); buffers
// may come from the tensor allocator (it is locked), but kernels prepare
// each chunk's scratch beforehand.
void run_chunks(int64_t n, int chunks, const std::function<void(int64_t, int64_t, int)>& f);

// run_chunks, with one chunk called directly on this thread (no std::function, no lock): the
// common case of a kernel whose work is too small to share.
template <class F>
void run_pieces(int64_t n, int chunks, F&& f) {
  if (chunks <= 1) f(int64_t(0), n, 0);
  else run_chunks(n, chunks, f);
}

// How many pieces parallel_range(n, f, values) below cuts [0, n) into.
int range_pieces(int64_t n, int64_t values = 1);

// An elementwise pass over n items of `values` values each (a binary op,
// an activation: 1; a norm: a group) runs f(begin, end, piece) on contiguous
// pieces of [0, n), one per thread when each piece gets at least ~256k
// values (below that, handing a piece to another thread costs more than it saves); on the
// calling thread alone otherwise, called directly (most calls: small
// tensors, no std::function, no thread). Returns the number of pieces.
template <class F>
int parallel_range(int64_t n, F&& f, int64_t values = 1) {
  const int pieces = range_pieces(n, values);
  run_pieces(n, pieces, f);
  return pieces;
}

}  // namespace dgm::runtime
