// Heatmap argmax and fused argmax + PCK on the CPU. Semantics: posedenoise/reference.py.
//
// One read of each map, vectorised with GCC vector extensions (16-byte SSE2/NEON, AVX2 chosen at run time);
// the fused PCK also computes the per-frame thresholds, so Python makes one call per batch. The kernels
// return how many of the maps they read held a NaN; posedenoise/ops.py reports them where a result is read.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "ops.h"
#include "parallel.h"

namespace posedenoise {
namespace {

// The first-maximum search, written once for any GCC vector type V and instantiated per instruction set:
// SSE2 (every x86-64) or NEON by default, AVX2 where the CPU has it (picked at run time, so one build
// runs everywhere; AVX-512 measured 3x slower than AVX2 on the AMD EPYC this was tuned on). always_inline
// puts each instantiation's body inside its target function, where the wide vectors compile to native
// instructions.
//
// Pass 1 takes the maximum (v > m ? v : m compiles to maxps) and a running sum, whose NaN-ness flags a
// NaN (or inf - inf, which a scalar re-check tells apart); pass 2 finds the first block holding the
// maximum and stops there. The map (12.5 KB at 56 x 56) is in L1 for pass 2, so memory sees one read.
// Ties go to the first index in row-major order, as numpy and torch. A map holding a NaN gives its first
// NaN's index (torch.argmax's rule) and sets *nan.
template <class V>
__attribute__((always_inline)) inline int64_t argmax_first_impl(const float* a, int64_t n, bool* nan) {
  constexpr int L = sizeof(V) / sizeof(float), U = 4;  // lanes; independent accumulators (hide latency)
  using M = decltype(V{} == V{});                      // lane masks (0 or -1)
  float m = -INFINITY, sum = 0.0f;
  int64_t i = 0;
  if (n >= L * U) {
    V mx[U], sm[U];
    for (int u = 0; u < U; ++u) {
      std::memcpy(&mx[u], a + L * u, sizeof(V));
      sm[u] = mx[u];
    }
    for (i = L * U; i + L * U <= n; i += L * U) {
      // The same place in the next map (the next n floats): its lines are on their way while pass 2
      // below searches this one, which the hardware prefetcher alone does not overlap (~10% measured).
      // Prefetches never fault, so reading past the last map is harmless.
      for (int j = 0; j < L * U; j += 64 / int(sizeof(float))) __builtin_prefetch(a + n + i + j);
      for (int u = 0; u < U; ++u) {
        V v;
        std::memcpy(&v, a + i + L * u, sizeof v);
        mx[u] = v > mx[u] ? v : mx[u];
        sm[u] += v;
      }
    }
    for (int u = 1; u < U; ++u) {
      mx[0] = mx[u] > mx[0] ? mx[u] : mx[0];
      sm[0] += sm[u];
    }
    for (int j = 0; j < L; ++j) {
      m = mx[0][j] > m ? mx[0][j] : m;
      sum += sm[0][j];
    }
  }
  for (; i < n; ++i) {
    m = a[i] > m ? a[i] : m;
    sum += a[i];
  }
  if (std::isnan(sum)) {  // torch.argmax's rule: a NaN is the maximum, the first one wins
    for (i = 0; i < n; ++i)
      if (std::isnan(a[i])) {
        *nan = true;
        return i;
      }
  }
  V splat;
  for (int j = 0; j < L; ++j) splat[j] = m;
  for (i = 0; i + L * U <= n; i += L * U) {  // the first block of L * U holding the maximum
    M any = {};
    for (int u = 0; u < U; ++u) {
      V v;
      std::memcpy(&v, a + i + L * u, sizeof v);
      any |= v == splat;
    }
    uint64_t bits[sizeof(M) / 8], hit = 0;
    std::memcpy(bits, &any, sizeof bits);
    for (uint64_t b : bits) hit |= b;
    if (hit) break;
  }
  for (; i < n; ++i)
    if (a[i] == m) return i;
  return 0;  // unreachable: m is an element of a (every element -inf included)
}

using ArgmaxFn = int64_t (*)(const float*, int64_t, bool*);
struct ArgmaxPath {
  ArgmaxFn fn;
  const char* name;
};

typedef float v4f __attribute__((vector_size(16)));
int64_t argmax_first_base(const float* a, int64_t n, bool* nan) { return argmax_first_impl<v4f>(a, n, nan); }

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
typedef float v8f __attribute__((vector_size(32)));
__attribute__((target("avx2"))) int64_t argmax_first_avx2(const float* a, int64_t n, bool* nan) {
  return argmax_first_impl<v8f>(a, n, nan);
}
#endif

// AVX2 where the CPU has it, unless POSEDENOISE_SIMD=base asks for the 16-byte path (tests, benchmarks).
ArgmaxPath pick_argmax() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  const char* want = std::getenv("POSEDENOISE_SIMD");
  if (!(want && std::string(want) == "base") && __builtin_cpu_supports("avx2")) return {argmax_first_avx2, "avx2"};
#endif
  return {argmax_first_base, "base"};
}

const ArgmaxPath kArgmax = pick_argmax();

}  // namespace

const char* argmax_simd() { return kArgmax.name; }

