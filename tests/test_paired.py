"""Paired data (an estimator's output with ground truth): the folder reader's mapping rules against values
worked out by hand, the cache round trip, training inputs, finetuning with --init, and the simulated
estimator. (Bad paired files: tests/test_bad_input.py.)"""
import json

import numpy as np
import pytest
from scipy import ndimage
import torch

from posedenoise import estimator_sim, prepare
from posedenoise import train as train_mod
from posedenoise.data import open_data
from posedenoise.data.paired import (AMPLITUDE, PairedDataset, build_paired, load_paired, read_folder,
                                     read_video, save_paired)
from posedenoise.evaluation import batch_inputs, model_batch
from posedenoise.layout import COCO17, POSE25

TINY = ["--num-windows", "40", "--batch-size", "4", "--quiet"]


def coco_video(path, T=6, H=64, W=48, peak=0.8):
    """A COCO-17 video whose maps have one hot pixel each, at known places; gt one pixel to the right."""
    rng = np.random.default_rng(0)
    xs, ys = rng.integers(0, W, (T, 17)), rng.integers(0, H, (T, 17))
    maps = np.zeros((T, 17, H, W), np.float32)
    maps[np.arange(T)[:, None], np.arange(17), ys, xs] = peak
    gt = np.stack([xs + 1.0, ys, np.ones((T, 17))], -1)
    gt[0, 0, 2] = 0                                           # the nose of frame 0 is not visible
    np.savez(path, gt=gt, heatmaps=maps, layout=np.array("coco17"))
    return xs, ys


def test_reader_maps_layout_frame_and_amplitude_by_the_documented_rules(tmp_path):
    xs, ys = coco_video(tmp_path / "a.npz")
    v = read_video(str(tmp_path / "a.npz"), frame="stretch")
    shoulder_coco, shoulder_pose = COCO17.index("left_shoulder"), POSE25.index("left_shoulder")
    # pixel centres: x' = (x + 0.5) * 56 / W - 0.5, y' = (y + 0.5) * 56 / H - 0.5
    want_gt = ((xs[2, shoulder_coco] + 1 + 0.5) * 56 / 48 - 0.5, (ys[2, shoulder_coco] + 0.5) * 56 / 64 - 0.5)
    assert v["gt"][2, shoulder_pose] == pytest.approx(want_gt, abs=1e-5)
    assert v["heatmaps"].shape == (6, 25, 56, 56)
    # the argmax of a bilinearly resized single hot pixel lies within a pixel of the mapped position
    want_est = ((xs[2, shoulder_coco] + 0.5) * 56 / 48 - 0.5, (ys[2, shoulder_coco] + 0.5) * 56 / 64 - 0.5)
    assert np.abs(v["est"][2, shoulder_pose] - want_est).max() <= 1.0
    assert v["confidence"][2, shoulder_pose] == pytest.approx(0.8)
    # keypoints COCO lacks (e.g. left_heel) and invisible ground truth
    heel = POSE25.index("left_heel")
    assert not v["visible"][:, heel].any() and v["confidence"][:, heel].max() == 0 and not v["heatmaps"][:, heel].any()
    assert not v["visible"][0, POSE25.index("nose")] and v["visible"][1, POSE25.index("nose")]
    paired = build_paired([("a", v)])
    # the median mass of the visible, found maps: a hot pixel of 0.8 resized from 48 x 64 to 56 x 56 keeps
    # 0.8 * (56 / 48) * (56 / 64) of mass (interpolation spreads it over more pixels along x, fewer along y)
    found = v["visible"] & (v["confidence"] > 0)
    assert paired.amplitude == pytest.approx(np.median(v["heatmaps"].sum((2, 3))[found]))
    assert paired.amplitude == pytest.approx(0.8 * 56 / 48 * 56 / 64, rel=0.02)
    # ... and the maps are scaled by 255 / it: a typical map holds the simulation's mass of 255
    np.testing.assert_allclose(paired.heatmaps.astype(np.float32), v["heatmaps"] * (AMPLITUDE / paired.amplitude),
                               rtol=1e-3, atol=1e-3)
    assert np.median(paired.heatmaps.astype(np.float32).sum((2, 3))[found]) == pytest.approx(255, rel=1e-3)


