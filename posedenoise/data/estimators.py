"""Readers for what real pose estimators write: one person's track for one video, in full-frame image pixels.

Each reader returns a Track: keypoints (T, K, 3) float64 = x, y in image pixels and a confidence (0: the
keypoint was not output or the person was missed in that frame; positions are never invented), the layout's
name (posedenoise.layout), the frame size when the file says it, the frame identifiers in order, a line
`chosen` saying which person was taken and how, and (COCO with a GT file) the ground truth.

Formats:
- COCO keypoint results (mmpose's CocoMetric dump, Detectron2's COCOEvaluator, AlphaPose's default), a JSON
  list of {"image_id", "category_id", "keypoints": [x1, y1, s1, ..., x17, y17, s17], "score", optional
  "track_id"} -> layout coco17. Frames: the sorted distinct image ids; with a COCO ground-truth file the GT's
  images, sorted by (video_id or vid_id, frame_id, id) where present (PoseTrack style), an image without a
  detection being a frame with every confidence 0. A GT holding several videos needs `video`. The GT's
  keypoints become `gt` (visibility as written, > 0: visible) and its images' width/height `frame_size`.
- mmpose's saved predictions (demo/topdown_demo_with_mmdet.py --save-predictions, the inferencer on a video):
  {"meta_info", "instance_info": [{"frame_id", "instances": [{"keypoints": [[x, y], ...], "keypoint_scores",
  "bbox", "bbox_score", optional "track_id"}]}]} -> layout coco17 (a COCO-WholeBody model's first 17).
- OpenPose --write_json: a folder of <video>_<12 digits>_keypoints.json, one per frame, sorted by name, each
  {"version", "people": [{"person_id": [-1], "pose_keypoints_2d": [75 numbers], ...}]} -> layout openpose25
  (BODY_25). OpenPose writes (0, 0, 0) for a keypoint it did not find: confidence 0. Coordinates are taken as
  pixels (OpenPose's default --keypoint_scale 0); a folder of several videos' files needs `video` (the prefix).
- Arrays: .npy (T, K, 2 or 3) or .npz whose array "keypoints" (or `key`) is that, with an optional
  "frame_size" (width, height) and "layout"; (T, K, 2) means confidence 1 everywhere. K = 17 -> coco17,
  K = 13 -> penn13; any other K (25 is pose25 or openpose25) needs `layout`.

The person, one per video:
- Detections with track ids (COCO "track_id", OpenPose "person_id" other than -1): the track with the largest
  sum of detection scores (the detection's "score", else the mean confidence of its keypoints); detections
  without an id are then not candidates.
- Otherwise by score and continuity: start at the frame holding the highest-scoring detection, walk forwards
  and backwards taking in each frame the detection nearest the last taken one (distance between the centres
  of their keypoint boxes over the last box's diagonal), accepted below MAX_JUMP, else that frame is missed
  and the walk keeps its reference.
- Where the person is absent, confidences are 0. With a GT holding several people per image, the GT person
  nearest the track (mean distance over jointly visible keypoints) is taken per frame.

Every malformed input raises DataError naming the file, the field and what was expected.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from typing import Any, Dict, Hashable, List, Optional, Tuple

import numpy as np

from ..layout import LAYOUTS, OPENPOSE25
from .errors import DataError

# A detection is the same person as the last one taken only if its keypoint box's centre lies within this
# fraction of the last box's diagonal: between consecutive video frames a person's box moves far less than
# half its diagonal, while a jump that large is another person (or a false detection) taking the place.
MAX_JUMP = 0.5
# A box from one keypoint has no diagonal; distances are measured against at least this many pixels.
MIN_DIAGONAL = 1.0

COCO_K = 17
OPENPOSE_K = len(OPENPOSE25)
_OPENPOSE_NAME = re.compile(r"^(.*)_(\d{12})_keypoints\.json$")


@dataclass
class Track:
    keypoints: np.ndarray                      # (T, K, 3) float64: x, y in image pixels, confidence (0: missed)
    layout: str                                # a posedenoise.layout name
    frame_size: Optional[Tuple[int, int]]      # (width, height) if the file says it, else None
    frames: List                               # the frame identifiers in order (image ids, file names, indices)
    chosen: str                                # which person was taken and how, one line
    gt: Optional[np.ndarray] = None            # (T, K, 3): ground truth x, y, visibility (> 0: visible)

    @property
    def num_frames(self) -> int:
        return int(self.keypoints.shape[0])


@dataclass
class _Det:
    kp: np.ndarray            # (K, 3)
    score: float
    track: Optional[Hashable]


# --- small checks -----------------------------------------------------------------------------------------

def _load_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: not a readable JSON file ({type(e).__name__}: {e})") from None


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _number(path: str, where: str, field: str, v) -> float:
    if not _is_number(v) or not math.isfinite(v):
        raise DataError(f"{path}: {where}: field {field!r}: expected a finite number, got {v!r}")
    return float(v)


def _keypoint_list(path: str, where: str, field: str, v, k: int, what: str) -> np.ndarray:
    """A flat [x1, y1, c1, ...] list of k keypoints -> (k, 3) float64, checked."""
    if not isinstance(v, list):
        raise DataError(f"{path}: {where}: field {field!r}: expected a list of {3 * k} numbers ({k} x (x, y, "
                        f"{what})), got {type(v).__name__}")
    if len(v) % 3 or len(v) != 3 * k:
        raise DataError(f"{path}: {where}: field {field!r}: expected {3 * k} numbers ({k} x (x, y, {what})), got "
                        f"{len(v)}" + ("" if len(v) % 3 else f" ({len(v) // 3} keypoints)"))
    bad = [i for i, x in enumerate(v) if not _is_number(x)]
    if bad:
        raise DataError(f"{path}: {where}: field {field!r}: expected numbers, got {v[bad[0]]!r} at position "
                        f"{bad[0]}")
    a = np.asarray(v, dtype=np.float64).reshape(k, 3)
    if not np.isfinite(a).all():
        raise DataError(f"{path}: {where}: field {field!r}: contains NaN or infinite values")
    if (a[:, 2] < 0).any():
        raise DataError(f"{path}: {where}: field {field!r}: expected {what} >= 0 (0: not output), got "
                        f"{a[:, 2].min():g}")
    return a


def _track_id(path: str, where: str, field: str, v) -> Optional[Hashable]:
    """A track id (int or str); None or -1 means none."""
    if isinstance(v, list) and len(v) == 1:      # OpenPose writes person_id as a one-element list
        v = v[0]
    if v is None or (_is_number(v) and v == -1):
        return None
    if isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool)):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    raise DataError(f"{path}: {where}: field {field!r}: expected an integer track id (-1: none), got {v!r}")


def _mean_conf(kp: np.ndarray) -> float:
    return float(kp[:, 2].mean())


# --- choosing one person ----------------------------------------------------------------------------------

def _box(kp: np.ndarray) -> Optional[Tuple[float, float, float, int]]:
    """(centre x, centre y, diagonal, present keypoints) of the present keypoints' box, None if none is present."""
    present = kp[:, 2] > 0
    if not present.any():
        return None
    xy = kp[present, :2]
    lo, hi = xy.min(0), xy.max(0)
    c = (lo + hi) / 2
    return float(c[0]), float(c[1]), max(float(np.hypot(*(hi - lo))), MIN_DIAGONAL), int(present.sum())


