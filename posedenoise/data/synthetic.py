"""Synthetic human motion in the POSE25 layout: the embedded default data (no files needed).

Each video is one articulated 2D skeleton, a kinematic tree rooted at the pelvis:

    pelvis -> spine -> neck -> head (nose, ears)
                       neck -> shoulder -> elbow -> wrist -> (pinky, index, thumb)
    pelvis -> hip -> knee -> ankle -> (heel, foot_index)

- Bone lengths: an adult template in units of body height (Drillis and Contini's proportions), each bone
  scaled by its own random factor per subject (about +-7%), then kept fixed for the whole video.
- Joint angles: per joint, a neutral value plus an action style (walk, wave, squat, jumping_jack, idle)
  plus a sum of three random sinusoids at 0.2-2 Hz; soft-clipped (smoothly) to a plausible range.
- View: a per-video body orientation. `width` in [-1, 1] scales the left-right offsets (1: facing the
  camera, the person's left on the image's right; -1: seen from behind; near 0: in profile); `facing`
  (+-1) is the image direction the person faces, which sets where flexion (elbows, knees, feet, nose)
  points. Flexion is drawn in the image plane; there is no foreshortening, so every bone keeps its
  length in the image up to the global scale.
- Camera: smooth global translation (drift plus sinusoids), in-plane rotation (a few degrees) and scale
  (zoom, +-15%), then a rare smooth excursion that takes part of the person out of the image.
- Missing keypoints as in the real sources: by default the hand (pinky, index, thumb) and foot (heel,
  foot_index) points are absent, as for Penn Action and BRACE mapped into POSE25; random occlusions hide
  one keypoint for 3 to 20 frames; keypoints outside the image are invisible. Every invisible keypoint
  still carries its coordinates.

Coordinates are pixels of a 640 x 480 image (x = column in [0, 640), y = row in [0, 480), y down), at
30 frames per second. The person is about 180 to 380 pixels tall.

Deterministic: video i of seed s comes from numpy.random.default_rng([s, i]) alone, so a shorter list
is a prefix of a longer one with the same seed. Vectorised over frames; the only Python loop inside a
video is over the ~25 joints of the kinematic chain.
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple, Union

import numpy as np

from posedenoise.data.raw import RawVideo
from posedenoise.layout import POSE25

IMAGE_WIDTH, IMAGE_HEIGHT = 640, 480
FPS = 30.0
STYLES: Tuple[str, ...] = ("idle", "walk", "wave", "squat", "jumping_jack")
HAND_FOOT: Tuple[str, ...] = (
    "left_pinky", "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)

# Adult template, in units of body height (Drillis and Contini): segment lengths and half-widths.
TEMPLATE: Dict[str, float] = {
    "torso": 0.29,          # pelvis (mid-hip) to neck (mid-shoulder)
    "head": 0.11,           # neck to nose along the head axis
    "ear_up": 0.10,         # neck to the ears along the head axis
    "ear_half": 0.06,       # half the distance between the ears
    "nose_forward": 0.035,  # nose ahead of the head axis, in profile
    "shoulder_half": 0.13,
    "hip_half": 0.085,
    "upper_arm": 0.186,
    "forearm": 0.146,
    "hand": 0.05,           # wrist to the index knuckle
    "thigh": 0.245,
    "shank": 0.246,
    "heel": 0.045,
    "foot": 0.13,           # ankle to the toes
}

# Joint angle ranges in radians (soft limits). Flexion is positive; see _pose for the directions.
RANGES: Dict[str, Tuple[float, float]] = {
    "lean": (-0.3, 1.2), "side_bend": (-0.3, 0.3), "neck_flex": (-0.5, 0.6), "neck_side": (-0.35, 0.35),
    "shoulder_flex": (-0.8, 3.0), "shoulder_abd": (-0.2, 2.9), "elbow": (0.0, 2.5), "wrist": (-1.0, 1.0),
    "hip_flex": (-0.5, 2.2), "hip_abd": (-0.2, 0.8), "knee": (0.0, 2.4), "ankle": (-0.5, 0.7),
}
# Neutral standing pose and the amplitude (radians) of the random sinusoids around it.
NEUTRAL: Dict[str, Tuple[float, float]] = {
    "lean": (0.05, 0.08), "side_bend": (0.0, 0.05), "neck_flex": (0.05, 0.15), "neck_side": (0.0, 0.12),
    "shoulder_flex": (0.1, 0.35), "shoulder_abd": (0.15, 0.3), "elbow": (0.35, 0.45), "wrist": (0.1, 0.3),
    "hip_flex": (0.05, 0.12), "hip_abd": (0.06, 0.05), "knee": (0.1, 0.12), "ankle": (0.0, 0.1),
}
TURNOUT = 0.4   # how much hip and knee flexion shows as sideways motion in a frontal view
SIDED = ("shoulder_flex", "shoulder_abd", "elbow", "wrist", "hip_flex", "hip_abd", "knee", "ankle")


def generate_videos(
    num_videos: int,
    frames: Union[int, Tuple[int, int]] = (60, 150),
    seed: int = 0,
    *,
    hands_feet: bool = False,
    occlusion_rate: float = 0.08,
    out_of_view_rate: float = 0.1,
    styles: Sequence[str] = STYLES,
) -> List[RawVideo]:
    """Generate `num_videos` synthetic videos named "synth_00000", "synth_00001", ...

    frames: the length of every video, or (low, high) for a length drawn uniformly in [low, high].
    seed: video i depends only on (seed, i).
    hands_feet: keep the hand and foot keypoints visible (default False: absent, as in the real sources).
    occlusion_rate: expected share of present keypoint-frames hidden by random short occlusions.
    out_of_view_rate: probability that a video has one stretch with the person partly out of the image.
    styles: the action styles to draw from, uniformly (a subset of STYLES).

    Returns RawVideo records: xy (F, 25, 2) float32 pixels of a 640 x 480 image, visible (F, 25) bool,
    source "synthetic", official_split None.
    """
    if int(num_videos) != num_videos or num_videos < 0:
        raise ValueError(f"synthetic: num_videos must be a non-negative integer, got {num_videos!r}")
    low, high = (frames, frames) if np.isscalar(frames) else tuple(frames)
    if not (1 <= low <= high):
        raise ValueError(f"synthetic: frames must be a length >= 1 or (low, high) with 1 <= low <= high, "
                         f"got {frames!r}")
    if not 0.0 <= occlusion_rate < 1.0:
        raise ValueError(f"synthetic: occlusion_rate must be in [0, 1), got {occlusion_rate!r}")
    if not 0.0 <= out_of_view_rate <= 1.0:
        raise ValueError(f"synthetic: out_of_view_rate must be in [0, 1], got {out_of_view_rate!r}")
    unknown = [s for s in styles if s not in STYLES]
    if unknown or not styles:
        raise ValueError(f"synthetic: styles must be a non-empty subset of {STYLES}, got {tuple(styles)}")

    videos = []
    for i in range(int(num_videos)):
        rng = np.random.default_rng([int(seed), i])
        n = int(rng.integers(low, high + 1))
        style = styles[int(rng.integers(len(styles)))]
        xy = _video_xy(rng, n, style, out_of_view_rate)                                   # (F, 25, 2)
        visible = _visibility(rng, xy, hands_feet, occlusion_rate)                        # (F, 25)
        videos.append(RawVideo(name=f"synth_{i:05d}", source="synthetic", xy=xy.astype(np.float32),
                               visible=visible, official_split=None))
    return videos


# --- motion ---------------------------------------------------------------------------------------

def _sinusoids(rng: np.random.Generator, t: np.ndarray, amplitude: float, n: int = 3,
               f_low: float = 0.2, f_high: float = 2.0) -> np.ndarray:
    """A sum of n sinusoids at random frequencies in [f_low, f_high] Hz with total amplitude about
    `amplitude` (the weights are Dirichlet-like and sum to 1). t: (F,) seconds. Returns (F,)."""
    f = rng.uniform(f_low, f_high, n)
    phase = rng.uniform(0.0, 2.0 * np.pi, n)
    w = rng.exponential(1.0, n)
    w *= amplitude / w.sum()
    return (w[:, None] * np.sin(2.0 * np.pi * f[:, None] * t[None, :] + phase[:, None])).sum(0)


def _soft_clip(a: np.ndarray, low: float, high: float, sharpness: float = 12.0) -> np.ndarray:
    """Smoothly limit a to [low, high]: the identity well inside, C-infinity, flat far outside."""
    k = sharpness
    return low + np.logaddexp(0.0, k * (a - low)) / k - np.logaddexp(0.0, k * (a - high)) / k


def _style_angles(rng: np.random.Generator, t: np.ndarray, style: str) -> Tuple[Dict[str, np.ndarray], np.ndarray]:
    """Per-style offsets added to the neutral pose. Returns ({angle name (with _l/_r): (F,)}, bounce (F,)),
    bounce being a vertical lift of the whole body in body heights (for jumps)."""
    z = np.zeros_like(t)
    out: Dict[str, np.ndarray] = {}
    bounce = z
    if style == "walk":
        w = 2.0 * np.pi * rng.uniform(0.7, 1.1) * t + rng.uniform(0, 2 * np.pi)   # gait phase
        a = rng.uniform(0.25, 0.4)
        for side, s in (("l", 0.0), ("r", np.pi)):
            out["hip_flex_" + side] = a * np.sin(w + s) + 0.05
            swing = np.maximum(0.0, np.sin(w + s + 0.9))                            # knee folds in swing
            out["knee_" + side] = 1.0 * swing ** 2 + 0.1
            out["ankle_" + side] = 0.2 * np.sin(w + s + 0.5)
            out["shoulder_flex_" + side] = -0.6 * a * np.sin(w + s)                # arms counter-swing
            out["elbow_" + side] = 0.2 + 0.15 * np.sin(w + s + 1.0)
        out["lean"] = 0.08 + z
    elif style == "wave":
        side = "l" if rng.random() < 0.5 else "r"
        w = 2.0 * np.pi * rng.uniform(1.0, 2.0) * t + rng.uniform(0, 2 * np.pi)
        out["shoulder_abd_" + side] = rng.uniform(1.6, 2.4) + 0.15 * np.sin(w / 2)
        out["shoulder_flex_" + side] = rng.uniform(0.0, 0.6) + z
        out["elbow_" + side] = 1.1 + 0.6 * np.sin(w)
        out["wrist_" + side] = 0.4 * np.sin(w + 0.8)
    elif style == "squat":
        w = 2.0 * np.pi * rng.uniform(0.25, 0.5) * t + rng.uniform(0, 2 * np.pi)
        depth = 0.5 * (1.0 - np.cos(w)) * rng.uniform(0.6, 1.0)                     # 0 standing .. 1 deep
        for side in ("l", "r"):
            out["hip_flex_" + side] = 1.6 * depth
            out["knee_" + side] = 2.0 * depth
            out["ankle_" + side] = -0.5 * depth
            out["shoulder_flex_" + side] = 1.3 * depth
        out["lean"] = 0.6 * depth
    elif style == "jumping_jack":
        w = 2.0 * np.pi * rng.uniform(0.8, 1.4) * t + rng.uniform(0, 2 * np.pi)
        open_ = 0.5 * (1.0 - np.cos(w))                                             # 0 closed .. 1 open
        for side in ("l", "r"):
            out["shoulder_abd_" + side] = 2.5 * open_ - 0.1
            out["hip_abd_" + side] = 0.4 * open_
            out["elbow_" + side] = 0.2 * open_ - 0.2
            out["knee_" + side] = 0.25 * (1.0 - np.cos(2 * w)) / 2
        bounce = 0.06 * np.maximum(0.0, np.sin(2 * w)) ** 2
    return out, bounce


def _angles(rng: np.random.Generator, t: np.ndarray, style: str) -> Tuple[Dict[str, np.ndarray], np.ndarray]:
    """All joint angles (radians, (F,) each; sided ones as NAME_l / NAME_r) and the vertical bounce."""
    offsets, bounce = _style_angles(rng, t, style)
    calm = 0.5 if style in ("walk", "squat", "jumping_jack") else 1.0   # less random motion on top of a gait
    angles = {}
    for name, (neutral, amp) in NEUTRAL.items():
        for key in ([name + "_l", name + "_r"] if name in SIDED else [name]):
            a = neutral + offsets.get(key, 0.0) + _sinusoids(rng, t, amp * calm)
            angles[key] = _soft_clip(a, *RANGES[name])
    return angles, bounce


def _unit(beta: np.ndarray) -> np.ndarray:
    """Image direction of angle beta ((F,) radians): 0 is up, positive turns toward +x. Returns (F, 2)."""
    return np.stack([np.sin(beta), -np.cos(beta)], axis=-1)


def _pose(angles: Dict[str, np.ndarray], bone: Dict[str, float], width: float, facing: float) -> np.ndarray:
    """Forward kinematics in body space (units of body height, pelvis at the origin, y down).

    Flexion turns a limb toward `facing` (+-1 in x); abduction turns it away from the body's midline,
    whose image side is sign(width). fw and aw weight how much of flexion and abduction the image shows.
    Returns (F, 25, 2).
    """
    F = len(angles["lean"])
    idx = {name: i for i, name in enumerate(POSE25)}
    P = np.zeros((F, len(POSE25), 2))
    d, sw = facing, np.sign(width)
    fw = max(np.sqrt(max(0.0, 1.0 - width * width)), 0.25)
    aw = max(abs(width), 0.2)
    limb_fw = max(fw, 0.5)       # elbow and knee bending stays visible in frontal views

    spine = d * fw * angles["lean"] + sw * aw * angles["side_bend"]               # (F,) 0 = upright
    neck = bone["torso"] * _unit(spine)                                             # (F, 2)
    across = _unit(spine + np.pi / 2)                                               # toward +x side
    head = spine + d * fw * angles["neck_flex"] + sw * aw * angles["neck_side"]
    ahead = _unit(head + d * np.pi / 2)
    P[:, idx["nose"]] = neck + bone["head"] * _unit(head) + fw * bone["nose_forward"] * ahead
    for side, s in (("left", 1.0), ("right", -1.0)):
        P[:, idx[side + "_ear"]] = (neck + bone["ear_up"] * _unit(head) + s * width * bone["ear_half"]
                                    * _unit(head + np.pi / 2) - fw * 0.02 * ahead)
        x = side[0]
        # Arm: hangs down (spine + pi); flexion turns it forward, abduction outward (toward s * sign(width)).
        shoulder = neck + s * width * bone["shoulder_half"] * across
        upper = spine + np.pi - d * fw * angles["shoulder_flex_" + x] - s * sw * aw * angles["shoulder_abd_" + x]
        elbow = shoulder + bone["upper_arm"] * _unit(upper)
        fore = upper - d * limb_fw * angles["elbow_" + x]
        wrist = elbow + bone["forearm"] * _unit(fore)
        hand = fore - d * angles["wrist_" + x]
        P[:, idx[side + "_shoulder"]], P[:, idx[side + "_elbow"]], P[:, idx[side + "_wrist"]] = shoulder, elbow, wrist
        P[:, idx[side + "_index"]] = wrist + bone["hand"] * _unit(hand)
        P[:, idx[side + "_pinky"]] = wrist + 0.9 * bone["hand"] * _unit(hand + d * 0.3)
        P[:, idx[side + "_thumb"]] = wrist + 0.75 * bone["hand"] * _unit(hand - d * 0.6)
        # Leg: hangs down; hip flexion turns the thigh forward, the knee folds the shank backward.
        hip = s * width * bone["hip_half"] * across
        # The knees point slightly outward (turnout), so flexion also shows as abduction from the front.
        flex = angles["hip_flex_" + x]
        thigh = spine + np.pi - d * fw * flex - s * sw * aw * (angles["hip_abd_" + x] + TURNOUT * flex)
        knee = hip + bone["thigh"] * _unit(thigh)
        shank = thigh + (d * limb_fw + s * sw * aw * TURNOUT) * angles["knee_" + x]
        ankle = knee + bone["shank"] * _unit(shank)
        foot = shank - d * (np.pi / 2 - 0.25 + angles["ankle_" + x])
        P[:, idx[side + "_hip"]], P[:, idx[side + "_knee"]], P[:, idx[side + "_ankle"]] = hip, knee, ankle
        P[:, idx[side + "_heel"]] = ankle + bone["heel"] * _unit(shank + d * 0.5)
        P[:, idx[side + "_foot_index"]] = ankle + max(fw, 0.4) * bone["foot"] * _unit(foot)
    return P


def _video_xy(rng: np.random.Generator, n: int, style: str, out_of_view_rate: float) -> np.ndarray:
    """One video's keypoints in image pixels. Returns (n, 25, 2) float64."""
    t = np.arange(n) / FPS                                                           # (F,) seconds
    bone = {k: v * rng.uniform(0.93, 1.07) for k, v in TEMPLATE.items()}             # this subject
    width = rng.uniform(-1.0, 1.0)
    width = np.sign(width) * max(abs(width), 0.15)
    facing = 1.0 if rng.random() < 0.5 else -1.0
    angles, bounce = _angles(rng, t, style)
    P = _pose(angles, bone, width, facing)                                           # (F, 25, 2)

    # Stand on the ground: lift the body so the lower ankle (a smooth maximum of the two) is at y = 0.
    ankles = P[:, [POSE25.index("left_ankle"), POSE25.index("right_ankle")], 1]      # (F, 2)
    k = 60.0
    lowest = np.logaddexp(k * ankles[:, 0], k * ankles[:, 1]) / k
    P[..., 1] -= (lowest + bounce)[:, None]

    # Camera: scale (pixels per body height), in-plane rotation, translation; all smooth.
    height = rng.uniform(180.0, 380.0)
    scale = height * np.exp(_sinusoids(rng, t, rng.uniform(0.0, 0.15), 2, 0.05, 0.4))   # (F,)
    roll = rng.normal(0.0, 0.04) + _sinusoids(rng, t, rng.uniform(0.0, 0.08), 2, 0.05, 0.5)
    c, s = np.cos(roll), np.sin(roll)
    x = c[:, None] * P[..., 0] - s[:, None] * P[..., 1]
    y = s[:, None] * P[..., 0] + c[:, None] * P[..., 1]
    xy = np.stack([x, y], axis=-1) * scale[:, None, None]                            # (F, 25, 2)

    centre = xy.reshape(-1, 2).min(0) / 2 + xy.reshape(-1, 2).max(0) / 2
    target = np.array([rng.uniform(0.35, 0.65) * IMAGE_WIDTH, rng.uniform(0.45, 0.55) * IMAGE_HEIGHT])
    drift = rng.normal(0.0, 0.15 * height, 2) * (t / max(t[-1], 1.0))[:, None]      # (F, 2) pan
    wobble = np.stack([_sinusoids(rng, t, 0.08 * height, 2, 0.05, 0.6) for _ in range(2)], axis=-1)
    xy += (target - centre + drift + wobble)[:, None, :]

    if rng.random() < out_of_view_rate and n >= 10:
        xy += _excursion(rng, xy)[:, None, :]
    return xy


