// Heatmap argmax and fused argmax + PCK on the CPU. Semantics: posedenoise/reference.py.
//
// One read of each map, vectorised with GCC vector extensions (SSE/AVX on x86, NEON on ARM); the kernels
// return how many chunks of maps held a NaN, and posedenoise/ops.py rejects those inputs.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "ops.h"
#include "parallel.h"

namespace posedenoise {
namespace {

// 16-byte vectors: native on SSE2 (every x86-64) and NEON; wider GCC vectors are lowered to scalar code
// when the target lacks AVX.
typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

// Index of the first maximum of a[0, n) (row-major ties go to the first index, as numpy and torch).
// Pass 1 takes the maximum (maxps) and a running sum, whose NaN-ness flags a NaN (or inf - inf, which a
// scalar re-check tells apart); pass 2 finds the first element equal to the maximum and stops there. The
// map (12.5 KB at 56 x 56) is in L1 for pass 2, so memory sees one read. Sets *nan on a NaN.
int64_t argmax_first(const float* a, int64_t n, bool* nan) {
  constexpr int L = 4, U = 4;  // lanes per vector; independent accumulators (hide maxps/addps latency)
  float m = -INFINITY, sum = 0.0f;
  int64_t i = 0;
  if (n >= L * U) {
    v4f mx[U], sm[U];
    for (int u = 0; u < U; ++u) {
      std::memcpy(&mx[u], a + L * u, sizeof(v4f));
      sm[u] = mx[u];
    }
    for (i = L * U; i + L * U <= n; i += L * U) {
      for (int u = 0; u < U; ++u) {
        v4f v;
        std::memcpy(&v, a + i + L * u, sizeof v);
        mx[u] = v > mx[u] ? v : mx[u];
        sm[u] += v;
      }
    }
    for (int u = 0; u < U; ++u)
      for (int j = 0; j < L; ++j) {
        m = mx[u][j] > m ? mx[u][j] : m;
        sum += sm[u][j];
      }
  }
  for (; i < n; ++i) {
    m = a[i] > m ? a[i] : m;
    sum += a[i];
  }
  if (std::isnan(sum)) {
    for (i = 0; i < n; ++i)
      if (std::isnan(a[i])) {
        *nan = true;
        return 0;
      }
  }
  const v4f splat = {m, m, m, m};
  for (i = 0; i + L * U <= n; i += L * U) {  // find the first block of L * U holding the maximum
    v4i any = {0, 0, 0, 0};
    for (int u = 0; u < U; ++u) {
      v4f v;
      std::memcpy(&v, a + i + L * u, sizeof v);
      any |= v == splat;
    }
    uint64_t bits[2];
    std::memcpy(bits, &any, sizeof bits);
    if (bits[0] | bits[1]) break;
  }
  for (; i < n; ++i)
    if (a[i] == m) return i;
  return 0;  // unreachable: m is an element of a (every element -inf included)
}

}  // namespace

int64_t heatmap_argmax(uintptr_t maps_p, int64_t n_maps, int64_t H, int64_t W, uintptr_t xy_p, int64_t num_threads) {
  const auto* maps = reinterpret_cast<const float*>(maps_p);
  auto* xy = reinterpret_cast<float*>(xy_p);
  const int64_t plane = H * W;
  std::vector<char> nan(num_chunks(n_maps, num_threads), 0);
  parallel_for(n_maps, num_threads, [&](int64_t lo, int64_t hi, int64_t chunk) {
    bool seen = false;
    for (int64_t n = lo; n < hi; ++n) {
      const int64_t i = argmax_first(maps + n * plane, plane, &seen);
      xy[2 * n] = float(i % W);
      xy[2 * n + 1] = float(i / W);
    }
    nan[chunk] = seen;
  });
  return std::count(nan.begin(), nan.end(), 1);
}

int64_t pck_heatmaps(uintptr_t maps_p, uintptr_t gt_p, uintptr_t valid_p, uintptr_t thr2_p, int64_t N, int64_t K,
                  int64_t H, int64_t W, int64_t A, uintptr_t hits_p, int64_t num_threads) {
  const auto* maps = reinterpret_cast<const float*>(maps_p);
  const auto* gt = reinterpret_cast<const float*>(gt_p);
  const auto* valid = reinterpret_cast<const bool*>(valid_p);
  const auto* thr2 = reinterpret_cast<const double*>(thr2_p);
  auto* hits = reinterpret_cast<int64_t*>(hits_p);
  const int64_t plane = H * W, n_maps = N * K;
  // One private (K, A) tally per chunk, summed at the end: no atomics, no false sharing in the loop.
  std::vector<std::vector<int64_t>> tally(num_chunks(n_maps, num_threads), std::vector<int64_t>(K * A, 0));
  std::vector<char> nan(tally.size(), 0);
  parallel_for(n_maps, num_threads, [&](int64_t lo, int64_t hi, int64_t chunk) {
    int64_t* t = tally[chunk].data();
    bool seen = false;
    for (int64_t n = lo; n < hi; ++n) {
      if (!valid[n]) continue;
      const int64_t i = argmax_first(maps + n * plane, plane, &seen);
      const double dx = double(float(i % W)) - double(gt[2 * n]);
      const double dy = double(float(i / W)) - double(gt[2 * n + 1]);
      const double d2 = dx * dx + dy * dy;
      const int64_t frame = n / K, k = n % K;
      for (int64_t a = 0; a < A; ++a) t[k * A + a] += d2 <= thr2[frame * A + a];
    }
    nan[chunk] = seen;
  });
  for (const auto& t : tally)
    for (int64_t j = 0; j < K * A; ++j) hits[j] += t[j];
  return std::count(nan.begin(), nan.end(), 1);
}

}  // namespace posedenoise
