"""posedenoise.denoise on hand-made checkpoints (no training): which keypoints are missing, what the output
holds, clipping, and its one-line errors. The identity model makes the expected output exact: the input."""
import numpy as np
import pytest
import torch

from posedenoise import denoise
from posedenoise.models import build
from posedenoise.sequences import run_sequence

HEATMAP = 56


def checkpoint(tmp_path, model_name, setup=1, tweak=None):
    """A checkpoint file as posedenoise.train writes one, holding only what denoise reads."""
    model = build(model_name)
    if tweak:
        tweak(model)
    path = tmp_path / f"{model_name}.pt"
    torch.save({"config": {"model": model_name, "setup": setup}, "model": model.state_dict(), "epoch": 0}, path)
    return str(path)


def run(capsys, *args):
    """denoise.main in-process on input already on the heatmap grid (--frame grid, unless the arguments name
    a --frame) -> (exit code, stdout, stderr)."""
    argv = [str(a) for a in args]
    if "--frame" not in argv:
        argv += ["--frame", "grid"]
    try:
        denoise.main(argv)
        code = 0
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def keypoints_with_confidence(F=7, seed=0):
    """(F, 25, 3): integer pixels well inside the grid, confidence in {0, 0.3, 0.9}."""
    rng = np.random.default_rng(seed)
    xy = rng.integers(5, 50, (F, 25, 2)).astype(np.float32)
    conf = rng.choice(np.array([0.0, 0.3, 0.9], np.float32), (F, 25))
    conf[0, 0], conf[1, 0] = 0.0, 0.9        # both cases present for sure
    return np.concatenate([xy, conf[..., None]], -1)


def test_confidence_zero_is_missing_at_the_default_threshold(tmp_path, capsys):
    kp = keypoints_with_confidence()
    np.save(tmp_path / "kp.npy", kp)
    code, _, err = run(capsys, checkpoint(tmp_path, "identity"), tmp_path / "kp.npy", tmp_path / "d.npz")
    assert code == 0, err
    d = np.load(tmp_path / "d.npz")
    missing = kp[..., 2] == 0
    assert np.array_equal(d["visible"], ~missing)
    assert not d["heatmaps"][missing].any(), "a keypoint with confidence 0 was rendered"
    # the default fills a missed keypoint with the model's estimate and marks it; --missing nan leaves it out
    assert np.array_equal(d["filled"], missing) and np.isfinite(d["keypoints"]).all()
    code, _, err = run(capsys, checkpoint(tmp_path, "identity"), tmp_path / "kp.npy", tmp_path / "n.npz",
                       "--missing", "nan")
    n = np.load(tmp_path / "n.npz")
    assert code == 0 and np.isnan(n["keypoints"][missing]).all() and not n["filled"].any(), err
    assert np.array_equal(n["keypoints"][~missing], d["keypoints"][~missing])
    # identity: present keypoints come back where they went in
    assert np.array_equal(d["keypoints"][~missing], kp[..., :2][~missing])
    assert (d["heatmaps"][~missing].max(axis=(1, 2)) > 0).all()


def test_min_confidence_is_a_strict_threshold(tmp_path, capsys):
    kp = keypoints_with_confidence()
    np.save(tmp_path / "kp.npy", kp)
    code, _, err = run(capsys, checkpoint(tmp_path, "identity"), tmp_path / "kp.npy", tmp_path / "d.npz",
                       "--min-confidence", 0.3)
    assert code == 0, err
    assert np.array_equal(np.load(tmp_path / "d.npz")["visible"], kp[..., 2] > 0.3)