def _choose(path: str, dets: List[List[_Det]], k: int) -> Tuple[np.ndarray, str]:
    """One person's (T, k, 3) keypoints from every frame's detections, and the line saying how."""
    T = len(dets)
    out = np.zeros((T, k, 3), np.float64)
    total = sum(len(fr) for fr in dets)
    if total == 0:
        raise DataError(f"{path}: no detections: expected at least one person in some frame")
    if any(d.track is not None for fr in dets for d in fr):
        sums: Dict[Hashable, float] = {}
        for fr in dets:
            for d in fr:
                if d.track is not None:
                    sums[d.track] = sums.get(d.track, 0.0) + d.score
        best = max(sums, key=lambda t: sums[t])      # first seen wins a tie
        n = 0
        for t, fr in enumerate(dets):
            mine = [d for d in fr if d.track == best]
            if mine:
                out[t] = max(mine, key=lambda d: d.score).kp
                n += 1
        untracked = sum(d.track is None for fr in dets for d in fr)
        line = f"track id {best} (of {len(sums)} tracks; {n} of {T} frames)"
        if untracked:
            line += f"; {untracked} detections without a track id not considered"
        return out, line

    boxes = [[_box(d.kp) for d in fr] for fr in dets]
    start = None
    for t, fr in enumerate(dets):
        for i, d in enumerate(fr):
            if boxes[t][i] is not None and (start is None or d.score > dets[start[0]][start[1]].score):
                start = (t, i)
    if start is None:
        raise DataError(f"{path}: no detection has a keypoint of confidence > 0: nothing to track")
    t0, i0 = start
    taken: List[Optional[int]] = [None] * T
    taken[t0] = i0
    for order in (range(t0 + 1, T), range(t0 - 1, -1, -1)):
        ref = boxes[t0][i0]
        for t in order:
            best_i, best_d = None, math.inf
            for i, b in enumerate(boxes[t]):
                if b is None:
                    continue
                dist = math.hypot(b[0] - ref[0], b[1] - ref[1]) / ref[2]
                if dist < best_d:
                    best_i, best_d = i, dist
            if best_i is not None and best_d < MAX_JUMP:
                # The reference moves to the taken detection; its size only where 2 keypoints give one (a
                # lone keypoint's box has no diagonal, and would make every later frame a jump).
                b = boxes[t][best_i]
                taken[t], ref = best_i, (b[0], b[1], b[2] if b[3] >= 2 else ref[2], b[3])
    for t, i in enumerate(taken):
        if i is not None:
            out[t] = dets[t][i].kp
    no_det = sum(all(b is None for b in bs) for bs in boxes)
    unmatched = sum(taken[t] is None and any(b is not None for b in boxes[t]) for t in range(T))
    others = sum(len(dets[t]) > (taken[t] is not None) for t in range(T))
    line = (f"by score and continuity: started at frame {t0} (score {dets[t0][i0].score:.2f}); {unmatched} frames "
            f"with no matching detection left missing; {no_det} frames with no detection; {others} frames had "
            f"other people")
    return out, line


