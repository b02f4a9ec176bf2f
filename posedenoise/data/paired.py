"""Paired data: a real pose estimator's output next to ground truth, for calibration and finetuning.

The folder format (one .npz per video, the file name is the video's name; `manifest.json` optional):

    gt          (T, K, 3) float   ground truth x, y, visibility (> 0: visible), in the estimator's pixel frame
    heatmaps    (T, K, H, W) float   the estimator's heatmaps; x in [0, W) and y in [0, H) are their pixels
      or
    keypoints   (T, K, 3) float   the estimator's x, y, confidence (0: not output), in the same frame as gt
    frame_size  (2,) int          (width, height) of that frame; required with keypoints
    layout      0-d str           the K keypoints' layout: pose25, coco17, penn13 or openpose25
                                  (posedenoise.layout); default: manifest.json's "layout", else pose25 if K = 25

manifest.json, if present: {"layout": "coco17", "videos": ["name", ...]} (the videos to read, in order;
default: every .npz of the folder, sorted). The frame is the estimator's own (a top-down estimator's person
crop): nothing is cropped here.

Mapping onto this project's grid (POSE25, 56 x 56), documented rules:
- layout: each source keypoint goes to its POSE25 keypoint (posedenoise.layout.source_to_target); POSE25
  keypoints the layout lacks get no map, confidence 0 and an invisible ground truth.
- size: a frame of W x H pixels is resized to 56 x 56 (each axis on its own when H != W); pixel centres map
  to pixel centres: x' = (x + 0.5) * 56 / W - 0.5, likewise y. Heatmaps are resized by bilinear
  interpolation (torch.nn.functional.interpolate, align_corners=False, antialias=True when shrinking).
- amplitude: the simulation's maps are a delta of 255 blurred (SPEC), so each holds a mass (sum) of 255
  whatever its width. The estimator's maps are scaled by 255 / A, where A is the median over the data set of
  the mass of a visible keypoint's (resized) map, stored as `amplitude`: a typical map gets the simulation's
  mass, a weak one stays weaker, and the shape (the estimator's own blur) is kept.
- estimator keypoints (`est`): the argmax of the resized maps, or the given keypoints mapped to the grid and
  clipped to it, [0, 55] per axis (as the renderer clips them); the present ones (confidence > 0) that lay
  outside the frame (x < -0.5 or x >= W - 0.5, likewise y: off the grid once rounded) are counted per video
  (`clipped`; prepare --paired reports them); confidence: the map's maximum (before scaling), or the given
  confidence.
- ground truth outside the frame, or not visible, is invisible: it is neither scored nor trained on.
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
from .cache import KeypointCache, _memmap_member, cache_kind, register_opener
from .errors import DataError
from .windows import Dataset

SIZE = 56
KIND = "paired"
FORMAT_VERSION = 1
AMPLITUDE = 255.0   # the mass (sum) of a map the models are trained on
_FRAME_FIELDS = ("gt", "visible", "est", "confidence", "heatmaps")


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

    @property
    def num_frames(self) -> int:
        return int(self.gt.shape[0])

    @property
    def num_videos(self) -> int:
        return len(self.names)


# --- reading the folder -----------------------------------------------------------------------------------

def _to_grid(xy: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pixel centres of a width x height frame -> pixel centres of the 56 x 56 grid."""
    scale = np.array([SIZE / width, SIZE / height], dtype=np.float64)
    return ((np.asarray(xy, np.float64) + 0.5) * scale - 0.5).astype(np.float32)


def _array(z, path: str, name: str, ndim: int) -> np.ndarray:
    a = z[name]
    if not np.issubdtype(a.dtype, np.number) or a.ndim != ndim:
        raise DataError(f"{path}: field {name!r}: expected a numeric array of {ndim} dimensions, got {a.dtype} "
                        f"{a.shape}")
    if not np.isfinite(a).all():
        raise DataError(f"{path}: field {name!r}: contains NaN or infinite values")
    return a


