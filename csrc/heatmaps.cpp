// Heatmap rendering and noise simulation on the CPU. Semantics: posedenoise/reference.py.
//
// A heatmap is separable: map[y][x] = (amplitude * g(y; m_y)) * g(x; m_x), where g(.; m) is the response
// of scipy's gaussian_filter1d(sigma, mode='nearest', truncate=4) to a unit impulse at m. Per map we
// look up the two 1D profiles (cached per thread and sigma) and then write every output float exactly
// once, a row at a time (rows outside the Gaussian's support as zeros), with stores that bypass the cache,
// so the kernel runs at memory speed.
// Noise: one Philox-4x32-10 call per keypoint (x and y shift) and one per frame (sigma index), counted
// by (slot, frame, window id) and keyed by (seed, epoch), mapped to integers through host tables.
#include <algorithm>
#include <cmath>
#include <vector>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "ops.h"
#include "parallel.h"
#include "philox.h"

namespace posedenoise {
namespace {

// int(4 * sigma + 0.5), exactly as the reference computes it for float32 sigma.
int gaussian_radius(float sigma) {
  const float t = 4.0f * sigma;
  const float whole = std::floor(t);
  return int(whole) + (t - whole >= 0.5f ? 1 : 0);
}

// The 1D profiles g(.; m) of one sigma, each computed the first time its centre m is needed:
//   g[x] = sum over |d| <= r of w[d] * [clip(x + d, 0, size - 1) == m],   w = scipy's normalised weights.
// For a given d the x that land on m form a range: x = m - d in the interior, and every x at or past the
// border when m is a border pixel ('nearest' mode piles the mass that falls outside onto the border).
// Only x in [m - r, m + r] can be nonzero.
class Profiles {
 public:
  float sigma = -1.0f;
  int r = 0;

  void reset(float s, int size) {
    sigma = s;
    size_ = size;
    r = gaussian_radius(s);
    const double scale = -0.5 / (double(s) * double(s));
    w_.resize(2 * r + 1);
    double total = 0.0;
    for (int d = -r; d <= r; ++d) total += (w_[d + r] = std::exp(scale * d * d));
    for (double& v : w_) v /= total;
    table_.assign(size_t(size) * size, 0.0f);
    ready_.assign(size, 0);
    acc_.assign(size, 0.0);
  }

  const float* get(int m) {
    float* g = &table_[size_t(m) * size_];
    if (ready_[m]) return g;
    const int lo_x = std::max(m - r, 0), hi_x = std::min(m + r, size_ - 1);
    std::fill(acc_.begin() + lo_x, acc_.begin() + hi_x + 1, 0.0);
    for (int d = -r; d <= r; ++d) {
      const int lo = std::max(m == 0 ? 0 : m - d, 0);
      const int hi = std::min(m == size_ - 1 ? size_ - 1 : m - d, size_ - 1);
      for (int x = lo; x <= hi; ++x) acc_[x] += w_[d + r];
    }
    for (int x = lo_x; x <= hi_x; ++x) g[x] = float(acc_[x]);
    ready_[m] = 1;
    return g;
  }

 private:
  int size_ = 0;
  std::vector<double> w_, acc_;  // w_[d + r]
  std::vector<float> table_;     // (size, size): row m is g(.; m)
  std::vector<char> ready_;
};

// Per-thread cache of the profiles of the last few sigmas: a noisy pair uses at most the sigma_in
// choices and 1, so after the first maps every profile is a lookup.
class Scratch {
 public:
  explicit Scratch(int size) : size_(size), cache_(8) {}
  Profiles& for_sigma(float s) {
    for (Profiles& p : cache_)
      if (p.sigma == s) return p;
    Profiles& p = cache_[next_];
    next_ = (next_ + 1) % cache_.size();
    p.reset(s, size_);
    return p;
  }

