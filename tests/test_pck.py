"""Argmax and PCK: every backend against plain numpy written here, exact integers across backends."""
import math
import os

import numpy as np
import pytest
import torch

from conftest import backends_here
from posedenoise import ops
from posedenoise.layout import POSE25, group_indices

K = len(POSE25)
LS, RS, LH, RH = (POSE25.index(n) for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip"))


def np_argmax(h):
    """Loops over maps; np.argmax's first-index rule."""
    flat = h.reshape(-1, h.shape[-2] * h.shape[-1])
    out = np.zeros((flat.shape[0], 2), np.float32)
    for i, m in enumerate(flat):
        j = int(np.argmax(m))
        out[i] = (j % h.shape[-1], j // h.shape[-1])
    return out.reshape(h.shape[:-2] + (2,))


def np_pck(pred, gt, vis, alphas, norm):
    """The SPEC's definition, frame by frame, keypoint by keypoint."""
    pred = pred.reshape(-1, K, 2).astype(np.float64)
    gt = gt.reshape(-1, K, 2).astype(np.float64)
    vis = vis.reshape(-1, K)
    hits = np.zeros((K, len(alphas)), np.int64)
    counts = np.zeros(K, np.int64)
    norms = []
    for f in range(gt.shape[0]):
        if norm == "torso":
            if not (vis[f, LS] and vis[f, RS] and vis[f, LH] and vis[f, RH]):
                continue
            L = (math.dist(gt[f, LS], gt[f, LH]) + math.dist(gt[f, RS], gt[f, RH])) / 2
        elif norm == "bbox":
            pts = gt[f][vis[f]]
            if len(pts) == 0:
                continue
            L = max(pts[:, 0].max() - pts[:, 0].min(), pts[:, 1].max() - pts[:, 1].min())
        else:
            L = norm
        if L <= 0:
            continue
        norms.append(L)
        for k in range(K):
            if not vis[f, k]:
                continue
            counts[k] += 1
            d = math.dist(pred[f, k], gt[f, k])
            for a, alpha in enumerate(alphas):
                hits[k, a] += d <= alpha * L
    return hits, counts, np.mean(norms) if norms else float("nan")


def random_case(n_frames, seed, ties=False):
    rng = np.random.default_rng(seed)
    h = rng.random((n_frames, K, 56, 56)).astype(np.float32)
    if ties:  # plateaus of equal maxima, all-zero maps, all-equal maps
        h[:, :5] = np.round(h[:, :5] * 3)
        h[:, 5] = 0.0
        h[:, 6] = 7.0
    gt = rng.integers(0, 56, (n_frames, K, 2)).astype(np.float32)
    vis = rng.random((n_frames, K)) > 0.3
    vis[0] = False                    # a frame with no visible keypoint
    vis[1, LS] = False                # a frame missing a torso keypoint
    return h, gt, vis


def test_argmax_matches_numpy_with_ties_and_flat_maps():
    h, _, _ = random_case(6, 0, ties=True)
    expect = np_argmax(h)
    assert np.array_equal(expect[:, 5], np.zeros((6, 2))) and np.array_equal(expect[:, 6], np.zeros((6, 2)))
    for backend in backends_here():
        out = ops.heatmap_argmax(torch.from_numpy(h[:2] if backend == "triton" else h), backend=backend)
        np.testing.assert_array_equal(out.numpy(), expect[:2] if backend == "triton" else expect)
    odd = np.random.default_rng(1).random((3, 7, 13)).astype(np.float32)          # odd map sizes
    for backend in backends_here():
        np.testing.assert_array_equal(ops.heatmap_argmax(torch.from_numpy(odd), backend=backend).numpy(),
                                      np_argmax(odd))


@pytest.mark.parametrize("norm", ["torso", "bbox", 12.5])
def test_pck_from_heatmaps_matches_numpy_on_every_backend(norm):
    alphas = (0.05, 0.1, 0.2, 1.0)
    h, gt, vis = random_case(12, 3, ties=True)
    # Put predictions near the ground truth for a spread of distances: peaks at gt + small offsets.
    rng = np.random.default_rng(4)
    tgt = np.clip(gt + rng.integers(-6, 7, gt.shape), 0, 55).astype(int)
    for f in range(12):
        for k in range(7, K):
            h[f, k, tgt[f, k, 1], tgt[f, k, 0]] = 5.0
    hits, counts, mean_L = np_pck(np_argmax(h), gt, vis, alphas, norm)
    assert 0 < hits[:, 0].sum() < hits[:, 2].sum() < counts.sum()     # the case is not degenerate
    results = {}
    for backend in backends_here():
        n = 3 if backend == "triton" else 12    # the interpreter is slow
        sub_hits, sub_counts, _ = np_pck(np_argmax(h[:n]), gt[:n], vis[:n], alphas, norm)
        r = ops.pck_from_heatmaps(torch.from_numpy(h[:n]), torch.from_numpy(gt[:n]), torch.from_numpy(vis[:n]),
                                  alphas=alphas, norm=norm, backend=backend)
        np.testing.assert_array_equal(r.hits.numpy(), sub_hits)
        np.testing.assert_array_equal(r.counts.numpy(), sub_counts)
        torch_r = ops.pck_from_heatmaps(torch.from_numpy(h[:n]), torch.from_numpy(gt[:n]),
                                        torch.from_numpy(vis[:n]), alphas=alphas, norm=norm, backend="torch")
        assert torch.equal(r.frames, torch_r.frames)        # frames counted and their lengths, per backend
        torch.testing.assert_close(r.norm_sum, torch_r.norm_sum, rtol=1e-12, atol=0)
        results[backend] = r
    r = results["torch"]
    np.testing.assert_allclose(r.mean_threshold.numpy(), np.array(alphas) * mean_L, rtol=1e-12)
    np.testing.assert_allclose(r.overall.numpy(), hits.sum(0) / counts.sum(), rtol=1e-12)
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(r.per_keypoint.numpy(), hits / counts[:, None], rtol=1e-12)
    coords = ops.pck(ops.heatmap_argmax(torch.from_numpy(h)), torch.from_numpy(gt), torch.from_numpy(vis),
                     alphas=alphas, norm=norm)
    assert torch.equal(coords.hits, r.hits) and torch.equal(coords.counts, r.counts)


def test_boundary_distance_counts_with_less_or_equal():
    gt = torch.zeros(1, K, 2)
    gt[0, LS], gt[0, LH], gt[0, RS], gt[0, RH] = (torch.tensor(v, dtype=torch.float32) for v in
                                                  ([0, 0], [0, 20], [10, 0], [10, 20]))     # L = 20
    vis = torch.zeros(1, K, dtype=torch.bool)
    vis[0, [LS, LH, RS, RH, 0]] = True
    pred = gt.clone()
    pred[0, 0] = gt[0, 0] + torch.tensor([0.0, 4.0])          # exactly 0.2 * 20
    r = ops.pck(pred, gt, vis, alphas=(0.1, 0.2))
    assert r.hits[0].tolist() == [0, 1]
    pred[0, 0] = gt[0, 0] + torch.tensor([3.0, 4.0])          # 5 > 4
    assert ops.pck(pred, gt, vis, alphas=(0.2,)).hits[0].tolist() == [0]


def test_boundary_distance_counts_on_every_backend():
    """A prediction exactly alpha * L away counts (<=) in every backend: the thresholds computed inside
    the C++ kernel equal the reference's to the bit, and so do the distances."""
    gt = torch.zeros(2, K, 2)
    gt[:, LS], gt[:, LH], gt[:, RS], gt[:, RH] = (torch.tensor(v, dtype=torch.float32) for v in
                                                  ([0, 0], [0, 20], [10, 0], [10, 20]))     # L = 20
    gt[1] += torch.tensor([3.0, 7.0])                                                      # same torso, moved
    gt[:, 0] = torch.tensor([30.0, 30.0])
    vis = torch.zeros(2, K, dtype=torch.bool)
    vis[:, [LS, LH, RS, RH, 0]] = True
    maps = torch.zeros(2, K, 56, 56)
    for f, (dx, dy) in enumerate([(0, 4), (3, 4)]):           # 4 == 0.2 * 20 counts; 5 > 4 does not
        x, y = int(gt[f, 0, 0]) + dx, int(gt[f, 0, 1]) + dy
        maps[f, 0, y, x] = 1.0
    for k in (LS, LH, RS, RH):
        for f in range(2):
            maps[f, k, int(gt[f, k, 1]), int(gt[f, k, 0])] = 1.0
    for backend in backends_here():
        r = ops.pck_from_heatmaps(maps, gt, vis, alphas=(0.1, 0.2), backend=backend)
        assert r.hits[0].tolist() == [0, 1], backend
        assert r.hits[LS].tolist() == [2, 2] and r.counts[0] == 2, backend


def test_cpp_results_do_not_depend_on_threads_or_vector_width(tmp_path):
    """The C++ kernels split maps across OpenMP threads and pick AVX2 or 16-byte vectors at load time:
    the integers must not change with either."""
    if not ops.available_backends()["available"]["cpp"]:
        pytest.skip("the C++ extension is not built here")
    h, gt, vis = random_case(40, 11, ties=True)
    args = [torch.from_numpy(a) for a in (h, gt, vis)]
    before = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            results.append((ops.pck_from_heatmaps(*args, backend="cpp"), ops.heatmap_argmax(args[0], backend="cpp")))
    finally:
        torch.set_num_threads(before)
    for r, xy in results:
        assert torch.equal(r.hits, results[0][0].hits) and torch.equal(xy, results[0][1])
    np.testing.assert_array_equal(results[0][1].numpy(), np_argmax(h))

    # The 16-byte path, in a process that asks for it (the choice is made once, when the module loads).
    np.savez(tmp_path / "case.npz", h=h, gt=gt, vis=vis)
    code = f"""
import numpy as np, torch
from posedenoise import _C, ops
assert _C.argmax_simd() == "base", _C.argmax_simd()
d = np.load({str(tmp_path / "case.npz")!r})
h, gt, vis = (torch.from_numpy(d[k]) for k in ("h", "gt", "vis"))
r = ops.pck_from_heatmaps(h, gt, vis, backend="cpp")
np.savez({str(tmp_path / "base.npz")!r}, xy=ops.heatmap_argmax(h, backend="cpp").numpy(), hits=r.hits.numpy())
"""
    import subprocess
    import sys
    subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ, POSEDENOISE_SIMD="base"))
    base = np.load(tmp_path / "base.npz")
    np.testing.assert_array_equal(base["xy"], np_argmax(h))
    np.testing.assert_array_equal(base["hits"], results[0][0].hits.numpy())


