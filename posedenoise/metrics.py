"""PCK results that add up exactly across batches (and across DDP ranks).

A keypoint counts when it is visible in the ground truth and its frame has a normalising length L (SPEC
section 5). It is correct at alpha when ||pred - gt||_2 <= alpha * L (note: <=).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Sequence, Tuple

import torch

from .layout import POSE25, group_indices


@dataclass
class PCKResult:
    alphas: Tuple[float, ...]
    hits: torch.Tensor          # (K, A) int64: correct keypoints per keypoint and alpha
    counts: torch.Tensor        # (K,) int64: keypoints counted
    norm_sum: torch.Tensor      # () float64: sum of L over the frames counted
    frames: torch.Tensor        # () int64: frames counted

    @classmethod
    def zeros(cls, alphas: Sequence[float], num_keypoints: int) -> "PCKResult":
        """Nothing counted yet (a DDP rank whose share of a split is empty)."""
        z = torch.zeros((), dtype=torch.int64)
        return cls(tuple(alphas), torch.zeros((num_keypoints, len(alphas)), dtype=torch.int64),
                   torch.zeros(num_keypoints, dtype=torch.int64), torch.zeros((), dtype=torch.float64), z)

    def __add__(self, other: "PCKResult") -> "PCKResult":
        if self.alphas != other.alphas or self.hits.shape != other.hits.shape:
            raise ValueError("PCK results with different alphas or keypoints cannot be added")
        return PCKResult(self.alphas, self.hits + other.hits, self.counts + other.counts,
                         self.norm_sum + other.norm_sum, self.frames + other.frames)

    @property
    def overall(self) -> torch.Tensor:
        """(A,) pooled over keypoints and frames; NaN if nothing was counted."""
        return self.hits.sum(0).double() / self.counts.sum().double()

    @property
    def per_keypoint(self) -> torch.Tensor:
        """(K, A); NaN for keypoints never counted."""
        return self.hits.double() / self.counts[:, None].double()

    @property
    def mean_threshold(self) -> torch.Tensor:
        """(A,) alpha * mean(L) in pixels over the frames counted."""
        return torch.tensor(self.alphas, dtype=torch.float64) * (self.norm_sum / self.frames).cpu()

    def per_group(self, layout: Sequence[str] = POSE25) -> Dict[str, torch.Tensor]:
        """Report group (nose, ear, ...) -> (A,) PCK pooled over the group's keypoints."""
        return {g: self.hits[list(idx)].sum(0).double() / self.counts[list(idx)].sum().double()
                for g, idx in group_indices(layout).items()}

    def all_reduce(self) -> "PCKResult":
        """Sum over DDP ranks (call on every rank)."""
        import torch.distributed as dist
        for t in (self.hits, self.counts, self.norm_sum, self.frames):
            dist.all_reduce(t)
        return self

    def to_dict(self) -> dict:
        a = [f"{x:g}" for x in self.alphas]
        return {"overall": dict(zip(a, self.overall.tolist())), "counts": self.counts.tolist(),
                "per_keypoint": self.per_keypoint.tolist(), "mean_threshold_px": dict(zip(a, self.mean_threshold.tolist()))}
