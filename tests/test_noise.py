"""Noise: Philox against Random123's known answers, bit-identical draws across backends, determinism,
independence from batch composition, and the shift distribution against scipy.stats."""
import numpy as np
import pytest
import scipy.stats as st
import torch

from conftest import backends_here
from posedenoise import ops, reference
from posedenoise.noise import Drift, choice_table, shift_table, simulated

SIGMAS = (1.0, 1.5, 2.0, 2.5, 3.0)


def batch(B, T=5, K=25, seed=0):
    g = torch.Generator().manual_seed(seed)
    coords = torch.randint(0, 56, (B, T, K, 2), generator=g)
    visible = torch.rand(B, T, K, generator=g) > 0.2
    return coords, visible


def test_philox_matches_random123_known_answers():
    # Random123's kat_vectors for philox4x32_10: (counter, key) -> output.
    cases = [
        ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
        ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
        ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
         (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
    ]
    for ctr, key, expected in cases:
        assert tuple(int(v) for v in reference.philox4x32(*ctr, *key)) == expected


@pytest.mark.parametrize("backend", [b for b in backends_here() if b != "torch"])
@pytest.mark.parametrize("k,dist,choices,drift", [
    (1, "normal", SIGMAS, None), (2, "normal", None, None), (1.5, "uniform", (2.0, 0.5), None),
    # shifts that drift across frames (noise.Drift(rho, share)): keep and emit of either width, emit always
    (1, "normal", SIGMAS, (0.9, 0.8)), (2, "normal", None, (0.3, 1.0)), (1.5, "uniform", (2.0, 0.5), (0.2, 0.04)),
    (1, "normal", SIGMAS, (0.999, 0.0))])
def test_backends_draw_bit_identical_noise_and_pairs(backend, k, dist, choices, drift):
    B = 2 if backend == "triton" else 32
    K = 4 if backend == "triton" else 25
    coords, visible = batch(B, K=K)
    wid = torch.tensor([5, 2**40 + 3] + list(range(100, 100 + B - 2)))[:B]
    law = dict(k=k, sigma_choices=choices, shift_dist=dist) if drift is None else \
        dict(noise=simulated(k, choices, 56, dist, drift=Drift(*drift)))
    kw = dict(seed=2**32 - 1, epoch=3, offset=1, **law)
    ref = ops.noisy_pair(coords, visible, wid, backend="torch", return_noise=True, **kw)
    out = ops.noisy_pair(coords, visible, wid, backend=backend, return_noise=True, **kw)
    assert torch.equal(out[2], ref[2]) and torch.equal(out[3], ref[3])
    sim = ops.simulate_noise(coords, visible, wid, backend=backend, **kw)
    assert torch.equal(sim[0], ref[2]) and torch.equal(sim[1], ref[3])
    # Every backend multiplies the same float32 profile factors (reference.gaussian_profiles): equal maps.
    assert torch.equal(out[0], ref[0]) and torch.equal(out[1], ref[1])


@pytest.mark.parametrize("backend", backends_here())
def test_pair_inputs_are_the_rendered_noise_and_targets_sigma_one(backend):
    coords, visible = batch(2, K=3)
    wid = torch.tensor([7, 8])
    inputs, targets, noisy, sigma_in = ops.noisy_pair(coords, visible, wid, k=1, sigma_choices=SIGMAS, seed=1,
                                                      epoch=0, backend=backend, return_noise=True)
    sig = sigma_in[..., None].expand(2, 5, 3)
    assert torch.equal(inputs, ops.render_heatmaps(noisy, visible, sig, backend="torch"))
    assert torch.equal(targets, ops.render_heatmaps(coords, visible, 1.0, backend="torch"))
    alone, none = ops.noisy_pair(coords, visible, wid, k=1, sigma_choices=SIGMAS, seed=1, epoch=0, backend=backend,
                                 targets=False)
    assert none is None and torch.equal(alone, inputs)


@pytest.mark.parametrize("backend", backends_here())
def test_half_precision_outputs_are_the_float32_maps_rounded_to_nearest_even(backend):
    coords, visible = batch(2, K=5)
    kw = dict(k=1, sigma_choices=SIGMAS, seed=0, epoch=0)
    ref = ops.noisy_pair(coords, visible, torch.tensor([1, 2]), backend="torch", **kw)
    for dtype in (torch.float16, torch.bfloat16):
        for targets in (True, False):
            out = ops.noisy_pair(coords, visible, torch.tensor([1, 2]), dtype=dtype, targets=targets,
                                 backend=backend, **kw)
            assert out[0].dtype == dtype and torch.equal(out[0], ref[0].to(dtype))
            assert (out[1] is None) if not targets else torch.equal(out[1], ref[1].to(dtype))


try:  # the Triton kernels' own rounding helper, in a one-line kernel
    import triton
    import triton.language as tl

    from posedenoise.kernels.heatmaps import _round_to

    @triton.jit
    def _round_kernel(x_ptr, y_ptr, N: tl.constexpr):
        o = tl.arange(0, N)
        tl.store(y_ptr + o, _round_to(tl.load(x_ptr + o), y_ptr.dtype.element_ty))
except ImportError:
    _round_kernel = None


def test_triton_half_rounding_is_to_nearest_even_on_ties():
    """The Triton kernels round float32 to bfloat16 on the bits (the interpreter truncates): exact halfway
    values go to the even neighbour, as torch's .to() and the GPU's cvt.rn do. On CUDA when there is one."""
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    if _round_kernel is None or not ops.available_backends()["available"]["triton"]:
        pytest.skip("Triton cannot run here")
    ties = [1 + 2**-8, 1 + 3 * 2**-8, 255 * (1 + 2**-8), 1 + 2**-11, 1 + 3 * 2**-11]  # bf16 and fp16 halfway
    near = [1 + 2**-8 + 2**-20, 1 + 2**-8 - 2**-20, 0.0, 3.4e38, 1e-40, 3 * 2.0**-130]  # off halfway, edges
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.tensor(ties + near), torch.rand(4096 - 11, generator=g) * 300]).to(torch.float32)
    for dtype in (torch.bfloat16, torch.float16):
        y = torch.empty(4096, dtype=dtype, device=dev)
        _round_kernel[(1,)](x.to(dev), y, N=4096)
        assert torch.equal(y.cpu(), x.to(dtype)), dtype


