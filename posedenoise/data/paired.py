"""Paired data: a real pose estimator's output next to ground truth, for calibration and finetuning.

The folder format (one .npz per video, the file name is the video's name; `manifest.json` optional):

    gt          (T, K, 3) float   ground truth x, y, visibility (> 0: visible), in the estimator's pixels
    keypoints   (T, K, 3) float   the estimator's x, y, confidence (0: not output, a miss), in the same pixels
      or
    heatmaps    (T, K, H, W) float   the estimator's heatmaps of a person crop (--frame crop or stretch)
    frame_size  (2,) int          (width, height) of the frame; needed with keypoints and --frame crop/stretch
    layout      0-d str           the K keypoints' layout: pose25, coco17, penn13 or openpose25
                                  (posedenoise.layout); default: manifest.json's "layout", else pose25 if K = 25

manifest.json, if present: {"layout": "coco17", "videos": ["name", ...], "frame": "crop"} (the videos to
read, in order, default: every .npz of the folder, sorted; the frame rule below, default "image"). A COCO-format results file with COCO-format ground truth is read
too (prepare --paired RESULTS.json --gt GT.json; posedenoise.data.estimators).

Mapping onto this project's grid (POSE25, 56 x 56), documented rules:
- layout: each source keypoint goes to its POSE25 keypoint (posedenoise.layout.source_to_target); POSE25
  keypoints the layout lacks get no map, confidence 0 and an invisible ground truth.
- frame (prepare --paired --frame): "image" (the default: what mmpose, Detectron2 and OpenPose write, full
  frames in image pixels) crops each frame by the pretraining rule (posedenoise.data.preprocess: the box of
  the present keypoints, 10% per side, made square, one scale for both axes) applied to the ESTIMATOR's
  present keypoints, since the ground truth is not there at inference; --box-smooth N (default 4) averages
  the boxes over N frames each side. "crop": the frame is already a square person crop, scaled onto the grid as a
  whole (pixel centres to pixel centres: x' = (x + 0.5) * 56 / W - 0.5); a frame that is not square is
  refused. "stretch": the same with each axis on its own (asked for: the only way two scales are used).
  Every frame keeps its way back, `to_image` (sx, sy, ox, oy): image px = grid px * s + o, so errors are
  reported in image pixels. Heatmaps are resized by bilinear interpolation (align_corners=False,
  antialias=True when shrinking); they are taken with --frame crop or stretch only.
- amplitude: the simulation's maps are a delta of 255 blurred (SPEC), so each holds a mass (sum) of 255
  whatever its width. The estimator's maps are scaled by 255 / A, where A is the median over the data set of
  the mass of a visible keypoint's (resized) map, stored as `amplitude`: a typical map gets the simulation's
  mass, a weak one stays weaker, and the shape (the estimator's own blur) is kept.
- estimator keypoints (`est`): the argmax of the resized maps, or the given keypoints mapped to the grid and
  clipped to it, [0, 55] per axis (as the renderer clips them); the present ones (confidence > 0) that lay
  outside the crop (x < -0.5 or x >= 55.5, off the grid once rounded: a smoothed box can leave one out) are
  counted per video
  (`clipped`; prepare --paired reports them); confidence: the map's maximum (before scaling), or the given
  confidence.
- ground truth outside the crop, or not visible, is invisible: it is neither scored nor trained on; visible
  ground truth outside the crop is counted per video (`gt_outside`; prepare --paired reports it).
  Training and PCK use its nearest grid pixel, as for every cache (the keypoint cache stores int16 pixels);
  calibration uses the exact sub-pixel position.

`python -m posedenoise.prepare --paired DIR --out paired.npz` writes the cache: an uncompressed .npz whose
frame arrays training memory-maps, like the keypoint cache. Its windows, splits and batches are those of
any cache (posedenoise.data.windows); only the input comes from the estimator instead of the simulation.
"""
from __future__ import annotations

import json
import os
import struct
import zipfile
from dataclasses import dataclass
from typing import List, Optional

import numpy as np
import torch

from .. import files
from ..layout import LAYOUTS, POSE25, source_to_target
from .preprocess import crop_boxes
from .cache import KeypointCache, _memmap_member, cache_kind, register_opener
from .errors import DataError
from .windows import Dataset

SIZE = 56
KIND = "paired"
FORMAT_VERSION = 1
AMPLITUDE = 255.0   # the mass (sum) of a map the models are trained on
_FRAME_FIELDS = ("gt", "visible", "est", "confidence", "heatmaps", "to_image")
_VIDEO_COUNTS = ("clipped", "gt_outside")   # per video, reported by prepare --paired


