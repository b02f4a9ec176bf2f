"""Preprocessing on hand-made poses (against values computed by hand and a per-frame loop written here), the
cache file (round trip, memory-mapping, format checks, atomic writes) and the prepare command (its bad input:
tests/test_bad_input.py)."""
import numpy as np
import pytest

from posedenoise import prepare
from posedenoise.data import DataError, RawVideo, build_cache, load_cache, save_cache, synthetic_cache
from posedenoise.data.generic import write_file
from posedenoise.data.preprocess import to_heatmap_space


def frame(points, stale=None, K=25):
    """One frame: {keypoint: (x, y)} visible; `stale` {keypoint: (x, y)} present but invisible."""
    xy = np.full((1, K, 2), 7.0, np.float32)
    vis = np.zeros((1, K), bool)
    for k, p in points.items():
        xy[0, k], vis[0, k] = p, True
    for k, p in (stale or {}).items():
        xy[0, k] = p
    return xy, vis


# --- preprocessing -----------------------------------------------------------------------------------

def test_wide_box_margin_square_and_grid_by_hand():
    # visible: (100, 200), (300, 250). Box x [100, 300] (extent 200), y [200, 250] (extent 50).
    # +10% per side: x [80, 320], y [195, 255]. Square: side 240, y extended about its centre 225 -> [105, 345].
    # pixel = (p - square_min) / 240 * 55.
    xy, vis = frame({0: (100, 200), 3: (300, 250)}, stale={5: (999, 999), 6: (-50, 10), 7: (200, 225)})
    c, v = to_heatmap_space(xy, vis)
    assert c.dtype == np.int16 and c.shape == (1, 25, 2)
    assert c[0, 0].tolist() == [5, 22]        # 20/240*55 = 4.58, 95/240*55 = 21.77
    assert c[0, 3].tolist() == [50, 33]       # 220/240*55 = 50.42, 145/240*55 = 33.23
    assert c[0, 7].tolist() == [28, 28]       # the centre: 120/240*55 = 27.5 exactly -> 28 (np.rint)
    assert c[0, 5].tolist() == [55, 55]       # invisible, far outside: clipped
    assert c[0, 6].tolist() == [0, 0]         # invisible, negative: clipped
    assert v[0].tolist() == vis[0].tolist()   # invisible points do not widen the box and stay invisible


def test_tall_box_extends_x_and_three_points():
    # visible: (40, 0), (60, 100), (50, 50). Box x [40, 60] (20), y [0, 100] (100); +10%: x [38, 62],
    # y [-10, 110]; side 120, x extended about 50 -> [-10, 110]. pixel = (p + 10) / 120 * 55.
    c, v = to_heatmap_space(*frame({1: (40, 0), 2: (60, 100), 4: (50, 50)}))
    assert c[0, 1].tolist() == [round(50 / 120 * 55), round(10 / 120 * 55)] == [23, 5]
    assert c[0, 2].tolist() == [round(70 / 120 * 55), round(110 / 120 * 55)] == [32, 50]
    assert c[0, 4].tolist() == [round(60 / 120 * 55)] * 2 == [28, 28]
    assert v[0, [1, 2, 4]].all() and v[0].sum() == 3


def test_the_box_corners_land_on_the_grid_border():
    # a square pose: its 10% margin puts the box corners at 1/12 and 11/12 of the square.
    c, _ = to_heatmap_space(*frame({0: (0, 0), 1: (600, 600)}))
    assert c[0, 0].tolist() == [round(55 / 12)] * 2 == [5, 5] and c[0, 1].tolist() == [round(55 * 11 / 12)] * 2


def test_too_few_visible_or_degenerate_frames_are_all_missing_but_kept():
    xy = np.concatenate([frame({})[0], frame({3: (5, 5)})[0], frame({3: (5, 5), 4: (5, 5)})[0],
                         frame({3: (0, 0), 4: (10, 0)})[0]])
    vis = np.concatenate([frame({})[1], frame({3: (5, 5)})[1], frame({3: (5, 5), 4: (5, 5)})[1],
                          frame({3: (0, 0), 4: (10, 0)})[1]])
    c, v = to_heatmap_space(xy, vis)
    assert c.shape == (4, 25, 2) and not v[:3].any()
    # zero height alone is not degenerate: the square has side 12 (x [-1, 11]), pixel = (p + 1) / 12 * 55.
    assert v[3, [3, 4]].all() and c[3, 3].tolist() == [round(55 / 12), round(6 / 12 * 55)]
    assert c.min() >= 0 and c.max() <= 55