int64_t heatmap_argmax(uintptr_t maps_p, int64_t n_maps, int64_t H, int64_t W, uintptr_t xy_p, int64_t num_threads) {
  const auto* maps = reinterpret_cast<const float*>(maps_p);
  auto* xy = reinterpret_cast<float*>(xy_p);
  const int64_t plane = H * W;
  std::vector<int64_t> nan(num_chunks(n_maps, num_threads), 0);  // maps holding a NaN, per chunk
  parallel_for(n_maps, num_threads, [&](int64_t lo, int64_t hi, int64_t chunk) {
    for (int64_t n = lo; n < hi; ++n) {
      bool seen = false;
      const int64_t i = kArgmax.fn(maps + n * plane, plane, &seen);
      nan[chunk] += seen;
      xy[2 * n] = float(i % W);
      xy[2 * n + 1] = float(i / W);
    }
  });
  return std::accumulate(nan.begin(), nan.end(), int64_t(0));
}

namespace {

// Per-frame normalising length L, exactly as reference.pck_norm computes it (same float64 operations in
// the same order, no fused multiply-add: setup.py passes -ffp-contract=off); NaN where the frame is left out.
double frame_length(const float* g, const bool* v, int64_t K, const PckNorm& norm) {
  double L = 0.0;
  if (norm.mode == PckNorm::kTorso) {
    const int64_t* t = norm.torso;  // left shoulder, left hip, right shoulder, right hip
    if (!(v[t[0]] && v[t[1]] && v[t[2]] && v[t[3]])) return NAN;
    auto dist = [g](int64_t i, int64_t j) {
      const double dx = double(g[2 * i]) - double(g[2 * j]), dy = double(g[2 * i + 1]) - double(g[2 * j + 1]);
      return std::sqrt(dx * dx + dy * dy);
    };
    L = (dist(t[0], t[1]) + dist(t[2], t[3])) / 2;
  } else if (norm.mode == PckNorm::kBox) {
    double lo[2] = {INFINITY, INFINITY}, hi[2] = {-INFINITY, -INFINITY};
    bool any = false;
    for (int64_t k = 0; k < K; ++k) {
      if (!v[k]) continue;
      any = true;
      for (int c = 0; c < 2; ++c) {
        lo[c] = std::min(lo[c], double(g[2 * k + c]));
        hi[c] = std::max(hi[c], double(g[2 * k + c]));
      }
    }
    if (!any) return NAN;
    L = std::max(hi[0] - lo[0], hi[1] - lo[1]);
  } else {
    L = norm.length;
  }
  return L > 0 ? L : NAN;
}

}  // namespace

int64_t pck_heatmaps(uintptr_t maps_p, uintptr_t gt_p, uintptr_t visible_p, int64_t N, int64_t K, int64_t H,
                     int64_t W, const std::vector<double>& alphas, const PckNorm& norm, uintptr_t hits_p,
                     uintptr_t counts_p, uintptr_t frames_p, uintptr_t norm_sum_p, int64_t num_threads) {
  const auto* maps = reinterpret_cast<const float*>(maps_p);
  const auto* gt = reinterpret_cast<const float*>(gt_p);
  const auto* visible = reinterpret_cast<const bool*>(visible_p);
  auto* hits = reinterpret_cast<int64_t*>(hits_p);
  auto* counts = reinterpret_cast<int64_t*>(counts_p);
  const int64_t A = int64_t(alphas.size()), plane = H * W, n_maps = N * K;

  // Frames first (N lengths: negligible next to the maps): thresholds, what counts, the totals.
  std::vector<double> thr2(N * A, 0.0);
  std::vector<char> framed(N, 0);
  double norm_sum = 0.0;
  int64_t frames = 0;
  for (int64_t f = 0; f < N; ++f) {
    const double L = frame_length(gt + 2 * K * f, visible + K * f, K, norm);
    if (std::isnan(L)) continue;
    framed[f] = 1;
    norm_sum += L;
    ++frames;
    for (int64_t a = 0; a < A; ++a) {
      const double thr = alphas[a] * L;
      thr2[f * A + a] = thr * thr;
    }
    for (int64_t k = 0; k < K; ++k) counts[k] += visible[K * f + k];
  }
  *reinterpret_cast<int64_t*>(frames_p) = frames;
  *reinterpret_cast<double*>(norm_sum_p) = norm_sum;

  // One private (K, A) tally per chunk, summed at the end: no atomics, no false sharing in the loop.
  std::vector<std::vector<int64_t>> tally(num_chunks(n_maps, num_threads), std::vector<int64_t>(K * A, 0));
  std::vector<int64_t> nan(tally.size(), 0);  // counted maps holding a NaN, per chunk
  parallel_for(n_maps, num_threads, [&](int64_t lo, int64_t hi, int64_t chunk) {
    int64_t* t = tally[chunk].data();
    for (int64_t n = lo; n < hi; ++n) {
      const int64_t frame = n / K, k = n % K;
      if (!visible[n] || !framed[frame]) continue;  // maps that do not count are not read
      bool seen = false;
      const int64_t i = kArgmax.fn(maps + n * plane, plane, &seen);
      nan[chunk] += seen;
      const double dx = double(float(i % W)) - double(gt[2 * n]);
      const double dy = double(float(i / W)) - double(gt[2 * n + 1]);
      const double d2 = dx * dx + dy * dy;
      for (int64_t a = 0; a < A; ++a) t[k * A + a] += d2 <= thr2[frame * A + a];
    }
  });
  for (const auto& t : tally)
    for (int64_t j = 0; j < K * A; ++j) hits[j] += t[j];
  return std::accumulate(nan.begin(), nan.end(), int64_t(0));
}

}  // namespace posedenoise
