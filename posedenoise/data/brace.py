"""BRACE (Moltisanti et al., ECCV 2022): breakdancing keypoints, COCO-17, pixels of a 1920 x 1080 frame.

The documented layout of a BRACE folder (../shared/data/brace/README.md):

    dataset/<year>/<video_id>/<video_id>_<start>-<end>_<movement>.json      dense keypoints, one per segment:
        {"<video_id>/img-%06d.png": {"box": [x, y, w, h, score], "keypoints": 17 x [x, y, score]}, ...}
    manual_keypoints/<year>/<video_id>/img-%06d.npz                           manual keypoints, one per frame:
        coco_joints2d (17, 3); the first two columns are (x, y)
    annotations/sequences.csv, sequences_train.csv, sequences_test.csv       optional: the official split

How it is read:
- every keypoint of a frame is visible (the format has no visibility flag; the score is not one);
- manual keypoints override the dense keypoints of the same frame (manual frames no segment holds are
  ignored: nothing says which run of frames they belong to);
- neighbouring segments may share 1-2 boundary frames: a frame id is kept once (the first segment wins);
- a broken frame (keypoints spanning zero width or zero height) is skipped: it stays in the timeline with
  every keypoint missing, so that windows never bridge a jump in time;
- one RawVideo per run of consecutive frame ids of one video, named "<video_id>/<first>-<last>"; a gap in
  the frame ids (between segments) starts a new run.
"""
from __future__ import annotations

import csv
import glob
import json
import os
import re
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..layout import POSE25, source_to_target
from .errors import DataError
from .raw import RawVideo

MAPPING = source_to_target("coco17")   # COCO-17 index -> POSE25 index (eyes dropped)
FRAME_KEY = re.compile(r"img-(\d+)\.\w+$")
MANUAL_FILE = re.compile(r"img-(\d+)\.npz$")


def _frame_id(key: str, path: str) -> int:
    m = FRAME_KEY.search(key)
    if not m:
        raise DataError(f"{path}: frame key {key!r}: expected '<video_id>/img-%06d.png'")
    return int(m.group(1))


def read_segment(path: str) -> Dict[int, np.ndarray]:
    """One dense segment JSON -> {frame id: keypoints (17, 2) float32}, in the file's order."""
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: not a readable JSON file ({type(e).__name__}: {e})") from None
    if not isinstance(doc, dict):
        raise DataError(f"{path}: expected an object mapping '<video_id>/img-%06d.png' to frames, "
                        f"got {type(doc).__name__}")
    out: Dict[int, np.ndarray] = {}
    for key, frame in doc.items():
        kp = frame.get("keypoints") if isinstance(frame, dict) else None
        if kp is None:
            raise DataError(f"{path}: frame {key!r} has no field 'keypoints' (expected 17 x [x, y, score])")
        try:
            arr = np.asarray(kp, dtype=np.float32)
        except (TypeError, ValueError):
            arr = np.zeros(0)
        if arr.shape != (17, 3):
            raise DataError(f"{path}: frame {key!r} field 'keypoints' has shape {arr.shape}, expected (17, 3)")
        out.setdefault(_frame_id(key, path), arr[:, :2])
    return out


