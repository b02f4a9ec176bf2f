"""The synthetic motion generator: determinism, shapes, plausibility, missing keypoints, speed.

Every property is measured here with plain numpy on the generated arrays, independently of how the
generator builds them.
"""
import time

import numpy as np
import pytest

from posedenoise.data.raw import RawVideo
from posedenoise.data.synthetic import IMAGE_HEIGHT, IMAGE_WIDTH, STYLES, generate_videos
from posedenoise.layout import POSE25

I = {name: i for i, name in enumerate(POSE25)}
HAND_FOOT = [i for i, n in enumerate(POSE25)
             if n.split("_", 1)[-1] in ("pinky", "index", "thumb", "heel", "foot_index")]
BODY = [i for i in range(len(POSE25)) if i not in HAND_FOOT]


def _inside(xy):
    """(F, K) bool: the keypoint lies in the 640 x 480 image."""
    x, y = xy[..., 0], xy[..., 1]
    return (x >= 0) & (x < 640) & (y >= 0) & (y < 480)


def _mid(xy, a, b):
    return (xy[:, I[a]].astype(np.float64) + xy[:, I[b]]) / 2


def _torso(xy):
    """(F,) mid-shoulder to mid-hip distance."""
    return np.linalg.norm(_mid(xy, "left_shoulder", "right_shoulder") - _mid(xy, "left_hip", "right_hip"), axis=-1)


def _length(xy, a, b):
    return np.linalg.norm(xy[:, I[a]].astype(np.float64) - xy[:, I[b]], axis=-1)


@pytest.fixture(scope="module")
def videos():
    return generate_videos(60, seed=3)


def test_records_shapes_dtypes_and_names(videos):
    assert len(videos) == 60
    assert (IMAGE_WIDTH, IMAGE_HEIGHT) == (640, 480)
    for i, v in enumerate(videos):
        assert isinstance(v, RawVideo)
        assert v.name == f"synth_{i:05d}" and v.source == "synthetic" and v.official_split is None
        F = len(v.xy)
        assert 60 <= F <= 150
        assert v.xy.shape == (F, 25, 2) and v.xy.dtype == np.float32
        assert v.visible.shape == (F, 25) and v.visible.dtype == np.bool_
        assert np.isfinite(v.xy).all()
    lengths = {len(v.xy) for v in videos}
    assert len(lengths) > 10                                   # lengths are drawn, not fixed
    assert all(len(v.xy) == 37 for v in generate_videos(5, frames=37, seed=0))


def test_deterministic_from_seed():
    a, b = generate_videos(6, seed=11), generate_videos(6, seed=11)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u.xy, v.xy)
        np.testing.assert_array_equal(u.visible, v.visible)
    c = generate_videos(6, seed=12)
    assert all(u.xy.shape != w.xy.shape or not np.allclose(u.xy, w.xy) for u, w in zip(a, c))
    # Video i depends on (seed, i) only: a shorter list is a prefix of a longer one.
    for u, v in zip(generate_videos(3, seed=11), a):
        np.testing.assert_array_equal(u.xy, v.xy)


def test_body_in_the_image_and_the_right_way_up(videos):
    for v in videos:
        xy = v.xy.astype(np.float64)
        body = xy[:, BODY]
        assert _inside(body).mean() > 0.9, v.name
        height = np.ptp(body[..., 1], axis=1)                  # (F,) vertical extent of the body
        assert 100 < np.median(height) < 480, v.name
        hip = _mid(xy, "left_hip", "right_hip")
        assert (xy[:, I["nose"], 1] < hip[:, 1]).all(), v.name                         # head above hips
        assert (xy[:, [I["left_ankle"], I["right_ankle"]], 1] > hip[:, None, 1]).all(), v.name  # feet below


def test_bone_lengths_constant_within_a_video(videos):
    """Bone lengths divided by the torso (mid-shoulder to mid-hip) remove the camera zoom; they must not
    change within a video, but differ between subjects."""
    per_video = []
    for v in videos:
        torso = _torso(v.xy)
        ratios = []
        for a, b in (("left_shoulder", "left_elbow"), ("right_shoulder", "right_elbow"),
                     ("left_elbow", "left_wrist"), ("left_hip", "left_knee"), ("right_hip", "right_knee"),
                     ("left_knee", "left_ankle")):
            r = _length(v.xy, a, b) / torso
            assert r.std() / r.mean() < 1e-3, (v.name, a, b)
            ratios.append(r.mean())
        # The raw image lengths change only as much as the zoom (at most about +-20%).
        thigh = _length(v.xy, "left_hip", "left_knee")
        assert thigh.std() / thigh.mean() < 0.2, v.name
        per_video.append(ratios)
    spread = np.std(per_video, axis=0) / np.mean(per_video, axis=0)
    assert (spread > 0.01).all()                               # per-subject proportions