def loop_reference(xy, vis, size=56):
    """SPEC section 2 frame by frame, keypoint by keypoint, in plain Python."""
    F, K, _ = xy.shape
    out, out_vis = np.zeros((F, K, 2), int), np.zeros((F, K), bool)
    for f in range(F):
        pts = [(float(xy[f, k, 0]), float(xy[f, k, 1])) for k in range(K) if vis[f, k]]
        if len(pts) < 2:
            continue
        lo = [min(p[a] for p in pts) for a in (0, 1)]
        hi = [max(p[a] for p in pts) for a in (0, 1)]
        lo, hi = [lo[a] - 0.1 * (hi[a] - lo[a]) for a in (0, 1)], [hi[a] + 0.1 * (hi[a] - lo[a]) for a in (0, 1)]
        side = max(hi[0] - lo[0], hi[1] - lo[1])
        if side <= 0:
            continue
        for k in range(K):
            for a in (0, 1):
                start = (lo[a] + hi[a]) / 2 - side / 2
                out[f, k, a] = min(max(round((float(xy[f, k, a]) - start) / side * (size - 1)), 0), size - 1)
            out_vis[f, k] = vis[f, k]
    return out, out_vis


def test_vectorised_preprocessing_matches_a_per_frame_loop():
    rng = np.random.default_rng(5)
    F = 300
    xy = rng.uniform(-50, 800, (F, 25, 2)).astype(np.float32)
    vis = rng.random((F, 25)) < rng.uniform(0, 0.5, (F, 1))          # many frames with 0 or 1 visible points
    c, v = to_heatmap_space(xy, vis)
    want_c, want_v = loop_reference(xy, vis)
    assert v.any() and not v.all(axis=1).any() and (v.sum(1) < 2).any()   # the draw covers the cases
    np.testing.assert_array_equal(v, want_v)
    np.testing.assert_array_equal(c, want_c)       # invisible keypoints too; frames without a box: (0, 0)


# --- the cache file ----------------------------------------------------------------------------------

def raw_videos(lengths, seed=0):
    rng = np.random.default_rng(seed)
    return [RawVideo(f"v{i}", "generic", rng.uniform(0, 400, (n, 25, 2)).astype(np.float32),
                     rng.random((n, 25)) > 0.3, "train" if i % 2 else None) for i, n in enumerate(lengths)]


def test_cache_round_trip_is_memory_mapped(tmp_path):
    videos = raw_videos([7, 3, 12])
    cache = build_cache(videos)
    path = tmp_path / "c.npz"
    save_cache(cache, str(path))
    back = load_cache(str(path))
    assert isinstance(back.coords, np.memmap) and isinstance(back.visible, np.memmap)
    assert back.coords.shape == (22, 25, 2) and back.coords.min() >= 0 and back.coords.max() <= 55
    for v, start in zip(videos, (0, 7, 10)):
        c, vis = to_heatmap_space(v.xy, v.visible)
        np.testing.assert_array_equal(back.coords[start:start + len(v.xy)], c)
        np.testing.assert_array_equal(back.visible[start:start + len(v.xy)], vis)
    assert back.video_starts.tolist() == [0, 7, 10] and back.video_lengths.tolist() == [7, 3, 12]
    assert back.names == ["v0", "v1", "v2"] and back.source.tolist() == ["generic"] * 3
    assert back.official_splits == [None, "train", None] and back.layout == "pose25"
    assert not list(tmp_path.glob(".*"))                                 # no temporary file left


