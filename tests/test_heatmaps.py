"""Rendering: every backend against scipy.ndimage (the independent oracle) and the PyTorch reference."""
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
import torch.nn.functional as F

from conftest import backends_here
from posedenoise import ops, reference

SIGMAS = (1.0, 1.5, 2.0, 2.5, 3.0)
# Corners, all four borders, one pixel in from them, and the interior.
EDGE_POINTS = [(0, 0), (55, 0), (0, 55), (55, 55), (0, 27), (55, 30), (20, 0), (33, 55), (1, 1), (54, 2),
               (27, 28), (12, 40)]


def scipy_maps(points, sigma, amplitude=255.0, size=56, dtype=np.float64):
    out = []
    for x, y in points:
        d = np.zeros((size, size), dtype)
        d[y, x] = amplitude
        out.append(ndi.gaussian_filter(d, sigma, mode="nearest", truncate=4.0))
    return np.stack(out)


def torch_f32_maps(points, sigma, amplitude=255.0, size=56):
    """The same filter done the plain way in float32 with torch (replicate padding = 'nearest'): the
    same-precision baseline of flash-attention's tolerance rule."""
    r = int(4.0 * sigma + 0.5)
    d = torch.arange(-r, r + 1, dtype=torch.float32)
    w = torch.exp(-0.5 * d**2 / sigma**2)
    w = (w / w.sum()).view(1, 1, -1)
    img = torch.zeros(len(points), 1, size, size)
    for i, (x, y) in enumerate(points):
        img[i, 0, y, x] = amplitude
    rows = F.conv2d(F.pad(img, (0, 0, r, r), mode="replicate"), w.view(1, 1, -1, 1))
    return F.conv2d(F.pad(rows, (r, r, 0, 0), mode="replicate"), w.view(1, 1, 1, -1))[:, 0]


def render(points, sigma, backend):
    c = torch.tensor(points, dtype=torch.int64)
    return ops.render_heatmaps(c, torch.ones(len(points), dtype=torch.bool), sigma, backend=backend)


def test_reference_equals_scipy_to_float32_rounding():
    for s in SIGMAS:
        ref = render(EDGE_POINTS, s, "torch").numpy()
        sp = scipy_maps(EDGE_POINTS, s, dtype=np.float32)
        # Same support exactly, and values within a few float32 ulps (the product of three rounded
        # factors and a <= 25-term sum): relative 2**-21 ~ 4.8e-7.
        assert np.array_equal(ref > 0, sp > 0)
        np.testing.assert_allclose(ref, sp, rtol=2.0**-21, atol=0)


@pytest.mark.parametrize("backend", backends_here())
def test_backend_matches_scipy_within_twice_torch_float32_error(backend):
    for s in SIGMAS:
        oracle = scipy_maps(EDGE_POINTS, s)                                     # float64 throughout
        baseline = np.abs(torch_f32_maps(EDGE_POINTS, s).double().numpy() - oracle).max()
        err = np.abs(render(EDGE_POINTS, s, backend).double().numpy() - oracle).max()
        assert err <= 2 * baseline, (backend, s, err, baseline)


@pytest.mark.parametrize("backend", backends_here())
def test_backends_agree_with_reference_on_random_batches(backend):
    g = torch.Generator().manual_seed(1)
    n = 40 if backend == "triton" else 2000  # the Triton interpreter is slow
    c = torch.randint(0, 56, (n, 2), generator=g)
    v = torch.rand(n, generator=g) > 0.25
    s = torch.tensor(SIGMAS)[torch.randint(0, 5, (n,), generator=g)]
    ref = ops.render_heatmaps(c, v, s, backend="torch")
    out = ops.render_heatmaps(c, v, s, backend=backend)
    assert torch.equal(out, ref)  # the same float32 profile factors, multiplied in the same order
    assert bool((out[~v] == 0).all())


