// Declarations of the CPU kernels bound in bindings.cpp (csrc/heatmaps.cpp).
#pragma once
#include <cstdint>
#include <vector>

namespace posedenoise {

// Render heatmaps (noise = false) or simulate noise and render the (input, target) pair (noise = true).
// All pointers are to contiguous buffers that posedenoise/ops.py allocated and validated:
//   coords      int32  (N, 2) with N = B*T*K, (x, y) in [0, size)
//   visible     bool   (N,)
//   profiles    float  (S, size, size): [s][m] = the 1D Gaussian profile centred at m for the table's sigma s
//   rows        int32  (N,) each map's sigma s           render mode only
//   window_ids  int64  (B,)                               noise mode only
//   shift_thr   uint32 (n_shift_thr,)            shift = shift_low + #{i : u >= shift_thr[i]}
//   sigma_thr   uint32 (n_sigma_thr,)            input sigma s = #{i : u >= sigma_thr[i]}; the target's is
//                                                target_row; sigma_values (S,) float the table's sigmas
//   drift_keep, drift_emit                       the shifts' drift thresholds (noise.Drift; keep in
//                                                [0, 2**32), emit in [0, 2**32]); 0, 2**32: no drift
//   maps        float  (N, size, size): the rendered maps [render] or the noisy inputs [pair, write_inputs]
//   targets     float  (N, size, size): the clean targets [pair, write_targets]
//   noisy       int32  (N, 2), sigma_in float (B*T,)   noise mode only
void heatmaps(uintptr_t coords, uintptr_t visible, uintptr_t rows, uintptr_t profiles, uintptr_t window_ids,
              uintptr_t shift_thr, int64_t n_shift_thr, int64_t shift_low,
              uintptr_t sigma_thr, int64_t n_sigma_thr, uintptr_t sigma_values, int64_t target_row,
              uint64_t seed, uint64_t epoch, int64_t offset, uint64_t drift_keep, uint64_t drift_emit,
              uintptr_t maps, uintptr_t targets, uintptr_t noisy, uintptr_t sigma_in,
              int64_t B, int64_t T, int64_t K, int64_t size, double amplitude,
              bool noise, bool write_inputs, bool write_targets, int64_t num_threads);

}  // namespace posedenoise

namespace posedenoise {

// Which argmax instantiation this CPU runs: "avx2" or "base" (16-byte SSE2 / NEON vectors).
const char* argmax_simd();

// (x, y) of each map's maximum, ties to the first index in row-major order. maps float (n_maps, H, W)
// -> xy float (n_maps, 2). Both kernels return how many of the maps they read hold a NaN (such a map
// gives its first NaN, torch.argmax's rule).
int64_t heatmap_argmax(uintptr_t maps, int64_t n_maps, int64_t H, int64_t W, uintptr_t xy, int64_t num_threads);

// How a frame's normalising length L is found (reference.pck_norm): the torso (mean of the left and right
// shoulder-hip distances; torso = {left shoulder, left hip, right shoulder, right hip} indices), the box of
// the visible keypoints (its longer side), or a fixed length. Frames with no L (or L <= 0) do not count.
struct PckNorm {
  enum Mode : int64_t { kTorso = 0, kBox = 1, kFixed = 2 };
  int64_t mode = kTorso;
  int64_t torso[4] = {0, 0, 0, 0};
  double length = 0.0;
};

// Fused PCK, thresholds included, one read of each counted map (maps of keypoints not counted are not read):
//   maps float (N, K, H, W), gt float (N, K, 2), visible bool (N, K), alphas (A,)
//   per frame with a length L: thr2 = (alpha * L)^2 in float64, frames += 1, norm_sum += L,
//   and per visible keypoint of it: counts[k] += 1, hits[k][a] += (dx*dx + dy*dy <= thr2[a]) with d the
//   float64 difference of argmax and gt (see reference.pck_hits). Outputs (zeroed by the caller):
//   hits int64 (K, A), counts int64 (K,), frames int64 (1,), norm_sum double (1,).
int64_t pck_heatmaps(uintptr_t maps, uintptr_t gt, uintptr_t visible, int64_t N, int64_t K, int64_t H, int64_t W,
                     const std::vector<double>& alphas, const PckNorm& norm, uintptr_t hits, uintptr_t counts,
                     uintptr_t frames, uintptr_t norm_sum, int64_t num_threads);

}  // namespace posedenoise
