"""Image pixels in and out: the crop rule, prepare --paired (folders and COCO), denoise on real estimators'
files, the image-pixel report and estimator_sim --image. Every expected value is computed here by plain
numpy arithmetic of the documented rule (a box is the present keypoints' extent + 10% per side, made square
about its centre; grid = (p - origin) / side * 55), never by the code under test."""
import json
import math
import re

import numpy as np
import pytest
import torch

from posedenoise import denoise, estimator_sim, prepare
from posedenoise.data.paired import PairedCache, PairedDataset, load_paired
from posedenoise.data.preprocess import crop_boxes, to_grid, to_heatmap_space, to_image
from posedenoise.data.synthetic import generate_videos
from posedenoise.layout import COCO17, OPENPOSE25, POSE25
from posedenoise.models import build
from posedenoise.sequences import error_stats, image_report, image_table

S = 55.0                                                       # grid pixels across a box: size - 1
SRC = [i for i, n in enumerate(COCO17) if n in POSE25]         # COCO keypoints POSE25 has (not the eyes)
DST = [POSE25.index(COCO17[i]) for i in SRC]
# A standing person, COCO-17 order, about 150 px tall (y from -74 to 78) around its hips' centre.
OFF17 = np.array([(0, -70), (4, -74), (-4, -74), (8, -70), (-8, -70), (18, -50), (-18, -50), (24, -22),
                  (-24, -22), (26, 4), (-26, 4), (12, 0), (-12, 0), (13, 38), (-13, 38), (14, 78), (-14, 78)], float)


def hand_box(xy, present):
    """(centre x, centre y, side) of one frame by the rule."""
    p = xy[present]
    lo, hi = p.min(0), p.max(0)
    lo, hi = lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo)
    return np.r_[(lo + hi) / 2, (hi - lo).max()]


def hand_boxes(xy, present, smooth=-1, known=None):
    """(origin (F, 2), side (F,)): own boxes, frames with < 2 present keypoints interpolated linearly in time
    between the nearest frames with one (held at the ends), then averaged over 2 smooth + 1 frames. The box is
    of the keypoints the model knows (`known`; default for 17 keypoints: COCO's without the eyes, SRC), as
    pretraining boxes them."""
    if known is None and xy.shape[1] == len(COCO17):
        known = SRC
    if known is not None:
        present = present & np.isin(np.arange(xy.shape[1]), np.flatnonzero(known) if np.asarray(known).dtype == bool
                                     else known)[None, :]
    own = {t: hand_box(xy[t], present[t]) for t in range(len(xy)) if present[t].sum() >= 2}
    track = np.zeros((len(xy), 3))
    for t in range(len(xy)):
        a, b = [s for s in own if s <= t], [s for s in own if s >= t]
        if not a or not b:
            track[t] = own[(a or b)[-1 if a else 0]]
        else:
            w = 0.0 if a[-1] == b[0] else (t - a[-1]) / (b[0] - a[-1])
            track[t] = (1 - w) * own[a[-1]] + w * own[b[0]]
    if smooth > 0:
        track = np.array([track[max(0, t - smooth):t + smooth + 1].mean(0) for t in range(len(xy))])
    return track[:, :2] - track[:, 2:] / 2, track[:, 2]


def walker(T, seed, x0=200.0, shift=(6.0, 0.0), sparse=True):
    """gt (T, 17, 3) of a person walking right in a 640 x 360 frame, visibility 2 (the nose hidden in frame 2),
    and an estimator's keypoints (T, 17, 3): gt + shift + noise, confidence in [0.5, 1], misses (0, 0, 0) at
    (1, left wrist) and (4, left ankle), and (sparse) only the nose in frame 3. Rounded to 3 decimals."""
    rng = np.random.default_rng(seed)
    t = np.arange(T)[:, None]
    centre = np.stack([x0 + 4 * t, 170 + 3 * np.sin(t)], -1)
    gt_xy = OFF17 + centre + rng.normal(0, 1, (T, 17, 2))
    conf = rng.uniform(0.5, 1, (T, 17))
    conf[1, 9] = conf[4, 15] = 0
    if sparse:
        conf[3, 1:] = 0
    est_xy = np.where(conf[..., None] > 0, gt_xy + shift + rng.normal(0, 2, (T, 17, 2)), 0)
    gt = np.concatenate([gt_xy, np.full((T, 17, 1), 2.0)], -1)
    gt[2, 0, 2] = 0
    return np.round(gt, 3), np.round(np.concatenate([est_xy, conf[..., None]], -1), 3)