def test_streaming_batches_add_up_exactly():
    h, gt, vis = random_case(20, 7)
    args = lambda s: (torch.from_numpy(h[s]), torch.from_numpy(gt[s]), torch.from_numpy(vis[s]))  # noqa: E731
    whole = ops.pck_from_heatmaps(*args(slice(None)))
    parts = ops.pck_from_heatmaps(*args(slice(0, 7))) + ops.pck_from_heatmaps(*args(slice(7, 20)))
    assert torch.equal(whole.hits, parts.hits) and torch.equal(whole.counts, parts.counts)
    assert torch.equal(whole.frames, parts.frames)
    torch.testing.assert_close(whole.mean_threshold, parts.mean_threshold, rtol=1e-12, atol=0)


def test_groups_come_from_the_layout_table():
    h, gt, vis = random_case(8, 9)
    r = ops.pck_from_heatmaps(torch.from_numpy(h), torch.from_numpy(gt), torch.from_numpy(vis), alphas=(0.2,))
    groups = r.per_group()
    assert list(groups) == ["nose", "ear", "shoulder", "elbow", "wrist", "hip", "knee", "ankle"]
    idx = group_indices()["wrist"]
    expect = r.hits[list(idx), 0].sum() / r.counts[list(idx)].sum()
    assert float(groups["wrist"][0]) == pytest.approx(float(expect))