@dataclass
class PairedCache:
    """Every video's frames back to back (video v: frames video_starts[v] : video_starts[v] + video_lengths[v]),
    all in the project's heatmap frame: POSE25 keypoints, x and y in pixels of the 56 x 56 grid.

    gt, visible: the ground truth. est, confidence: the estimator's keypoints (the argmax of its heatmaps
    where it gave heatmaps, else its keypoints clipped to the grid) and its confidence (the heatmap's maximum,
    or the keypoint's confidence); a keypoint the estimator did not output has confidence 0. heatmaps: the
    estimator's heatmaps resized to the grid and scaled by 255 / amplitude (the simulation's map mass), or None
    where it gave keypoints only. clipped: per video, the present estimator keypoints (confidence > 0) that
    lay outside the frame and were clipped to the grid's border (0 for heatmaps: their argmax lies on the
    grid); None in a cache written before it was recorded."""
    gt: np.ndarray                    # (F, 25, 2) float32
    visible: np.ndarray               # (F, 25) bool
    est: np.ndarray                   # (F, 25, 2) float32
    confidence: np.ndarray            # (F, 25) float32
    heatmaps: Optional[np.ndarray]    # (F, 25, 56, 56) float16, or None
    video_starts: np.ndarray          # (V,) int64
    video_lengths: np.ndarray         # (V,) int64
    names: List[str]
    amplitude: float = AMPLITUDE      # the estimator's typical map mass (the heatmaps were scaled by 255 / it)
    clipped: Optional[np.ndarray] = None   # (V,) int64: present estimator keypoints clipped to the grid
    to_image: Optional[np.ndarray] = None  # (F, 4) float64 (sx, sy, ox, oy): image px = grid px * s + o
    gt_outside: Optional[np.ndarray] = None   # (V,) int64: visible ground truth outside the crop (not scored)

    @property
    def num_frames(self) -> int:
        return int(self.gt.shape[0])

    @property
    def num_videos(self) -> int:
        return len(self.names)


# --- reading the folder -----------------------------------------------------------------------------------

FRAMES = ("image", "crop", "stretch")   # how an estimator's frame becomes the grid (the module's docstring)
# Crop boxes of an estimator's output are averaged over 2 * BOX_SMOOTH + 1 frames: a box made from each frame's
# own noisy keypoints jitters, and that jitter enters every keypoint on the grid. Measured on the stand-in
# estimator (benchmarks/standin_bench.py, Penn Action val videos), the mean filter's error in image px:
# 9.38 with each frame's own box, 7.82 / 7.63 / 7.54 averaged over 2 / 4 / 8 frames each side.
BOX_SMOOTH = 4


class NoPerson(DataError):
    """A video in which the estimator output no frame with 2 keypoints: nothing to crop (a data set skips it)."""


def _skip_empty(name: str, read, skipped: Optional[List[str]]):
    """read() -> (name, arrays), or None where the estimator found nobody and `skipped` collects such names."""
    try:
        return name, read()
    except NoPerson:
        if skipped is None:
            raise
        skipped.append(name)
        return None


def _array(z, path: str, name: str, ndim: int) -> np.ndarray:
    a = z[name]
    if not np.issubdtype(a.dtype, np.number) or a.ndim != ndim:
        raise DataError(f"{path}: field {name!r}: expected a numeric array of {ndim} dimensions, got {a.dtype} "
                        f"{a.shape}")
    if not np.isfinite(a).all():
        raise DataError(f"{path}: field {name!r}: contains NaN or infinite values")
    return a


def frame_map(frame: str, width: int, height: int, T: int, where: str) -> np.ndarray:
    """The per-frame map from a person-crop frame of width x height pixels to the grid, as to_image rows
    (sx, sy, ox, oy): image = grid * s + o. "crop": one scale (the frame must be square: a person crop is
    never resized with two scales unasked); "stretch": each axis its own (asked for). Pixel centres map to
    pixel centres: x' = (x + 0.5) * 56 / W - 0.5."""
    if frame == "crop" and width != height:
        raise DataError(f"{where}: a {width} x {height} frame is not square, and --frame crop scales a person "
                        "crop onto 56 x 56 by one scale: give --frame image (crop each frame by the pretraining "
                        "rule) or --frame stretch (scale each axis on its own)")
    sx, sy = width / SIZE, height / SIZE
    return np.tile([sx, sy, 0.5 * sx - 0.5, 0.5 * sy - 0.5], (T, 1))


