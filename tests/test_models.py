"""Models: shapes, gradients, initialisation, determinism, hand-checkable pieces, bidirectionality, compile.

Small models (K = 3 keypoints, 16 x 16 maps) keep this file fast; each model gets one full-size shape check.
"""
import numpy as np
import pytest
import torch

from posedenoise.models import MODELS, build
from posedenoise.models.biconvlstm import ConvLSTMCell, _run
from posedenoise.models.deciwatch import interpolate, sample_indices, sample_mask

SMALL = dict(num_keypoints=3, size=16)
TRAINABLE = [n for n in MODELS if list(build(n).parameters())]   # identity and the filters have none


def small_input(T=5, B=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(B, T, 3, 16, 16, generator=g) * 50      # (B, T, K, H, W)


def expected_shape(model, B, T, K, S):
    return (B, T, K, 2) if model.output_kind == "coords" else (B, T, K, S, S)


def test_registry_order_and_interface():
    assert list(MODELS) == ["pose-mlp", "conv3d", "deciwatch", "biconvlstm-sum", "biconvlstm-concat", "identity", "mean",
                            "linear-fit", "savgol", "gaussian", "median", "one-euro"]
    assert TRAINABLE == ["pose-mlp", "conv3d", "deciwatch", "biconvlstm-sum", "biconvlstm-concat"]
    for name in MODELS:
        m = build(name)
        assert m.output_kind in ("heatmaps", "coords") and (m.num_keypoints, m.window, m.size) == (25, 5, 56)
    assert build("deciwatch").output_kind == "coords" and build("conv3d").output_kind == "heatmaps"
    assert build("biconvlstm-sum").merge == "sum" and build("biconvlstm-concat").merge == "concat"


@pytest.mark.parametrize("name", list(MODELS))
def test_shapes_for_valid_windows(name):
    for T in ((5, 9) if name == "deciwatch" else (5, 3, 7)):
        m = build(name, window=T, **SMALL)
        y = m(small_input(T))
        assert y.shape == expected_shape(m, 2, T, 3, 16) and y.dtype == torch.float32
        assert torch.isfinite(y).all()
    full = build(name)                                                   # K = 25, 56 x 56, T = 5
    with torch.no_grad():
        assert full(torch.rand(1, 5, 25, 56, 56)).shape == expected_shape(full, 1, 5, 25, 56)


@pytest.mark.parametrize("name", TRAINABLE)
def test_gradients_reach_every_parameter(name):
    """After one step: a zero-initialised output layer (pose-mlp starts as the mean filter) passes no gradient
    to the layers below it until it has moved."""
    torch.manual_seed(0)
    m = build(name, **SMALL)
    opt = torch.optim.SGD(m.parameters(), lr=1e-3)
    for _ in range(2 if getattr(m, "ZERO_INIT", ()) else 1):
        opt.zero_grad()
        m(small_input()).square().mean().backward()
        opt.step()
    for pname, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", TRAINABLE)
def test_initialisation_is_glorot_uniform_with_zero_biases(name):
    torch.manual_seed(0)
    m = build(name)                                                      # full size: enough samples per tensor
    glorot = []
    for pname, p in m.named_parameters():
        if pname.endswith("bias") or pname in getattr(m, "ZERO_INIT", ()):
            assert torch.count_nonzero(p) == 0, pname
        elif p.dim() == 1:
            assert torch.equal(p, torch.ones_like(p)), pname             # LayerNorm scales stay one
        else:
            # Glorot uniform: U(-b, b), b = sqrt(6 / (fan_in + fan_out)); fans as torch defines them.
            fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(p)
            b = (6 / (fan_in + fan_out)) ** 0.5
            assert p.abs().max() <= b, pname
            if p.numel() >= 1000:                                        # std of U(-b, b) is b / sqrt(3)
                assert abs(p.std().item() - b / 3**0.5) < 0.05 * b, pname
            glorot.append(pname)
    if name.startswith("biconvlstm"):                                    # the (K, H, W) peepholes are Glorot too
        assert {"cells.0.w_ci", "cells.1.w_co"} <= set(glorot)


def test_initialisation_does_not_seed_the_global_rng():
    torch.manual_seed(3)
    before = torch.get_rng_state()
    build("conv3d", **SMALL)
    assert not torch.equal(torch.get_rng_state(), before)               # it draws ...
    torch.manual_seed(3)
    a = build("conv3d", **SMALL).conv.weight
    b = build("conv3d", **SMALL).conv.weight
    assert not torch.equal(a, b)                                         # ... and does not reseed


@pytest.mark.parametrize("name", list(MODELS))
def test_deterministic_under_a_seed(name):
    outs = []
    for _ in range(2):
        torch.manual_seed(7)
        m = build(name, **SMALL)                                         # train mode: dropout draws too
        outs.append(m(small_input()))
    assert torch.equal(outs[0], outs[1])


def test_identity_is_exact_and_has_no_parameters():
    x = small_input()
    m = build("identity")
    assert m(x) is x and not list(m.parameters())


def test_conv3d_with_a_hand_set_kernel():
    m = build("conv3d", **SMALL)
    with torch.no_grad():
        m.conv.weight.zero_()
        m.conv.bias.fill_(-1.0)
        m.conv.weight[1, 0, 3, 2, 1] = 2.0   # out channel 1 <- in channel 0 at (dt, dy, dx) = (+1, 0, -1)
    x = small_input()
    y = m(x)
    expect = torch.zeros_like(y)
    # 'same' padding 2: out[t, y, x] = relu(2 * in[t + 1, y, x - 1] - 1), the input zero outside the window.
    expect[:, :4, 1, :, 1:] = torch.relu(2 * x[:, 1:, 0, :, :-1] - 1)
    assert torch.allclose(y, expect, atol=1e-5)


def test_conv3d_matches_a_numpy_loop():
    torch.manual_seed(1)
    K, T, S = 2, 3, 4
    m = build("conv3d", num_keypoints=K, window=T, size=S)
    with torch.no_grad():
        m.conv.bias.uniform_(-0.5, 0.5)
    x = torch.randn(1, T, K, S, S)
    w, b, xn = m.conv.weight.detach().numpy(), m.conv.bias.detach().numpy(), x[0].numpy()
    expect = np.zeros((T, K, S, S))
    for o in range(K):
        for t in range(T):
            for i in range(S):
                for j in range(S):
                    acc = b[o]
                    for c in range(K):
                        for dt in range(5):
                            for di in range(5):
                                for dj in range(5):
                                    tt, ii, jj = t + dt - 2, i + di - 2, j + dj - 2
                                    if 0 <= tt < T and 0 <= ii < S and 0 <= jj < S:
                                        acc += w[o, c, dt, di, dj] * xn[tt, c, ii, jj]
                    expect[t, o, i, j] = max(acc, 0.0)
    np.testing.assert_allclose(m(x)[0].detach().numpy(), expect, rtol=1e-5, atol=1e-5)


def test_deciwatch_sampling_mask():
    assert sample_indices(5, 4).tolist() == [0, 4] and sample_indices(9, 4).tolist() == [0, 4, 8]
    assert sample_mask(5, 4).tolist() == [True, False, False, False, True]
    assert sample_mask(9, 4).tolist() == [True, False, False, False, True, False, False, False, True]
    assert sample_mask(5, 2).tolist() == [True, False, True, False, True]
    assert build("deciwatch", **SMALL).seen.tolist() == [True, False, False, False, True]


def test_deciwatch_interval_that_cannot_work_fails_at_construction():
    with pytest.raises(ValueError, match="N=5 cannot work"):
        build("deciwatch", window=5, interval=5)
    with pytest.raises(ValueError, match=r"interval N=3.*valid intervals for window=5: \[1, 2, 4\]"):
        build("deciwatch", window=5, interval=3)
    with pytest.raises(ValueError, match=r"valid intervals for window=7: \[1, 2, 3, 6\]"):
        build("deciwatch", window=7)                                     # default N = 4
    with pytest.raises(ValueError, match="window=5"):
        build("deciwatch", **SMALL)(small_input(T=9))
    with pytest.raises(ValueError, match="size=16"):
        build("deciwatch", **SMALL)(small_input()[..., :8, :8])


def test_deciwatch_interpolation_by_hand():
    ramp = torch.tensor([[[0.0, 10.0], [8.0, -2.0], [16.0, 6.0]]])       # (1, 3 samples, 2), N = 4
    out = interpolate(ramp, 4)
    assert out.shape == (1, 9, 2)
    assert torch.allclose(out[0, :, 0], torch.arange(9.0) * 2)           # a linear ramp is recovered exactly
    assert torch.allclose(out[0, :, 1], torch.tensor([10.0, 7.0, 4.0, 1.0, -2.0, 0.0, 2.0, 4.0, 6.0]))
    # Against a numpy loop on random samples: frame t = sN + r is (1 - r/N) * s_s + (r/N) * s_{s+1}.
    g = torch.Generator().manual_seed(0)
    samples = torch.randn(2, 4, 5, generator=g)
    for N in (1, 2, 4):
        out, s = interpolate(samples, N).numpy(), samples.numpy()
        expect = np.empty((2, 3 * N + 1, 5))
        for t in range(3 * N + 1):
            k, r = divmod(t, N)
            expect[:, t] = s[:, k] if r == 0 else (1 - r / N) * s[:, k] + (r / N) * s[:, k + 1]
        np.testing.assert_allclose(out, expect, rtol=1e-6, atol=1e-6)


def test_deciwatch_sees_argmax_coordinates_only_at_sampled_frames():
    torch.manual_seed(0)
    m = build("deciwatch", **SMALL).eval()
    x = small_input()
    y = m(x)
    x2 = x.clone()
    x2[:, 2] = torch.rand_like(x2[:, 2]) * 50           # an unsampled frame: zeroed and masked, so unseen
    assert torch.equal(m(x2), y)
    x3 = x * 3.0                                         # same argmax everywhere: same output
    assert torch.allclose(m(x3), y)
    x4 = x.clone()
    x4[:, 4] = torch.roll(x4[:, 4], 3, dims=-1)          # a sampled frame: its argmax moves
    assert not torch.allclose(m(x4), y)


def test_deciwatch_reads_a_missing_keypoint_as_missing():
    """A keypoint missing at a sampled frame (all-zero map) is read as the mean of its other sampled frames, not
    as the point (0, 0); the triples the trainer feeds give what the heatmaps give."""
    from posedenoise import ops
    from posedenoise.models.inputs import as_triples
    torch.manual_seed(0)
    m = build("deciwatch").eval()
    xy = torch.randint(0, 56, (2, 5, 25, 2), generator=torch.Generator().manual_seed(1))
    present = torch.ones(2, 5, 25, dtype=torch.bool)
    present[:, 4, 3] = False                              # frame 4 is sampled (interval 4)
    maps = ops.render_heatmaps(xy, present, 2.0)
    y = m(maps)
    torch.testing.assert_close(m(as_triples(xy, present)), y, rtol=0, atol=0)
    filled = xy.clone()
    filled[:, 4, 3] = xy[:, 0, 3]                         # the one other sampled frame's position
    torch.testing.assert_close(m(as_triples(filled, torch.ones_like(present))), y, rtol=0, atol=1e-5)


def test_convlstm_cell_follows_the_peephole_equations():
    torch.manual_seed(0)
    K, S = 2, 5
    cell = ConvLSTMCell(K, S)
    with torch.no_grad():
        cell.bias.uniform_(-0.5, 0.5)
    x, h, c = torch.randn(1, K, S, S), torch.randn(1, K, S, S), torch.randn(1, K, S, S)
    conv = torch.nn.functional.conv2d
    wx, wh, b = cell.conv_x.weight.detach(), cell.conv_h.weight.detach(), cell.bias.detach()

    def pre(gate):                                       # gate order i, f, g, o, K channels each
        sl = slice(gate * K, (gate + 1) * K)
        return conv(x, wx[sl], padding=1) + conv(h, wh[sl], padding=1) + b[sl]

    i = torch.sigmoid(pre(0) + cell.w_ci.detach() * c)
    f = torch.sigmoid(pre(1) + cell.w_cf.detach() * c)
    c_new = f * c + i * torch.tanh(pre(2))
    o = torch.sigmoid(pre(3) + cell.w_co.detach() * c_new)
    h_got, c_got = cell(x, (h, c))
    torch.testing.assert_close(c_got, c_new)
    torch.testing.assert_close(h_got, o * torch.tanh(c_new))
    assert cell.w_ci.shape == cell.w_cf.shape == cell.w_co.shape == (K, S, S)


@pytest.mark.parametrize("name", ["biconvlstm-sum", "biconvlstm-concat"])
def test_bidirectional_models_use_both_directions(name):
    torch.manual_seed(0)
    m = build(name, **SMALL).eval()
    x = small_input()
    with torch.no_grad():
        for pname, b in m.named_parameters():             # nonzero biases so that ReLUs are not all dead
            if pname.endswith("bias"):
                b.uniform_(0.0, 0.1)
        y = m(x)
        last, first = x.clone(), x.clone()
        last[:, -1] += 10.0
        first[:, 0] += 10.0
        assert not torch.allclose(m(last)[:, 0], y[:, 0])     # the backward cell carries the last frame back
        assert not torch.allclose(m(first)[:, -1], y[:, -1])  # the forward cell carries the first frame on


def test_each_direction_alone_is_causal_in_its_own_direction():
    # Sanity check for the test above: a single cell only carries information along its own direction.
    torch.manual_seed(0)
    m = build("biconvlstm-sum", **SMALL)
    x = small_input()
    fwd_cell, bwd_cell = m.cells
    with torch.no_grad():
        for cell in m.cells:
            cell.bias.uniform_(-0.5, 0.5)
        frames, changed = list(x.unbind(1)), list(x.unbind(1))
        changed[-1] = changed[-1] + 10.0                      # the last frame
        a, b = _run(fwd_cell, frames), _run(fwd_cell, changed)
        assert torch.equal(a[:, :-1], b[:, :-1]) and not torch.allclose(a[:, -1], b[:, -1])
        changed = list(x.unbind(1))
        changed[0] = changed[0] + 10.0                        # the first frame, seen last by the backward cell
        a, b = _run(bwd_cell, frames[::-1]).flip(1), _run(bwd_cell, changed[::-1]).flip(1)
        assert torch.equal(a[:, 1:], b[:, 1:]) and not torch.allclose(a[:, 0], b[:, 0])


def test_biconvlstm_rejects_an_unknown_merge():
    with pytest.raises(ValueError, match="merge must be 'sum' or 'concat'"):
        MODELS["biconvlstm-sum"](merge="max")


def test_build_rejects_unknown_names():
    with pytest.raises(ValueError, match=r"unknown model 'unet'.*'conv3d', 'deciwatch', 'biconvlstm-sum'"):
        build("unet")


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MODELS))
def test_torch_compile_matches_eager(name):
    """torch.compile (inductor on CPU) gives the eager forward and, for trained models, the eager gradients."""
    torch.manual_seed(0)
    m = build(name, num_keypoints=3, size=8).eval()                  # eval: no dropout, so runs compare
    x = small_input()[..., :8, :8].contiguous()                        # (2, 5, 3, 8, 8)
    compiled = torch.compile(m)
    y = compiled(x)
    torch.testing.assert_close(y, m(x), rtol=1e-4, atol=1e-4)
    params = list(m.parameters())
    if params:
        got = torch.autograd.grad(y.square().mean(), params)
        want = torch.autograd.grad(m(x).square().mean(), params)
        for g, w in zip(got, want):      # float32 reassociation through 10 layers: relative to the largest
            torch.testing.assert_close(g, w, rtol=1e-3, atol=1e-4 * w.abs().max().item())


