// Python bindings of the CPU kernels: one m.def per operation file in csrc/.
// The kernels take raw pointers (uintptr_t) that posedenoise/ops.py takes from validated, contiguous
// tensors it allocated; that keeps libtorch out of the build (see setup.py). Every kernel releases the GIL.
#include <pybind11/pybind11.h>

#include "ops.h"

namespace py = pybind11;

PYBIND11_MODULE(_C, m) {
  m.doc() = "posedenoise CPU kernels (csrc/)";
  m.def("heatmaps", &posedenoise::heatmaps, py::call_guard<py::gil_scoped_release>(),
        "Render heatmaps, or simulate noise and render the (input, target) pair (csrc/heatmaps.cpp)");
  m.def("heatmap_argmax", &posedenoise::heatmap_argmax, py::call_guard<py::gil_scoped_release>(),
        "(x, y) of each map's first maximum (csrc/pck.cpp)");
  m.def("pck_heatmaps", &posedenoise::pck_heatmaps, py::call_guard<py::gil_scoped_release>(),
        "Fused argmax + PCK hit counts (csrc/pck.cpp)");
}
