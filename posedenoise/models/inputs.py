"""What a coordinate model reads: each keypoint's position and whether it was detected at all.

A coordinate model (input_kind "coords") takes either
  heatmaps (B, T, K, H, W): the position is the argmax (ops.heatmap_argmax: ties to the first index), and
      the keypoint is present where its map holds anything above 0 (an all-zero map is "no detection": the
      simulation renders a missing keypoint so, and an estimator's empty map means the same); or
  triples (B, T, K, 3) = (x, y, present): what the trainer feeds when it simulates noise on coordinates
      directly (evaluation.batch_inputs), so that no heatmap is rendered only to be argmaxed again.
Both give the same (xy, present) for the same window: a rendered map's argmax is the keypoint it was
rendered at, and a missing keypoint reads (0, 0), absent, either way (tests/test_filters.py checks it).
"""
import torch

from .. import ops


def input_kind(model) -> str:
    """"coords" for a model that reads (x, y, present) triples, else "heatmaps" (a DDP wrapper is looked into)."""
    return getattr(getattr(model, "module", model), "input_kind", "heatmaps")


def as_triples(xy: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """(B, T, K, 2) positions and (B, T, K) presence -> (B, T, K, 3) float32 (x, y, present); a missing
    keypoint is (0, 0, 0), as the argmax of its all-zero map reads."""
    p = present.to(torch.float32)[..., None]
    return torch.cat([xy.to(torch.float32) * p, p], dim=-1)


@torch.no_grad()
def read_coords(x: torch.Tensor):
    """heatmaps (B, T, K, H, W) or triples (B, T, K, 3) -> (xy (B, T, K, 2) float32, present (B, T, K) bool).
    No NaN check on heatmaps (a device sync): the kernels or the checked input rendered them."""
    if x.dim() == 4 and x.shape[-1] == 3:
        return x[..., :2].float(), x[..., 2] > 0
    if x.dim() != 5:
        raise ValueError(f"expected heatmaps (B, T, K, H, W) or coordinates (B, T, K, 3) = (x, y, present), got "
                         f"shape {tuple(x.shape)}")
    present = x.flatten(-2).amax(-1) > 0
    return ops.heatmap_argmax(x, check_nan=False), present


def fill_missing(xy: torch.Tensor, present: torch.Tensor):
    """Missing frames of each keypoint take the mean of its present frames in the window, so a filter never
    averages a missing frame's (0, 0) in. -> (filled (B, T, K, 2), mean (B, 1, K, 2), any_present (B, 1, K)).
    A keypoint present in no frame keeps its input and stays missing (any_present False)."""
    w = present.to(xy.dtype)[..., None]                                     # (B, T, K, 1)
    n = w.sum(1, keepdim=True)                                              # (B, 1, K, 1)
    mean = (xy * w).sum(1, keepdim=True) / n.clamp(min=1)
    filled = torch.where(present[..., None] | (n == 0), xy, mean)
    return filled, mean, n[..., 0] > 0