def test_motion_smooth_but_not_trivial(videos):
    """Second differences are small against first differences (white noise gives sqrt(3) = 1.73), and
    the limbs move relative to the pelvis, not only the whole body."""
    ratios = []
    for v in videos:
        xy = v.xy[:, BODY].astype(np.float64)
        d1 = np.abs(np.diff(xy, axis=0)).mean()
        d2 = np.abs(np.diff(xy, n=2, axis=0)).mean()
        ratios.append(d2 / d1)
        hip = _mid(v.xy, "left_hip", "right_hip")
        torso = _torso(v.xy)
        rel = (xy - hip[:, None]) / torso[:, None, None]      # pose relative to the pelvis, in torsos
        assert np.abs(np.diff(rel, axis=0)).mean() > 0.003, v.name
        assert d1 / np.ptp(xy[..., 1]) > 0.001, v.name        # per-frame motion vs body height
    noise = np.random.default_rng(0).normal(size=(100000, 2))
    noise_ratio = np.abs(np.diff(noise, n=2, axis=0)).mean() / np.abs(np.diff(noise, axis=0)).mean()
    assert noise_ratio > 1.6
    assert max(ratios) < 1.0
    assert np.mean(ratios) < 0.25 * noise_ratio


def test_hands_and_feet_missing_by_default(videos):
    for v in videos:
        assert not v.visible[:, HAND_FOOT].any(), v.name
        assert v.visible[:, BODY].mean() > 0.7, v.name
    with_hands = generate_videos(20, seed=3, hands_feet=True)
    for u, v in zip(with_hands, videos):
        np.testing.assert_array_equal(u.xy, v.xy)          # the option changes visibility only
    shown = np.concatenate([v.visible[:, HAND_FOOT] for v in with_hands])
    assert shown.mean() > 0.8
    # Hands sit near the wrists and feet near the ankles even when absent (coordinates are kept).
    for v in videos:
        torso = _torso(v.xy)
        for s in ("left", "right"):
            for part, root in (("pinky", "wrist"), ("index", "wrist"), ("thumb", "wrist"),
                               ("heel", "ankle"), ("foot_index", "ankle")):
                assert (_length(v.xy, f"{s}_{part}", f"{s}_{root}") < 0.7 * torso).all(), (v.name, part)


def test_occlusion_share_and_out_of_view():
    vids = generate_videos(150, seed=4, occlusion_rate=0.08, out_of_view_rate=0.0)
    inside = np.concatenate([_inside(v.xy[:, BODY]) for v in vids])
    hidden = np.concatenate([~v.visible[:, BODY] for v in vids])
    share = hidden[inside].mean()
    assert 0.06 < share < 0.095, share                      # 1 - exp(-0.08) = 0.077 after overlaps
    assert inside.mean() > 0.99                              # without excursions, nearly all in view
    # Occlusions come in runs of several frames, not isolated flickers.
    runs, frames = 0, 0
    for v in vids:
        h = ~v.visible[:, BODY] & _inside(v.xy[:, BODY])
        starts = h[1:] & ~h[:-1]
        runs += starts.sum() + h[0].sum()
        frames += h.sum()
    assert frames / runs > 4

    # No occlusions: visible is exactly "body keypoint inside the image".
    for v in generate_videos(20, seed=5, occlusion_rate=0.0, out_of_view_rate=1.0):
        expected = _inside(v.xy)
        expected[:, HAND_FOOT] = False
        np.testing.assert_array_equal(v.visible, expected)

    # Excursions take part of the person (not all of it) out of the image in most videos.
    partly = 0
    for v in generate_videos(40, seed=6, out_of_view_rate=1.0):
        ins = _inside(v.xy[:, BODY])
        partly += bool((~ins.all(1) & ins.any(1)).any())
        assert ins.any(1).mean() > 0.9, v.name
    assert partly >= 30


def test_every_style_and_option_errors():
    for style in STYLES:
        (v,) = generate_videos(1, frames=40, seed=2, styles=(style,))
        assert v.xy.shape == (40, 25, 2)
    for kwargs in ({"num_videos": -1}, {"num_videos": 2, "frames": 0}, {"num_videos": 2, "frames": (50, 10)},
                   {"num_videos": 2, "styles": ("dance",)}, {"num_videos": 2, "occlusion_rate": 1.5},
                   {"num_videos": 2, "out_of_view_rate": -0.1}):
        with pytest.raises(ValueError, match="synthetic"):
            generate_videos(**kwargs)
    with pytest.raises(TypeError):
        generate_videos(2, occlusion=0.1)                      # unknown options are rejected
    assert generate_videos(0) == []


def test_speed_reported(capsys):
    """Frames per second of the generator (reported, not asserted)."""
    generate_videos(2, frames=100, seed=0)                   # warm-up
    start = time.perf_counter()
    vids = generate_videos(20, frames=100, seed=0)
    seconds = time.perf_counter() - start
    frames = sum(len(v.xy) for v in vids)
    assert frames == 2000
    with capsys.disabled():
        print(f"\nsynthetic generator: {frames} frames in {seconds * 1e3:.1f} ms = {frames / seconds:,.0f} frames/s")