def grid_video(gt: np.ndarray, layout: str, *, keypoints: Optional[np.ndarray] = None,
               maps: Optional[np.ndarray] = None, frame_size=None, frame: str = "image", smooth: int = BOX_SMOOTH,
               where: str = "") -> dict:
    """One video's ground truth (T, K, 3) and the estimator's keypoints (T, K, 3) or heatmaps (T, K, H, W), in
    the source layout and the estimator's pixels, -> its frame arrays on the grid (heatmaps unscaled: the
    amplitude is set per data set), with `to_image` (T, 4), the way back to the estimator's pixels.

    frame "image": each frame is cropped by the pretraining rule (data.preprocess) from the estimator's own
    present keypoints, boxes smoothed over `smooth` frames each side; "crop" and "stretch": the frame (of
    frame_size, or the maps' size) is already a person crop (frame_map)."""
    T, K = gt.shape[:2]
    target = source_to_target(layout)                          # source index -> POSE25 index
    src, dst = np.array(list(target), dtype=np.int64), np.array(list(target.values()), dtype=np.int64)
    out = {"gt": np.zeros((T, len(POSE25), 2), np.float32), "visible": np.zeros((T, len(POSE25)), bool),
           "est": np.zeros((T, len(POSE25), 2), np.float32), "confidence": np.zeros((T, len(POSE25)), np.float32)}
    if maps is not None:
        if frame == "image":
            raise DataError(f"{where}: heatmaps with --frame image: maps are not cropped here; give the "
                            "estimator's keypoints (x, y, confidence in image pixels), or --frame crop / stretch "
                            "if the maps are of a person crop")
        height, width = maps.shape[2:]
        to_image = frame_map(frame, width, height, T, where)
    elif frame == "image":
        # The box of the keypoints the model knows (those that map to POSE25), as pretraining boxes them: a
        # COCO eye or an OpenPose small toe would make the crop differ from the one the model learned on.
        present = keypoints[:, src, 2] > 0
        boxes = crop_boxes(keypoints[:, src, :2], present, smooth=smooth if smooth else -1)
        if not boxes.ok.any():
            raise NoPerson(f"{where}: no frame has 2 present estimator keypoints (confidence > 0), so no frame "
                           "can be cropped")
        to_image = np.concatenate([np.repeat(boxes.side[:, None] / (SIZE - 1), 2, axis=1), boxes.origin], axis=1)
    else:
        if frame_size is None:
            raise DataError(f"{where}: missing field 'frame_size' (width, height), needed with 'keypoints' and "
                            f"--frame {frame}")
        to_image = frame_map(frame, int(frame_size[0]), int(frame_size[1]), T, where)
    scale, offset = to_image[:, None, :2], to_image[:, None, 2:]

    def grid(xy):
        return ((np.asarray(xy, np.float64) - offset) / scale).astype(np.float32)

    xy = grid(gt[..., :2])
    inside = ((xy >= -0.5) & (xy < SIZE - 0.5)).all(-1)        # rounds onto the grid
    out["gt"][:, dst] = xy[:, src]
    out["visible"][:, dst] = ((gt[..., 2] > 0) & inside)[:, src]
    out["gt_outside"] = int(((gt[..., 2] > 0) & ~inside)[:, src].sum())
    out["to_image"] = to_image
    if maps is not None:
        from .. import ops
        t = torch.from_numpy(np.ascontiguousarray(maps[:, src], dtype=np.float32))
        if (height, width) != (SIZE, SIZE):
            t = torch.nn.functional.interpolate(t, size=(SIZE, SIZE), mode="bilinear", align_corners=False,
                                                antialias=height > SIZE or width > SIZE)
        resized = np.zeros((T, len(POSE25), SIZE, SIZE), np.float32)
        resized[:, dst] = t.numpy()
        out["heatmaps"] = resized
        out["est"][:, dst] = ops.heatmap_argmax(t).numpy()
        out["confidence"][:, dst] = maps[:, src].max(axis=(2, 3))
        out["clipped"] = 0                                      # an argmax lies on the grid
    else:
        est, confidence = grid(keypoints[..., :2]), keypoints[..., 2].astype(np.float32)
        # Outside the crop: off its outermost pixels, as for gt (inside, within [0, 55], is a sub-pixel move).
        outside = ((est[:, src] < -0.5) | (est[:, src] >= SIZE - 0.5)).any(-1) & (confidence[:, src] > 0)
        out["est"][:, dst], out["confidence"][:, dst] = np.clip(est[:, src], 0, SIZE - 1), confidence[:, src]
        out["clipped"] = int(outside.sum())
    return out


