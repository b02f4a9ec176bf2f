"""Keypoint layouts and source mappings, as data.

A layout is an ordered tuple of keypoint names. A source mapping says which source joint feeds which
target keypoint; target keypoints no source joint feeds are *missing* for that source (visibility 0).
Adding a layout or a dataset is adding a table here, not code elsewhere.
"""
from __future__ import annotations

from typing import Dict, Mapping, Sequence, Tuple

# The target estimator's layout (SPEC section 1). Order is the channel order of every heatmap tensor.
POSE25: Tuple[str, ...] = (
    "nose", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle", "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)

COCO17: Tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
    "right_knee", "left_ankle", "right_ankle",
)

# Penn Action's 13 joints in the dataset README's order ("head" is mapped to nose).
PENN13: Tuple[str, ...] = (
    "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
    "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)

OPENPOSE25: Tuple[str, ...] = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
    "left_wrist", "mid_hip", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee",
    "left_ankle", "right_eye", "left_eye", "right_ear", "left_ear", "left_big_toe", "left_small_toe",
    "left_heel", "right_big_toe", "right_small_toe", "right_heel",
)

LAYOUTS: Dict[str, Tuple[str, ...]] = {
    "pose25": POSE25, "coco17": COCO17, "penn13": PENN13, "openpose25": OPENPOSE25,
}

# Source joint name -> POSE25 name, where the names differ; same-named joints map to themselves.
# Joints absent from both (eyes, neck, mid_hip, toes) are dropped.
RENAMES: Dict[str, Dict[str, str]] = {
    "coco17": {},
    "penn13": {"head": "nose"},
    "openpose25": {"left_big_toe": "left_foot_index", "right_big_toe": "right_foot_index"},
    "pose25": {},
}

# Report groups (SPEC section 8, Tables 3 and 4): group -> member keypoints of POSE25.
GROUPS: Dict[str, Tuple[str, ...]] = {
    "nose": ("nose",),
    "ear": ("left_ear", "right_ear"),
    "shoulder": ("left_shoulder", "right_shoulder"),
    "elbow": ("left_elbow", "right_elbow"),
    "wrist": ("left_wrist", "right_wrist"),
    "hip": ("left_hip", "right_hip"),
    "knee": ("left_knee", "right_knee"),
    "ankle": ("left_ankle", "right_ankle"),
}

# Torso segments for the PCK normaliser: (shoulder, hip) on each side.
TORSO: Tuple[Tuple[str, str], ...] = (("left_shoulder", "left_hip"), ("right_shoulder", "right_hip"))


# Bones to draw between POSE25 keypoints (the target estimator's, MediaPipe Pose's connections without the
# eyes and mouth it has and POSE25 lacks): for pictures only, nothing is computed from them.
SKELETON25: Tuple[Tuple[str, str], ...] = (
    ("nose", "left_ear"), ("nose", "right_ear"),
    ("left_shoulder", "right_shoulder"), ("left_hip", "right_hip"),
    ("left_shoulder", "left_hip"), ("right_shoulder", "right_hip"),
    ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
    ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
    ("left_wrist", "left_pinky"), ("left_wrist", "left_index"), ("left_wrist", "left_thumb"),
    ("left_pinky", "left_index"),
    ("right_wrist", "right_pinky"), ("right_wrist", "right_index"), ("right_wrist", "right_thumb"),
    ("right_pinky", "right_index"),
    ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
    ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
    ("left_ankle", "left_heel"), ("left_heel", "left_foot_index"), ("left_ankle", "left_foot_index"),
    ("right_ankle", "right_heel"), ("right_heel", "right_foot_index"), ("right_ankle", "right_foot_index"),
)


class LayoutError(ValueError):
    """An unknown layout name or a keypoint missing from a layout."""


def get_layout(name: str) -> Tuple[str, ...]:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise LayoutError(f"unknown keypoint layout {name!r}; expected one of {sorted(LAYOUTS)}") from None


def index(name: str, layout: Sequence[str] = POSE25) -> int:
    try:
        return list(layout).index(name)
    except ValueError:
        raise LayoutError(f"keypoint {name!r} is not in the layout") from None


def source_to_target(source: str, target: Sequence[str] = POSE25) -> Dict[int, int]:
    """Map source joint index -> target keypoint index for every source joint that has a target."""
    names = get_layout(source)
    renames: Mapping[str, str] = RENAMES.get(source, {})
    out: Dict[int, int] = {}
    for i, n in enumerate(names):
        t = renames.get(n, n)
        if t in target:
            out[i] = list(target).index(t)
    return out


def group_indices(layout: Sequence[str] = POSE25) -> Dict[str, Tuple[int, ...]]:
    """Report group -> keypoint indices in `layout` (groups with no member in the layout are left out)."""
    out = {}
    for g, members in GROUPS.items():
        idx = tuple(list(layout).index(m) for m in members if m in layout)
        if idx:
            out[g] = idx
    return out


def torso_indices(layout: Sequence[str] = POSE25) -> Tuple[Tuple[int, int], ...]:
    return tuple((index(s, layout), index(h, layout)) for s, h in TORSO)
