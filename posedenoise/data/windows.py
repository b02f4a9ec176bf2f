"""Windows, splits and batches: everything between a keypoint cache and a training batch on the device.

A window is T frames of one video, frames t, t + step, ..., t + (T - 1) * step; starts advance by 1 and
never cross a video boundary. Window ids are stable: the window's index in the cache's full window table
for that (T, step), enumerated video by video and start by start. The noise is keyed by these ids.
Splits are 60/20/20 and seeded: by video (default; no frame is in two splits) or by window.
"""
from __future__ import annotations

import os
import warnings
from typing import Dict, Optional

import numpy as np
import torch

from .cache import KEYPOINTS, KeypointCache, build_cache, load_cache, open_cache, register_opener, synthetic_cache
from .errors import DataError

SPLITS = ("train", "val", "test")
FRACTIONS = (0.6, 0.2, 0.2)
SYNTHETIC_VIDEOS = 200


def window_table(video_starts: np.ndarray, video_lengths: np.ndarray, T: int = 5, step: int = 1):
    """Every window of T frames at frame step `step`, start stride 1, inside one video.

    Returns window_start (W,) int64 (its first row in the flat frame arrays) and window_video (W,) int64.
    Window id w is the row w of this table: videos in cache order, starts in frame order; a video of n
    frames has max(n - (T - 1) * step, 0) windows. The same cache and (T, step) always give the same ids."""
    lengths = np.asarray(video_lengths, dtype=np.int64)
    per_video = np.maximum(lengths - (T - 1) * step, 0)                                  # (V,)
    window_video = np.repeat(np.arange(len(lengths), dtype=np.int64), per_video)         # (W,)
    first = np.repeat(np.cumsum(per_video) - per_video, per_video)                       # (W,) id of v's window 0
    window_start = np.asarray(video_starts, np.int64)[window_video] + np.arange(len(window_video)) - first
    return window_start.astype(np.int64), window_video


def _cuts(n: int) -> np.ndarray:
    """Where n ordered items are cut into train / val / test: (2,) = round(0.6 n), round(0.8 n)."""
    return np.round(np.cumsum(FRACTIONS)[:-1] * n).astype(np.int64)


class Dataset:
    """A cache, its window table for (T, step), and the split of the windows."""

    def __init__(self, cache: KeypointCache, *, T: int = 5, step: int = 1, split: str = "video", seed: int = 0,
                 num_windows: Optional[int] = None, name: str = ""):
        if split not in ("video", "window"):
            raise DataError(f"split: expected 'video' or 'window', got {split!r}")
        if T < 1 or step < 1:
            raise DataError(f"windows: T and step must be >= 1, got T={T}, step={step}")
        self.cache, self.T, self.step, self.name = cache, T, step, name
        self.split, self.seed = split, seed
        span = (T - 1) * step + 1
        self.window_start, self.window_video = window_table(cache.video_starts, cache.video_lengths, T, step)
        per_video = np.bincount(self.window_video, minlength=len(cache.video_lengths))  # (V,)
        W = len(self.window_start)
        if W == 0:
            raise DataError(f"{name or 'data'}: no video has the {span} frames a window needs")
        short = np.flatnonzero(per_video == 0)
        if len(short):
            warnings.warn(f"{name or 'data'}: {len(short)} of {len(per_video)} videos are shorter than the {span} "
                          f"frames a window needs and yield no windows (e.g. {cache.names[short[0]]!r})",
                          stacklevel=2)
        rng = np.random.default_rng(seed)
        if split == "video":
            order = rng.permutation(len(per_video))
            cuts = _cuts(len(order))
            part = np.empty(len(per_video), np.int64)
            for s, vids in enumerate(np.split(order, cuts)):
                part[vids] = s
            self.video_part = part        # (V,) 0 train / 1 val / 2 test, videos without windows included
            window_part = part[self.window_video]
        else:
            order = rng.permutation(W)
            cuts = _cuts(W)
            window_part = np.empty(W, np.int64)
            for s, ids in enumerate(np.split(order, cuts)):
                window_part[ids] = s
        if num_windows is not None and num_windows < 1:
            raise DataError(f"num_windows: expected a number of windows >= 1, got {num_windows}")
        wanted = None if num_windows is None else np.diff(_cuts(num_windows), prepend=0, append=num_windows)
        self._ids: Dict[str, np.ndarray] = {}
        for s, split_name in enumerate(SPLITS):
            ids = np.flatnonzero(window_part == s)
            if wanted is not None and wanted[s] < len(ids):   # a seeded subset, 60/20/20 of num_windows
                ids = np.sort(rng.choice(ids, size=int(wanted[s]), replace=False))
            self._ids[split_name] = ids

    def split_ids(self, split: str) -> torch.Tensor:
        if split not in self._ids:
            raise DataError(f"split: expected one of {SPLITS}, got {split!r}")
        return torch.from_numpy(self._ids[split]).to(torch.int64)

    @property
    def windows(self) -> np.ndarray:
        """The window table (W, 2) int64: row w = (first row of window w in the cache's frame arrays, step)."""
        return np.column_stack([self.window_start, np.full_like(self.window_start, self.step)])

    @property
    def num_windows(self) -> int:
        """All windows of the cache for (T, step), whatever their split: ids are 0 .. num_windows - 1."""
        return len(self.window_start)

    def window_frames(self, ids) -> np.ndarray:
        """Window ids (B,) -> rows of the cache's flat frame arrays (B, T) int64."""
        ids = ids.cpu().numpy() if isinstance(ids, torch.Tensor) else np.asarray(ids)
        return self.window_start[ids][:, None] + np.arange(self.T) * self.step

    def gather(self, ids: torch.Tensor):
        """Window ids (B,) -> coords (B, T, K, 2) int64, visible (B, T, K) bool (CPU tensors).

        One fancy-index gather from the (memory-mapped) cache, no loop over windows."""
        frames = self.window_frames(ids)                                                       # (B, T)
        coords = torch.from_numpy(np.asarray(self.cache.coords[frames], dtype=np.int64))
        visible = torch.from_numpy(np.asarray(self.cache.visible[frames], dtype=bool))
        return coords, visible

    def summary(self) -> dict:
        c = self.cache
        return {"data": self.name, "videos": len(c.names), "frames": c.num_frames, "window_frames": self.T,
                "frame_step": self.step, "windows": {s: int(len(i)) for s, i in self._ids.items()},
                "source": "+".join(sorted(set(c.sources))), "split": self.split, "seed": self.seed}