def call(main, capsys, *argv):
    try:
        main([str(a) for a in argv])
        code = 0
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line(code, err, *words):
    assert code == 2 and err.count("\n") == 1 and ": error: " in err, (code, err)
    for w in words:
        assert w in err, err


def checkpoint(tmp_path, name):
    path = tmp_path / f"{name}.pt"
    torch.save({"config": {"model": name, "setup": 1}, "model": build(name).state_dict(), "epoch": 0}, path)
    return str(path)


# --- 1. the crop rule ---------------------------------------------------------------------------------------

def test_crop_rule_box_one_scale_and_round_trip():
    xy = np.array([[[100, 50], [130, 200], [110, 120], [90, 80], [999, -999]]], float)
    b = crop_boxes(xy, np.array([[1, 1, 1, 1, 0]], bool))
    # x 90..130 (extent 40) -> 86..134; y 50..200 (extent 150) -> 35..215: side 180 about the centre (110, 125)
    np.testing.assert_allclose(b.side, [180])
    np.testing.assert_allclose(b.origin, [[20, 35]])
    assert b.ok.tolist() == [True]
    np.testing.assert_allclose(to_grid(xy, b)[0, :4], (xy[0, :4] - [20, 35]) * S / 180)
    step = to_grid(np.array([[[27, 35], [20, 42]]], float), b) - to_grid(np.array([[[20, 35], [20, 35]]], float), b)
    np.testing.assert_allclose(step[0], [[7 * S / 180, 0], [0, 7 * S / 180]], atol=1e-12)   # one scale
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 640, (4, 9, 2))
    boxes = crop_boxes(p, rng.random((4, 9)) < 0.7)
    np.testing.assert_allclose(to_image(to_grid(p, boxes), boxes), p, atol=1e-9)
    corners = to_image(np.array([[[0, 0], [S, S]]]), b)
    np.testing.assert_allclose(corners[0], [[20, 35], [200, 215]])


def test_frames_without_a_box_borrow_their_neighbours_and_smoothing_averages():
    rng = np.random.default_rng(1)
    xy = rng.uniform(100, 300, (7, 6, 2))
    present = np.ones((7, 6), bool)
    present[0, 1:] = present[1] = present[3, 1:] = present[4] = present[6] = False   # frames 0, 1, 3, 4, 6: < 2
    own2, own5 = hand_box(xy[2], present[2]), hand_box(xy[5], present[5])
    track = np.array([own2, own2, own2, own2 + (own5 - own2) / 3, own2 + 2 * (own5 - own2) / 3, own5, own5])
    b = crop_boxes(xy, present, smooth=-1)
    assert b.ok.tolist() == [False, False, True, False, False, True, False]
    np.testing.assert_allclose(b.side, track[:, 2])
    np.testing.assert_allclose(b.origin, track[:, :2] - track[:, 2:] / 2)
    s = crop_boxes(xy, present, smooth=1)
    for t, rows in ((3, [2, 3, 4]), (0, [0, 1]), (6, [5, 6])):              # interior: 3 frames; ends: 2
        want = track[rows].mean(0)
        assert s.side[t] == pytest.approx(want[2]) and s.origin[t] == pytest.approx(want[:2] - want[2] / 2)
    zero = crop_boxes(xy, present, smooth=0)                                # no filling: origin 0, side 1
    assert zero.side[1] == 1 and (zero.origin[1] == 0).all() and zero.side[2] == pytest.approx(own2[2])


def test_to_heatmap_space_is_unchanged():
    xy = np.array([[[10, 10], [30, 50], [22, 31], [500, -100]], [[10, 10], [30, 50], [22, 31], [5, 5]]], float)
    vis = np.array([[1, 1, 1, 0], [1, 0, 0, 0]], bool)
    coords, visible = to_heatmap_space(xy, vis)
    # frame 0: x 10..30 -> 8..32, y 10..50 -> 6..54: side 48 about (20, 30), origin (-4, 6); pixel
    # = rint((p - origin) * 55 / 48): (16.04, 4.58), (38.96, 50.42), (29.79, 28.65), (584.4, -121.0) clipped
    assert coords.dtype == np.int16
    assert coords[0].tolist() == [[16, 5], [39, 50], [30, 29], [55, 0]]
    assert coords[1].tolist() == [[0, 0]] * 4                              # one visible keypoint: no box
    assert visible.tolist() == [[True, True, True, False], [False] * 4]