def read_video(path: str, layout: Optional[str] = None, frame: str = "image", smooth: int = BOX_SMOOTH) -> dict:
    """One video file -> grid_video's frame arrays."""
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as e:  # truncated, pickled, not numpy at all: whatever np.load raises
        raise DataError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: expected an .npz with fields gt and heatmaps or keypoints")
    with z:
        if "gt" not in z:
            raise DataError(f"{path}: missing field 'gt' (T, K, 3): ground truth x, y, visibility")
        if ("heatmaps" in z) == ("keypoints" in z):
            raise DataError(f"{path}: expected exactly one of the fields 'heatmaps' (T, K, H, W) and 'keypoints' "
                            "(T, K, 3)")
        gt = _array(z, path, "gt", 3)
        T, K = gt.shape[:2]
        if gt.shape[2] != 3 or T == 0:
            raise DataError(f"{path}: field 'gt': expected (T, K, 3) with T >= 1, got {gt.shape}")
        if "layout" in z:
            layout = str(z["layout"])
        layout = layout or ("pose25" if K == len(POSE25) else None)
        if layout not in LAYOUTS:
            raise DataError(f"{path}: field 'layout': expected one of {sorted(LAYOUTS)} (or 25 keypoints), got "
                            f"{layout!r} for K = {K}")
        if len(LAYOUTS[layout]) != K:
            raise DataError(f"{path}: field 'gt': layout {layout} has {len(LAYOUTS[layout])} keypoints, got K = {K}")
        maps = kp = size = None
        if "heatmaps" in z:
            maps = _array(z, path, "heatmaps", 4)
            if maps.shape[:2] != (T, K) or min(maps.shape[2:]) < 2:
                raise DataError(f"{path}: field 'heatmaps': expected ({T}, {K}, H, W) with H, W >= 2, got "
                                f"{maps.shape}")
        else:
            kp = _array(z, path, "keypoints", 3)
            if kp.shape != (T, K, 3):
                raise DataError(f"{path}: field 'keypoints': expected ({T}, {K}, 3), got {kp.shape}")
        if "frame_size" in z:
            size = _array(z, path, "frame_size", 1)
            if size.shape != (2,) or (size < 2).any():
                raise DataError(f"{path}: field 'frame_size': expected (width, height) >= 2, got {size.tolist()}")
    return grid_video(gt, layout, keypoints=kp, maps=maps, frame_size=size, frame=frame, smooth=smooth, where=path)


def read_folder(folder: str, frame: Optional[str] = None, smooth: int = BOX_SMOOTH,
                skipped: Optional[List[str]] = None) -> List[tuple]:
    """(name, read_video(...)) for the videos of a paired-data folder, in manifest or sorted order. frame:
    FRAMES' name; None takes manifest.json's "frame", else "image". A video in which the estimator output
    nobody (NoPerson) is left out and named in `skipped` when a list is given, else raises."""
    if not os.path.isdir(folder):
        raise DataError(f"{folder}: no such folder")
    manifest_path, layout = os.path.join(folder, "manifest.json"), None
    names = sorted(f[:-4] for f in os.listdir(folder) if f.endswith(".npz"))
    if os.path.exists(manifest_path):
        try:
            with open(manifest_path) as f:
                manifest = json.load(f)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DataError(f"{manifest_path}: not a readable JSON file ({e})") from None
        if not isinstance(manifest, dict):
            raise DataError(f"{manifest_path}: expected an object with 'layout' and/or 'videos'")
        layout = manifest.get("layout")
        if frame is None and manifest.get("frame") is not None:
            frame = manifest["frame"]
            if frame not in FRAMES:
                raise DataError(f"{manifest_path}: field 'frame': expected one of {FRAMES}, got {frame!r}")
        if "videos" in manifest:
            names = manifest["videos"]
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise DataError(f"{manifest_path}: field 'videos': expected a list of video names")
    if not names:
        raise DataError(f"{folder}: no .npz video files (expected one per video: gt plus heatmaps or keypoints)")
    out = []
    for name in names:
        path = os.path.join(folder, name + ".npz")
        if not os.path.isfile(path):
            raise DataError(f"{manifest_path}: video {name!r} listed, but {path} does not exist")
        out.append(_skip_empty(name, lambda: read_video(path, layout, frame or "image", smooth), skipped))
    out = [v for v in out if v is not None]
    if not out:
        raise DataError(f"{folder}: the estimator output nobody in any video (no frame with 2 present keypoints)")
    return out