def _excursion(rng: np.random.Generator, xy: np.ndarray) -> np.ndarray:
    """A smooth shift (raised cosine over 10 to 40 frames) that moves 20-50% of the person's extent
    past the left, right or bottom edge of the image at its peak. xy: (F, 25, 2). Returns (F, 2)."""
    n = len(xy)
    length = int(rng.integers(10, min(40, n) + 1))
    start = int(rng.integers(0, n - length + 1))
    peak = start + length // 2
    lo, hi = xy[peak].min(0), xy[peak].max(0)                                         # (2,) box at peak
    share = rng.uniform(0.2, 0.5)
    edge = int(rng.integers(3))
    shift = np.zeros(2)
    if edge == 0:                                                                    # out to the left
        shift[0] = -lo[0] - share * (hi[0] - lo[0])
    elif edge == 1:                                                                  # out to the right
        shift[0] = IMAGE_WIDTH - hi[0] + share * (hi[0] - lo[0])
    else:                                                                            # out at the bottom
        shift[1] = IMAGE_HEIGHT - hi[1] + share * (hi[1] - lo[1])
    bump = np.zeros(n)
    u = np.arange(length) / (length - 1)
    bump[start:start + length] = 0.5 * (1.0 - np.cos(2.0 * np.pi * u))
    return bump[:, None] * shift[None, :]