# --- 2. prepare --paired on an image-pixel folder -------------------------------------------------------------

def test_prepare_paired_folder_crops_by_the_estimators_keypoints(tmp_path, capsys):
    folder = tmp_path / "est"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"layout": "coco17"}))
    videos = {"a": walker(8, 0), "b": walker(8, 1, x0=350)}
    for name, (gt, kp) in videos.items():
        np.savez(folder / f"{name}.npz", gt=gt, keypoints=kp)
    code, out, err = call(prepare.main, capsys, "--paired", folder, "--box-smooth", 0, "--out", tmp_path / "p.npz")
    assert code == 0 and err == "", err
    p = load_paired(str(tmp_path / "p.npz"))
    assert p.names == ["a", "b"] and p.video_lengths.tolist() == [8, 8] and p.gt_outside.tolist() == [0, 0]
    errors = []
    for v, (gt, kp) in enumerate(videos.values()):
        rows = slice(8 * v, 8 * v + 8)
        present = kp[..., 2] > 0
        origin, side = hand_boxes(kp[..., :2], present)
        grid = lambda q: (q[..., :2] - origin[:, None]) / side[:, None, None] * S  # noqa: E731
        np.testing.assert_allclose(p.to_image[rows], np.column_stack([side / S, side / S, origin]), rtol=1e-9)
        g_origin, g_side = hand_boxes(gt[..., :2], gt[..., 2] > 0)           # the gt's box is another one
        assert np.abs(g_origin[:, 0] + g_side / 2 - origin[:, 0] - side / 2).min() > 3
        est = np.asarray(p.est[rows])[:, DST]
        assert ((grid(kp)[present] >= 0) & (grid(kp)[present] <= S)).all()
        np.testing.assert_allclose(est[present[:, SRC]], grid(kp)[:, SRC][present[:, SRC]], atol=2e-4)
        conf = np.asarray(p.confidence[rows])
        np.testing.assert_allclose(conf[:, DST], kp[:, SRC, 2], rtol=1e-6)
        assert (conf[:, DST][~present[:, SRC]] == 0).all() and conf[1, POSE25.index("left_wrist")] == 0
        others = [k for k in range(25) if k not in DST]
        assert not conf[:, others].any() and not np.asarray(p.visible[rows])[:, others].any()
        np.testing.assert_allclose(np.asarray(p.gt[rows])[:, DST], grid(gt)[:, SRC], atol=2e-4)
        assert np.array_equal(np.asarray(p.visible[rows])[:, DST], gt[:, SRC, 2] > 0)
        found = (gt[:, SRC, 2] > 0) & present[:, SRC]
        errors.append(np.linalg.norm(kp[:, SRC, :2] - gt[:, SRC, :2], axis=-1)[found])
    printed = float(re.search(r"([\d.]+) px in the estimator's image", out).group(1))
    assert printed == pytest.approx(np.median(np.concatenate(errors)), abs=0.006), out
    code, _, err = call(prepare.main, capsys, "--paired", folder, "--box-smooth", 2, "--out", tmp_path / "b.npz")
    assert code == 0, err
    origin, side = hand_boxes(videos["b"][1][..., :2], videos["b"][1][..., 2] > 0, smooth=2)
    np.testing.assert_allclose(load_paired(str(tmp_path / "b.npz")).to_image[8:],
                               np.column_stack([side / S, side / S, origin]), rtol=1e-9)


