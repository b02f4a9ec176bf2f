"""Build and install posedenoise.

The CPU kernels in csrc/ are plain C++17 over raw buffers, bound with pybind11. They do not include
libtorch headers, on purpose: the extension then builds in seconds inside pip's isolated build
environment (which would otherwise download a second torch), and it keeps working when torch is
upgraded. The Python side (posedenoise/ops.py) validates tensors and hands the kernels their pointers.

The extension is optional. If the compiler is missing or the build fails, the install still succeeds,
the CPU path falls back to the PyTorch reference, and `posedenoise.build_info()` says why.
  POSEDENOISE_SKIP_CPP=1     do not build the extension
  POSEDENOISE_REQUIRE_CPP=1  make a failed build an error
"""
import glob
import json
import os
import sys

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

STATUS_FILE = "_build_status.json"


class OptionalBuildExt(build_ext):
    def _write_status(self, ok, reason):
        path = os.path.join(os.path.dirname(self.get_ext_fullpath("posedenoise._C")), STATUS_FILE)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w") as f:
            json.dump({"cpp": ok, "reason": reason}, f)
        os.replace(path + ".tmp", path)

    def run(self):
        if os.environ.get("POSEDENOISE_SKIP_CPP") == "1":
            msg = "C++ extension skipped (POSEDENOISE_SKIP_CPP=1)"
            print(f"posedenoise: {msg}; the CPU path falls back to PyTorch", file=sys.stderr)
            self._write_status(False, msg)
            return
        try:
            super().run()
        except Exception as e:  # compiler missing, headers missing, compile error
            if os.environ.get("POSEDENOISE_REQUIRE_CPP") == "1":
                raise
            msg = f"C++ extension failed to build: {type(e).__name__}: {e}"
            print(f"posedenoise: WARNING: {msg}; the CPU path falls back to PyTorch", file=sys.stderr)
            self._write_status(False, msg)
            return
        self._write_status(True, "built")


# csrc/parallel.h runs on PyTorch's OpenMP team (see there why). Linux wheels of PyTorch ship libgomp, which
# GCC's -fopenmp links against by the same name; elsewhere (macOS clang has no -fopenmp) the kernels run
# on one thread.
OPENMP = ["-fopenmp"] if sys.platform.startswith("linux") else []


def extensions():
    try:
        import pybind11
    except ImportError:  # only when building outside pip's build isolation without pybind11
        print("posedenoise: pybind11 not found; the C++ extension is not built", file=sys.stderr)
        return []
    return [Extension(
        "posedenoise._C",
        sources=sorted(glob.glob("csrc/*.cpp")),
        depends=sorted(glob.glob("csrc/*.h")),  # rebuild when a header changes, not only a .cpp
        include_dirs=[pybind11.get_include(), "csrc"],
        language="c++",
        # -ffp-contract=off: no fused multiply-add, so float64 thresholds match the reference to the bit.
        extra_compile_args=["-O3", "-std=c++17", "-fvisibility=hidden", "-ffp-contract=off"] + OPENMP,
        extra_link_args=OPENMP,
    )]


setup(
    name="posedenoise",
    version="0.1.0",
    description="Pretrain temporal pose-heatmap denoisers with heatmaps rendered on the fly by GPU/CPU kernels",
    python_requires=">=3.9",
    # kernels/ lives at the top level (Triton only) but installs as posedenoise.kernels.
    packages=find_packages(include=["posedenoise", "posedenoise.*"]) + ["posedenoise.kernels"],
    package_dir={"posedenoise.kernels": "kernels"},
    ext_modules=extensions(),
    cmdclass={"build_ext": OptionalBuildExt},
    install_requires=[
        "torch>=2.4",  # 2.13.0 satisfies it; .ci/run installs that CPU build first
        "numpy>=1.23",
        "scipy>=1.9",
        "tqdm>=4.60",
        "matplotlib>=3.5",  # `experiments report` draws Figure 1, the point of the report
        "triton>=3.0; platform_system == 'Linux' and platform_machine == 'x86_64'",
    ],
    extras_require={
        "test": ["pytest>=7", "hypothesis>=6", "matplotlib>=3.5", "pybind11>=2.10"],  # pybind11: the no-compiler test
        "report": ["matplotlib>=3.5"],
        "tensorboard": ["tensorboard>=2.10"],
    },
)