@pytest.mark.parametrize("drift", [None, Drift(0.8, 0.7)])
def test_noise_is_independent_of_batch_composition_and_order(drift):
    coords, visible = batch(12)
    wid = torch.arange(1000, 1012)
    kw = dict(noise=simulated(2, SIGMAS, drift=drift), seed=9, epoch=4)
    for backend in backends_here():
        if backend == "triton":
            continue  # covered through bit-equality with the reference above
        full = ops.simulate_noise(coords, visible, wid, backend=backend, **kw)
        perm = torch.randperm(12, generator=torch.Generator().manual_seed(0))
        shuffled = ops.simulate_noise(coords[perm], visible[perm], wid[perm], backend=backend, **kw)
        assert torch.equal(shuffled[0], full[0][perm]) and torch.equal(shuffled[1], full[1][perm])
        alone = ops.simulate_noise(coords[5:6], visible[5:6], wid[5:6], backend=backend, **kw)
        assert torch.equal(alone[0], full[0][5:6]) and torch.equal(alone[1], full[1][5:6])


def test_same_seed_and_epoch_repeat_and_a_new_epoch_or_seed_changes():
    coords = torch.full((64, 5, 25, 2), 27)
    visible = torch.ones(64, 5, 25, dtype=torch.bool)
    wid = torch.arange(64)
    run = lambda seed, epoch: ops.simulate_noise(coords, visible, wid, k=1, sigma_choices=SIGMAS,  # noqa: E731
                                                 seed=seed, epoch=epoch)
    a, b = run(0, 0), run(0, 0)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    for other in (run(0, 1), run(1, 0)):
        # Two independent draws of round(N(0, 9)) coincide with probability ~0.13.
        assert (other[0] == a[0]).float().mean() < 0.25
        assert (other[1] == a[1]).float().mean() < 0.35  # five sigma choices: 0.2 expected


def chi_square_pvalue(samples, probs_by_value):
    """Pearson's test, pooling the tails so that every expected count is >= 5."""
    values = np.array(sorted(probs_by_value))
    p = np.array([probs_by_value[v] for v in values])
    counts = np.array([(samples == v).sum() for v in values], dtype=float)
    assert counts.sum() == samples.size, "a sample fell outside the expected support"
    n = samples.size
    keep = p * n >= 5
    lo, hi = np.argmax(keep), len(keep) - np.argmax(keep[::-1])
    obs = np.concatenate([[counts[:lo].sum()], counts[lo:hi], [counts[hi:].sum()]])
    exp = np.concatenate([[p[:lo].sum()], p[lo:hi], [p[hi:].sum()]]) * n
    obs, exp = obs[exp > 0], exp[exp > 0]
    return st.chisquare(obs, exp * obs.sum() / exp.sum()).pvalue