@pytest.mark.parametrize("backend", backends_here())
def test_render_shapes_clipping_rounding_and_other_sigmas(backend):
    c = torch.tensor([[[-7.0, 3.2], [80.0, 55.6]], [[10.4, 10.5], [2.0, 60.0]]])     # (2, 2, 2)
    v = torch.tensor([[True, True], [True, False]])
    out = ops.render_heatmaps(c, v, torch.tensor([0.7, 4.2]), backend=backend)    # sigma broadcast over K
    assert out.shape == (2, 2, 56, 56) and out.dtype == torch.float32
    expect = torch.stack([
        torch.from_numpy(scipy_maps([(0, 3)], 0.7, dtype=np.float32)[0]),         # clipped x, rounded y
        torch.from_numpy(scipy_maps([(55, 55)], 4.2, dtype=np.float32)[0]),
        torch.from_numpy(scipy_maps([(10, 10)], 0.7, dtype=np.float32)[0]),       # 10.5 rounds to even
        torch.zeros(56, 56)]).view(2, 2, 56, 56)
    torch.testing.assert_close(out, expect, rtol=1e-5, atol=1e-5)


def test_non_default_size_and_amplitude_match_scipy():
    for size in (2, 5, 17):  # sigma <= size
        pts = [(0, 0), (size - 1, size // 2)]
        out = ops.render_heatmaps(torch.tensor(pts), torch.ones(2, dtype=torch.bool), 1.5, amplitude=3.0,
                                  size=size)
        np.testing.assert_allclose(out.numpy(), scipy_maps(pts, 1.5, 3.0, size, np.float32), rtol=1e-5)


def test_gaussian_radius_is_scipys_int_4_sigma_plus_half():
    sig = torch.tensor([0.1, 0.875, 1.0, 1.125, 1.12499, 2.5, 3.0, 3.1249], dtype=torch.float32)
    assert reference.gaussian_radius(sig).tolist() == [int(4.0 * float(s) + 0.5) for s in sig]


@pytest.mark.skipif("cpp" not in backends_here(), reason="the C++ extension is not built")
def test_cpp_kernel_releases_the_gil(monkeypatch):
    """While the kernel runs in one thread, this thread keeps running Python for most of the call; a kernel
    holding the GIL would let it run at most one switch interval (1 ms here)."""
    state = {"in_call": False, "seen": 0}
    real = ops._CPP

    class Probe:  # flags exactly the span of the C++ call
        def heatmaps(self, *args):
            state["in_call"] = True
            t0 = time.perf_counter()
            try:
                return real.heatmaps(*args)
            finally:
                state["in_call"] = False
                state["call_s"] = time.perf_counter() - t0

    monkeypatch.setattr(ops, "_CPP", Probe())
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 0.05:  # calibrate: loop iterations per second on this machine
        n += 1
        state["seen"] += state["in_call"]
    rate = n / (time.perf_counter() - t0)
    threads, interval = torch.get_num_threads(), sys.getswitchinterval()
    torch.set_num_threads(1)
    sys.setswitchinterval(1e-3)
    try:
        # 24,000 maps (300 MB) on one thread: one call of ~0.1-0.3 s.
        c, v = torch.randint(0, 56, (24000, 2)), torch.ones(24000, dtype=torch.bool)
        th = threading.Thread(target=ops.render_heatmaps, args=(c, v, 2.0), kwargs={"backend": "cpp"})
        th.start()
        while th.is_alive():  # the same work per iteration as the calibration loop
            state["seen"] += state["in_call"]
            time.perf_counter() - t0 < 0.05
        th.join()
    finally:
        torch.set_num_threads(threads)
        sys.setswitchinterval(interval)
    ran_s = state["seen"] / rate
    # Released: ~30% or more of the call here (other processes share the 2 cores); held: ~0.2%.
    assert ran_s > 0.1 * state["call_s"] > 0.005, (ran_s, state)


def test_install_without_a_compiler_falls_back_to_torch(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, CC="/bin/false", CXX="/bin/false", LDSHARED="/bin/false")
    env.pop("POSEDENOISE_REQUIRE_CPP", None)
    out = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--build-lib", str(tmp_path / "lib"),
                          "--build-temp", str(tmp_path / "tmp")], cwd=root, env=env, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    assert "falls back to PyTorch" in out.stderr
    status = (tmp_path / "lib" / "posedenoise" / "_build_status.json").read_text()
    assert '"cpp": false' in status and "failed to build" in status