def test_prepare_paired_frame_options_and_refusals(tmp_path, capsys):
    gt, kp = walker(8, 2)
    wide = tmp_path / "wide"
    wide.mkdir()
    np.savez(wide / "clip.npz", gt=gt, keypoints=kp, frame_size=np.array([640, 360]), layout=np.array("coco17"))
    code, _, err = call(prepare.main, capsys, "--paired", wide, "--frame", "crop", "--out", tmp_path / "c.npz")
    one_line(code, err, "clip.npz", "640 x 360", "not square")
    assert not (tmp_path / "c.npz").exists()
    code, _, err = call(prepare.main, capsys, "--paired", wide, "--frame", "stretch", "--out", tmp_path / "s.npz")
    assert code == 0, err
    p = load_paired(str(tmp_path / "s.npz"))
    sx, sy = 640 / 56, 360 / 56
    np.testing.assert_allclose(p.to_image, np.tile([sx, sy, 0.5 * sx - 0.5, 0.5 * sy - 0.5], (8, 1)))
    present = kp[:, SRC, 2] > 0
    want = np.clip((kp[:, SRC, :2] + 0.5) * [56 / 640, 56 / 360] - 0.5, 0, S)
    np.testing.assert_allclose(np.asarray(p.est)[:, DST][present], want[present], atol=2e-4)
    maps = tmp_path / "maps"
    maps.mkdir()
    np.savez(maps / "hm.npz", gt=gt, heatmaps=np.zeros((8, 17, 16, 16), np.float32), layout=np.array("coco17"))
    code, _, err = call(prepare.main, capsys, "--paired", maps, "--out", tmp_path / "h.npz")
    one_line(code, err, "hm.npz", "heatmaps with --frame image", "--frame crop")


# --- 3. prepare --paired RESULTS.json --gt GT.json ------------------------------------------------------------

def flat(a):
    return [float(v) for v in np.asarray(a).reshape(-1)]


def test_prepare_paired_reads_coco_results_with_a_coco_gt_of_two_videos(tmp_path, capsys):
    images, annotations, results, truth = [], [], [], {}
    for video, seed in ((7, 3), (9, 4)):
        gt, kp = walker(6, seed, sparse=False)
        if video == 9:
            kp[3] = 0                                                    # no detection on this image
        truth[str(video)] = gt, kp
        for f in reversed(range(6)):                                     # out of order: sorted by frame_id
            iid = 100 * video + f
            images.append({"id": iid, "video_id": video, "frame_id": f, "width": 640, "height": 360})
            annotations.append({"id": iid, "image_id": iid, "category_id": 1, "keypoints": flat(gt[f])})
            if kp[f, :, 2].any():
                results.append({"image_id": iid, "category_id": 1, "keypoints": flat(kp[f]), "score": 0.9})
    (tmp_path / "gt.json").write_text(json.dumps({"images": images, "annotations": annotations,
                                                  "categories": [{"id": 1, "name": "person"}]}))
    (tmp_path / "res.json").write_text(json.dumps(results))
    code, out, err = call(prepare.main, capsys, "--paired", tmp_path / "res.json", "--gt", tmp_path / "gt.json",
                          "--box-smooth", 0,
                          "--out", tmp_path / "p.npz")
    assert code == 0, err
    p = load_paired(str(tmp_path / "p.npz"))
    assert p.names == ["7", "9"] and p.video_lengths.tolist() == [6, 6]
    assert not np.asarray(p.confidence[6 + 3]).any()                     # video 9's missed frame
    for v, (gt, kp) in enumerate(truth.values()):
        rows = slice(6 * v, 6 * v + 6)
        origin, side = hand_boxes(kp[..., :2], kp[..., 2] > 0)          # video 9 frame 3: between 2 and 4
        np.testing.assert_allclose(p.to_image[rows], np.column_stack([side / S, side / S, origin]), rtol=1e-9)
        want = (gt[:, SRC, :2] - origin[:, None]) / side[:, None, None] * S
        np.testing.assert_allclose(np.asarray(p.gt[rows])[:, DST], want, atol=2e-4)
        assert np.array_equal(np.asarray(p.visible[rows])[:, DST], gt[:, SRC, 2] > 0)


# --- 4. denoise in image pixels -------------------------------------------------------------------------------

def window_mean(g, present, T=5, clip=True):
    """The mean filter through run_sequence, by hand: frame t averages, over every window j..j+T-1 holding it,
    the mean of the keypoint's present frames in that window (F >= T: no padding). -> (pred, answered)."""
    F, K = present.shape
    pred, answered = np.zeros((F, K, 2)), np.ones((F, K), bool)
    for t in range(F):
        for k in range(K):
            means = []
            for j in range(max(0, t - T + 1), min(F - T, t) + 1):
                p = present[j:j + T, k]
                answered[t, k] &= p.any()
                means.append(g[j:j + T, k][p].mean(0) if p.any() else np.zeros(2))
            pred[t, k] = np.mean(means, 0)
    return (np.clip(pred, 0, S) if clip else pred), answered