@pytest.mark.parametrize("k", [1, 2])
def test_shift_distribution_is_rounded_normal(k):
    # On a 512-pixel grid centred keypoints are never clipped, so noisy - clean is the raw shift. The seed
    # is fixed, so the test is deterministic; its false-alarm rate as a test is 0.001.
    size, B = 512, 4000
    coords = torch.full((B, 5, 25, 2), 256)
    noisy, _ = ops.simulate_noise(coords, torch.ones(B, 5, 25, dtype=torch.bool), torch.arange(B), k=k,
                                  sigma_choices=None, seed=123, epoch=0, size=size)
    shifts = (noisy - 256).numpy().ravel()
    sd = 3.0 * k
    support = range(-size // 2 + 1, size // 2)
    probs = {j: st.norm.cdf((j + 0.5) / sd) - st.norm.cdf((j - 0.5) / sd) for j in support}
    assert chi_square_pvalue(shifts, probs) > 1e-3
    assert abs(shifts.std() - np.sqrt(sd**2 + 1 / 12)) < 0.02 * sd  # rounding adds variance 1/12


def test_sigma_in_is_uniform_over_the_choices_and_one_for_setup_two():
    B = 4000
    coords = torch.zeros(B, 5, 1, 2, dtype=torch.int64)
    vis = torch.ones(B, 5, 1, dtype=torch.bool)
    _, sig = ops.simulate_noise(coords, vis, torch.arange(B), k=1, sigma_choices=SIGMAS, seed=5, epoch=2)
    s = sig.numpy().ravel()
    assert chi_square_pvalue(s, {v: 0.2 for v in SIGMAS}) > 1e-3
    _, sig2 = ops.simulate_noise(coords, vis, torch.arange(B), k=1, sigma_choices=None, seed=5, epoch=2)
    assert bool((sig2 == 1.0).all())


def test_clipping_and_table_folding_change_no_clipped_coordinate():
    # The 56-pixel table folds its tails onto +-55; a 512-pixel table does not. Clipped, they agree.
    B = 500
    coords, vis = batch(B)
    kw = dict(k=2, sigma_choices=None, seed=3, epoch=1)
    small, _ = ops.simulate_noise(coords, vis, torch.arange(B), **kw)
    big, _ = ops.simulate_noise(coords + 200, vis, torch.arange(B), size=512, **kw)
    assert small.min() >= 0 and small.max() <= 55
    assert torch.equal(small, (big - 200).clamp(0, 55).to(small.dtype))
    assert (small == 0).any() and (small == 55).any()


def test_offset_and_uniform_shifts():
    B = 2000
    coords = torch.full((B, 5, 25, 2), 27)
    vis = torch.ones(B, 5, 25, dtype=torch.bool)
    kw = dict(k=1, sigma_choices=None, seed=0, epoch=0)
    base, _ = ops.simulate_noise(coords, vis, torch.arange(B), **kw)
    moved, _ = ops.simulate_noise(coords, vis, torch.arange(B), offset=1, **kw)
    assert torch.equal(moved, (base + 1).clamp(0, 55))
    uni, _ = ops.simulate_noise(coords, vis, torch.arange(B), shift_dist="uniform", **kw)
    s = (uni - 27).numpy().ravel()
    assert chi_square_pvalue(s, {j: 1 / 7 for j in range(-3, 4)}) > 1e-3
    still, _ = ops.simulate_noise(coords, vis, torch.arange(B), k=0, sigma_choices=None, seed=0, epoch=0)
    assert torch.equal(still, coords.to(torch.int32))


def test_tables_are_exact_where_they_can_be():
    t = choice_table(4)
    assert t.low == 0 and t.thresholds == (2**30, 2**31, 3 * 2**30)
    s = shift_table(1.0)
    assert s.low < 0 < s.low + len(s.thresholds) and list(s.thresholds) == sorted(s.thresholds)
    # P(shift = 0) = P(|N(0, 9)| < 1/2): the table's gap around 0, in units of 2**-32.
    zero = s.thresholds[-s.low] - s.thresholds[-s.low - 1]
    assert abs(zero / 2**32 - (st.norm.cdf(0.5 / 3) - st.norm.cdf(-0.5 / 3))) < 2**-31


@pytest.mark.parametrize("call,match", [
    (lambda c, v, w: ops.simulate_noise(c[0], v[0], w, k=1, sigma_choices=None, seed=0, epoch=0), "coords"),
    (lambda c, v, w: ops.simulate_noise(c, v[..., :3], w, k=1, sigma_choices=None, seed=0, epoch=0), "visible"),
    (lambda c, v, w: ops.simulate_noise(c, v, w[:1], k=1, sigma_choices=None, seed=0, epoch=0), "window_ids"),
    (lambda c, v, w: ops.simulate_noise(c, v, w, k=-1, sigma_choices=None, seed=0, epoch=0), "k"),
    (lambda c, v, w: ops.simulate_noise(c, v, w, k=1, sigma_choices=(1, 0), seed=0, epoch=0), "sigma_choices"),
    (lambda c, v, w: ops.simulate_noise(c, v, w, k=1, sigma_choices=None, seed=-1, epoch=0), "seed"),
    (lambda c, v, w: ops.simulate_noise(c, v, w, k=1, sigma_choices=None, seed=0, epoch=2**32), "epoch"),
    (lambda c, v, w: ops.simulate_noise(c, v, w, k=1, sigma_choices=None, seed=0, epoch=0,
                                        shift_dist="cauchy"), "shift_dist"),
    (lambda c, v, w: ops.simulate_noise(c.float() * float("nan"), v, w, k=1, sigma_choices=None, seed=0,
                                        epoch=0), "finite"),
    (lambda c, v, w: ops.noisy_pair(c, v, w, k=1, sigma_choices=None, seed=0, epoch=0, dtype=torch.int32),
     "dtype"),
    # bounds the kernels rely on: coords + shift + offset far inside int32; sigma in [0.05, size]; K >= 1
    (lambda c, v, w: ops.noisy_pair(c, v, w, k=1, sigma_choices=None, seed=0, epoch=0, offset=2**31 - 10),
     "offset"),
    (lambda c, v, w: ops.simulate_noise(c, v, w, k=1, sigma_choices=None, seed=0, epoch=0, offset=-56), "offset"),
    (lambda c, v, w: ops.noisy_pair(c, v, w, k=1, sigma_choices=(1.0, 0.01), seed=0, epoch=0), "sigma_choices"),
    (lambda c, v, w: ops.noisy_pair(c, v, w, k=1, sigma_choices=(1.0, 57.0), seed=0, epoch=0), "sigma_choices"),
    (lambda c, v, w: ops.simulate_noise(c[:, :, :0], v[:, :, :0], w, k=1, sigma_choices=None, seed=0, epoch=0),
     "at least one keypoint"),
    (lambda c, v, w: ops.render_heatmaps(c, v, 0.01), "sigma"),
    (lambda c, v, w: ops.render_heatmaps(c, v, torch.full((4,), 56.5)), "sigma"),
    (lambda c, v, w: ops.render_heatmaps(c, v, 0.0), "sigma"),
    (lambda c, v, w: ops.render_heatmaps(c, v, torch.ones(3)), "sigma"),
    (lambda c, v, w: ops.render_heatmaps(c[..., :1], v, 1.0), "coords"),
    (lambda c, v, w: ops.render_heatmaps(c, v, 1.0, backend="cuda"), "backend"),
    (lambda c, v, w: ops.render_heatmaps(c.tolist(), v, 1.0), "coords"),
    (lambda c, v, w: ops.render_heatmaps(c, v, 1.0, size=0), "size"),
])
def test_bad_input_names_the_argument(call, match):
    c, v = batch(2, K=4)
    with pytest.raises((ValueError, TypeError), match=match):
        call(c, v, torch.arange(2))


def test_wrong_device_mix_is_rejected():
    c, v = batch(1, K=2)
    with pytest.raises(ValueError, match="device|is on"):
        ops.simulate_noise(c, v.to("meta"), torch.arange(1), k=1, sigma_choices=None, seed=0, epoch=0)


def test_ops_are_custom_ops_that_torch_compile_can_trace():
    coords, visible = batch(2, K=3)
    wid = torch.arange(2)

    def step(c, v, w):
        x, y = ops.noisy_pair(c, v, w, k=1, sigma_choices=SIGMAS, seed=0, epoch=1)
        return (x - y).square().mean()

    eager = step(coords, visible, wid)
    compiled = torch.compile(step, backend="eager", fullgraph=True)(coords, visible, wid)
    assert torch.equal(eager, compiled)
    from posedenoise.ops import _pair_op, _render_op
    c32 = coords.to(torch.int32)
    table = reference.gaussian_profiles((1.0, 2.0), 56)
    rows = (torch.arange(visible.numel()) % 2).to(torch.int32)
    for backend in [b for b in backends_here() if b != "triton"]:
        torch.library.opcheck(_render_op, (c32.view(-1, 2), visible.view(-1), rows, table, 255.0, 56, backend))
        for inputs, targets in ((True, True), (True, False), (False, False)):
            torch.library.opcheck(_pair_op, (c32, visible, wid, 1.0, "normal", list(SIGMAS), 0, 0, 0, 56, 255.0,
                                             torch.float32, inputs, targets, backend))
