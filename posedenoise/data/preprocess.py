"""SPEC section 2: source pixels -> heatmap pixels, per frame, vectorised over all frames. The one place
that holds the crop rule: pretraining's caches, paired data and `denoise` crop by it.

From the visible keypoints of a frame: their bounding box; each side expanded by 10% of the box's extent
on that axis; made square by extending the shorter side symmetrically about the centre; the square
[lo, lo + side] mapped linearly onto [0, size - 1], one scale for both axes:

    pixel = (p - lo) / side * (size - 1)        and back:   p = pixel * side / (size - 1) + lo

Pretraining rounds the pixels half to even (np.rint) and clips them to [0, size - 1]. A frame with fewer
than 2 visible keypoints, or a box of zero extent, has no box: in a cache every keypoint of it is marked
missing (it stays in its video so that windows stay contiguous, with every coordinate (0, 0)); in the
other frames invisible keypoints keep their (mapped, clipped) coordinates. Non-finite coordinates count as
invisible.

An estimator's output (paired data, denoise) is cropped by the same rule from the estimator's own present
keypoints (the ground truth is not there at inference) and kept sub-pixel; a frame without a box borrows
the nearest frame's, and the boxes can be smoothed over time (crop_boxes' `smooth`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MARGIN = 0.10


@dataclass
class Boxes:
    """Per frame, the square a frame is cropped by: origin (F, 2) = (x, y) of its lo corner and side (F,), in
    source pixels; ok (F,): the frame had a box of its own (>= 2 visible keypoints, extent > 0)."""
    origin: np.ndarray
    side: np.ndarray
    ok: np.ndarray

    def as_array(self) -> np.ndarray:
        """(F, 3) float64: x0, y0, side (what paired caches and denoise's outputs store)."""
        return np.concatenate([self.origin, self.side[:, None]], axis=1)


def crop_boxes(xy: np.ndarray, visible: np.ndarray, smooth: int = 0) -> Boxes:
    """The rule's box of every frame. xy (F, K, 2), visible (F, K) bool.

    smooth = 0: each frame its own box; frames without one get origin (0, 0) and side 1 (a cache marks
    them missing). smooth = n >= 1 (for an estimator's output): frames without a box take the nearest
    frames' (centre and side interpolated linearly in time, held at the ends), then centre and side are
    averaged over the 2n + 1 frames around each (fewer at the ends), so a jittering estimate does not shake
    the crop. smooth = -1: only the filling, no averaging."""
    xy = np.asarray(xy, dtype=np.float64)
    vis = np.asarray(visible, dtype=bool) & np.isfinite(xy).all(-1)
    inf = np.inf
    lo = np.where(vis[..., None], xy, inf).min(1)                     # (F, 2)
    hi = np.where(vis[..., None], xy, -inf).max(1)
    with np.errstate(invalid="ignore"):
        ext = hi - lo
        lo, hi = lo - MARGIN * ext, hi + MARGIN * ext
        side = (hi - lo).max(1)                                        # (F,)
        centre = (lo + hi) / 2
    ok = (vis.sum(1) >= 2) & np.isfinite(side) & (side > 0)
    if smooth and ok.any():
        t, have = np.arange(len(ok)), np.flatnonzero(ok)
        track = np.stack([np.interp(t, have, v[have]) for v in (centre[:, 0], centre[:, 1], side)], axis=1)
        if smooth > 0:
            n = int(smooth)
            padded = np.concatenate([np.zeros((1, 3)), np.cumsum(track, axis=0)])
            a, b = np.clip(t - n, 0, len(t)), np.clip(t + n + 1, 0, len(t))
            track = (padded[b] - padded[a]) / (b - a)[:, None]
        centre, side = track[:, :2], track[:, 2]
        filled = np.ones_like(ok)
    else:
        filled = ok
    side = np.where(filled, side, 1.0)
    origin = np.where(filled[:, None], centre - side[:, None] / 2, 0.0)
    return Boxes(origin, side, ok)


def to_grid(xy: np.ndarray, boxes: Boxes, size: int = 56) -> np.ndarray:
    """Source pixels (F, K, 2) -> heatmap pixels (F, K, 2) float64, sub-pixel and unclipped."""
    return (np.asarray(xy, np.float64) - boxes.origin[:, None, :]) / boxes.side[:, None, None] * (size - 1)


def to_image(pixels: np.ndarray, boxes: Boxes, size: int = 56) -> np.ndarray:
    """Heatmap pixels (F, K, 2) -> source pixels (F, K, 2) float64: to_grid's inverse."""
    return np.asarray(pixels, np.float64) * boxes.side[:, None, None] / (size - 1) + boxes.origin[:, None, :]


def to_heatmap_space(xy: np.ndarray, visible: np.ndarray, size: int = 56):
    """xy (F, K, 2) float, visible (F, K) bool -> (coords (F, K, 2) int16 in [0, size), visible (F, K) bool)."""
    vis = np.asarray(visible, dtype=bool) & np.isfinite(np.asarray(xy, np.float64)).all(-1)
    boxes = crop_boxes(xy, vis)
    with np.errstate(invalid="ignore"):
        pix = to_grid(np.nan_to_num(np.asarray(xy, np.float64)), boxes, size)
    coords = np.clip(np.rint(pix), 0, size - 1).astype(np.int16)
    coords[~boxes.ok] = 0                                               # frames without a box: (0, 0)
    return coords, vis & boxes.ok[:, None]