@pytest.fixture
def coco_video(tmp_path):
    _, kp = walker(8, 5, sparse=False)
    kp[5, 1] = 0                                                         # a missed left eye
    results = [{"image_id": 500 + f, "category_id": 1, "keypoints": flat(kp[f]), "score": 0.9} for f in range(8)]
    (tmp_path / "res.json").write_text(json.dumps(results))
    return tmp_path / "res.json", kp


def test_denoise_coco_results_with_identity_and_the_mean_filter(tmp_path, capsys, coco_video):
    path, kp = coco_video
    present = kp[..., 2] > 0
    origin, side = hand_boxes(kp[..., :2], present)
    g = (kp[..., :2] - origin[:, None]) / side[:, None, None] * S
    back = lambda q: q * side[:, None, None] / S + origin[:, None]  # noqa: E731
    code, _, err = call(denoise.main, capsys, checkpoint(tmp_path, "identity"), path, tmp_path / "d.npz",
                        "--box-smooth", 0)
    assert code == 0 and "warning" in err, err
    d = np.load(tmp_path / "d.npz")
    denoised = np.array([n in POSE25 for n in COCO17])
    assert d["keypoints"].shape == (8, 17, 2) and str(d["layout"]) == "coco17"
    assert np.array_equal(d["denoised"], denoised) and not denoised[[1, 2]].any()
    assert np.array_equal(d["present"], present)
    assert np.array_equal(d["filled"], ~present & denoised) and d["filled"].sum() == 2
    np.testing.assert_allclose(d["boxes"], np.column_stack([side / S, side / S, origin]), rtol=1e-9)
    np.testing.assert_array_equal(d["keypoints"][:, ~denoised], kp[:, ~denoised, :2])     # the eyes as given
    use = present & denoised
    # identity re-renders each keypoint at its rounded grid pixel: at most half a grid pixel per axis away
    bound = 0.5 * side[:, None, None] / S
    assert (np.abs(d["keypoints"] - kp[..., :2]) <= bound + 1e-6)[use].all()
    np.testing.assert_allclose(d["keypoints"][use], back(np.rint(g))[use], atol=1e-3)
    code, _, err = call(denoise.main, capsys, checkpoint(tmp_path, "identity"), path, tmp_path / "n.npz",
                        "--box-smooth", 0,
                        "--missing", "nan")
    n = np.load(tmp_path / "n.npz")
    assert code == 0 and np.array_equal(np.isnan(n["keypoints"]).any(-1), ~present) and not n["filled"].any()
    np.testing.assert_array_equal(n["keypoints"][present], d["keypoints"][present])
    # the mean filter reads the estimator's sub-pixel keypoints: window means of the present frames
    code, _, err = call(denoise.main, capsys, checkpoint(tmp_path, "mean"), path, tmp_path / "m.npz",
                        "--box-smooth", 0)
    assert code == 0, err
    m = np.load(tmp_path / "m.npz")
    pred, answered = window_mean(g, present)
    assert answered.all()
    np.testing.assert_allclose(m["keypoints"][:, denoised], back(pred)[:, denoised], atol=2e-3)
    np.testing.assert_array_equal(m["keypoints"][:, ~denoised], kp[:, ~denoised, :2])


def test_denoise_an_array_gives_what_the_coco_file_gives(tmp_path, capsys, coco_video):
    path, kp = coco_video
    ckpt = checkpoint(tmp_path, "identity")
    np.save(tmp_path / "kp.npy", kp)
    for src, dst in ((path, "c.npz"), (tmp_path / "kp.npy", "a.npz")):
        code, _, err = call(denoise.main, capsys, ckpt, src, tmp_path / dst)
        assert code == 0, err
    c, a = np.load(tmp_path / "c.npz"), np.load(tmp_path / "a.npz")
    assert sorted(c.files) == sorted(a.files)
    for f in c.files:
        np.testing.assert_array_equal(a[f], c[f], err_msg=f)