def read_coco_videos(results: str, gt: str, frame: str = "image", smooth: int = BOX_SMOOTH,
                     skipped: Optional[List[str]] = None) -> List[tuple]:
    """(name, grid_video(...)) for every video of a COCO-format ground truth (one video when its images
    carry no video ids), the estimator's person read from a COCO-format results file
    (posedenoise.data.estimators.read_coco, which says how it chose); names are the video ids."""
    from .estimators import coco_video_ids, read_coco
    out = []
    for video in coco_video_ids(gt) or [None]:
        track = read_coco(results, gt=gt, video=video)
        name = "video" if video is None else str(video)
        out.append(_skip_empty(name, lambda: grid_video(
            track.gt, track.layout, keypoints=track.keypoints, frame_size=track.frame_size, frame=frame,
            smooth=smooth, where=f"{results} (video {name})"), skipped))
    out = [v for v in out if v is not None]
    if not out:
        raise DataError(f"{results}: the estimator output nobody in any video (no frame with 2 present keypoints)")
    return out


def build_paired(videos: List[tuple]) -> PairedCache:
    """Concatenate read_folder's videos. All of them give heatmaps or all keypoints (one input kind per
    data set: a model is finetuned on one estimator)."""
    kinds = {"heatmaps" in v for _, v in videos}
    if len(kinds) != 1:
        raise DataError("paired data: some videos give heatmaps and others keypoints; expected one kind")
    cat = {f: np.concatenate([v[f] for _, v in videos]) for f in _FRAME_FIELDS if f in videos[0][1]}
    amplitude = AMPLITUDE
    if "heatmaps" in cat:
        mass = cat["heatmaps"].sum(axis=(2, 3), dtype=np.float64)[cat["visible"] & (cat["confidence"] > 0)]
        amplitude = float(np.median(mass)) if mass.size and np.median(mass) > 0 else 1.0
        cat["heatmaps"] = (cat["heatmaps"] * np.float32(AMPLITUDE / amplitude)).astype(np.float16)
    lengths = np.array([len(v["gt"]) for _, v in videos], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return PairedCache(cat["gt"], cat["visible"], cat["est"], cat["confidence"], cat.get("heatmaps"), starts,
                       lengths, [n for n, _ in videos], amplitude, to_image=cat["to_image"],
                       **{f: np.array([v.get(f, 0) for _, v in videos], dtype=np.int64) for f in _VIDEO_COUNTS})


# --- the cache file ----------------------------------------------------------------------------------------

def save_paired(cache: PairedCache, path: str) -> None:
    """Write the cache atomically, uncompressed (its frame arrays are memory-mapped by load_paired)."""
    arrays = {f: np.ascontiguousarray(getattr(cache, f)) for f in _FRAME_FIELDS if getattr(cache, f) is not None}
    for f in _VIDEO_COUNTS:
        if getattr(cache, f) is not None:
            arrays[f] = np.asarray(getattr(cache, f), dtype=np.int64)
    with files.atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays, video_starts=cache.video_starts, video_lengths=cache.video_lengths,
                     names=np.array(cache.names, dtype=str), amplitude=np.array(cache.amplitude),
                     kind=np.array(KIND), version=np.array(FORMAT_VERSION))


def is_paired(path: str) -> bool:
    """Whether `path` is a paired cache (its kind field says so), without reading its frame arrays."""
    return cache_kind(path) == KIND


