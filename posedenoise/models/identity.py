"""identity: returns the noisy input unchanged, so the baseline (argmax of the noisy heatmaps) goes through
the same evaluation code as the trained models. No parameters; nothing to train."""
import torch
import torch.nn as nn


class Identity(nn.Module):
    """(B, T, K, H, W) -> the same tensor (not a copy)."""

    output_kind = "heatmaps"

    def __init__(self, num_keypoints: int = 25, window: int = 5, size: int = 56):
        super().__init__()
        self.num_keypoints, self.window, self.size = num_keypoints, window, size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x
