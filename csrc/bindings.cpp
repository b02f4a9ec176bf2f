// Python bindings of the CPU kernels: one m.def per operation file in csrc/.
// The kernels take raw pointers (uintptr_t) that posedenoise/ops.py takes from validated, contiguous
// tensors it allocated; that keeps libtorch out of the build (see setup.py). Every kernel releases the GIL.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <array>

#include "ops.h"

namespace py = pybind11;

PYBIND11_MODULE(_C, m) {
  m.doc() = "posedenoise CPU kernels (csrc/)";
  m.def("heatmaps", &posedenoise::heatmaps, py::call_guard<py::gil_scoped_release>(),
        "Render heatmaps, or simulate noise and render the (input, target) pair (csrc/heatmaps.cpp)");
  m.def("argmax_simd", &posedenoise::argmax_simd, "The argmax's vector instruction set: avx2 or base (csrc/pck.cpp)");
  m.def("heatmap_argmax", &posedenoise::heatmap_argmax, py::call_guard<py::gil_scoped_release>(),
        "(x, y) of each map's first maximum (csrc/pck.cpp)");
  m.def(
      "pck_heatmaps",
      [](uintptr_t maps, uintptr_t gt, uintptr_t visible, int64_t N, int64_t K, int64_t H, int64_t W,
         const std::vector<double>& alphas, int64_t norm_mode, const std::array<int64_t, 4>& torso,
         double norm_length, uintptr_t hits, uintptr_t counts, uintptr_t frames, uintptr_t norm_sum,
         int64_t num_threads) {
        posedenoise::PckNorm norm;
        norm.mode = norm_mode;
        std::copy(torso.begin(), torso.end(), norm.torso);
        norm.length = norm_length;
        return posedenoise::pck_heatmaps(maps, gt, visible, N, K, H, W, alphas, norm, hits, counts, frames,
                                         norm_sum, num_threads);
      },
      py::call_guard<py::gil_scoped_release>(),
      "Fused PCK from heatmaps: thresholds, argmax, hit and keypoint counts (csrc/pck.cpp); "
      "norm_mode 0 torso, 1 box, 2 fixed length");
}