class Batches:
    """Batches of (coords, visible, window ids) on `device`, ready for ops.noisy_pair.

    shuffle: a permutation seeded by (seed, epoch), so a resumed run replays the same order. Each global
    batch is cut into `world` shards and rank r takes ids[r::world] (DDP ranks render disjoint parts).
    drop_last keeps only full global batches. Without it the last global batch may be shorter than `world`;
    a rank whose shard of it is empty skips it, so that rank has one batch fewer (len() says so)."""

    def __init__(self, data: Dataset, split: str, batch_size: int, device, *, epoch: int, seed: int,
                 shuffle: bool, drop_last: bool, rank: int = 0, world: int = 1):
        if batch_size < 1 or world < 1 or not 0 <= rank < world:
            raise ValueError(f"Batches: expected batch_size >= 1 and 0 <= rank < world, got batch_size={batch_size}, "
                             f"rank={rank}, world={world}")
        ids = data.split_ids(split)
        # Checked here, on the host where the ids are born, once per epoch: the kernels take them unchecked
        # (a check per step would be a device sync on a GPU).
        if len(ids) and not (0 <= int(ids.min()) and int(ids.max()) < data.num_windows):
            raise DataError(f"{split}: window ids outside [0, {data.num_windows})")
        if shuffle:
            g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
            ids = ids[torch.randperm(len(ids), generator=g)]
        n = len(ids) // batch_size * batch_size if drop_last else len(ids)
        self.chunks = [ids[i:i + batch_size][rank::world] for i in range(0, n, batch_size)]
        self.chunks = [c for c in self.chunks if len(c)]
        self.data, self.device = data, torch.device(device)

    def __len__(self) -> int:
        return len(self.chunks)

    def __iter__(self):
        for ids in self.chunks:
            coords, visible = self.data.gather(ids)
            yield (coords.to(self.device, non_blocking=True), visible.to(self.device, non_blocking=True),
                   ids.to(self.device, non_blocking=True))


register_opener(KEYPOINTS, lambda path, **windows: Dataset(load_cache(path), **windows))


def open_data(spec: str, *, step: int, split: str = "video", seed: int = 0, num_windows: Optional[int] = None,
              T: int = 5) -> Dataset:
    """'synthetic' (generated motion), a cache file from `posedenoise.prepare` (opened by its kind through
    cache.OPENERS: a keypoint cache, or a paired cache from --paired, which paired.py opens as a
    PairedDataset), a BRACE folder (with dataset/) or a Penn Action folder. Folders are read on every call;
    `prepare` caches them once."""
    if spec == "synthetic":
        cache = synthetic_cache(SYNTHETIC_VIDEOS, (60, 150), seed=0)
    elif os.path.isdir(spec):
        if os.path.isdir(os.path.join(spec, "dataset")):   # BRACE: dataset/<year>/<video>/*.json
            from .brace import read_folder
        else:
            from .penn_action import read_folder
        cache = build_cache(read_folder(spec))
    elif os.path.isfile(spec):   # by the file's kind (cache.OPENERS): a keypoint cache, a paired cache, ...
        return open_cache(spec, T=T, step=step, split=split, seed=seed, num_windows=num_windows, name=spec)
    else:
        raise DataError(f"{spec}: expected 'synthetic', a cache file, a BRACE folder or a Penn Action folder")
    return Dataset(cache, T=T, step=step, split=split, seed=seed, num_windows=num_windows, name=spec)
