"""PCK results that add up exactly across batches (and across DDP ranks).

A keypoint counts when it is visible in the ground truth and its frame has a normalising length L (SPEC
section 5). It is correct at alpha when ||pred - gt||_2 <= alpha * L (note: <=).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Sequence, Tuple

import torch

from .layout import POSE25, group_indices


@dataclass
class PCKResult:
    """Counts on the device that computed them: adding results never syncs; reading one (overall, per_keypoint,
    ..., or cpu()) does, once. Reading a result that counted a heatmap holding a NaN raises ValueError."""

    alphas: Tuple[float, ...]
    hits: torch.Tensor          # (K, A) int64: correct keypoints per keypoint and alpha
    counts: torch.Tensor        # (K,) int64: keypoints counted
    norm_sum: torch.Tensor      # () float64: sum of L over the frames counted
    frames: torch.Tensor        # () int64: frames counted
    nan_maps: torch.Tensor = field(default_factory=lambda: torch.zeros((), dtype=torch.int64))
    # () int64: counted heatmaps that held a NaN (the fused kernels see it in their one read)

    @classmethod
    def zeros(cls, alphas: Sequence[float], num_keypoints: int, device="cpu") -> "PCKResult":
        """Nothing counted yet (a DDP rank whose share of a split is empty)."""
        z = lambda *shape, dtype=torch.int64: torch.zeros(shape, dtype=dtype, device=device)  # noqa: E731
        return cls(tuple(alphas), z(num_keypoints, len(alphas)), z(num_keypoints), z(dtype=torch.float64), z(), z())

    def __add__(self, other: "PCKResult") -> "PCKResult":
        if self.alphas != other.alphas or self.hits.shape != other.hits.shape:
            raise ValueError("PCK results with different alphas or keypoints cannot be added")
        return PCKResult(self.alphas, self.hits + other.hits, self.counts + other.counts,
                         self.norm_sum + other.norm_sum, self.frames + other.frames, self.nan_maps + other.nan_maps)

    def cpu(self) -> "PCKResult":
        """The result on the host, in one copy (the float64 sum travels as its bits), checked for NaN maps."""
        K, A = self.hits.shape
        ints = torch.cat([self.hits.flatten(), self.counts, self.frames.reshape(1), self.nan_maps.reshape(1),
                          self.norm_sum.reshape(1).view(torch.int64)]).cpu()
        out = PCKResult(self.alphas, ints[:K * A].view(K, A), ints[K * A:K * A + K], ints[-1:].view(torch.float64)[0],
                        ints[-3], ints[-2])
        return out._checked()

    def _checked(self) -> "PCKResult":
        if int(self.nan_maps):
            raise ValueError(f"heatmaps: {int(self.nan_maps)} of the maps counted contain NaN (the argmax of such a "
                             "map is undefined)")
        return self

    @property
    def overall(self) -> torch.Tensor:
        """(A,) pooled over keypoints and frames; NaN if nothing was counted."""
        r = self._checked()
        return r.hits.sum(0).double() / r.counts.sum().double()

    @property
    def per_keypoint(self) -> torch.Tensor:
        """(K, A); NaN for keypoints never counted."""
        r = self._checked()
        return r.hits.double() / r.counts[:, None].double()

    @property
    def mean_threshold(self) -> torch.Tensor:
        """(A,) alpha * mean(L) in pixels over the frames counted."""
        r = self._checked()
        return torch.tensor(r.alphas, dtype=torch.float64) * (r.norm_sum / r.frames).cpu()

    def per_group(self, layout: Sequence[str] = POSE25) -> Dict[str, torch.Tensor]:
        """Report group (nose, ear, ...) -> (A,) PCK pooled over the group's keypoints."""
        r = self._checked()
        return {g: r.hits[list(idx)].sum(0).double() / r.counts[list(idx)].sum().double()
                for g, idx in group_indices(layout).items()}

    def all_reduce(self) -> "PCKResult":
        """Sum over DDP ranks (call on every rank)."""
        import torch.distributed as dist
        for t in (self.hits, self.counts, self.norm_sum, self.frames, self.nan_maps):
            dist.all_reduce(t)
        return self

    def to_dict(self) -> dict:
        a = [f"{x:g}" for x in self.alphas]
        return {"overall": dict(zip(a, self.overall.tolist())), "counts": self.counts.tolist(),
                "per_keypoint": self.per_keypoint.tolist(), "mean_threshold_px": dict(zip(a, self.mean_threshold.tolist()))}