def test_denoise_openpose_folder_takes_one_person_by_score_and_continuity(tmp_path, capsys):
    off = np.stack([np.linspace(20, -20, 25), np.linspace(-75, 75, 25)], 1)
    A = np.array([off + [150 + 3 * t, 180] for t in range(6)])
    B = off + [450, 170]
    folder = tmp_path / "op"
    folder.mkdir()
    for t in range(6):
        a = {"person_id": [-1], "pose_keypoints_2d": flat(np.c_[A[t], np.full(25, 0.95 if t == 2 else 0.9)])}
        b = {"person_id": [-1], "pose_keypoints_2d": flat(np.c_[B, np.full(25, 0.6)])}
        people = [] if t == 4 else [a]                                   # frame 4: only B
        (folder / f"clip_{t:012d}_keypoints.json").write_text(
            json.dumps({"version": 1.3, "people": [b] + people if t % 2 else people + [b]}))
    code, _, err = call(denoise.main, capsys, checkpoint(tmp_path, "identity"), folder, tmp_path / "d.npz",
                        "--box-smooth", 0)
    assert code == 0, err
    assert "warning" in err and "by score and continuity: started at frame 2 (score 0.95)" in err, err
    assert "1 frames with no matching detection left missing" in err, err
    d = np.load(tmp_path / "d.npz")
    assert str(d["layout"]) == "openpose25" and d["keypoints"].shape == (6, 25, 2)
    here = np.arange(6) != 4
    assert np.array_equal(d["present"], np.repeat(here[:, None], 25, 1))
    known = np.array([n in POSE25 or n in ("left_big_toe", "right_big_toe") for n in OPENPOSE25])
    assert np.array_equal(d["denoised"], known)
    kp = np.concatenate([A, np.ones((6, 25, 1))], -1)
    kp[4] = 0
    origin, side = hand_boxes(kp[..., :2], kp[..., 2] > 0, known=known)
    np.testing.assert_allclose(d["boxes"][:, 2:], origin, rtol=1e-9)
    gap = np.abs(d["keypoints"] - A)[here][:, known]
    assert (gap <= 0.5 * side[here, None, None] / S + 1e-6).all()
    assert d["filled"][4, known].all() and not d["filled"][here].any()


def test_denoise_refuses_the_ground_truth_of_a_paired_file(tmp_path, capsys):
    gt, kp = walker(6, 6)
    np.savez(tmp_path / "video.npz", gt=gt, keypoints=kp, layout=np.array("coco17"))
    code, _, err = call(denoise.main, capsys, checkpoint(tmp_path, "identity"), tmp_path / "video.npz",
                        tmp_path / "d.npz", "--key", "gt")
    one_line(code, err, "video.npz", "--key gt")
    assert err.startswith("posedenoise.denoise: error:") and not (tmp_path / "d.npz").exists()


# --- 5. the image-pixel report --------------------------------------------------------------------------------

def test_error_stats_by_hand():
    pred = np.array([[[3.0, 4.0]], [[0.0, 1.0]]])
    s = error_stats(pred, np.zeros_like(pred), np.ones((2, 1), bool), np.array([30.0, np.nan]))
    assert s["n"] == 2 and s["mean"] == pytest.approx(3) and s["median"] == pytest.approx(3)
    assert s["p90"] == pytest.approx(1 + 0.9 * 4)
    assert s["pck"] == {"0.05": 0.0, "0.1": 0.0, "0.2": 1.0}            # frame 1 has no torso: left out


