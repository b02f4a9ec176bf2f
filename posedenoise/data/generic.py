"""Bring your own keypoints: a simple file format for sequences in any layout of posedenoise.layout.LAYOUTS.

One file holds one or more videos, all in one named layout, in source pixels (x = column, y = row):

    .npz   key "layout": a 0-d string (e.g. "coco17"); every other key is a video name whose array has
           shape (F, K, 3) = frames x keypoints x (x, y, visible), K = the layout's length; visible is 0/1.
           np.savez("mine.npz", layout="coco17", clip_a=a, clip_b=b)
    .json  {"layout": "coco17", "videos": {"clip_a": [[[x, y, v], ...K...], ...F...], ...}}

Keypoints the target layout (POSE25) lacks are dropped, target keypoints the layout lacks are missing.
A non-finite coordinate makes that keypoint missing. Video names become "<file stem>/<name>".
"""
from __future__ import annotations

import json
import os
from typing import Dict, List

import numpy as np

from ..layout import POSE25, LayoutError, get_layout, source_to_target
from .errors import DataError
from .raw import RawVideo


def _load(path: str):
    """path -> (layout name, {video name: array (F, K, 3)})."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file (expected a keypoint sequence file, .npz or .json)")
    if path.endswith(".json"):
        try:
            with open(path) as f:
                doc = json.load(f)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DataError(f"{path}: not a readable JSON file ({type(e).__name__}: {e})") from None
        if not isinstance(doc, dict) or "layout" not in doc or not isinstance(doc.get("videos"), dict):
            raise DataError(f"{path}: expected an object with fields 'layout' (a name) and 'videos' "
                            "(video name -> frames x keypoints x [x, y, visible])")
        layout, raw = doc["layout"], doc["videos"]
    elif path.endswith(".npz"):
        try:
            with np.load(path, allow_pickle=False) as z:
                raw = {k: z[k] for k in z.files}
        except Exception as e:  # truncated, not a zip, pickled objects
            raise DataError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from None
        if "layout" not in raw:
            raise DataError(f"{path}: missing field 'layout' (a 0-d string naming the keypoint layout)")
        layout = raw.pop("layout")
        layout = str(layout) if np.ndim(layout) == 0 else layout
    else:
        raise DataError(f"{path}: unknown extension; expected .npz or .json")
    if not isinstance(layout, str):
        raise DataError(f"{path}: field 'layout' must be a layout name, got {layout!r}")
    return layout, raw


def read_file(path: str) -> List[RawVideo]:
    """One generic keypoint file -> RawVideos in the POSE25 layout."""
    layout, raw = _load(path)
    try:
        names = get_layout(layout)
    except LayoutError as e:
        raise DataError(f"{path}: field 'layout': {e}") from None
    if not raw:
        raise DataError(f"{path}: no videos in the file")
    mapping: Dict[int, int] = source_to_target(layout, POSE25)
    src, dst = list(mapping), list(mapping.values())
    stem = os.path.splitext(os.path.basename(path))[0]
    out = []
    for name, seq in raw.items():
        try:
            arr = np.asarray(seq, dtype=np.float32)
        except (TypeError, ValueError):
            raise DataError(f"{path}: video {name!r} is not a regular frames x keypoints x 3 array "
                            "of numbers") from None
        if arr.ndim != 3 or arr.shape[1:] != (len(names), 3) or arr.shape[0] == 0:
            raise DataError(f"{path}: video {name!r} has shape {arr.shape}, expected (F, {len(names)}, 3) "
                            f"with F >= 1 for layout {layout!r}")
        F = arr.shape[0]
        xy = np.zeros((F, len(POSE25), 2), np.float32)
        visible = np.zeros((F, len(POSE25)), bool)
        finite = np.isfinite(arr[..., :2]).all(-1)
        xy[:, dst] = np.nan_to_num(arr[:, src, :2])
        visible[:, dst] = (arr[:, src, 2] > 0) & finite[:, src]
        out.append(RawVideo(name=f"{stem}/{name}", source="generic", xy=xy, visible=visible))
    return out


def write_file(path: str, layout: str, videos: Dict[str, np.ndarray]) -> None:
    """Write videos {name: (F, K, 3)} in `layout` as a generic .npz or .json (the inverse of read_file)."""
    from .. import files
    get_layout(layout)
    with files.atomic_path(path) as tmp:
        if path.endswith(".json"):
            with open(tmp, "w") as f:
                json.dump({"layout": layout, "videos": {k: np.asarray(v).tolist() for k, v in videos.items()}}, f)
        else:
            with open(tmp, "wb") as f:
                np.savez(f, layout=np.array(layout), **{k: np.asarray(v, np.float32) for k, v in videos.items()})