def test_keypoint_input_is_mapped_with_its_frame_size(tmp_path):
    kp = np.zeros((5, 25, 3), np.float32)
    kp[:, 3] = (99.9, 19.9, 0.9)                              # left_shoulder -> (27.612, 28.06) on the grid
    kp[:, 4, 2] = 0                                            # right_shoulder: not output
    gt = np.concatenate([kp[..., :2], np.ones((5, 25, 1))], -1)
    np.savez(tmp_path / "k.npz", gt=gt, keypoints=kp, frame_size=np.array([200, 40]))
    v = read_video(str(tmp_path / "k.npz"), frame="stretch")
    assert v["est"][0, 3] == pytest.approx((100.4 * 56 / 200 - 0.5, 20.4 * 56 / 40 - 0.5))
    assert v["confidence"][0, 3] == pytest.approx(0.9) and v["confidence"][0, 4] == 0
    data = PairedDataset(build_paired([("k", v)]), T=5)
    x, _, _ = batch_inputs(data, *data.gather(torch.tensor([0])), torch.tensor([0]), "heatmaps", epoch=0, seed=0)
    # rendered at sigma 1 at its nearest pixel (28, 28) where the estimator gave a keypoint (as scipy filters
    # a delta of 255: the simulation's maps), nothing where it did not
    delta = np.zeros((56, 56))
    delta[28, 28] = 255.0
    want = ndimage.gaussian_filter(delta, 1.0, mode="nearest", truncate=4.0)
    np.testing.assert_allclose(x[0, 0, 3].numpy(), want, rtol=1e-5, atol=1e-4)
    assert not x[0, 0, 4].any()


def test_cache_round_trip_is_memory_mapped_and_windows_match_a_keypoint_cache(tmp_path):
    for i in range(3):
        coco_video(tmp_path / f"v{i}.npz", T=7 + i)
    paired = build_paired(read_folder(str(tmp_path), "stretch"))
    save_paired(paired, str(tmp_path / "p.npz"))
    back = load_paired(str(tmp_path / "p.npz"))
    assert isinstance(back.heatmaps, np.memmap) and isinstance(back.gt, np.memmap)
    for f in ("gt", "visible", "est", "confidence", "heatmaps", "video_lengths", "to_image"):
        np.testing.assert_array_equal(np.asarray(getattr(back, f)), np.asarray(getattr(paired, f)))
    assert back.names == ["v0", "v1", "v2"] and back.amplitude == paired.amplitude
    data = open_data(str(tmp_path / "p.npz"), step=1, split="window")
    assert isinstance(data, PairedDataset) and data.num_windows == 3 + 4 + 5
    ids = torch.tensor([0, 4, 11])
    coords, visible = data.gather(ids)
    frames = data.window_frames(ids)
    np.testing.assert_array_equal(coords.numpy(), np.clip(np.rint(paired.gt[frames]), 0, 55))
    x, y, _ = batch_inputs(data, coords, visible, ids, "heatmaps", epoch=0, seed=0, k=1.0, sigma_choices=None)
    np.testing.assert_array_equal(x.numpy(), paired.heatmaps[frames].astype(np.float32))
    # the target is rendered exactly as the simulation renders its clean target
    _, y_sim = model_batch(coords, visible, ids, "heatmaps", k=0.0, sigma_choices=None, seed=0, epoch=0)
    torch.testing.assert_close(y, y_sim, rtol=0, atol=0)


@pytest.fixture(scope="module")
def paired_cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("paired")
    estimator_sim.main(["--out", str(root / "est"), "--videos", "8"])
    prepare.main(["--paired", str(root / "est"), "--out", str(root / "p.npz")])
    return root


def test_simulated_estimator_errors_are_the_documented_ones(paired_cache):
    """Misses at the stated rate; the error's per-axis spread matches drift and jitter: var = drift^2 + jitter^2
    (independent), up to the grid's rounding and the maps' resize."""
    p = load_paired(str(paired_cache / "p.npz"))
    seen = np.asarray(p.visible)
    found = np.asarray(p.confidence)[seen] > 0
    assert abs((1 - found.mean()) - 0.05) < 0.01
    err = (np.asarray(p.est) - np.asarray(p.gt))[seen & (np.asarray(p.confidence) > 0)]
    err = err[(np.abs(err) < 15).all(-1)]                     # swaps aside
    assert np.std(err) == pytest.approx(np.hypot(2.0, 1.0), rel=0.15)


def test_finetuning_starts_from_the_checkpoint_and_compares_with_the_estimator(paired_cache, tmp_path):
    pre, ft = tmp_path / "pre", tmp_path / "ft"
    train_mod.main(["--out", str(pre), "--model", "conv3d", "--epochs", "1", *TINY])
    # lr tiny: the finetuned weights stay those of the checkpoint (a fresh model's would not)
    train_mod.main(["--init", str(pre), "--data", str(paired_cache / "p.npz"), "--out", str(ft), "--epochs", "1",
                    "--lr", "1e-12", *TINY])
    a = torch.load(pre / "checkpoints" / "best.pt", weights_only=False)
    b = torch.load(ft / "checkpoints" / "best.pt", weights_only=False)
    for name in a["model"]:
        torch.testing.assert_close(a["model"][name], b["model"][name], rtol=0, atol=1e-6)
    config = json.loads((ft / "config.json").read_text())
    assert config["init"] == str(pre / "checkpoints" / "best.pt") and config["model"] == "conv3d"
    test = json.loads((ft / "test.json").read_text())
    assert test["input"] == "estimator"
    # inspect draws a window of the finetuned run from the estimator's maps (the paired data's inputs)
    import matplotlib.image
    from posedenoise import inspect
    inspect.main([str(ft), "--window", "0", "--out", str(tmp_path / "w.png")])
    h, w = matplotlib.image.imread(str(tmp_path / "w.png")).shape[:2]
    assert (w, h) == inspect.BLOCK_PX