def _match_gt(pred: np.ndarray, people: List[List[Tuple[np.ndarray, Optional[Hashable]]]]) -> Tuple[np.ndarray, str]:
    """Per frame the GT person nearest the chosen track (mean distance over jointly visible keypoints). Frames
    with several GT people and no jointly visible keypoint take the GT track matched most often, where the GT
    has track ids, else get no ground truth."""
    T, k = pred.shape[:2]
    gt = np.zeros((T, k, 3), np.float64)
    several = [t for t in range(T) if len(people[t]) > 1]
    undecided = []
    matched_tracks: Dict[Hashable, int] = {}
    for t in range(T):
        if len(people[t]) == 1:
            gt[t] = people[t][0][0]
        elif len(people[t]) > 1:
            best, best_d = None, math.inf
            for g, tid in people[t]:
                both = (pred[t, :, 2] > 0) & (g[:, 2] > 0)
                if both.any():
                    d = float(np.hypot(*(pred[t, both, :2] - g[both, :2]).T).mean())
                    if d < best_d:
                        best, best_d = (g, tid), d
            if best is None:
                undecided.append(t)
            else:
                gt[t] = best[0]
                if best[1] is not None:
                    matched_tracks[best[1]] = matched_tracks.get(best[1], 0) + 1
    if not several:
        return gt, "gt: the one GT person of each frame"
    line = (f"gt: in {len(several)} frames with several GT people, the one nearest the track (mean distance over "
            "jointly visible keypoints)")
    if undecided:
        fallback = max(matched_tracks, key=lambda t: matched_tracks[t]) if matched_tracks else None
        filled = 0
        if fallback is not None:
            for t in undecided:
                for g, tid in people[t]:
                    if tid == fallback:
                        gt[t] = g
                        filled += 1
                        break
        if filled:
            line += f"; {filled} frames without a basis took GT track {fallback} (the one matched most)"
        if len(undecided) - filled:
            line += f"; {len(undecided) - filled} frames without a basis left without ground truth"
    return gt, line