def test_cache_format_errors_name_the_file(tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    save_cache(build_cache(raw_videos([6, 6])), str(path))
    good = path.read_bytes()
    with pytest.raises(DataError, match="missing.npz: no such cache file"):
        load_cache(str(tmp_path / "missing.npz"))
    (tmp_path / "cut.npz").write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match="cut.npz: not a readable keypoint cache"):
        load_cache(str(tmp_path / "cut.npz"))
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(DataError, match="text.npz"):
        load_cache(str(tmp_path / "text.npz"))
    np.savez(tmp_path / "other.npz", coords=np.zeros(3))
    with pytest.raises(DataError, match="other.npz: not a posedenoise keypoint cache"):
        load_cache(str(tmp_path / "other.npz"))
    with np.load(path) as z:
        fields = {k: z[k] for k in z.files}
    np.savez(tmp_path / "v9.npz", **{**fields, "version": np.array(9)})
    with pytest.raises(DataError, match="v9.npz: cache format version 9"):
        load_cache(str(tmp_path / "v9.npz"))
    np.savez_compressed(tmp_path / "zip.npz", **fields)
    with pytest.raises(DataError, match="zip.npz: .*compressed"):
        load_cache(str(tmp_path / "zip.npz"))
    np.savez(tmp_path / "len.npz", **{**fields, "video_lengths": np.array([6, 5])})
    with pytest.raises(DataError, match="len.npz: video_starts/video_lengths"):
        load_cache(str(tmp_path / "len.npz"))
    # a failed write leaves neither the cache nor a temporary file
    monkeypatch.setattr(np, "savez", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        save_cache(build_cache(raw_videos([6])), str(tmp_path / "new.npz"))
    assert not (tmp_path / "new.npz").exists() and not list(tmp_path.glob(".new.npz*"))


def test_build_cache_rejects_bad_records():
    with pytest.raises(DataError, match="no videos"):
        build_cache([])
    bad = RawVideo("x", "generic", np.zeros((4, 17, 2), np.float32), np.zeros((4, 17), bool))
    with pytest.raises(DataError, match=r"generic/x: xy \(4, 17, 2\)"):
        build_cache([bad])


def test_synthetic_cache_is_deterministic():
    a, b = synthetic_cache(4, 30, seed=1), synthetic_cache(4, 30, seed=1)
    assert a.video_lengths.tolist() == [30] * 4 and np.array_equal(a.coords, b.coords)
    assert set(a.sources) == {"synthetic"} and a.coords.max() <= 55 and a.visible.any()


# --- the prepare command ------------------------------------------------------------------------------

def test_prepare_writes_a_cache_from_generic_and_synthetic(tmp_path, capsys):
    rng = np.random.default_rng(0)
    seq = np.concatenate([rng.uniform(0, 300, (9, 17, 2)), np.ones((9, 17, 1))], -1)
    write_file(str(tmp_path / "a.json"), "coco17", {"clip": seq, "short": seq[:3]})
    prepare.main(["--generic", str(tmp_path / "a.json"), "--synthetic", "5", "--no-progress",
                  "--out", str(tmp_path / "out")])
    text = capsys.readouterr().out
    cache = load_cache(str(tmp_path / "out.npz"))
    assert cache.names[:2] == ["a/clip", "a/short"] and cache.num_videos == 7
    assert "7 videos" in text and "visible share per keypoint" in text and "left_shoulder" in text
    assert "shorter than the 5 frames" in text                             # the 3-frame video: a warning
    assert cache.video_lengths[1] == 3                                     # ... and kept in the cache


def test_prepare_help_and_no_sources(capsys):
    with pytest.raises(SystemExit) as e:
        prepare.main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--penn-action", "--brace", "--generic", "--synthetic", "--out", "--seed"):
        assert flag in text
    with pytest.raises(SystemExit) as e:
        prepare.main(["--out", "x.npz"])
    assert e.value.code == 2 and "nothing to read" in capsys.readouterr().err



def test_prepare_on_the_real_penn_action_labels(tmp_path, penn_action_dir, capsys):
    import csv
    with open(penn_action_dir / "penn_action_index.csv", newline="") as f:
        index = list(csv.DictReader(f))
    frames = sum(int(r["nframes"]) for r in index)
    out = tmp_path / "penn.npz"
    prepare.main(["--penn-action", str(penn_action_dir), "--no-progress", "--out", str(out)])
    text = capsys.readouterr().out
    cache = load_cache(str(out))
    assert cache.num_videos == len(index) == 2326 and cache.num_frames == frames == 163_841
    assert cache.names == sorted(r["video_id"] for r in index)
    rows = sorted(index, key=lambda r: r["video_id"])
    assert cache.official_splits == [{"1": "train", "-1": "test"}[r["train"]] for r in rows]
    assert cache.video_lengths.tolist() == [int(r["nframes"]) for r in rows]
    assert f"{frames - 4 * 2326}" in text and "2326 videos" in text          # windows: one per start, T = 5
    assert cache.coords.min() >= 0 and cache.coords.max() <= 55
    # the keypoints Penn Action lacks are never visible; the rest mostly are
    share = np.asarray(cache.visible).mean(0)
    assert (share[[1, 2, *range(9, 15), *range(21, 25)]] == 0).all() and (share[[0, 3, 4, *range(15, 21)]] > 0.5).all()
