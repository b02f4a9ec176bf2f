"""Windows (ids, counts, boundaries, step 2), splits (counts, no leakage, determinism), the gather and the
batch sampler, against enumerations written here as plain loops."""
import json
import warnings

import numpy as np
import pytest
import torch

from posedenoise.data import (Batches, DataError, Dataset, RawVideo, build_cache, open_data, save_cache,
                              window_table)

LENGTHS = [7, 3, 12, 5, 30, 9, 4, 15, 8, 10, 20, 6, 11, 13, 2, 17, 9, 25, 5, 14]


def make_cache(lengths=LENGTHS, seed=0):
    rng = np.random.default_rng(seed)
    return build_cache([RawVideo(f"v{i}", "generic", rng.uniform(0, 400, (n, 25, 2)).astype(np.float32),
                                 rng.random((n, 25)) > 0.3) for i, n in enumerate(lengths)])


def loop_windows(lengths, T, step):
    """[(video, first flat frame)] in id order: video by video, start by start."""
    out, start = [], 0
    for v, n in enumerate(lengths):
        for t in range(n):
            if t + (T - 1) * step < n:
                out.append((v, start + t))
        start += n
    return out


def quiet(**kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Dataset(make_cache(), **kw)


@pytest.mark.parametrize("T,step", [(5, 1), (5, 2), (3, 1), (1, 1)])
def test_window_table_matches_a_loop_and_never_crosses_a_video(T, step):
    cache = make_cache()
    start, video = window_table(cache.video_starts, cache.video_lengths, T, step)
    want = loop_windows(LENGTHS, T, step)
    assert len(start) == sum(max(n - (T - 1) * step, 0) for n in LENGTHS) == len(want)
    assert [(int(v), int(s)) for v, s in zip(video, start)] == want
    last = start + (T - 1) * step
    assert (last < cache.video_starts[video] + cache.video_lengths[video]).all()
    assert (start >= cache.video_starts[video]).all()


def test_window_ids_are_stable_and_gather_matches_a_loop():
    for step in (1, 2):
        a, b = quiet(step=step, seed=1), quiet(step=step, seed=2)
        np.testing.assert_array_equal(a.window_start, b.window_start)        # ids do not depend on the split
        ids = torch.tensor([0, a.num_windows - 1, 5, 5, 17])
        coords, vis = a.gather(ids)
        assert coords.shape == (5, 5, 25, 2) and vis.shape == (5, 5, 25)
        assert coords.dtype == torch.int64 and vis.dtype == torch.bool
        table = loop_windows(LENGTHS, 5, step)
        for i, w in enumerate(ids.tolist()):
            first = table[w][1]
            for t in range(5):
                np.testing.assert_array_equal(coords[i, t].numpy(), a.cache.coords[first + t * step])
                np.testing.assert_array_equal(vis[i, t].numpy(), a.cache.visible[first + t * step])


def test_split_by_video_counts_no_leakage_and_determinism():
    V = len(LENGTHS)
    n_videos = [round(0.6 * V), round(0.8 * V) - round(0.6 * V), V - round(0.8 * V)]   # 12, 4, 4
    for step in (1, 2):
        d = quiet(step=step, seed=3)
        ids = {s: d.split_ids(s).numpy() for s in ("train", "val", "test")}
        assert sum(len(i) for i in ids.values()) == d.num_windows
        assert len(np.unique(np.concatenate(list(ids.values())))) == d.num_windows
        videos = {s: set(d.window_video[i].tolist()) for s, i in ids.items()}
        frames = {s: set(d.window_frames(i).ravel().tolist()) for s, i in ids.items()}
        for s, t in (("train", "val"), ("train", "test"), ("val", "test")):
            assert not videos[s] & videos[t] and not frames[s] & frames[t]
        # every video is in exactly one split; videos with no window count too
        with_windows = {v for v, n in enumerate(LENGTHS) if n > 4 * step}
        assert set().union(*videos.values()) == with_windows
        assert np.bincount(d.video_part, minlength=3).tolist() == n_videos
        assert all(videos[s] == {v for v in with_windows if d.video_part[v] == p}
                   for p, s in enumerate(("train", "val", "test")))
    a, b, c = quiet(seed=3), quiet(seed=3), quiet(seed=4)
    for s in ("train", "val", "test"):
        assert torch.equal(a.split_ids(s), b.split_ids(s))
    assert not torch.equal(a.split_ids("val"), c.split_ids("val"))


def test_split_by_window_counts_and_limits():
    d = quiet(split="window", seed=0)
    W = d.num_windows
    counts = [len(d.split_ids(s)) for s in ("train", "val", "test")]
    assert counts == [round(0.6 * W), round(0.8 * W) - round(0.6 * W), W - round(0.8 * W)]
    all_ids = torch.cat([d.split_ids(s) for s in ("train", "val", "test")])
    assert sorted(all_ids.tolist()) == list(range(W))
    sub = quiet(split="window", seed=0, num_windows=20)
    assert [len(sub.split_ids(s)) for s in ("train", "val", "test")] == [12, 4, 4]
    assert set(sub.split_ids("val").tolist()) <= set(d.split_ids("val").tolist())
    with pytest.raises(DataError, match="split: expected 'video' or 'window'"):
        quiet(split="frames")


def test_short_videos_warn_yield_no_windows_and_all_short_is_an_error():
    with pytest.warns(UserWarning, match="3 of 20 videos are shorter than the 5 frames"):
        d = Dataset(make_cache(), name="mine")
    assert 14 not in d.window_video and d.cache.video_lengths[14] == 2      # kept in the cache
    with pytest.raises(DataError, match="mine: no video has the 9 frames a window needs"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Dataset(make_cache([3, 8]), step=2, name="mine")


def test_batches_shuffle_by_seed_and_epoch_drop_last_and_len():
    d = quiet(seed=0, split="window")
    train = d.split_ids("train")
    kw = dict(seed=1, shuffle=True)

    def ids(**k):
        b = Batches(d, "train", 8, "cpu", **k)
        out = [w for _, _, w in b]
        assert len(out) == len(b)
        return out
    e0, e0b = ids(epoch=0, drop_last=True, **kw), ids(epoch=0, drop_last=True, **kw)
    e1 = ids(epoch=1, drop_last=True, **kw)
    assert all(torch.equal(x, y) for x, y in zip(e0, e0b)) and len(e0) == len(e0b) == len(train) // 8
    assert not torch.equal(torch.cat(e0), torch.cat(e1))
    assert all(len(w) == 8 for w in e0) and set(torch.cat(e0).tolist()) < set(train.tolist())
    full = ids(epoch=0, drop_last=False, **kw)
    assert len(full) == -(-len(train) // 8) and sorted(torch.cat(full).tolist()) == sorted(train.tolist())
    val = ids(epoch=0, drop_last=False, seed=1, shuffle=False)
    assert torch.equal(torch.cat(val), train)                               # unshuffled: id order


def test_batches_are_small_gathers_ready_for_the_device():
    d = quiet(seed=0)
    coords, vis, wid = next(iter(Batches(d, "val", 16, "cpu", epoch=0, seed=0, shuffle=False, drop_last=False)))
    ref_c, ref_v = d.gather(wid)
    assert torch.equal(coords, ref_c) and torch.equal(vis, ref_v) and wid.dtype == torch.int64
    assert coords.min() >= 0 and coords.max() <= 55
    assert coords.numel() * coords.element_size() + vis.numel() + wid.numel() * 8 < 64 * 1024


@pytest.mark.parametrize("world,drop_last", [(2, True), (3, True), (3, False)])
def test_batches_shard_each_global_batch_by_rank(world, drop_last):
    d = quiet(seed=0, split="window")
    kw = dict(epoch=2, seed=5, shuffle=True, drop_last=drop_last)
    full = [w for _, _, w in Batches(d, "train", 8, "cpu", **kw)]
    ranks = [[w for _, _, w in Batches(d, "train", 8, "cpu", rank=r, world=world, **kw)] for r in range(world)]
    for r, batches in enumerate(ranks):
        want = [f[r::world] for f in full if len(f[r::world])]            # a loop over global batches
        assert len(batches) == len(want) and all(torch.equal(a, b) for a, b in zip(batches, want))
    shards = torch.cat([torch.cat(b) for b in ranks])
    assert sorted(shards.tolist()) == sorted(torch.cat(full).tolist())     # disjoint, and nothing lost
    with pytest.raises(ValueError, match="rank"):
        Batches(d, "train", 8, "cpu", rank=world, world=world, **kw)


@pytest.mark.parametrize("n", [5, 7, 20, 33])
def test_num_windows_subset_sums_to_n_and_is_seeded(n):
    for split in ("video", "window"):
        a, b = quiet(split=split, seed=1, num_windows=n), quiet(split=split, seed=1, num_windows=n)
        full = quiet(split=split, seed=1)
        counts = [len(a.split_ids(s)) for s in ("train", "val", "test")]
        assert counts == [round(0.6 * n), round(0.8 * n) - round(0.6 * n), n - round(0.8 * n)] and sum(counts) == n
        for s in ("train", "val", "test"):
            assert torch.equal(a.split_ids(s), b.split_ids(s))
            assert set(a.split_ids(s).tolist()) <= set(full.split_ids(s).tolist())


def test_window_table_property_and_summary():
    d = quiet(step=2, seed=0)
    table = d.windows
    assert table.shape == (d.num_windows, 2) and (table[:, 1] == 2).all()
    assert [int(s) for s in table[:, 0]] == [s for _, s in loop_windows(LENGTHS, 5, 2)]
    s = json.loads(json.dumps(d.summary()))
    assert s["videos"] == len(LENGTHS) and s["frames"] == sum(LENGTHS) and s["source"] == "generic"
    assert sum(s["windows"].values()) == sum(max(n - 8, 0) for n in LENGTHS)


def test_open_data_synthetic_cache_file_penn_folder_and_unknown(tmp_path, penn_action_dir):
    syn = open_data("synthetic", step=1, num_windows=50)
    assert set(syn.cache.sources) == {"synthetic"} and syn.cache.num_videos == 200
    assert 60 * 200 <= syn.cache.num_frames <= 150 * 200
    assert sum(len(syn.split_ids(s)) for s in ("train", "val", "test")) == 50
    path = tmp_path / "c.npz"
    save_cache(make_cache(), str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from_file = open_data(str(path), step=2, seed=3)
    assert isinstance(from_file.cache.coords, np.memmap)
    assert torch.equal(from_file.split_ids("val"), quiet(step=2, seed=3).split_ids("val"))
    penn = open_data(str(penn_action_dir), step=1)
    assert penn.cache.num_videos == 2326 and penn.num_windows == 163_841 - 4 * 2326
    with pytest.raises(DataError, match="nowhere.npz: expected 'synthetic'"):
        open_data(str(tmp_path / "nowhere.npz"), step=1)
    with pytest.raises(DataError, match="no .mat label files"):
        open_data(str(tmp_path), step=1)