# --- COCO -------------------------------------------------------------------------------------------------

def _coco_results(path: str) -> List[Tuple[Any, _Det]]:
    doc = _load_json(path)
    if not isinstance(doc, list):
        raise DataError(f"{path}: expected a JSON list of detections ({{'image_id', 'keypoints', 'score'}}), got "
                        f"{type(doc).__name__}")
    if not doc:
        raise DataError(f"{path}: no detections: the results list is empty")
    out = []
    for n, r in enumerate(doc):
        where = f"detection {n}"
        if not isinstance(r, dict):
            raise DataError(f"{path}: {where}: expected an object with 'image_id' and 'keypoints', got "
                            f"{type(r).__name__}")
        for field in ("image_id", "keypoints"):
            if field not in r:
                raise DataError(f"{path}: {where}: missing field {field!r}")
        image = r["image_id"]
        if not (isinstance(image, str) or (isinstance(image, int) and not isinstance(image, bool))):
            raise DataError(f"{path}: {where}: field 'image_id': expected an integer (or a string), got {image!r}")
        where = f"detection {n} (image_id {image!r})"
        kp = _keypoint_list(path, where, "keypoints", r["keypoints"], COCO_K, "score")
        score = _number(path, where, "score", r["score"]) if "score" in r else _mean_conf(kp)
        track = _track_id(path, where, "track_id", r.get("track_id"))
        out.append((image, _Det(kp, score, track)))
    return out


def _video_of(img: dict):
    return img.get("video_id", img.get("vid_id"))


