"""Data: preprocessing on hand-made poses, the real Penn Action labels, the cache, windows and batches."""
import csv
import subprocess
import sys

import numpy as np
import pytest
import torch

from posedenoise.data import Batches, DataError, Dataset, RawVideo, build_cache, load_cache, save_cache
from posedenoise.data.penn_action import read_folder, read_video
from posedenoise.data.preprocess import to_heatmap_space


def pose(points, K=25):
    """One frame with the given {keypoint: (x, y)} visible and the rest missing (with stale coordinates)."""
    xy = np.full((1, K, 2), 999.0, np.float32)
    vis = np.zeros((1, K), bool)
    for k, p in points.items():
        xy[0, k], vis[0, k] = p, True
    return xy, vis


def test_box_margin_square_and_grid_mapping_by_hand():
    xy, vis = pose({0: (100, 200), 3: (300, 250)})
    coords, v = to_heatmap_space(xy, vis)
    # box x [100, 300], y [200, 250]; +10%: x [80, 320], y [195, 255]; square side 240 about the centre
    # (200, 225): origin (80, 105). pixel = (p - origin) / 240 * 55.
    assert coords[0, 0].tolist() == [round(20 / 240 * 55), round(95 / 240 * 55)] == [5, 22]
    assert coords[0, 3].tolist() == [round(220 / 240 * 55), round(145 / 240 * 55)] == [50, 33]
    assert v[0].tolist() == vis[0].tolist()
    # A tall pose: the x side is extended symmetrically instead.
    coords, _ = to_heatmap_space(*pose({1: (10, 0), 2: (10, 100)}))
    assert coords[0, 1].tolist() == [round(60 / 120 * 55), round(10 / 120 * 55)] == [28, 5]
    assert coords[0, 2].tolist() == [28, round(110 / 120 * 55)]


def test_frames_with_too_few_points_or_no_extent_are_missing():
    one, _ = to_heatmap_space(*pose({0: (5, 5)}))
    c1, v1 = to_heatmap_space(*pose({0: (5, 5)}))
    c2, v2 = to_heatmap_space(*pose({0: (5, 5), 1: (5, 5)}))
    assert not v1.any() and not v2.any()
    c3, v3 = to_heatmap_space(*pose({0: (0, 0), 1: (10, 0)}))   # zero height is fine: the square has side 12
    assert v3[0, :2].all() and c3[0, 0].tolist() == [round(1 / 12 * 55), round(6 / 12 * 55)]
    assert c3.min() >= 0 and c3.max() <= 55


def test_penn_action_reader_on_the_real_labels(penn_action_dir):
    videos = read_folder(str(penn_action_dir))
    assert len(videos) == 2326
    assert sum(len(v.xy) for v in videos) == 163_841
    with open(penn_action_dir / "penn_action_index.csv") as f:
        index = {r["video_id"]: r for r in csv.DictReader(f)}
    splits = {v.name: v.official_split for v in videos}
    assert sum(s == "train" for s in splits.values()) == 1258 and sum(s == "test" for s in splits.values()) == 1068
    by = {v.name: v for v in videos}
    for name, row in index.items():
        assert splits[name] == ("train" if row["train"] == "1" else "test")
        assert len(by[name].xy) == int(row["nframes"])
    assert len(by["0623"].xy) == 564                       # uint16 nframes
    for name in ("0013", "0052", "1037"):                  # integer x / y
        assert by[name].xy.dtype == np.float32 and np.isfinite(by[name].xy).all()
    for name in ("1154", "1865"):                          # bbox one row short: still read whole
        assert len(by[name].xy) == int(index[name]["nframes"])
    # The 13 joints land on the mapped keypoints only; hands and feet are missing.
    vis = np.concatenate([v.visible for v in videos])
    assert not vis[:, [1, 2, 9, 10, 11, 12, 13, 14, 21, 22, 23, 24]].any()
    assert 0.7 < vis[:, [0, 3, 4, 15, 16]].mean() < 0.95


