"""The imperfect-crop option (ops.crop_jitter): against a float64 numpy statement of the same transform,
per window and independent of the batch, and through the training and evaluation path."""
import numpy as np
import pytest
import torch

from posedenoise import ops, reference


def draws(window_ids, seed, epoch):
    """The window's three uniform integers, from the reference Philox (tested against Random123's vectors)."""
    wid = torch.as_tensor(window_ids, dtype=torch.int64)
    r0, r1, r2, _ = reference.philox4x32(2**32 - 1, 0, wid & 0xFFFFFFFF, wid >> 32, seed, epoch)
    return r0.numpy(), r1.numpy(), r2.numpy()


def expected(coords, window_ids, scale, shift, seed, epoch, size=56):
    """round half up of c + (x - c) * s + d, in float64: s = n / 1024 with n = lo + floor(u0 (1025 - lo) / 2**32),
    d = floor(u (2 shift + 1) / 2**32) - shift, clipped to the map."""
    r0, r1, r2 = draws(window_ids, seed, epoch)
    lo = round(scale * 1024)
    n = lo + np.floor(r0.astype(np.float64) * (1025 - lo) / 2**32)
    d = np.stack([np.floor(r.astype(np.float64) * (2 * shift + 1) / 2**32) - shift for r in (r1, r2)], -1)
    c = (size - 1) / 2
    x = coords.numpy().astype(np.float64)
    out = np.floor(c + (x - c) * (n / 1024)[:, None, None, None] + 0.5) + d[:, None, None, :]
    return np.clip(out, 0, size - 1), n / 1024, d


@pytest.mark.parametrize("scale,shift", [(0.75, 6), (0.5, 0), (1.0, 3), (0.9, 55)])
def test_crop_jitter_is_the_stated_scale_and_shift(scale, shift):
    g = torch.Generator().manual_seed(0)
    coords = torch.randint(0, 56, (64, 5, 25, 2), generator=g)
    ids = torch.randint(0, 2**40, (64,), generator=g)
    got = ops.crop_jitter(coords, ids, scale=scale, shift=shift, seed=7, epoch=3)
    want, s, d = expected(coords, ids, scale, shift, 7, 3)
    np.testing.assert_array_equal(got.numpy(), want)
    assert ((scale <= s) & (s <= 1)).all() and (np.abs(d) <= shift).all()


def test_crop_jitter_draws_cover_their_range_and_differ_by_window_and_epoch():
    ids = torch.arange(4000)
    _, s, d = expected(torch.zeros(4000, 1, 1, 2, dtype=torch.int64), ids, 0.75, 6, 0, 0)
    assert abs(s.mean() - 0.875) < 0.005 and s.min() < 0.76 and s.max() > 0.99
    assert set(np.unique(d)) == set(range(-6, 7))
    coords = torch.full((4000, 1, 1, 2), 10)
    a = ops.crop_jitter(coords, ids, scale=0.75, shift=6, seed=0, epoch=0)
    b = ops.crop_jitter(coords, ids, scale=0.75, shift=6, seed=0, epoch=1)
    assert (a != b).any(-1).float().mean() > 0.9


def test_crop_jitter_is_one_draw_per_window_whatever_the_batch():
    g = torch.Generator().manual_seed(1)
    coords = torch.randint(0, 56, (10, 5, 25, 2), generator=g)
    ids = torch.arange(100, 110)
    whole = ops.crop_jitter(coords, ids, scale=0.8, shift=4, seed=2, epoch=5)
    parts = torch.cat([ops.crop_jitter(coords[i:i + 3], ids[i:i + 3], scale=0.8, shift=4, seed=2, epoch=5)
                       for i in range(0, 10, 3)])
    assert torch.equal(whole, parts)
    # one affine map per window: keypoints at the same place in two frames land at the same place
    same = coords.clone()
    same[:, 1] = same[:, 0]
    out = ops.crop_jitter(same, ids, scale=0.8, shift=4, seed=2, epoch=5)
    assert torch.equal(out[:, 0], out[:, 1])


def test_the_exact_crop_is_the_identity_and_bad_options_are_named():
    coords = torch.randint(0, 56, (3, 5, 25, 2))
    assert torch.equal(ops.crop_jitter(coords, torch.arange(3), seed=0, epoch=0), coords)
    for kw, match in ((dict(scale=0.0), "scale"), (dict(scale=1.5), "scale"), (dict(shift=-1), "shift"),
                      (dict(shift=2.5), "shift"), (dict(seed=-1), "seed")):
        args = dict(seed=0, epoch=0) | kw
        with pytest.raises(ValueError, match=match):
            ops.crop_jitter(coords, torch.arange(3), **args)


def test_evaluation_scores_against_the_cropped_keypoints():
    """batch_inputs moves the clean keypoints by the crop before the noise: the target the loss and PCK use is
    the cropped one, and with k = 0 the noisy input equals it."""
    from posedenoise.data import open_data
    from posedenoise.evaluation import batch_inputs
    from posedenoise.models.inputs import read_coords
    data = open_data("synthetic", step=1, num_windows=50)
    ids = data.split_ids("val")[:8]
    coords, visible = data.gather(ids)
    x, y, target = batch_inputs(data, coords, visible, ids, "coords", epoch=0, seed=3, k=0.0, sigma_choices=None,
                                input_kind="coords", crop=(0.75, 6))
    assert torch.equal(target, ops.crop_jitter(coords, ids, scale=0.75, shift=6, seed=3, epoch=0))
    assert not torch.equal(target, coords)
    xy, present = read_coords(x)
    assert torch.equal(present, visible)
    assert torch.equal(xy[present], target[present].float())


def test_training_refuses_a_crop_option_on_paired_data(tmp_path, capsys):
    """Paired data's inputs are an estimator's own output: there is no simulated box to misplace."""
    from posedenoise import estimator_sim, prepare
    from posedenoise import train as train_mod
    estimator_sim.main(["--out", str(tmp_path / "est"), "--videos", "3"])
    prepare.main(["--paired", str(tmp_path / "est"), "--out", str(tmp_path / "p.npz")])
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        train_mod.main(["--data", str(tmp_path / "p.npz"), "--crop-scale", "0.8", "--out", str(tmp_path / "r"),
                        "--quiet"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--crop-scale" in err[0] and "paired" in err[0]
    assert not (tmp_path / "r" / "checkpoints" / "last.pt").exists()
