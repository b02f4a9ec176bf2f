"""Every op compiled and run on a real GPU (Triton on CUDA tensors) against the reference on the CPU.

Skipped, visibly, without a CUDA device: there the Triton kernels run under the interpreter (the other test
files) and are compiled for sm_80/sm_90 without running (tests/test_triton_launch.py).
"""
import numpy as np
import pytest
import scipy.ndimage as ndi
import torch

from conftest import requires_cuda
from posedenoise import ops
from test_pck import FMA_CASE, fma_case_tensors, np_argmax, np_pck, random_case

pytestmark = [requires_cuda, pytest.mark.gpu]
SIGMAS = (1.0, 1.5, 2.0, 2.5, 3.0)
CUDA = "cuda"


def _batch(B, K=25, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 56, (B, 5, K, 2), generator=g), torch.rand(B, 5, K, generator=g) > 0.2


def test_triton_is_the_default_on_cuda():
    assert ops.resolve_backend(None, torch.device(CUDA)) == "triton"


@pytest.mark.parametrize("rho,share", [(0.9, 0.8), (0.5, 1.0), (0.99, 0.3), (0.0, 1.0)])
@pytest.mark.parametrize("T", [1, 5])
def test_drifting_noise_is_bit_identical_to_the_cpu(rho, share, T):
    """The drift chain (noise.Drift) drawn by the compiled Triton kernel: inputs, targets, shifts and sigma
    indices equal to the torch reference's on the CPU, bit for bit; (0, 1) is the law without drift."""
    from posedenoise.noise import Drift, simulated
    law = simulated(1.5, SIGMAS).with_drift(Drift(rho, share))
    coords, visible = _batch(32, seed=3)
    coords, visible = coords[:, :T].contiguous(), visible[:, :T].contiguous()
    wid = torch.arange(32) * 104729 + 2**32 - 5
    kw = dict(noise=law, seed=7, epoch=3, return_noise=True)
    ref = ops.noisy_pair(coords, visible, wid, backend="torch", **kw)
    out = ops.noisy_pair(coords.to(CUDA), visible.to(CUDA), wid.to(CUDA), **kw)
    for a, b in zip(out, ref):
        assert torch.equal(a.cpu(), b)
    sim = ops.simulate_noise(coords.to(CUDA), visible.to(CUDA), wid.to(CUDA), noise=law, seed=7, epoch=3)
    assert torch.equal(sim[0].cpu(), ref[2]) and torch.equal(sim[1].cpu(), ref[3])


def test_render_equals_the_reference_bit_for_bit_and_scipy_to_float32_rounding():
    pts = [(0, 0), (55, 0), (0, 55), (55, 55), (0, 27), (20, 0), (1, 1), (27, 28)]
    c, v = torch.tensor(pts), torch.ones(len(pts), dtype=torch.bool)
    for s in SIGMAS:
        out = ops.render_heatmaps(c.to(CUDA), v.to(CUDA), s).cpu()
        assert torch.equal(out, ops.render_heatmaps(c, v, s, backend="torch"))
        for (x, y), m in zip(pts, out.double().numpy()):
            d = np.zeros((56, 56))
            d[y, x] = 255.0
            sp = ndi.gaussian_filter(d, s, mode="nearest", truncate=4.0)
            np.testing.assert_allclose(m, sp, rtol=2.0**-21, atol=0)


@pytest.mark.parametrize("seed,epoch", [(0, 0), (1, 1), (1, 2), (2**31, 16), (2**32 - 1, 49)])
def test_noise_and_pairs_are_bit_identical_to_the_cpu_in_every_epoch(seed, epoch):
    """(1, 1) is the launch that crashed every CUDA run at the start of its second epoch."""
    coords, visible = _batch(16)
    wid = torch.arange(16) * 7919 + 2**33
    for choices in (SIGMAS, None):
        kw = dict(k=1.0, sigma_choices=choices, seed=seed, epoch=epoch, return_noise=True)
        ref = ops.noisy_pair(coords, visible, wid, backend="torch", **kw)
        out = ops.noisy_pair(coords.to(CUDA), visible.to(CUDA), wid.to(CUDA), **kw)
        for a, b in zip(out, ref):
            assert torch.equal(a.cpu(), b)
        sim = ops.simulate_noise(coords.to(CUDA), visible.to(CUDA), wid.to(CUDA), k=1.0, sigma_choices=choices,
                                 seed=seed, epoch=epoch)
        assert torch.equal(sim[0].cpu(), ref[2]) and torch.equal(sim[1].cpu(), ref[3])
        alone, none = ops.noisy_pair(coords.to(CUDA), visible.to(CUDA), wid.to(CUDA), targets=False,
                                     **{**kw, "return_noise": False})
        assert none is None and torch.equal(alone.cpu(), ref[0])