def test_nothing_counted_gives_nan_not_an_error():
    h, gt, vis = random_case(2, 1)
    vis[:] = False
    r = ops.pck_from_heatmaps(torch.from_numpy(h), torch.from_numpy(gt), torch.from_numpy(vis))
    assert r.counts.sum() == 0 and torch.isnan(r.overall).all() and torch.isnan(r.mean_threshold).all()


@pytest.mark.parametrize("kwargs,match", [
    (dict(alphas=(0.0, 0.1)), "alphas"),
    (dict(alphas=(1.5,)), "alphas"),
    (dict(norm="head"), "norm"),
    (dict(norm=-3.0), "norm"),
])
def test_bad_arguments(kwargs, match):
    h, gt, vis = random_case(2, 0)
    with pytest.raises(ValueError, match=match):
        ops.pck_from_heatmaps(torch.from_numpy(h), torch.from_numpy(gt), torch.from_numpy(vis), **kwargs)


def test_bad_shapes():
    h, gt, vis = (torch.from_numpy(a) for a in random_case(2, 0))
    with pytest.raises(ValueError, match="K = 25"):
        ops.pck(gt[:, :17], gt[:, :17], vis[:, :17])
    with pytest.raises(ValueError, match="pred"):
        ops.pck(gt[:1], gt, vis)
    with pytest.raises(ValueError, match="leading shape"):
        ops.pck_from_heatmaps(h[:1], gt, vis)
    with pytest.raises(ValueError, match="visible"):
        ops.pck(gt, gt, vis[:, :3])
    bad = h[:1].clone()
    bad[0, 3, 20, 5] = bad[0, 3, 10, 10] = bad[0, 7, 55, 55] = float("nan")
    for backend in backends_here():
        with pytest.raises(ValueError, match="2 maps contain NaN"):
            ops.heatmap_argmax(bad, backend=backend)
        # Unchecked (no host read): the first NaN of a map, as numpy.argmax and torch.argmax, on every backend.
        np.testing.assert_array_equal(ops.heatmap_argmax(bad, backend=backend, check_nan=False).numpy(),
                                      np_argmax(bad.numpy()))
        r = ops.pck_from_heatmaps(bad, gt[:1], torch.ones_like(vis[:1]), backend=backend)  # counted, not read
        for read in (lambda: r.overall, lambda: r.per_keypoint, lambda: (r + r).cpu(), lambda: r.mean_threshold):
            with pytest.raises(ValueError, match="[24] of the maps counted contain NaN"):
                read()
    with pytest.raises(TypeError, match="floating"):
        ops.heatmap_argmax(torch.zeros(2, 4, 4, dtype=torch.int64))


