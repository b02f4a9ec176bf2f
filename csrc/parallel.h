// A minimal parallel_for over std::thread (no OpenMP: torch ships its own OpenMP runtime, and two
// runtimes in one process do not mix well).
#pragma once
#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

namespace posedenoise {

// Starting a thread costs tens of microseconds, so each thread gets at least kMinItemsPerThread items
// (small calls run on the caller's thread alone).
constexpr int64_t kMinItemsPerThread = 64;

inline int64_t num_chunks(int64_t n, int64_t num_threads) {
  return std::max<int64_t>(1, std::min<int64_t>(num_threads, n / kMinItemsPerThread));
}

// Splits [0, n) into num_chunks(n, num_threads) contiguous chunks and runs body(lo, hi, chunk) on each,
// one thread per chunk (the caller's thread takes chunk 0).
template <typename F>
void parallel_for(int64_t n, int64_t num_threads, F&& body) {
  const int64_t nt = num_chunks(n, num_threads);
  const int64_t size = (n + nt - 1) / nt;
  std::vector<std::thread> pool;
  pool.reserve(nt - 1);
  for (int64_t c = 1; c < nt; ++c) {
    const int64_t lo = c * size, hi = std::min(n, lo + size);
    if (lo < hi) pool.emplace_back([&body, lo, hi, c] { body(lo, hi, c); });
  }
  body(0, std::min(n, size), int64_t(0));
  for (auto& th : pool) th.join();
}

}  // namespace posedenoise