def test_finetuning_defaults_to_the_studys_rate(paired_cache, tmp_path):
    pre = tmp_path / "pre"
    train_mod.main(["--out", str(pre), "--epochs", "1", "--model", "deciwatch", *TINY])
    cfg = train_mod.TrainConfig(init=str(pre), data=str(paired_cache / "p.npz"), out=str(tmp_path / "ft"))
    assert cfg.lr == 1e-4 and cfg.model == "deciwatch"
    assert train_mod.TrainConfig(out=str(tmp_path / "x")).lr == 1e-3


def test_a_finetuning_run_resumes_from_its_own_checkpoint(paired_cache, tmp_path):
    """--resume continues the finetuning run (its last.pt, not --init's weights again) and ends with the metrics
    of an uninterrupted run of as many epochs."""
    pre = tmp_path / "pre"
    train_mod.main(["--out", str(pre), "--epochs", "1", "--model", "deciwatch", *TINY])
    common = ["--init", str(pre), "--data", str(paired_cache / "p.npz"), *TINY]
    train_mod.main([*common, "--out", str(tmp_path / "whole"), "--epochs", "2"])
    train_mod.main([*common, "--out", str(tmp_path / "parts"), "--epochs", "1"])
    train_mod.main([*common, "--out", str(tmp_path / "parts"), "--epochs", "2", "--resume"])
    rows = [[{k: v for k, v in json.loads(line).items() if k != "seconds"}
             for line in (tmp_path / d / "metrics.jsonl").read_text().splitlines()] for d in ("whole", "parts")]
    assert rows[0] == rows[1] and len(rows[0]) == 2


def test_estimates_outside_the_frame_are_clipped_counted_and_reported(tmp_path, capsys):
    """A frame of 112 x 56: x' = (x + 0.5) / 2 - 0.5 on the grid, y' = y. Three present keypoints lie outside
    the frame; one lies in its first pixel column (x = -0.4: x' = -0.45, moved to 0 within its pixel, not
    outside); one outside has confidence 0 (not output: not counted)."""
    folder = tmp_path / "est"
    folder.mkdir()
    T = 6
    for name in ("a", "b"):
        kp = np.tile(np.array([50.0, 20.0, 0.9]), (T, 25, 1))
        if name == "a":
            kp[0, 0, :2] = (-3, 20)        # left of the frame
            kp[1, 1, :2] = (50, 60)        # below it
            kp[2, 2, :2] = (200, -10)      # right of it and above it: one keypoint
            kp[3, 3, :2] = (-0.4, 20)      # inside its first pixel
            kp[4, 4] = (-50, 20, 0)        # outside, but not output
        gt = np.concatenate([kp[..., :2], np.ones((T, 25, 1))], -1)
        np.savez(folder / f"{name}.npz", gt=gt, keypoints=kp, frame_size=np.array([112, 56]))
    prepare.main(["--paired", str(folder), "--frame", "stretch", "--out", str(tmp_path / "p.npz")])
    out, err = capsys.readouterr()
    present = 2 * T * 25 - 1
    assert "wrote" in out and err.count("\n") == 1, err
    assert "warning" in err and str(folder) in err and f"3 of {present}" in err and "(1.00%)" in err, err
    assert "1 of 2 videos" in err and "most: a, 3" in err, err
    p = load_paired(str(tmp_path / "p.npz"))
    assert p.clipped.tolist() == [3, 0]
    est = np.asarray(p.est)
    assert tuple(est[0, 0]) == (0, 20) and tuple(est[1, 1]) == (24.75, 55) and tuple(est[2, 2]) == (55, 0)
    assert tuple(est[3, 3]) == (0, 20) and tuple(est[4, 4]) == (0, 20)
    assert est.min() >= 0 and est.max() <= 55


def test_heatmaps_are_never_clipped_and_say_nothing(tmp_path, capsys):
    folder = tmp_path / "est"
    folder.mkdir()
    coco_video(folder / "v.npz")
    prepare.main(["--paired", str(folder), "--frame", "stretch", "--out", str(tmp_path / "p.npz")])
    assert capsys.readouterr().err == ""
    assert load_paired(str(tmp_path / "p.npz")).clipped.tolist() == [0]