def _coco_gt(gt_path: str, video) -> Tuple[List[dict], Dict[Any, List[Tuple[np.ndarray, Optional[Hashable]]]],
                                           set, Optional[Tuple[int, int]]]:
    """(the video's images in order, image id -> GT people, every image id of the GT, frame size)."""
    doc = _load_json(gt_path)
    if not isinstance(doc, dict):
        raise DataError(f"{gt_path}: expected a COCO ground-truth object with 'images' and 'annotations', got "
                        f"{type(doc).__name__}")
    for field in ("images", "annotations"):
        if not isinstance(doc.get(field), list):
            raise DataError(f"{gt_path}: field {field!r}: expected a list" + ("" if field in doc else " (missing)"))
    images = doc["images"]
    if not images:
        raise DataError(f"{gt_path}: field 'images': the list is empty")
    ids = set()
    for n, img in enumerate(images):
        if not isinstance(img, dict) or "id" not in img:
            raise DataError(f"{gt_path}: images[{n}]: missing field 'id'")
        if img["id"] in ids:
            raise DataError(f"{gt_path}: images[{n}]: field 'id': {img['id']!r} occurs twice")
        ids.add(img["id"])
    videos = sorted({_video_of(img) for img in images} - {None}, key=str)
    if video is not None:
        if not videos:
            raise DataError(f"{gt_path}: field 'video_id': the GT's images carry no video ids, so video "
                            f"{video!r} cannot be selected")
        keep = [img for img in images if _video_of(img) is not None and str(_video_of(img)) == str(video)]
        if not keep:
            raise DataError(f"{gt_path}: field 'video_id': no images of video {video!r}; the videos are "
                            f"{', '.join(map(str, videos))}")
        images = keep
    elif len(videos) > 1:
        raise DataError(f"{gt_path}: field 'video_id': the GT holds {len(videos)} videos "
                        f"({', '.join(map(str, videos))}); name one (video=...)")
    with_frame = all("frame_id" in img for img in images)
    try:
        images = sorted(images, key=lambda img: (img["frame_id"] if with_frame else 0, img["id"]))
    except TypeError:
        raise DataError(f"{gt_path}: images: fields 'frame_id' and 'id' must be comparable (all numbers or all "
                        "strings)") from None
    sizes = set()
    for img in images:
        if "width" in img or "height" in img:
            w, h = img.get("width"), img.get("height")
            if not (isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0):
                raise DataError(f"{gt_path}: image {img['id']!r}: fields 'width', 'height': expected positive "
                                f"integers, got {w!r}, {h!r}")
            sizes.add((w, h))
        else:
            sizes.add(None)
    if len(sizes) > 1:
        raise DataError(f"{gt_path}: fields 'width', 'height': the video's images differ in size "
                        f"({', '.join(str(s) for s in sorted(sizes, key=str))}); expected one frame size")
    frame_size = sizes.pop()
    wanted = {img["id"] for img in images}
    people: Dict[Any, List[Tuple[np.ndarray, Optional[Hashable]]]] = {i: [] for i in wanted}
    for n, a in enumerate(doc["annotations"]):
        where = f"annotations[{n}]"
        if not isinstance(a, dict):
            raise DataError(f"{gt_path}: {where}: expected an object, got {type(a).__name__}")
        for field in ("image_id", "keypoints"):
            if field not in a:
                raise DataError(f"{gt_path}: {where}: missing field {field!r}")
        if a["image_id"] not in ids:
            raise DataError(f"{gt_path}: {where}: field 'image_id': {a['image_id']!r} is not among the images")
        if a["image_id"] not in wanted:
            continue
        kp = _keypoint_list(gt_path, where, "keypoints", a["keypoints"], COCO_K, "visibility")
        if not np.isin(kp[:, 2], (0, 1, 2)).all():
            raise DataError(f"{gt_path}: {where}: field 'keypoints': expected visibility 0, 1 or 2, got "
                            f"{sorted(set(kp[:, 2].tolist()) - {0.0, 1.0, 2.0})}")
        if (kp[:, 2] > 0).any():               # a person with no labelled keypoint (a crowd region) is no one
            people[a["image_id"]].append((kp, _track_id(gt_path, where, "track_id", a.get("track_id"))))
    return images, people, ids, frame_size


def coco_video_ids(gt_path: str) -> List:
    """The video ids of a COCO ground truth's images (video_id or vid_id), sorted; [] when it has none."""
    doc = _load_json(gt_path)
    images = doc.get("images") if isinstance(doc, dict) else None
    if not isinstance(images, list):
        raise DataError(f"{gt_path}: field 'images': expected a list" + ("" if isinstance(doc, dict) and "images"
                                                                         in doc else " (missing)"))
    return sorted({_video_of(img) for img in images if isinstance(img, dict)} - {None}, key=str)


def read_coco(path: str, gt: Optional[str] = None, video=None) -> Track:
    """COCO keypoint results (and optionally the COCO ground truth they were computed on) -> one Track."""
    results = _coco_results(path)
    if gt is None:
        if video is not None:
            raise DataError(f"{path}: video {video!r} given, but a results file has no video ids; pass the COCO "
                            "GT file (gt=...) whose images say their video")
        try:
            frames = sorted({image for image, _ in results})
        except TypeError:
            raise DataError(f"{path}: field 'image_id': expected all integers or all strings") from None
        frame_size, people = None, None
    else:
        images, people, all_ids, frame_size = _coco_gt(gt, video)
        for image, _ in results:
            if image not in all_ids:
                raise DataError(f"{path}: field 'image_id': {image!r} is not among the images of {gt}")
        frames = [img["id"] for img in images]
    index = {f: t for t, f in enumerate(frames)}
    dets: List[List[_Det]] = [[] for _ in frames]
    for image, d in results:
        if image in index:
            dets[index[image]].append(d)
    if not any(dets):
        raise DataError(f"{path}: no detections on the images of {gt}"
                        + ("" if video is None else f" of video {video!r}"))
    keypoints, chosen = _choose(path, dets, COCO_K)
    truth = None
    if people is not None:
        truth, line = _match_gt(keypoints, [people[f] for f in frames])
        chosen += "; " + line
    return Track(keypoints, "coco17", frame_size, frames, chosen, truth)