def read_video(path: str, layout: Optional[str] = None) -> dict:
    """One video file -> its frame arrays on the grid (heatmaps unscaled: the amplitude is set per data set)."""
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
        if "heatmaps" in z:
            maps = _array(z, path, "heatmaps", 4)
            if maps.shape[:2] != (T, K) or min(maps.shape[2:]) < 2:
                raise DataError(f"{path}: field 'heatmaps': expected ({T}, {K}, H, W) with H, W >= 2, got "
                                f"{maps.shape}")
            height, width = maps.shape[2:]
            est = confidence = None
        else:
            kp = _array(z, path, "keypoints", 3)
            if kp.shape != (T, K, 3):
                raise DataError(f"{path}: field 'keypoints': expected ({T}, {K}, 3), got {kp.shape}")
            if "frame_size" not in z:
                raise DataError(f"{path}: missing field 'frame_size' (width, height), needed with 'keypoints'")
            size = _array(z, path, "frame_size", 1)
            if size.shape != (2,) or (size < 2).any():
                raise DataError(f"{path}: field 'frame_size': expected (width, height) >= 2, got {size.tolist()}")
            width, height = int(size[0]), int(size[1])
            maps, est, confidence = None, _to_grid(kp[..., :2], width, height), kp[..., 2].astype(np.float32)
    target = source_to_target(layout)                          # source index -> POSE25 index
    src, dst = np.array(list(target), dtype=np.int64), np.array(list(target.values()), dtype=np.int64)
    out = {"gt": np.zeros((T, len(POSE25), 2), np.float32), "visible": np.zeros((T, len(POSE25)), bool),
           "est": np.zeros((T, len(POSE25), 2), np.float32), "confidence": np.zeros((T, len(POSE25)), np.float32)}
    xy = _to_grid(gt[..., :2], width, height)
    inside = ((xy >= -0.5) & (xy < SIZE - 0.5)).all(-1)        # rounds onto the grid
    out["gt"][:, dst] = xy[:, src]
    out["visible"][:, dst] = ((gt[..., 2] > 0) & inside)[:, src]
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
        # Outside the frame: off its outermost pixels, as for gt (inside, within [0, 55], is a sub-pixel move).
        outside = ((est[:, src] < -0.5) | (est[:, src] >= SIZE - 0.5)).any(-1) & (confidence[:, src] > 0)
        out["est"][:, dst], out["confidence"][:, dst] = np.clip(est[:, src], 0, SIZE - 1), confidence[:, src]
        out["clipped"] = int(outside.sum())
    return out


def read_folder(folder: str) -> List[tuple]:
    """(name, read_video(...)) for the videos of a paired-data folder, in manifest or sorted order."""
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
        out.append((name, read_video(path, layout)))
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
                       lengths, [n for n, _ in videos], amplitude,
                       np.array([v.get("clipped", 0) for _, v in videos], dtype=np.int64))


# --- the cache file ----------------------------------------------------------------------------------------

def save_paired(cache: PairedCache, path: str) -> None:
    """Write the cache atomically, uncompressed (its frame arrays are memory-mapped by load_paired)."""
    arrays = {f: np.ascontiguousarray(getattr(cache, f)) for f in _FRAME_FIELDS if getattr(cache, f) is not None}
    if cache.clipped is not None:
        arrays["clipped"] = np.asarray(cache.clipped, dtype=np.int64)
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
                                       "clipped") if k in z.files}
        if str(small["kind"]) != KIND or int(small["version"]) != FORMAT_VERSION:
            raise DataError(f"{path}: kind {small['kind']} version {small['version']}: expected {KIND} "
                            f"{FORMAT_VERSION}")
        big = {f: _memmap_member(path, infos[f]) for f in _FRAME_FIELDS if f in infos}
    except DataError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, struct.error) as e:
        raise DataError(f"{path}: not a readable paired-data cache ({type(e).__name__}: {e})") from None
    F, K = big["gt"].shape[0], len(POSE25)
    shapes = {"gt": (F, K, 2), "visible": (F, K), "est": (F, K, 2), "confidence": (F, K), "heatmaps": (F, K, SIZE, SIZE)}
    for f, a in big.items():
        if a.shape != shapes[f]:
            raise DataError(f"{path}: field {f!r}: expected shape {shapes[f]}, got {a.shape}")
    lengths = small["video_lengths"].astype(np.int64)
    if int(lengths.sum()) != F or len(small["names"]) != len(lengths):
        raise DataError(f"{path}: video_lengths/names do not describe the {F} frames")
    clipped = small.get("clipped")
    if clipped is not None and clipped.shape != lengths.shape:
        raise DataError(f"{path}: field 'clipped': expected shape {lengths.shape}, got {clipped.shape}")
    return PairedCache(big["gt"], big["visible"], big["est"], big["confidence"], big.get("heatmaps"),
                       small["video_starts"].astype(np.int64), lengths, small["names"].tolist(),
                       float(small["amplitude"]), None if clipped is None else clipped.astype(np.int64))


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
        """(B,) window ids -> the estimator's heatmaps (B, T, 25, 56, 56) float32, on the ids' device. An
        estimator that gave keypoints only: its keypoints (confidence > 0) rendered at sigma 1, amplitude 255."""
        frames = self.window_frames(window_ids)                                          # (B, T)
        if self.paired.heatmaps is not None:
            x = torch.from_numpy(np.asarray(self.paired.heatmaps[frames], dtype=np.float32))
            return x.to(window_ids.device)
        from .. import ops
        est = torch.from_numpy(np.asarray(self.paired.est[frames])).to(window_ids.device)
        seen = torch.from_numpy(np.asarray(self.paired.confidence[frames]) > 0).to(window_ids.device)
        return ops.render_heatmaps(est, seen, 1.0)


# A paired cache file opens as a PairedDataset, wherever a cache file is accepted (data.open_data).
register_opener(KIND, lambda path, **windows: PairedDataset(load_paired(path), **windows))