 private:
  int size_;
  std::vector<Profiles> cache_;
  size_t next_ = 0;
};

// Output stores bypass the cache (non-temporal) where the CPU has them (SSE2: every x86-64): a batch's maps
// (50 MB for 16 windows) are written once and outgrow the cache before the model reads them, so cached
// stores would first read every line from memory (write-allocate) and evict the model's data for nothing.
// dst[x] = a * g[x] (or 0 when g is null) for x in [0, n); the products are the scalar ones, bit for bit.
void store_row(float* dst, const float* g, float a, int64_t n) {
  int64_t x = 0;
#if defined(__SSE2__)
  for (; x < n && (reinterpret_cast<uintptr_t>(dst + x) & 15); ++x) dst[x] = g ? a * g[x] : 0.0f;
  const __m128 av = _mm_set1_ps(a);
  if (g)
    for (; x + 4 <= n; x += 4) _mm_stream_ps(dst + x, _mm_mul_ps(av, _mm_loadu_ps(g + x)));
  else
    for (; x + 4 <= n; x += 4) _mm_stream_ps(dst + x, _mm_setzero_ps());
#endif
  for (; x < n; ++x) dst[x] = g ? a * g[x] : 0.0f;
}

// Makes the streamed stores visible to other threads before this one reports its chunk done.
void store_fence() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

// Writes all size * size floats of one map exactly once: the rows outside the Gaussian's support as two
// runs of zeros, the rows inside as a scaled copy of the x profile.
void render_one(float* out, bool visible, int mx, int my, float sigma, int size, float amplitude,
                Scratch& scratch) {
  if (!visible) {
    store_row(out, nullptr, 0.0f, int64_t(size) * size);
    return;
  }
  Profiles& p = scratch.for_sigma(sigma);
  const float* gx = p.get(mx);
  const float* gy = p.get(my);
  const int y_lo = std::max(my - p.r, 0), y_hi = std::min(my + p.r, size - 1);
  store_row(out, nullptr, 0.0f, int64_t(size) * y_lo);
  for (int y = y_lo; y <= y_hi; ++y) store_row(out + size_t(y) * size, gx, float(double(amplitude) * gy[y]), size);
  store_row(out + size_t(y_hi + 1) * size, nullptr, 0.0f, int64_t(size) * (size - 1 - y_hi));
}

uint32_t count_passed(const uint32_t* thr, int64_t n, uint32_t u) {
  uint32_t c = 0;
  for (int64_t i = 0; i < n; ++i) c += u >= thr[i];
  return c;
}

}  // namespace

void heatmaps(uintptr_t coords_p, uintptr_t visible_p, uintptr_t sigma_p, uintptr_t window_ids_p,
              uintptr_t shift_thr_p, int64_t n_shift_thr, int64_t shift_low,
              uintptr_t sigma_thr_p, int64_t n_sigma_thr, uintptr_t sigma_values_p,
              uint64_t seed, uint64_t epoch, int64_t offset,
              uintptr_t maps_p, uintptr_t targets_p, uintptr_t noisy_p, uintptr_t sigma_in_p,
              int64_t B, int64_t T, int64_t K, int64_t size, double amplitude,
              bool noise, bool write_maps, int64_t num_threads) {
  const auto* coords = reinterpret_cast<const int32_t*>(coords_p);
  const auto* visible = reinterpret_cast<const bool*>(visible_p);
  const auto* sigma = reinterpret_cast<const float*>(sigma_p);
  const auto* window_ids = reinterpret_cast<const int64_t*>(window_ids_p);
  const auto* shift_thr = reinterpret_cast<const uint32_t*>(shift_thr_p);
  const auto* sigma_thr = reinterpret_cast<const uint32_t*>(sigma_thr_p);
  const auto* sigma_values = reinterpret_cast<const float*>(sigma_values_p);
  auto* maps = reinterpret_cast<float*>(maps_p);
  auto* targets = reinterpret_cast<float*>(targets_p);
  auto* noisy = reinterpret_cast<int32_t*>(noisy_p);
  auto* sigma_in = reinterpret_cast<float*>(sigma_in_p);
  const int64_t N = B * T * K;
  const size_t plane = size_t(size) * size;
  const int S = int(size);
  const float amp = float(amplitude);

  parallel_for(N, num_threads, [&](int64_t lo, int64_t hi, int64_t) {
    Scratch p(S);
    for (int64_t n = lo; n < hi; ++n) {
      const int mx = coords[2 * n], my = coords[2 * n + 1];
      if (!noise) {
        if (write_maps) render_one(maps + n * plane, visible[n], mx, my, sigma[n], S, amp, p);
        continue;
      }
      const int64_t j = n % K, bt = n / K, t = bt % T, b = bt / T;
      const uint64_t wid = uint64_t(window_ids[b]);
      const uint32_t w_lo = uint32_t(wid), w_hi = uint32_t(wid >> 32);
      const uint32_t k0 = uint32_t(seed), k1 = uint32_t(epoch);
      const auto rk = philox4x32_10(uint32_t(j + 1), uint32_t(t), w_lo, w_hi, k0, k1);
      const auto rf = philox4x32_10(0u, uint32_t(t), w_lo, w_hi, k0, k1);
      const float s_in = sigma_values[count_passed(sigma_thr, n_sigma_thr, rf[0])];
      const int64_t sx = shift_low + count_passed(shift_thr, n_shift_thr, rk[0]);
      const int64_t sy = shift_low + count_passed(shift_thr, n_shift_thr, rk[1]);
      const int qx = int(std::clamp<int64_t>(mx + sx + offset, 0, size - 1));
      const int qy = int(std::clamp<int64_t>(my + sy + offset, 0, size - 1));
      noisy[2 * n] = qx;
      noisy[2 * n + 1] = qy;
      if (j == 0) sigma_in[bt] = s_in;
      if (write_maps) {
        render_one(maps + n * plane, visible[n], qx, qy, s_in, S, amp, p);
        render_one(targets + n * plane, visible[n], mx, my, 1.0f, S, amp, p);
      }
    }
    store_fence();
  });
}

}  // namespace posedenoise