def test_image_report_against_numpy():
    V, n = 10, 12
    rng = np.random.default_rng(7)
    F = V * n
    gt = rng.uniform(10, 45, (F, 25, 2)).astype(np.float32)
    est = np.clip(gt + rng.normal(0, 1.5, gt.shape), 0, S).astype(np.float32)
    visible = np.ones((F, 25), bool)
    visible[:, 9:15] = False
    visible[5::n, 0] = False                                             # nose hidden: not scored
    visible[7::n, POSE25.index("left_shoulder")] = False                 # no torso: out of PCK
    conf = rng.uniform(0.5, 1, (F, 25)).astype(np.float32)
    knee_l, knee_r = POSE25.index("left_knee"), POSE25.index("right_knee")
    for s in range(0, F, n):
        conf[s + 2:s + 7, knee_l] = 0     # 5 frames: some window has no left knee, no frame of it is answered
        conf[s + 9, knee_l] = 0           # answered
        conf[s:s + 2, knee_r] = 0         # answered (frames 2..4 are in every window holding them)
    scale = rng.uniform(2, 4, F)
    to_img = np.column_stack([scale, scale, rng.uniform(0, 400, F), rng.uniform(0, 200, F)])
    starts, lengths = np.arange(0, F, n, dtype=np.int64), np.full(V, n, np.int64)
    paired = PairedCache(gt, visible, est, conf, None, starts, lengths, [f"v{i}" for i in range(V)],
                         to_image=to_img)
    data = PairedDataset(paired, T=5, split="video", seed=3)
    rep = image_report({"mean": build("mean"), "identity": build("identity")}, data, "test")
    tv = np.flatnonzero(data.video_part == 2)
    assert len(tv) == 2 and rep["videos"] == 2 and rep["frames"] == 2 * n
    rows = np.concatenate([np.arange(v * n, v * n + n) for v in tv])
    img = lambda g: g.astype(np.float64) * to_img[rows, None, :2] + to_img[rows, None, 2:]  # noqa: E731
    G, vis, present = img(gt[rows]), visible[rows], conf[rows] > 0
    detected, missed = vis & present, vis & ~present
    ls, lh, rs, rh = (POSE25.index(k) for k in ("left_shoulder", "left_hip", "right_shoulder", "right_hip"))
    torso = (np.linalg.norm(G[:, ls] - G[:, lh], axis=-1) + np.linalg.norm(G[:, rs] - G[:, rh], axis=-1)) / 2
    has_torso = vis[:, [ls, lh, rs, rh]].all(1)

    def check(got, pred, use):
        err = np.linalg.norm(pred - G, axis=-1)
        assert got["n"] == use.sum()
        assert got["mean"] == pytest.approx(err[use].mean(), rel=1e-6)
        assert got["median"] == pytest.approx(np.median(err[use]), rel=1e-6)
        assert got["p90"] == pytest.approx(np.percentile(err[use], 90), rel=1e-6)
        framed = use & has_torso[:, None]
        thr = np.broadcast_to(torso[:, None], err.shape)
        for a in (0.05, 0.1, 0.2):
            assert got["pck"][f"{a:g}"] == pytest.approx((err[framed] <= a * thr[framed]).mean())

    assert rep["missed_total"] == missed.sum() == 2 * 8 and detected.sum() == rep["detected"]["estimator"]["n"]
    check(rep["detected"]["estimator"], img(est[rows]), detected)
    preds, answered = [], []
    for v in tv:
        r = np.arange(v * n, v * n + n)         # filters run on the estimator's keypoints in image px
        g = est[r].astype(np.float64) * to_img[r, None, :2] + to_img[r, None, 2:]
        p = conf[r] > 0
        pr, an = window_mean(g * p[..., None], p, clip=False)
        preds.append(pr)
        answered.append(an)
    pred, answered = np.concatenate(preds), np.concatenate(answered)
    assert (missed & answered).sum() == rep["filled"]["mean"] == 2 * 3
    check(rep["detected"]["mean"], pred, detected)
    check(rep["missed"]["mean"], pred, missed & answered)
    # a model answers the same misses: where every window holds the keypoint (as denoise fills them)
    assert rep["filled"]["identity"] == 6 and rep["missed"]["identity"]["n"] == 6
    table = image_table(rep)
    assert table.count("| 6 of 16 |") == 2 and "| 0 of 16 |" in table, table          # the estimator: none


# --- 6. estimator_sim --image ---------------------------------------------------------------------------------

def test_estimator_sim_image_writes_full_frame_keypoints(tmp_path, capsys):
    out = tmp_path / "sim"
    code, _, err = call(estimator_sim.main, capsys, "--image", "--data", "synthetic", "--videos", 3, "--miss", 0.3,
                        "--out", out)
    assert code == 0, err
    assert json.loads((out / "manifest.json").read_text()) == {"layout": "pose25", "frame": "image"}
    total = missed = 0
    for v in generate_videos(3, seed=0):
        z = np.load(out / f"{v.name}.npz")
        kp, gt = z["keypoints"], z["gt"]
        assert kp.shape == gt.shape == (len(v.xy), 25, 3) and str(z["layout"]) == "pose25"
        miss = kp[..., 2] == 0
        assert (kp[miss][:, :2] == 0).all() and ((kp[~miss][:, 2] >= 0.5) & (kp[~miss][:, 2] <= 1)).all()
        assert miss[~v.visible].all()                                    # never output where not visible
        assert np.array_equal(gt[..., 2] > 0, v.visible)
        np.testing.assert_array_equal(gt[..., :2][v.visible], v.xy[v.visible])
        total, missed = total + v.visible.sum(), missed + miss[v.visible].sum()
    sd = math.sqrt(0.3 * 0.7 / total)
    assert total > 2000 and abs(missed / total - 0.3) < 4 * sd, (missed, total)