# A ground truth a fused multiply-add misjudges: argmax (6, 11), gt (0.19468899, 2.624271) in float32, a fixed
# L = 10.190901510826777, alpha 1. dx * dx + dy * dy rounded twice equals (alpha L)^2 exactly (a hit);
# fma(dx, dx, dy * dy) rounds once, one ulp above (a miss). tests/test_gpu.py runs it on CUDA.
FMA_CASE = dict(argmax=(6, 11), gt=(0.19468899, 2.624271), length=10.190901510826777, alpha=1.0)


def fma_case_tensors(device="cpu"):
    x, y = FMA_CASE["argmax"]
    maps = torch.zeros(1, K, 56, 56, device=device)
    maps[0, 0, y, x] = 1.0
    gt = torch.zeros(1, K, 2, device=device)
    gt[0, 0] = torch.tensor(FMA_CASE["gt"])
    vis = torch.zeros(1, K, dtype=torch.bool, device=device)
    vis[0, 0] = True
    return maps, gt, vis


def test_a_distance_on_the_threshold_counts_on_every_backend_as_without_fused_multiply_add():
    from fractions import Fraction
    x, y = FMA_CASE["argmax"]
    dx = np.float64(x) - np.float64(np.float32(FMA_CASE["gt"][0]))
    dy = np.float64(y) - np.float64(np.float32(FMA_CASE["gt"][1]))
    thr2 = (FMA_CASE["alpha"] * FMA_CASE["length"]) ** 2
    fused = float(Fraction(dx) * Fraction(dx) + Fraction(float(dy * dy)))   # one rounding, as fma(dx, dx, dy*dy)
    assert dx * dx + dy * dy <= thr2 < fused   # the case does discriminate
    maps, gt, vis = fma_case_tensors()
    kw = dict(alphas=(FMA_CASE["alpha"],), norm=FMA_CASE["length"])
    for backend in backends_here():
        assert ops.pck_from_heatmaps(maps, gt, vis, backend=backend, **kw).hits[0].tolist() == [1], backend
    assert ops.pck(ops.heatmap_argmax(maps), gt, vis, **kw).hits[0].tolist() == [1]


def test_float64_heatmaps_are_compared_in_float64_on_every_backend():
    """Two values that float32 cannot tell apart: the later one is the maximum in float64. The C++ kernels
    read float32, so float64 maps run on the reference there rather than being cast (which would tie them
    and move the argmax to the first)."""
    h = torch.zeros(2, 56, 56, dtype=torch.float64)
    h[:, 3, 4] = 1.0
    h[:, 40, 50] = 1.0 + 2.0**-40
    assert float(h[0, 3, 4].float()) == float(h[0, 40, 50].float())   # tied once cast
    for backend in backends_here():
        assert ops.heatmap_argmax(h, backend=backend).tolist() == [[50.0, 40.0]] * 2, backend


def test_custom_ops_pass_opcheck():
    """The fake implementations (torch.compile traces through them) agree with the real ones in shapes,
    dtypes and schema, for the CPU backends."""
    h, gt, vis = (torch.from_numpy(a) for a in random_case(3, 5))
    torso = [POSE25.index(n) for n in ("left_shoulder", "left_hip", "right_shoulder", "right_hip")]
    for backend in [b for b in backends_here() if b != "triton"]:
        torch.library.opcheck(ops._argmax_op, (h.reshape(-1, 56, 56), backend))
        for norm, length in (("torso", 0.0), ("bbox", 0.0), ("fixed", 9.5)):
            torch.library.opcheck(ops._pck_heatmaps_op, (h, gt, vis, [0.1, 0.2], norm, length, torso, backend))