def load_paired(path: str) -> PairedCache:
    """Open a cache written by save_paired(); the frame arrays are memory-mapped."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such paired-data cache file")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = {i.filename[:-4]: i for i in zf.infolist() if i.filename.endswith(".npy")}
        missing = [k for k in ("gt", "visible", "est", "confidence", "video_starts", "video_lengths", "names",
                               "amplitude", "kind", "version") if k not in infos]
        if missing:
            raise DataError(f"{path}: not a paired-data cache (missing fields {missing}); python -m "
                            "posedenoise.prepare --paired DIR makes one")
        with np.load(path, allow_pickle=False) as z:
            small = {k: z[k] for k in ("video_starts", "video_lengths", "names", "amplitude", "kind", "version",
                                       *_VIDEO_COUNTS) if k in z.files}
        if str(small["kind"]) != KIND or int(small["version"]) != FORMAT_VERSION:
            raise DataError(f"{path}: kind {small['kind']} version {small['version']}: expected {KIND} "
                            f"{FORMAT_VERSION}")
        big = {f: _memmap_member(path, infos[f]) for f in _FRAME_FIELDS if f in infos}
    except DataError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, struct.error) as e:
        raise DataError(f"{path}: not a readable paired-data cache ({type(e).__name__}: {e})") from None
    F, K = big["gt"].shape[0], len(POSE25)
    shapes = {"gt": (F, K, 2), "visible": (F, K), "est": (F, K, 2), "confidence": (F, K), "heatmaps": (F, K, SIZE, SIZE),
              "to_image": (F, 4)}
    for f, a in big.items():
        if a.shape != shapes[f]:
            raise DataError(f"{path}: field {f!r}: expected shape {shapes[f]}, got {a.shape}")
    lengths = small["video_lengths"].astype(np.int64)
    if int(lengths.sum()) != F or len(small["names"]) != len(lengths):
        raise DataError(f"{path}: video_lengths/names do not describe the {F} frames")
    for f in _VIDEO_COUNTS:
        if f in small and small[f].shape != lengths.shape:
            raise DataError(f"{path}: field {f!r}: expected shape {lengths.shape}, got {small[f].shape}")
    counts = {f: small[f].astype(np.int64) if f in small else None for f in _VIDEO_COUNTS}
    return PairedCache(big["gt"], big["visible"], big["est"], big["confidence"], big.get("heatmaps"),
                       small["video_starts"].astype(np.int64), lengths, small["names"].tolist(),
                       float(small["amplitude"]), to_image=big.get("to_image"), **counts)


def is_paired_data(data) -> bool:
    """Whether a Dataset's inputs are an estimator's (a PairedDataset) rather than simulated."""
    return isinstance(data, PairedDataset)


# --- windows and inputs for training ---------------------------------------------------------------------

class PairedDataset(Dataset):
    """A Dataset (windows, splits, batches of ground truth) whose inputs are the estimator's, not simulated.

    The ground truth becomes an ordinary keypoint cache (nearest grid pixel), so windows, splits and Batches
    are exactly those of any cache; `inputs` gives the estimator's maps of a batch of windows."""

    def __init__(self, paired: PairedCache, **windows):
        V = paired.num_videos
        coords = np.clip(np.rint(np.asarray(paired.gt)), 0, SIZE - 1).astype(np.int16)
        super().__init__(KeypointCache(coords, np.asarray(paired.visible), paired.video_starts, paired.video_lengths,
                                       list(paired.names), [KIND] * V, [None] * V), **windows)
        self.paired = paired

    def inputs(self, window_ids: torch.Tensor) -> torch.Tensor:
        """(B,) window ids -> the estimator's heatmaps (B, T, 25, 56, 56) float32, on the ids' device."""
        return self.frame_inputs(self.window_frames(window_ids), "heatmaps").to(window_ids.device)

    def triples(self, window_ids: torch.Tensor) -> torch.Tensor:
        """(B,) window ids -> what a coordinate model reads (B, T, 25, 3), on the ids' device."""
        return self.frame_inputs(self.window_frames(window_ids), "coords").to(window_ids.device)

    def frame_inputs(self, frames: np.ndarray, kind: str) -> torch.Tensor:
        """Rows of the frame arrays (...,) -> a model's input for them on the CPU, float32: kind "heatmaps",
        the estimator's maps (..., 25, 56, 56), or where it gave keypoints only, its keypoints (confidence > 0)
        rendered at sigma 1, amplitude 255; kind "coords", its own sub-pixel keypoints on the grid and
        whether it output them (..., 25, 3) = (x, y, present), a miss (0, 0, 0) (models/inputs.py)."""
        present = torch.from_numpy(np.asarray(self.paired.confidence[frames]) > 0)
        if kind == "heatmaps" and self.paired.heatmaps is not None:
            return torch.from_numpy(np.asarray(self.paired.heatmaps[frames], dtype=np.float32))
        est = torch.from_numpy(np.asarray(self.paired.est[frames], dtype=np.float32))
        if kind == "heatmaps":
            from .. import ops
            return ops.render_heatmaps(est, present, 1.0)
        p = present.to(torch.float32)[..., None]
        return torch.cat([est * p, p], dim=-1)


# A paired cache file opens as a PairedDataset, wherever a cache file is accepted (data.open_data).
register_opener(KIND, lambda path, **windows: PairedDataset(load_paired(path), **windows))