# --- mmpose's demo and inferencer predictions ----------------------------------------------------------------

# Body keypoints of mmpose's datasets: COCO's 17, and COCO-WholeBody's 133, whose first 17 are COCO's body.
_MMPOSE_BODY = {COCO_K: COCO_K, 133: COCO_K}


def read_mmpose(path: str) -> Track:
    """mmpose's saved predictions (demo/topdown_demo_with_mmdet.py --save-predictions, and the inferencer's
    video output): {"meta_info": {...}, "instance_info": [{"frame_id", "instances": [{"keypoints": [[x, y],
    ...], "keypoint_scores": [...], "bbox", "bbox_score", optional "track_id"}]}]} -> one Track (coco17; a
    COCO-WholeBody model's first 17 keypoints are COCO's body). Frames in frame_id order."""
    doc = _load_json(path)
    info = doc.get("instance_info") if isinstance(doc, dict) else None
    if not isinstance(info, list) or not info:
        raise DataError(f"{path}: field 'instance_info': expected a non-empty list of frames (a JSON object is read "
                        "as mmpose's saved predictions; COCO results are a list)")
    frames, dets = [], []
    for n, fr in enumerate(info):
        if not isinstance(fr, dict) or not isinstance(fr.get("instances"), list):
            raise DataError(f"{path}: instance_info[{n}]: expected an object with 'frame_id' and a list 'instances'")
        frames.append(fr.get("frame_id", n))
        people = []
        for i, inst in enumerate(fr["instances"]):
            where = f"instance_info[{n}].instances[{i}]"
            xy, sc = (inst.get("keypoints"), inst.get("keypoint_scores")) if isinstance(inst, dict) else (None, None)
            if not isinstance(xy, list) or not isinstance(sc, list) or len(xy) != len(sc):
                raise DataError(f"{path}: {where}: expected fields 'keypoints' [[x, y], ...] and 'keypoint_scores' "
                                "of the same length")
            if len(xy) not in _MMPOSE_BODY:
                raise DataError(f"{path}: {where}: field 'keypoints': expected 17 (COCO) or 133 (COCO-WholeBody) "
                                f"keypoints, got {len(xy)}")
            k = _MMPOSE_BODY[len(xy)]
            if not all(isinstance(p, list) and len(p) == 2 for p in xy[:k]):
                raise DataError(f"{path}: {where}: field 'keypoints': expected [x, y] pairs")
            flat = [v for p, c in zip(xy[:k], sc[:k]) for v in (*p, c)]
            kp = _keypoint_list(path, where, "keypoints", flat, k, "score")
            score = _number(path, where, "bbox_score", _first(inst["bbox_score"])) if "bbox_score" in inst \
                else _mean_conf(kp)
            people.append(_Det(kp, score, _track_id(path, where, "track_id", inst.get("track_id"))))
        dets.append(people)
    order = sorted(range(len(frames)), key=lambda t: (str(type(frames[t])), frames[t]))
    keypoints, chosen = _choose(path, [dets[t] for t in order], COCO_K)
    return Track(keypoints, "coco17", None, [frames[t] for t in order], chosen)


def _first(v):
    """mmpose writes bbox_score as a number or a one-element list."""
    return v[0] if isinstance(v, list) and len(v) == 1 else v


# --- OpenPose ---------------------------------------------------------------------------------------------