def test_heatmap_input_takes_the_peak_as_confidence(tmp_path, capsys):
    rng = np.random.default_rng(1)
    maps = rng.random((6, 25, HEATMAP, HEATMAP)).astype(np.float32) * 0.1
    maps[2, 3] = 0                                      # an all-zero map: missing
    maps[4, 7, 10, 20] = 5.0                            # a clear peak at (x=20, y=10)
    np.save(tmp_path / "h.npy", maps)
    ckpt = checkpoint(tmp_path, "identity")
    code, _, err = run(capsys, ckpt, tmp_path / "h.npy", tmp_path / "d.npz")
    assert code == 0, err
    d = np.load(tmp_path / "d.npz")
    expected = maps.max(axis=(2, 3)) > 0
    assert np.array_equal(d["visible"], expected) and not d["visible"][2, 3]
    # scaled to the simulation's mass as prepare --paired scales an estimator's: 255 / the median present mass
    scale = 255.0 / np.median(maps.sum(axis=(2, 3))[expected])
    assert np.allclose(d["heatmaps"][expected], maps[expected] * scale, rtol=1e-5) and not d["heatmaps"][2, 3].any()
    assert tuple(d["keypoints"][4, 7]) == (20, 10) and d["filled"][2, 3] and d["filled"].sum() == 1
    code, _, err = run(capsys, ckpt, tmp_path / "h.npy", tmp_path / "d2.npz", "--min-confidence", 1.0)
    assert code == 0, err
    v = np.load(tmp_path / "d2.npz")["visible"]
    assert v[4, 7] and v.sum() == 1                     # only the 5.0 peak is above 1


def test_out_of_range_keypoints_are_clipped_with_a_warning_that_counts_them(tmp_path, capsys):
    kp = np.zeros((5, 25, 3), np.float32)
    kp[..., :2], kp[..., 2] = 20, 1
    kp[0, 0, :2] = (80, 30)       # right of the grid
    kp[1, 5, :2] = (10, -7)       # above it
    kp[2, 9, :2] = (300, 400)     # image pixels
    kp[3, 4] = (90, 90, 0)        # out of range but missing: not counted, not rendered
    np.save(tmp_path / "kp.npy", kp)
    code, _, err = run(capsys, checkpoint(tmp_path, "identity"), tmp_path / "kp.npy", tmp_path / "d.npz")
    assert code == 0, err
    warning = [line for line in err.splitlines() if "warning" in line]
    assert len(warning) == 1 and "kp.npy" in warning[0] and "3 of 124" in warning[0], err
    d = np.load(tmp_path / "d.npz")
    assert tuple(d["keypoints"][0, 0]) == (55, 30)
    assert tuple(d["keypoints"][1, 5]) == (10, 0)
    assert tuple(d["keypoints"][2, 9]) == (55, 55)
    assert not d["visible"][3, 4] and not d["heatmaps"][3, 4].any()


