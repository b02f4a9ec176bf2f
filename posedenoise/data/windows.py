"""Windows, splits and batches: everything between a keypoint cache and a training batch on the device.

A window is T frames of one video, frames t, t + step, ..., t + (T - 1) * step; starts advance by 1 and
never cross a video boundary. Window ids are stable: the window's index in the cache's full window table
for that (T, step), enumerated video by video and start by start. The noise is keyed by these ids.
Splits are 60/20/20 and seeded: by video (default; no frame is in two splits) or by window.
"""
from __future__ import annotations

import os
from typing import Dict, Optional

import numpy as np
import torch

from .cache import KeypointCache, build_cache, load_cache
from .errors import DataError

SPLITS = ("train", "val", "test")
FRACTIONS = (0.6, 0.2, 0.2)
SYNTHETIC_VIDEOS = 200


class Dataset:
    """A cache, its window table for (T, step), and the split of the windows."""

    def __init__(self, cache: KeypointCache, *, T: int = 5, step: int = 1, split: str = "video", seed: int = 0,
                 num_windows: Optional[int] = None, name: str = ""):
        if split not in ("video", "window"):
            raise DataError(f"split: expected 'video' or 'window', got {split!r}")
        self.cache, self.T, self.step, self.name = cache, T, step, name
        span = (T - 1) * step + 1
        per_video = np.maximum(cache.video_lengths - span + 1, 0)                     # (V,)
        self.window_video = np.repeat(np.arange(len(per_video)), per_video)          # (W,)
        first = np.repeat(np.cumsum(per_video) - per_video, per_video)
        self.window_start = cache.video_starts[self.window_video] + np.arange(len(self.window_video)) - first
        W = len(self.window_start)
        if W == 0:
            raise DataError(f"{name or 'data'}: no video has the {span} frames a window needs")
        rng = np.random.default_rng(seed)
        if split == "video":
            order = rng.permutation(len(per_video))
            cuts = np.round(np.cumsum(FRACTIONS)[:-1] * len(order)).astype(int)
            part = np.empty(len(per_video), np.int64)
            for s, vids in enumerate(np.split(order, cuts)):
                part[vids] = s
            window_part = part[self.window_video]
        else:
            order = rng.permutation(W)
            cuts = np.round(np.cumsum(FRACTIONS)[:-1] * W).astype(int)
            window_part = np.empty(W, np.int64)
            for s, ids in enumerate(np.split(order, cuts)):
                window_part[ids] = s
        self._ids: Dict[str, np.ndarray] = {}
        for s, split_name in enumerate(SPLITS):
            ids = np.flatnonzero(window_part == s)
            if num_windows is not None:  # a seeded subset, 60/20/20 of num_windows
                want = int(round(num_windows * FRACTIONS[s]))
                if want < len(ids):
                    ids = np.sort(rng.choice(ids, size=want, replace=False))
            self._ids[split_name] = ids

    def split_ids(self, split: str) -> torch.Tensor:
        if split not in self._ids:
            raise DataError(f"split: expected one of {SPLITS}, got {split!r}")
        return torch.from_numpy(self._ids[split]).to(torch.int64)

    def gather(self, ids: torch.Tensor):
        """Window ids (B,) -> coords (B, T, K, 2) int64, visible (B, T, K) bool (CPU tensors)."""
        frames = self.window_start[ids.numpy()][:, None] + np.arange(self.T) * self.step       # (B, T)
        coords = torch.from_numpy(np.asarray(self.cache.coords[frames], dtype=np.int64))
        visible = torch.from_numpy(np.asarray(self.cache.visible[frames], dtype=bool))
        return coords, visible

    def summary(self) -> dict:
        c = self.cache
        return {"data": self.name, "videos": len(c.names), "frames": c.num_frames, "window_frames": self.T,
                "frame_step": self.step, "windows": {s: int(len(i)) for s, i in self._ids.items()},
                "sources": sorted(set(c.sources))}


class Batches:
    """Batches of (coords, visible, window ids) on `device`, ready for ops.noisy_pair.

    shuffle: a permutation seeded by (seed, epoch), so a resumed run replays the same order. Each global
    batch is cut into `world` shards and rank r takes ids[r::world] (DDP ranks render disjoint parts).
    drop_last keeps only full global batches."""

    def __init__(self, data: Dataset, split: str, batch_size: int, device, *, epoch: int, seed: int,
                 shuffle: bool, drop_last: bool, rank: int = 0, world: int = 1):
        ids = data.split_ids(split)
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


def open_data(spec: str, *, step: int, split: str = "video", seed: int = 0, num_windows: Optional[int] = None,
              T: int = 5) -> Dataset:
    """'synthetic' (generated motion), a cache file from `posedenoise.prepare`, or a Penn Action folder."""
    if spec == "synthetic":
        from .synthetic import generate_videos
        cache = build_cache(generate_videos(SYNTHETIC_VIDEOS, (60, 150), seed=0))
    elif os.path.isdir(spec):
        from .penn_action import read_folder
        cache = build_cache(read_folder(spec))
    elif os.path.isfile(spec):
        cache = load_cache(spec)
    else:
        raise DataError(f"{spec}: expected 'synthetic', a cache file or a Penn Action folder")
    return Dataset(cache, T=T, step=step, split=split, seed=seed, num_windows=num_windows, name=spec)
