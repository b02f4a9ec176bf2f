// Heatmap rendering and noise simulation on the CPU. Semantics: posedenoise/reference.py.
//
// A heatmap is separable: map[y][x] = (amplitude * g(y; m_y)) * g(x; m_x), where g(.; m) is the response
// of scipy's gaussian_filter1d(sigma, mode='nearest', truncate=4) to a unit impulse at m. The 1D profiles
// come from the host's table (reference.gaussian_profiles: float64, rounded to float32 once), which every
// backend reads, so the backends multiply the same factors and agree bit for bit. Every output float is
// written exactly once, a row at a time (rows outside the Gaussian's support as zeros), with stores that
// bypass the cache, so the kernel runs at memory speed.
// Noise: one Philox-4x32-10 call per keypoint (x and y shift) and one per frame (sigma index), counted
// by (slot, frame, window id) and keyed by (seed, epoch), mapped to integers through host tables. With
// drift (keep, emit thresholds: noise.Drift, defined by reference.simulate_noise), a keypoint's words at
// frame t come from the last frame <= t that redrew its latent shift (found walking back from t), or, when
// frame t does not emit the latent, from the fresh counter (slot, FRESH + t, window id).
#include <algorithm>
#include <cstdint>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "ops.h"
#include "parallel.h"
#include "philox.h"

namespace posedenoise {
namespace {

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
// runs of zeros, the others as amplitude * g_y times the x profile. `profiles` is the sigma's
// (size, size) block of the table: row m is g(.; m).
void render_one(float* out, bool visible, int mx, int my, const float* profiles, int size, float amplitude) {
  if (!visible) {
    store_row(out, nullptr, 0.0f, int64_t(size) * size);
    return;
  }
  const float* gx = profiles + size_t(mx) * size;
  const float* gy = profiles + size_t(my) * size;
  int y_lo = 0, y_hi = size - 1;  // the rows where g_y is nonzero: one run (g_y sums to 1, so never empty)
  while (gy[y_lo] == 0.0f) ++y_lo;
  while (gy[y_hi] == 0.0f) --y_hi;
  store_row(out, nullptr, 0.0f, int64_t(size) * y_lo);
  for (int y = y_lo; y <= y_hi; ++y) store_row(out + size_t(y) * size, gx, amplitude * gy[y], size);
  store_row(out + size_t(y_hi + 1) * size, nullptr, 0.0f, int64_t(size) * (size - 1 - y_hi));
}

constexpr uint32_t FRESH = 1u << 31;   // reference.FRESH

uint32_t count_passed(const uint32_t* thr, int64_t n, uint32_t u) {
  uint32_t c = 0;
  for (int64_t i = 0; i < n; ++i) c += u >= thr[i];
  return c;
}

}  // namespace

void heatmaps(uintptr_t coords_p, uintptr_t visible_p, uintptr_t rows_p, uintptr_t profiles_p,
              uintptr_t window_ids_p, uintptr_t shift_thr_p, int64_t n_shift_thr, int64_t shift_low,
              uintptr_t sigma_thr_p, int64_t n_sigma_thr, uintptr_t sigma_values_p, int64_t target_row,
              uint64_t seed, uint64_t epoch, int64_t offset, uint64_t drift_keep, uint64_t drift_emit,
              uintptr_t maps_p, uintptr_t targets_p, uintptr_t noisy_p, uintptr_t sigma_in_p,
              int64_t B, int64_t T, int64_t K, int64_t size, double amplitude,
              bool noise, bool write_inputs, bool write_targets, int64_t num_threads) {
  const auto* coords = reinterpret_cast<const int32_t*>(coords_p);
  const auto* visible = reinterpret_cast<const bool*>(visible_p);
  const auto* rows = reinterpret_cast<const int32_t*>(rows_p);
  const auto* profiles = reinterpret_cast<const float*>(profiles_p);
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
  const float amp = float(amplitude);  // float32, as the reference and the Triton kernel take it
  const bool drift = drift_keep != 0 || drift_emit != (uint64_t(1) << 32);  // else: every frame its own words

  parallel_for(N, num_threads, [&](int64_t lo, int64_t hi, int64_t) {
    for (int64_t n = lo; n < hi; ++n) {
      const int mx = coords[2 * n], my = coords[2 * n + 1];
      if (!noise) {
        render_one(maps + n * plane, visible[n], mx, my, profiles + rows[n] * plane, S, amp);
        continue;
      }
      const int64_t j = n % K, bt = n / K, t = bt % T, b = bt / T;
      const uint64_t wid = uint64_t(window_ids[b]);
      const uint32_t w_lo = uint32_t(wid), w_hi = uint32_t(wid >> 32);
      const uint32_t k0 = uint32_t(seed), k1 = uint32_t(epoch);
      const uint32_t slot = uint32_t(j + 1);
      auto rk = philox4x32_10(slot, uint32_t(t), w_lo, w_hi, k0, k1);
      const auto rf = philox4x32_10(0u, uint32_t(t), w_lo, w_hi, k0, k1);
      if (drift) {
        if (uint64_t(rk[3]) < drift_emit) {    // emit the latent: the words of the last frame <= t that redrew
          for (int64_t s = t; s > 0 && uint64_t(rk[2]) < drift_keep;) rk = philox4x32_10(slot, uint32_t(--s), w_lo,
                                                                                          w_hi, k0, k1);
        } else {                                 // a fresh draw
          rk = philox4x32_10(slot, FRESH + uint32_t(t), w_lo, w_hi, k0, k1);
        }
      }
      const uint32_t row = count_passed(sigma_thr, n_sigma_thr, rf[0]);
      const int64_t sx = shift_low + count_passed(shift_thr, n_shift_thr, rk[0]);
      const int64_t sy = shift_low + count_passed(shift_thr, n_shift_thr, rk[1]);
      const int qx = int(std::clamp<int64_t>(mx + sx + offset, 0, size - 1));
      const int qy = int(std::clamp<int64_t>(my + sy + offset, 0, size - 1));
      noisy[2 * n] = qx;
      noisy[2 * n + 1] = qy;
      if (j == 0) sigma_in[bt] = sigma_values[row];
      if (write_inputs) render_one(maps + n * plane, visible[n], qx, qy, profiles + row * plane, S, amp);
      if (write_targets) render_one(targets + n * plane, visible[n], mx, my, profiles + target_row * plane, S, amp);
    }
    store_fence();
  });
}

}  // namespace posedenoise