def test_coordinate_model_output_is_clipped_to_the_grid_and_matches_its_heatmaps(tmp_path, capsys):
    """A DeciWatch whose last layer pushes every x far right and every y far up: its keypoints must land
    on the grid's border, (55, 0), and the heatmaps written with them must peak there."""
    def overshoot(model):
        with torch.no_grad():
            model.recover_out.bias.copy_(torch.tensor([100.0, -100.0]).repeat(25))   # (x, y) per keypoint
    kp = keypoints_with_confidence(F=9, seed=2)
    np.save(tmp_path / "kp.npy", kp)
    code, _, err = run(capsys, checkpoint(tmp_path, "deciwatch", tweak=overshoot), tmp_path / "kp.npy",
                       tmp_path / "d.npz")
    assert code == 0, err
    d = np.load(tmp_path / "d.npz")
    vis = d["visible"]
    assert np.array_equal(vis, kp[..., 2] > 0)
    assert (d["keypoints"][vis] == (55, 0)).all()
    peak = d["heatmaps"][vis].reshape(vis.sum(), -1).argmax(1)
    assert (peak % HEATMAP == 55).all() and (peak // HEATMAP == 0).all()
    assert not d["heatmaps"][~vis].any() and np.array_equal(d["filled"], ~vis)
    assert (d["keypoints"][~vis] == (55, 0)).all()           # filled, by the same (clipped) model


def test_coordinate_model_keypoints_agree_with_their_heatmaps(tmp_path, capsys):
    """An untrained DeciWatch (arbitrary, unclipped output): every present keypoint is on the grid and its
    heatmap peaks at the keypoint rounded to the pixel."""
    torch.manual_seed(0)
    kp = keypoints_with_confidence(F=8, seed=3)
    np.save(tmp_path / "kp.npy", kp)
    code, _, err = run(capsys, checkpoint(tmp_path, "deciwatch", setup=3), tmp_path / "kp.npy", tmp_path / "d.npz")
    assert code == 0, err
    d = np.load(tmp_path / "d.npz")
    vis = d["visible"]
    xy = d["keypoints"][vis]
    assert ((xy >= 0) & (xy <= 55)).all()
    peak = d["heatmaps"][vis].reshape(vis.sum(), -1).argmax(1)
    assert np.array_equal(np.stack([peak % HEATMAP, peak // HEATMAP], -1), np.round(xy))


def test_errors_name_denoise_and_a_missing_gpu(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    np.save(tmp_path / "kp.npy", keypoints_with_confidence())
    code, _, err = run(capsys, bad, tmp_path / "kp.npy", tmp_path / "d.npz")
    assert code == 2 and err.startswith("posedenoise.denoise: error:") and "bad.pt" in err, err
    if torch.cuda.is_available():
        return
    ckpt = checkpoint(tmp_path, "identity")
    code, _, err = run(capsys, ckpt, tmp_path / "kp.npy", tmp_path / "d.npz", "--device", "cuda")
    assert code == 2 and "no CUDA device" in err and "checkpoint" not in err, err
    assert err.count("\n") == 1
    from posedenoise import evaluate
    with pytest.raises(SystemExit) as e:
        evaluate.main([ckpt, "--device", "cuda"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("posedenoise.evaluate: error: --device cuda: no CUDA device"), err


@pytest.mark.parametrize("step", [1, 2])
def test_every_frame_gets_output_whatever_the_length(step):
    """Identity: the output is the input, for sequences shorter than, as long as and longer than a window
    (at frame step 2 a window spans 9 frames; frames between its frames must be covered too)."""
    model = build("identity")
    seq = torch.rand(14, 25, 8, 8)
    for F in range(1, 15):
        out, kp = run_sequence(model, seq[:F], step=step)
        assert torch.allclose(out, seq[:F]), F


# --- what an .npz input is read by: its names, never a paired file's ground truth ------------------------

def one_line_error(code, err, *words):
    assert code == 2 and err.startswith("posedenoise.denoise: error:") and err.count("\n") == 1, (code, err)
    for w in words:
        assert w in err, err


def peaks(F=6, seed=4):
    """Heatmaps (F, 25, 56, 56) with one hot pixel per map, and where it is: (F, 25, 2) = (x, y)."""
    rng = np.random.default_rng(seed)
    xy = rng.integers(0, HEATMAP, (F, 25, 2))
    maps = np.zeros((F, 25, HEATMAP, HEATMAP), np.float32)
    maps[np.arange(F)[:, None], np.arange(25), xy[..., 1], xy[..., 0]] = 1.0
    return maps, xy


GT = np.concatenate([np.full((6, 25, 2), 30.0), np.ones((6, 25, 1))], -1)   # paired data's ground truth: (30, 30)


@pytest.mark.parametrize("fields, argv, words", [
    # gt first, as np.savez writes them: the first array, which denoise read before, is the ground truth
    (dict(gt=GT, heatmaps=np.zeros((6, 25, 64, 48))), [], ["'heatmaps' are 48 x 64"]),
    (dict(gt=GT, keypoints=GT, frame_size=np.array([192, 256])), [], ["frame_size [192, 256]"]),
    (dict(gt=GT, keypoints=GT), [], ["no frame_size"]),
    (dict(gt=GT), [], ["neither", "['gt']"]),
    (dict(gt=GT, heatmaps=np.zeros((6, 25, 56, 56)), layout=np.array("openpose25")), [], ["openpose25"]),
    (dict(gt=GT, heatmaps=np.zeros((6, 25, 56, 56))), ["--key", "gt"], ["--key gt"]),
])
def test_a_paired_files_ground_truth_is_refused(tmp_path, capsys, fields, argv, words):
    np.savez(tmp_path / "video.npz", **fields)
    code, _, err = run(capsys, checkpoint(tmp_path, "identity"), tmp_path / "video.npz", tmp_path / "d.npz", *argv)
    one_line_error(code, err, "video.npz", "paired data with ground truth", "'heatmaps' or 'keypoints'", *words)
    assert not (tmp_path / "d.npz").exists()


def test_a_paired_file_in_heatmap_space_gives_its_estimator_output_and_says_so(tmp_path, capsys):
    maps, hot = peaks()
    np.savez(tmp_path / "hm.npz", gt=GT, heatmaps=maps)
    xy = hot.clip(0, 54)                      # + 0.25 stays on the grid (no warning about clipping)
    kp = np.concatenate([xy + 0.25, np.full((6, 25, 1), 0.9)], -1)
    np.savez(tmp_path / "kp.npz", gt=GT, keypoints=kp, frame_size=np.array([56, 56]), layout=np.array("pose25"))
    ckpt = checkpoint(tmp_path, "identity")
    for name, want in (("hm", hot), ("kp", xy)):     # identity: the estimator's keypoints back (rounded)
        code, _, err = run(capsys, ckpt, tmp_path / f"{name}.npz", tmp_path / f"d{name}.npz")
        assert code == 0, err
        (line,) = err.splitlines()
        word = "'heatmaps'" if name == "hm" else "'keypoints'"
        assert "warning" in line and f"{name}.npz" in line and word in line and "'gt' is not used" in line, line
        np.testing.assert_array_equal(np.load(tmp_path / f"d{name}.npz")["keypoints"], want)


def test_an_npz_is_read_by_name_not_by_position(tmp_path, capsys):
    kp = keypoints_with_confidence()
    other = keypoints_with_confidence(seed=9)
    np.savez(tmp_path / "named.npz", other=other, keypoints=kp)           # 'other' comes first
    code, _, err = run(capsys, checkpoint(tmp_path, "identity"), tmp_path / "named.npz", tmp_path / "d.npz")
    assert code == 0 and err == "", err
    d = np.load(tmp_path / "d.npz")
    present = kp[..., 2] > 0
    assert np.array_equal(d["visible"], present) and np.array_equal(d["keypoints"][present], kp[..., :2][present])


@pytest.mark.parametrize("arrays, words", [
    ((keypoints_with_confidence(),), ["'heatmaps'", "'keypoints'", "--key", "['arr_0']"]),   # np.savez(f, a)
    ((), ["'heatmaps'", "'keypoints'", "found []"]),
])
def test_an_npz_without_heatmaps_or_keypoints_is_refused(tmp_path, capsys, arrays, words):
    np.savez(tmp_path / "x.npz", *arrays)
    code, _, err = run(capsys, checkpoint(tmp_path, "identity"), tmp_path / "x.npz", tmp_path / "d.npz")
    one_line_error(code, err, "x.npz", *words)
    assert not (tmp_path / "d.npz").exists()


def test_an_npz_with_both_names_asks_for_key(tmp_path, capsys):
    maps, xy = peaks()
    kp = np.concatenate([xy, np.ones((6, 25, 1))], -1)
    np.savez(tmp_path / "both.npz", heatmaps=maps, keypoints=kp)
    ckpt = checkpoint(tmp_path, "identity")
    code, _, err = run(capsys, ckpt, tmp_path / "both.npz", tmp_path / "d.npz")
    one_line_error(code, err, "both.npz", "'heatmaps'", "'keypoints'", "--key")
    code, _, err = run(capsys, ckpt, tmp_path / "both.npz", tmp_path / "d.npz", "--key", "heatmaps")
    assert code == 0, err
    np.testing.assert_array_equal(np.load(tmp_path / "d.npz")["keypoints"], xy)