def test_pose_mlp_starts_as_the_mean_filter_over_present_frames():
    """Its output layer starts at zero: step 0 is the mean of each keypoint's present frames, from heatmaps
    (missing keypoints' all-zero maps included) and from (x, y, present) triples alike."""
    from posedenoise import ops
    from posedenoise.models.inputs import as_triples
    g = torch.Generator().manual_seed(0)
    xy = torch.randint(0, 56, (4, 5, 25, 2), generator=g)
    present = torch.rand(4, 5, 25, generator=g) > 0.2
    maps = ops.render_heatmaps(xy, present, 2.0)
    m = build("pose-mlp")
    out = m(maps)
    torch.testing.assert_close(out, build("mean")(maps), rtol=0, atol=1e-5)
    torch.testing.assert_close(m(as_triples(xy, present)), out, rtol=0, atol=0)
    kp = present.any(1)                                           # keypoints present somewhere in the window
    want = (xy * present[..., None]).sum(1) / present.sum(1).clamp(min=1)[..., None]
    torch.testing.assert_close(out[:, 0][kp], want[kp].float(), rtol=0, atol=1e-5)


def test_pose_mlp_learns_a_residual_the_mean_cannot_give():
    """A linear motion: the mean filter lags every frame but the middle one; a few hundred steps on that one
    window family bring pose-mlp far below the mean filter's error."""
    torch.manual_seed(0)
    m = build("pose-mlp", width=64, depth=2)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    t = torch.arange(5.0)[None, :, None]
    def batch():
        start = torch.rand(64, 1, 25) * 30 + 5
        speed = torch.rand(64, 1, 25) * 4 - 2
        x = start + speed * t                                     # (B, T, K): the same for y
        xy = torch.stack([x, x.flip(1)], -1)
        return torch.cat([xy, torch.ones(64, 5, 25, 1)], -1), xy
    for _ in range(300):
        x, target = batch()
        loss = (m(x) - target).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, target = batch()
    with torch.no_grad():
        mlp, mean = (m(x) - target).square().mean(), (build("mean")(x) - target).square().mean()
    assert mlp < 0.1 * mean, (mlp, mean)