def read_openpose(folder: str, video: Optional[str] = None) -> Track:
    """A folder of OpenPose --write_json files (BODY_25), one per frame -> one Track."""
    if not os.path.isdir(folder):
        raise DataError(f"{folder}: no such folder (expected OpenPose's --write_json folder)")
    names = sorted(n for n in os.listdir(folder) if n.endswith("_keypoints.json"))
    if not names:
        raise DataError(f"{folder}: no *_keypoints.json files: expected OpenPose's per-frame JSON (--write_json)")
    groups = [_OPENPOSE_NAME.match(n) for n in names]
    if all(groups):
        prefixes = sorted({m.group(1) for m in groups})
        if video is not None:
            if video not in prefixes:
                raise DataError(f"{folder}: no files of video {video!r}; the videos are {', '.join(prefixes)}")
            names = [n for n, m in zip(names, groups) if m.group(1) == video]
        elif len(prefixes) > 1:
            raise DataError(f"{folder}: files of {len(prefixes)} videos ({', '.join(prefixes)}); name one "
                            "(video=...)")
    elif video is not None:
        raise DataError(f"{folder}: video {video!r} given, but the file names are not <video>_<12 digits>"
                        "_keypoints.json")
    dets: List[List[_Det]] = []
    for name in names:
        path = os.path.join(folder, name)
        doc = _load_json(path)
        if not isinstance(doc, dict):
            raise DataError(f"{path}: expected an OpenPose object with 'people', got {type(doc).__name__}")
        if "people" not in doc:
            raise DataError(f"{path}: missing field 'people'")
        if not isinstance(doc["people"], list):
            raise DataError(f"{path}: field 'people': expected a list, got {type(doc['people']).__name__}")
        frame = []
        for n, p in enumerate(doc["people"]):
            where = f"people[{n}]"
            if not isinstance(p, dict):
                raise DataError(f"{path}: {where}: expected an object, got {type(p).__name__}")
            if "pose_keypoints_2d" not in p:
                raise DataError(f"{path}: {where}: missing field 'pose_keypoints_2d'")
            v = p["pose_keypoints_2d"]
            if isinstance(v, list) and len(v) == 54:
                raise DataError(f"{path}: {where}: field 'pose_keypoints_2d': 18 keypoints (the COCO model); "
                                "expected BODY_25's 75 numbers (--model_pose BODY_25)")
            kp = _keypoint_list(path, where, "pose_keypoints_2d", v, OPENPOSE_K, "confidence")
            frame.append(_Det(kp, _mean_conf(kp), _track_id(path, where, "person_id", p.get("person_id"))))
        dets.append(frame)
    keypoints, chosen = _choose(folder, dets, OPENPOSE_K)
    return Track(keypoints, "openpose25", None, list(names), chosen)


# --- arrays -----------------------------------------------------------------------------------------------

_LAYOUT_BY_K = {17: "coco17", 13: "penn13"}


