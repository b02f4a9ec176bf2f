"""SPEC section 2: source pixels -> integer heatmap pixels, per frame, vectorised over all frames.

From the visible keypoints of a frame: their bounding box; each side expanded by 10% of the box's extent
on that axis; made square by extending the shorter side symmetrically about the centre; the square
[lo, lo + side] mapped linearly onto [0, size - 1]:

    pixel = (p - lo) / side * (size - 1),   rounded half to even (np.rint), clipped to [0, size - 1].

A frame with fewer than 2 visible keypoints, or a box of zero extent, gets every keypoint marked missing;
it stays in its video so that windows stay contiguous, with every coordinate (0, 0). In the other frames
invisible keypoints keep their (mapped, clipped) coordinates. Non-finite coordinates count as invisible.
"""
from __future__ import annotations

import numpy as np

MARGIN = 0.10


def to_heatmap_space(xy: np.ndarray, visible: np.ndarray, size: int = 56):
    """xy (F, K, 2) float, visible (F, K) bool -> (coords (F, K, 2) int16 in [0, size), visible (F, K) bool)."""
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
        safe_side = np.where(ok, side, 1.0)
        origin = np.where(ok[:, None], centre - safe_side[:, None] / 2, 0.0)
        pix = (np.nan_to_num(xy) - origin[:, None, :]) / safe_side[:, None, None] * (size - 1)
    coords = np.clip(np.rint(pix), 0, size - 1).astype(np.int16)
    coords[~ok] = 0                                                     # frames without a box: (0, 0)
    return coords, vis & ok[:, None]
