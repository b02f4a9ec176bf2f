// parallel_for on the OpenMP runtime that PyTorch already runs.
//
// PyTorch's CPU wheels load their own libgomp.so.1 before this extension; the dynamic loader matches our
// libgomp.so.1 dependency to that already-loaded copy (same soname), so our parallel regions run on
// PyTorch's thread team. That matters on few cores: after any PyTorch op its OpenMP threads spin for a
// while waiting for more work, and threads of our own (std::thread) then fight them for the cores,
// measured at 2-3x slower right after a model step (see benchmarks/pck_bench.py); a team of our own
// would also pay tens of microseconds to start per call.
#pragma once
#include <algorithm>
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace posedenoise {

// Each thread gets at least kMinItemsPerThread items: small calls run on the caller's thread alone.
constexpr int64_t kMinItemsPerThread = 64;

inline int64_t num_chunks(int64_t n, int64_t num_threads) {
  return std::max<int64_t>(1, std::min<int64_t>(num_threads, n / kMinItemsPerThread));
}

// Splits [0, n) into num_chunks(n, num_threads) contiguous chunks and runs body(lo, hi, chunk) on each.
// Every chunk runs even when OpenMP grants fewer threads than asked (nested regions, thread limits).
template <typename F>
void parallel_for(int64_t n, int64_t num_threads, F&& body) {
  const int64_t nt = num_chunks(n, num_threads);
  const int64_t size = (n + nt - 1) / nt;
  if (nt == 1) {
    body(int64_t(0), n, int64_t(0));
    return;
  }
#ifdef _OPENMP
#pragma omp parallel num_threads(int(nt))
  for (int64_t c = omp_get_thread_num(); c < nt; c += omp_get_num_threads()) {
#else  // built without OpenMP (setup.py enables it on Linux only): the chunks run one after another
  for (int64_t c = 0; c < nt; ++c) {
#endif
    const int64_t lo = c * size, hi = std::min(n, lo + size);
    if (lo < hi) body(lo, hi, c);
  }
}

}  // namespace posedenoise
