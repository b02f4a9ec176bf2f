"""benchmarks/heatmap_ceiling.py on synthetic windows, against independent numpy and scipy computations."""
import importlib.util
import json
import pathlib

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch

from posedenoise.data import open_data
from posedenoise.evaluation import ALPHAS, batch_inputs, run_noise
from posedenoise.layout import torso_indices

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "heatmap_ceiling.py"


@pytest.fixture(scope="module")
def hc():
    spec = importlib.util.spec_from_file_location("heatmap_ceiling", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def windows():
    """Six synthetic test windows and their noisy input maps, k = 1, setup 1, as evaluation renders them."""
    data = open_data("synthetic", step=1, split="video", seed=0)
    ids = data.split_ids("test")[::97][:6]
    coords, visible = data.gather(ids)
    visible[0, 1:3, 4] = False            # a keypoint missing in two frames: its maps are all zero there
    out = batch_inputs(data, coords, visible, ids, "coords", epoch=0, **run_noise({"setup": 1, "k": 1, "seed": 0}))
    gt = out[2] if len(out) > 2 else coords
    return data, ids, out[0], gt.to(torch.float32), visible


def numpy_pck(pred, gt, visible):
    """Torso PCK, pooled, in plain numpy: pred, gt (N, K, 2), visible (N, K)."""
    (ls, lh), (rs, rh) = torso_indices()
    ok = visible[:, ls] & visible[:, lh] & visible[:, rs] & visible[:, rh]
    L = (np.linalg.norm(gt[:, ls] - gt[:, lh], axis=-1) + np.linalg.norm(gt[:, rs] - gt[:, rh], axis=-1)) / 2
    valid = visible & (ok & (L > 0))[:, None]
    d = np.sqrt(((pred - gt) ** 2).sum(-1))
    return [float(((d <= a * L[:, None]) & valid).sum() / valid.sum()) for a in ALPHAS]


def numpy_argmax(maps):
    """(..., H, W) -> (..., 2) (x, y) of the first maximum."""
    flat = maps.reshape(*maps.shape[:-2], -1).argmax(-1)
    return np.stack([flat % maps.shape[-1], flat // maps.shape[-1]], axis=-1).astype(np.float32)


def test_blur_0_average_of_the_5_maps_is_the_numpy_argmax_of_their_mean(hc, windows):
    _, _, x, gt, visible = windows
    xs = x.numpy()
    mean = xs[:, 0].copy()
    for t in range(1, xs.shape[1]):                               # in frame order, float32, as torch sums
        mean += xs[:, t]
    mean /= np.float32(xs.shape[1])
    expected = numpy_argmax(mean)                                 # (B, K, 2): every frame's prediction
    ceiling = hc.Ceiling()
    ours = dict(ceiling.predictions(x, visible))[("average", 0)]   # (B, T, K, 2)
    counted = visible.numpy().any(1)                              # the keypoints ever scored
    assert counted.sum() > 20 and not counted.all()
    for t in range(ours.shape[1]):
        np.testing.assert_array_equal(ours[:, t].numpy()[counted], expected[counted])
    ceiling.add(x, gt, visible)
    got = ceiling.result()
    B, T, K = visible.shape
    pred = np.repeat(expected[:, None], T, axis=1).reshape(B * T, K, 2)
    want = numpy_pck(pred, gt.numpy().reshape(B * T, K, 2), visible.numpy().reshape(B * T, K))
    blur0 = next(g["pck"] for g in got["average_blur"] if g["s"] == 0)
    assert [blur0[f"{a:g}"] for a in ALPHAS] == pytest.approx(want, abs=1e-6)
    # the identity (evaluation's fused path) and the filter, against numpy too
    ident = numpy_pck(numpy_argmax(xs).reshape(B * T, K, 2), gt.numpy().reshape(B * T, K, 2),
                      visible.numpy().reshape(B * T, K))
    assert [got["identity"][f"{a:g}"] for a in ALPHAS] == pytest.approx(ident, abs=1e-6)
    xy = numpy_argmax(xs)                                          # (B, T, K, 2)
    present = xs.reshape(B, T, K, -1).max(-1) > 0
    assert (present == visible.numpy()).all()
    n = present.sum(1)[:, None, :, None]
    mean_xy = np.where(n > 0, (xy * present[..., None]).sum(1, keepdims=True) / np.maximum(n, 1), xy)
    mean_xy = np.broadcast_to(mean_xy, xy.shape)
    # coordinates, not PCK: a mean can land on a threshold, where float32 (the PCK op) and float64 differ
    filt = dict(ceiling.predictions(x, visible))[("mean", "present")].numpy()
    np.testing.assert_allclose(filt[visible.numpy()], mean_xy[visible.numpy()], rtol=1e-6)


@pytest.mark.parametrize("s,radius", [(1.0, 4), (2.0, 8), (1.5, 2), ("box", 3), (0, 0)])
def test_blur_is_the_zero_padded_separable_filter(hc, s, radius):
    maps = torch.rand(3, 56, 56, generator=torch.Generator().manual_seed(1), dtype=torch.float32)
    d = np.arange(-radius, radius + 1)
    g = np.ones(len(d)) if s == "box" else (d == 0).astype(float) if s == 0 else np.exp(-0.5 * (d / s) ** 2)
    g = g / g.sum()
    want = ndi.convolve1d(ndi.convolve1d(maps.numpy().astype(np.float64), g, axis=-1, mode="constant"), g, axis=-2,
                          mode="constant")
    got = hc.blur(maps, hc.blur_matrix(s, radius)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    if s == 2.0:   # (c)'s truncation at 4 sigma is scipy's gaussian_filter with zero padding
        np.testing.assert_allclose(got, ndi.gaussian_filter(maps.numpy().astype(np.float64), 2.0, mode="constant",
                                                            axes=(-2, -1)), rtol=1e-5, atol=1e-6)


def test_a_same_kernel_sees_the_frames_its_padding_leaves(hc):
    assert hc.frame_spans(2) == [(0, 2), (0, 3), (0, 4), (1, 4), (2, 4)]          # kernel 5
    assert hc.frame_spans(3) == [(0, 3), (0, 4), (0, 4), (0, 4), (1, 4)]          # kernel 7
    assert hc.frame_spans(4) == [(0, 4)] * 5 and hc.frame_spans(6) == [(0, 4)] * 5


def test_the_script_writes_its_json_and_markdown(hc, tmp_path, monkeypatch, capsys):
    """End to end on a small cache: every method's PCK in the JSON, the page's checker accepts it, the
    kernels at or beyond the window's reach with s = 0 equal the plain average, and a table is printed last."""
    from posedenoise import prepare
    from posedenoise.experiments import check_ceiling
    cache = tmp_path / "cache.npz"
    prepare.main(["--synthetic", "8", "--no-progress", "--out", str(cache)])
    hc.main(["--data", str(cache), "--windows", "12", "--batch-size", "5", "--json", str(tmp_path / "c.json"),
             "--markdown", str(tmp_path / "c.md")])
    doc = json.loads((tmp_path / "c.json").read_text())
    check_ceiling(doc, "c.json")
    assert doc["windows"] == 12 and [r["k"] for r in doc["results"]] == [1.0, 2.0]
    for r in doc["results"]:
        blur0 = r["average_blur"][0]
        assert blur0["s"] == 0
        for kernel in r["kernels"]:
            zero = next(g for g in kernel["grid"] if g["s"] == 0)
            if kernel["temporal_reach"] >= 4:
                assert zero["pck"] == blur0["pck"]
            assert kernel["pck"]["0.2"] == max(g["pck"]["0.2"] for g in kernel["grid"])
    assert "conv3d kernel 5" in (tmp_path / "c.md").read_text()
    assert capsys.readouterr().out.rstrip().splitlines()[-1].startswith("| maps each divided by its peak")
