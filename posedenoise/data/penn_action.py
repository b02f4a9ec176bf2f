"""Penn Action (Zhang, Zhu & Derpanis, ICCV 2013): a folder of labels/NNNN.mat, one per video.

What the real files hold (checked on all 2326): x, y (T, 13) float64, or uint8/uint16 in 131 files (cast
to float); visibility (T, 13) 0/1, invisible joints still carry stale coordinates (visibility decides);
nframes (1, 1) uint8 or uint16; train (1, 1) 1 / -1; bbox sometimes one row short (not used here);
some visible points lie slightly outside the image (kept: preprocessing maps them like any other).
"""
from __future__ import annotations

import os
from typing import List

import numpy as np

from ..layout import POSE25, source_to_target
from .errors import DataError
from .raw import RawVideo

MAPPING = source_to_target("penn13")  # Penn joint index -> POSE25 index (the head feeds "nose")


def read_video(path: str) -> RawVideo:
    """One labels/NNNN.mat -> RawVideo in the POSE25 layout."""
    import scipy.io
    try:
        m = scipy.io.loadmat(path)
    except Exception as e:  # truncated, not a .mat, unreadable
        raise DataError(f"{path}: not a readable .mat file ({type(e).__name__}: {e})") from None
    for key in ("x", "y", "visibility"):
        if key not in m:
            raise DataError(f"{path}: missing field '{key}' (expected x, y, visibility of shape (T, 13))")
    x, y, vis = (np.asarray(m[k]) for k in ("x", "y", "visibility"))
    if x.ndim != 2 or x.shape[1] != 13 or y.shape != x.shape or vis.shape != x.shape:
        raise DataError(f"{path}: x {x.shape}, y {y.shape}, visibility {vis.shape}: expected three (T, 13) arrays")
    if any(a.dtype.kind not in "biuf" for a in (x, y, vis)):
        raise DataError(f"{path}: x {x.dtype}, y {y.dtype}, visibility {vis.dtype}: expected numbers")
    T = x.shape[0]
    if "nframes" in m and int(np.asarray(m["nframes"]).ravel()[0]) != T:
        raise DataError(f"{path}: nframes {int(np.asarray(m['nframes']).ravel()[0])} but x has {T} rows")
    xy = np.zeros((T, len(POSE25), 2), np.float32)
    visible = np.zeros((T, len(POSE25)), bool)
    src, dst = list(MAPPING), list(MAPPING.values())
    xy[:, dst, 0] = x[:, src].astype(np.float32)
    xy[:, dst, 1] = y[:, src].astype(np.float32)
    visible[:, dst] = vis[:, src].astype(bool)
    split = None
    if "train" in m:
        flag = int(np.asarray(m["train"]).ravel()[0])
        split = "train" if flag == 1 else "test" if flag == -1 else None
    name = os.path.splitext(os.path.basename(path))[0]
    return RawVideo(name=name, source="penn_action", xy=xy, visible=visible, official_split=split)


def list_files(folder: str) -> List[str]:
    """The label files of a Penn Action folder (the folder itself or its labels/ subfolder)."""
    if not os.path.isdir(folder):
        raise DataError(f"{folder}: no such folder (expected Penn Action's folder with labels/NNNN.mat)")
    labels = os.path.join(folder, "labels") if os.path.isdir(os.path.join(folder, "labels")) else folder
    paths = sorted(os.path.join(labels, f) for f in os.listdir(labels) if f.endswith(".mat"))
    if not paths:
        raise DataError(f"{labels}: no .mat label files found")
    return paths


def read_folder(folder: str, progress: bool = False) -> List[RawVideo]:
    paths = list_files(folder)
    if progress:
        from tqdm import tqdm
        paths = tqdm(paths, desc="Penn Action", unit="video")
    return [read_video(p) for p in paths]