# --- visibility -----------------------------------------------------------------------------------

def _visibility(rng: np.random.Generator, xy: np.ndarray, hands_feet: bool, occlusion_rate: float) -> np.ndarray:
    """Visible flags (F, 25): present keypoints, minus random occlusion runs, minus points off the image."""
    n, K = xy.shape[:2]
    present = np.ones(K, dtype=bool)
    if not hands_feet:
        present[[POSE25.index(name) for name in HAND_FOOT]] = False
    candidates = np.flatnonzero(present)
    # Occlusion runs of 3..20 frames (mean 11.5), starting in [-19, n) so that every frame is equally
    # likely to be covered; as many as make the expected hidden share occlusion_rate (before overlaps).
    events = rng.poisson(occlusion_rate * (n + 19) * len(candidates) / 11.5)
    joint = rng.choice(candidates, events)
    begin = rng.integers(-19, n, events)
    start = np.maximum(begin, 0)
    stop = np.minimum(begin + rng.integers(3, 21, events), n)
    keep = stop > start                                                               # runs that end before 0
    joint, start, stop = joint[keep], start[keep], stop[keep]
    runs = np.zeros((n + 1, K), dtype=np.int32)
    np.add.at(runs, (start, joint), 1)
    np.add.at(runs, (stop, joint), -1)
    occluded = np.cumsum(runs[:-1], axis=0) > 0                                       # (F, K)
    inside = ((xy[..., 0] >= 0) & (xy[..., 0] < IMAGE_WIDTH) & (xy[..., 1] >= 0) & (xy[..., 1] < IMAGE_HEIGHT))
    return present[None, :] & ~occluded & inside