def test_penn_action_bad_files(tmp_path):
    bad = tmp_path / "labels"
    bad.mkdir()
    (bad / "0001.mat").write_bytes(b"MATLAB 5.0 truncated")
    with pytest.raises(DataError, match="0001.mat"):
        read_folder(str(tmp_path))
    import scipy.io
    scipy.io.savemat(bad / "0001.mat", {"x": np.zeros((4, 13)), "y": np.zeros((4, 12)), "visibility": np.ones((4, 13))})
    with pytest.raises(DataError, match=r"0001.mat: x \(4, 13\), y \(4, 12\)"):
        read_video(str(bad / "0001.mat"))
    scipy.io.savemat(bad / "0001.mat", {"x": np.zeros((4, 13))})
    with pytest.raises(DataError, match="missing field 'y'"):
        read_video(str(bad / "0001.mat"))
    with pytest.raises(DataError, match="no such folder"):
        read_folder(str(tmp_path / "nowhere"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no .mat label files"):
        read_folder(str(empty))


def videos(lengths, seed=0):
    rng = np.random.default_rng(seed)
    return [RawVideo(f"v{i}", "test", rng.uniform(0, 400, (n, 25, 2)).astype(np.float32), rng.random((n, 25)) > 0.3)
            for i, n in enumerate(lengths)]


def test_cache_round_trip_is_memory_mapped_and_checks_its_format(tmp_path):
    cache = build_cache(videos([7, 3, 12]))
    path = str(tmp_path / "c.npz")
    save_cache(cache, path)
    back = load_cache(path)
    assert isinstance(back.coords, np.memmap) and isinstance(back.visible, np.memmap)
    assert np.array_equal(back.coords, cache.coords) and np.array_equal(back.visible, cache.visible)
    assert back.names == ["v0", "v1", "v2"] and back.video_lengths.tolist() == [7, 3, 12]
    (tmp_path / "bad.npz").write_bytes(open(path, "rb").read()[:500])
    with pytest.raises(DataError, match="bad.npz"):
        load_cache(str(tmp_path / "bad.npz"))
    np.savez(tmp_path / "other.npz", coords=np.zeros(3))
    with pytest.raises(DataError, match="missing fields"):
        load_cache(str(tmp_path / "other.npz"))


def test_windows_counts_splits_and_gather():
    lengths = [7, 3, 12, 5, 30, 9, 4, 15, 8, 10]
    cache = build_cache(videos(lengths))
    for step in (1, 2):
        span = 4 * step + 1
        data = Dataset(cache, step=step, seed=3)
        ids = {s: data.split_ids(s) for s in ("train", "val", "test")}
        all_ids = torch.cat(list(ids.values()))
        assert len(all_ids) == sum(max(n - span + 1, 0) for n in lengths) == len(set(all_ids.tolist()))
        frames = {s: {int(f) for w in i for f in data.window_start[int(w)] + np.arange(5) * step}
                  for s, i in ids.items()}
        assert not (frames["train"] & frames["val"]) and not (frames["train"] & frames["test"])
        coords, vis = data.gather(ids["train"][:3])
        for b, w in enumerate(ids["train"][:3].tolist()):
            f = data.window_start[w] + np.arange(5) * step
            assert np.array_equal(coords[b].numpy(), cache.coords[f]) and np.array_equal(vis[b].numpy(), cache.visible[f])
            v = data.window_video[w]
            assert cache.video_starts[v] <= f[0] and f[-1] < cache.video_starts[v] + cache.video_lengths[v]
    a, b = Dataset(cache, seed=3), Dataset(cache, seed=3)
    assert torch.equal(a.split_ids("val"), b.split_ids("val"))
    sub = Dataset(cache, seed=3, split="window", num_windows=20)
    assert [len(sub.split_ids(s)) for s in ("train", "val", "test")] == [12, 4, 4]


def test_batches_shuffle_by_seed_and_epoch_and_shard_by_rank():
    data = Dataset(build_cache(videos([40, 50, 60])), split="window", seed=0)
    ids = lambda **kw: torch.cat([w for _, _, w in Batches(data, "train", 8, "cpu", **kw)])  # noqa: E731
    kw = dict(seed=1, shuffle=True, drop_last=True)
    e0, e0b, e1 = ids(epoch=0, **kw), ids(epoch=0, **kw), ids(epoch=1, **kw)
    assert torch.equal(e0, e0b) and not torch.equal(e0, e1) and sorted(e0.tolist()) != e0.tolist()
    assert len(e0) == len(data.split_ids("train")) // 8 * 8
    r0 = list(Batches(data, "train", 8, "cpu", epoch=0, rank=0, world=2, **kw))
    r1 = list(Batches(data, "train", 8, "cpu", epoch=0, rank=1, world=2, **kw))
    full = list(Batches(data, "train", 8, "cpu", epoch=0, **kw))
    for (_, _, a), (_, _, b), (_, _, f) in zip(r0, r1, full):
        assert len(a) == len(b) == 4 and sorted(torch.cat([a, b]).tolist()) == sorted(f.tolist())


def test_a_video_shorter_than_a_window_yields_no_windows_and_no_video_is_an_error():
    data = Dataset(build_cache(videos([3, 9])))
    assert sum(len(data.split_ids(s)) for s in ("train", "val", "test")) == 5
    with pytest.raises(DataError, match="frames a window needs"):
        Dataset(build_cache(videos([2, 4])))


def test_prepare_command_writes_a_cache(tmp_path):
    out = tmp_path / "s.npz"
    r = subprocess.run([sys.executable, "-m", "posedenoise.prepare", "--synthetic", "6", "--out", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert load_cache(str(out)).names[:2] == ["synth_00000", "synth_00001"] and "visible share" in r.stdout