def read_array(path: str, layout: Optional[str] = None, key: Optional[str] = None) -> Track:
    """A .npy (T, K, 2|3) array, or an .npz holding one under "keypoints" (or `key`) -> one Track."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file")
    frame_size = None
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as e:  # truncated, pickled, not numpy at all: whatever np.load raises
        raise DataError(f"{path}: not a readable .npy/.npz file ({type(e).__name__}: {e})") from None
    field = "the array"
    if isinstance(z, np.lib.npyio.NpzFile):
        key = key or "keypoints"
        field = f"field {key!r}"
        with z:
            if key not in z.files:
                raise DataError(f"{path}: missing field {key!r} (T, K, 2 or 3); the file holds "
                                f"{', '.join(z.files) or 'nothing'}")
            a = z[key]
            if "layout" in z.files:
                stored = z["layout"]
                if stored.ndim != 0 or stored.dtype.kind not in "US":
                    raise DataError(f"{path}: field 'layout': expected a 0-d string, got {stored.dtype} {stored.shape}")
                stored = str(stored)
                if layout is not None and layout != stored:
                    raise DataError(f"{path}: field 'layout': the file says {stored!r}, the argument {layout!r}")
                layout = stored
            if "frame_size" in z.files:
                s = z["frame_size"]
                if (not np.issubdtype(s.dtype, np.number) or s.shape != (2,) or not np.isfinite(s).all()
                        or (s <= 0).any() or (s != np.round(s)).any()):
                    raise DataError(f"{path}: field 'frame_size': expected (width, height), two positive integers, "
                                    f"got {s.tolist()}")
                frame_size = (int(s[0]), int(s[1]))
    else:
        a = z
        if key is not None:
            raise DataError(f"{path}: key {key!r} given, but a .npy holds one array")
    if not np.issubdtype(a.dtype, np.number) or a.dtype.kind == "c" or a.ndim != 3 or a.shape[2] not in (2, 3) \
            or a.shape[0] == 0:
        raise DataError(f"{path}: {field}: expected a numeric array (T, K, 2 or 3) with T >= 1, got {a.dtype} "
                        f"{a.shape}")
    if not np.isfinite(a).all():
        raise DataError(f"{path}: {field}: contains NaN or infinite values (mark a missed keypoint with "
                        "confidence 0)")
    T, K = a.shape[:2]
    if layout is None:
        layout = _LAYOUT_BY_K.get(K)
        if layout is None:
            raise DataError(f"{path}: {field}: K = {K} keypoints does not say the layout"
                            + (" (pose25 or openpose25)" if K == 25 else "") + f"; pass layout= one of "
                            f"{sorted(LAYOUTS)}")
    if layout not in LAYOUTS:
        raise DataError(f"{path}: layout {layout!r}: expected one of {sorted(LAYOUTS)}")
    if len(LAYOUTS[layout]) != K:
        raise DataError(f"{path}: {field}: layout {layout} has {len(LAYOUTS[layout])} keypoints, got K = {K}")
    kp = np.ones((T, K, 3), np.float64)
    kp[..., :a.shape[2]] = a
    if (kp[..., 2] < 0).any():
        raise DataError(f"{path}: {field}: expected confidence >= 0 (0: not output), got {kp[..., 2].min():g}")
    return Track(kp, layout, frame_size, list(range(T)), "the file's one person (an array holds one track)")


# --- dispatch ---------------------------------------------------------------------------------------------

def read_track(path: str, *, gt: Optional[str] = None, layout: Optional[str] = None, video=None,
               key: Optional[str] = None) -> Track:
    """Pick the reader: a folder -> OpenPose; .json -> COCO results (gt: the COCO GT file); .npy/.npz -> arrays."""
    path = os.fspath(path)
    if os.path.isdir(path):
        _unused(path, gt=gt, layout=layout, key=key)
        return read_openpose(path, video=video)
    low = path.lower()
    if low.endswith(".json"):
        _unused(path, layout=layout if layout not in (None, "coco17") else None, key=key)
        if _is_mmpose(path):
            _unused(path, gt=gt, video=video)
            return read_mmpose(path)
        return read_coco(path, gt=gt, video=video)
    if low.endswith((".npy", ".npz")):
        _unused(path, gt=gt, video=video)
        return read_array(path, layout=layout, key=key)
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file or folder")
    raise DataError(f"{path}: unknown kind of estimator output; expected an OpenPose folder, a COCO results "
                    ".json, or a .npy/.npz array")


def _is_mmpose(path: str) -> bool:
    """Whether a .json is mmpose's saved predictions (an object) rather than COCO results (a list), from its
    first character, without parsing it twice."""
    try:
        with open(path, encoding="utf-8") as f:
            head = f.read(4096).lstrip()
    except (OSError, UnicodeDecodeError):
        return False                                  # read_coco says what is wrong with it
    return head.startswith("{")


def _unused(path: str, **given) -> None:
    bad = [k for k, v in given.items() if v is not None]
    if bad:
        raise DataError(f"{path}: {', '.join(bad)} does not apply to this kind of file")


__all__ = ["MAX_JUMP", "Track", "read_array", "read_coco", "read_mmpose", "read_openpose", "read_track"]