def read_manual(path: str) -> np.ndarray:
    """One manual img-%06d.npz -> keypoints (17, 2) float32."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if "coco_joints2d" not in z.files:
                raise DataError(f"{path}: missing field 'coco_joints2d' (expected an array of shape (17, 3))")
            arr = np.asarray(z["coco_joints2d"], dtype=np.float32)
    except DataError:
        raise
    except Exception as e:  # truncated, not an npz, pickled objects
        raise DataError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from None
    if arr.ndim != 2 or arr.shape[0] != 17 or arr.shape[1] < 2:
        raise DataError(f"{path}: field 'coco_joints2d' has shape {arr.shape}, expected (17, 3)")
    return arr[:, :2]


def _official_splits(annotations: Optional[str]) -> Dict[str, List[Tuple[int, int, str]]]:
    """video_id -> [(start_frame, end_frame, 'train' / 'test')] from sequences*.csv (empty if absent)."""
    if not annotations or not os.path.isfile(os.path.join(annotations, "sequences.csv")):
        return {}
    flag = {}
    for split in ("train", "test"):
        p = os.path.join(annotations, f"sequences_{split}.csv")
        if os.path.isfile(p):
            with open(p, newline="") as f:
                try:
                    flag.update({r["uid"]: split for r in csv.DictReader(f)})
                except KeyError:
                    raise DataError(f"{p}: expected a column 'uid'") from None
    out: Dict[str, List[Tuple[int, int, str]]] = {}
    p = os.path.join(annotations, "sequences.csv")
    try:
        with open(p, newline="") as f:
            for r in csv.DictReader(f):
                if r["uid"] in flag:
                    out.setdefault(r["video_id"], []).append((int(r["start_frame"]), int(r["end_frame"]),
                                                             flag[r["uid"]]))
    except (KeyError, ValueError) as e:
        raise DataError(f"{p}: expected columns video_id, start_frame, end_frame, uid ({e})") from None
    return out


def list_videos(folder: str) -> Dict[str, List[str]]:
    """video_id -> its dense segment files, sorted by start frame."""
    if not os.path.isdir(folder):
        raise DataError(f"{folder}: no such folder (expected BRACE's folder with dataset/<year>/<video_id>/*.json)")
    root = os.path.join(folder, "dataset") if os.path.isdir(os.path.join(folder, "dataset")) else folder
    paths = glob.glob(os.path.join(root, "*", "*", "*.json"))
    if not paths:
        raise DataError(f"{root}: no segment files found "
                        "(expected <year>/<video_id>/<video_id>_<start>-<end>_<movement>.json)")
    out: Dict[str, List[str]] = {}
    for p in paths:
        out.setdefault(os.path.basename(os.path.dirname(p)), []).append(p)
    start = re.compile(r"_(\d+)-(\d+)_[^_]*\.json$")

    def key(p):
        m = start.search(os.path.basename(p))
        return (int(m.group(1)) if m else -1, p)
    return {v: sorted(ps, key=key) for v, ps in sorted(out.items())}


def read_video(video_id: str, segment_paths: List[str], manual_dir: Optional[str] = None,
               splits: Optional[List[Tuple[int, int, str]]] = None) -> List[RawVideo]:
    """The segments of one video (+ its manual keypoints) -> one RawVideo per run of consecutive frames."""
    frames: Dict[int, np.ndarray] = {}
    for p in segment_paths:
        for fid, kp in read_segment(p).items():
            frames.setdefault(fid, kp)                      # duplicate boundary frames: the first one wins
    if manual_dir and os.path.isdir(manual_dir):
        for name in sorted(os.listdir(manual_dir)):
            m = MANUAL_FILE.fullmatch(name)
            if m and int(m.group(1)) in frames:
                frames[int(m.group(1))] = read_manual(os.path.join(manual_dir, name))
    if not frames:
        return []
    ids = np.array(sorted(frames), dtype=np.int64)                                      # (N,)
    kp = np.stack([frames[i] for i in ids.tolist()])                                    # (N, 17, 2)
    extent = kp.max(1) - kp.min(1)                                                      # (N, 2)
    ok = (extent > 0).all(1) & np.isfinite(kp).all((1, 2))                              # broken frames: False
    xy = np.zeros((len(ids), len(POSE25), 2), np.float32)
    visible = np.zeros((len(ids), len(POSE25)), bool)
    src, dst = list(MAPPING), list(MAPPING.values())
    xy[:, dst] = np.nan_to_num(kp[:, src])
    visible[:, dst] = ok[:, None]
    runs = np.split(np.arange(len(ids)), np.flatnonzero(np.diff(ids) != 1) + 1)
    out = []
    for r in runs:
        first, last = int(ids[r[0]]), int(ids[r[-1]])
        split = next((s for a, b, s in splits or () if a <= first <= b), None)
        out.append(RawVideo(name=f"{video_id}/{first:06d}-{last:06d}", source="brace", xy=xy[r], visible=visible[r],
                            official_split=split))
    return out


def read_folder(folder: str, progress: bool = False, annotations: Optional[str] = None) -> List[RawVideo]:
    """A BRACE folder (dataset/, optional manual_keypoints/ and annotations/) -> RawVideos, by video id."""
    videos = list_videos(folder)
    if annotations is not None and not os.path.isfile(os.path.join(annotations, "sequences.csv")):
        raise DataError(f"{annotations}: no sequences.csv (expected BRACE's annotations folder with "
                        "sequences.csv, sequences_train.csv, sequences_test.csv)")
    splits = _official_splits(annotations or os.path.join(folder, "annotations"))
    manual_root = os.path.join(folder, "manual_keypoints")
    items = list(videos.items())
    if progress:
        from tqdm import tqdm
        items = tqdm(items, desc="BRACE", unit="video")
    out: List[RawVideo] = []
    for vid, paths in items:
        year = os.path.basename(os.path.dirname(os.path.dirname(paths[0])))
        out += read_video(vid, paths, os.path.join(manual_root, year, vid), splits.get(vid))
    return out