def test_half_outputs_are_the_float32_maps_rounded_to_nearest_even():
    coords, visible = _batch(4)
    wid = torch.arange(4)
    kw = dict(k=1.0, sigma_choices=SIGMAS, seed=3, epoch=5)
    ref = ops.noisy_pair(coords, visible, wid, backend="torch", **kw)
    for dtype in (torch.float16, torch.bfloat16):
        out = ops.noisy_pair(coords.to(CUDA), visible.to(CUDA), wid.to(CUDA), dtype=dtype, **kw)
        assert torch.equal(out[0].cpu(), ref[0].to(dtype)) and torch.equal(out[1].cpu(), ref[1].to(dtype))


def test_argmax_equals_numpy_with_ties_nan_and_half_inputs():
    g = np.random.default_rng(0)
    h = np.round(g.random((3, 25, 56, 56)) * 3).astype(np.float32)
    h[0, 1] = 0.0
    h[1, 2, 30, 3] = h[1, 2, 4, 40] = np.nan
    out = ops.heatmap_argmax(torch.from_numpy(h).to(CUDA), check_nan=False).cpu().numpy()
    np.testing.assert_array_equal(out, np_argmax(h))
    with pytest.raises(ValueError, match="NaN"):
        ops.heatmap_argmax(torch.from_numpy(h).to(CUDA))
    for dtype in (torch.float16, torch.bfloat16):
        hh = torch.from_numpy(np.nan_to_num(h)).to(dtype)
        assert torch.equal(ops.heatmap_argmax(hh.to(CUDA)).cpu(), ops.heatmap_argmax(hh, backend="torch"))


@pytest.mark.parametrize("norm", ["torso", "bbox", 9.5])
def test_pck_counts_equal_a_numpy_loop(norm):
    h, gt, vis = random_case(64, 3, ties=True)
    alphas = (0.05, 0.1, 0.2)
    r = ops.pck_from_heatmaps(torch.from_numpy(h).to(CUDA), torch.from_numpy(gt).to(CUDA),
                              torch.from_numpy(vis).to(CUDA), alphas=alphas, norm=norm).cpu()
    hits, counts, mean_L = np_pck(np_argmax(h), gt, vis, alphas, norm)
    np.testing.assert_array_equal(r.hits.numpy(), hits)
    np.testing.assert_array_equal(r.counts.numpy(), counts)


def test_pck_without_fused_multiply_add_on_the_hardware():
    maps, gt, vis = fma_case_tensors(CUDA)
    r = ops.pck_from_heatmaps(maps, gt, vis, alphas=(FMA_CASE["alpha"],), norm=FMA_CASE["length"])
    assert r.hits[0].tolist() == [1]


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_tensors_on_another_gpu_than_the_current_one():
    coords, visible = _batch(2)
    ref = ops.noisy_pair(coords, visible, torch.arange(2), k=1.0, sigma_choices=SIGMAS, seed=0, epoch=1,
                         backend="torch")
    with torch.cuda.device(0):
        out = ops.noisy_pair(coords.to("cuda:1"), visible.to("cuda:1"), torch.arange(2, device="cuda:1"), k=1.0,
                             sigma_choices=SIGMAS, seed=0, epoch=1)
        maps = out[0]
        xy = ops.heatmap_argmax(maps)
    assert maps.device == torch.device("cuda:1") and torch.equal(maps.cpu(), ref[0])
    assert torch.equal(xy.cpu(), ops.heatmap_argmax(ref[0], backend="torch"))


def test_selfcheck_passes_on_this_gpu():
    from posedenoise import selfcheck
    rows = selfcheck.run()
    assert any(r["device"] == "cuda" and r["backend"] == "triton" for r in rows)
    assert all(r["ok"] for r in rows), [r for r in rows if not r["ok"]]
