"""identity: returns the noisy input, so the baseline goes through the same evaluation code."""
import torch
import torch.nn as nn


class Identity(nn.Module):
    output_kind = "heatmaps"

    def __init__(self, num_keypoints: int = 25, window: int = 5, size: int = 56):
        super().__init__()
        self.num_keypoints, self.window, self.size = num_keypoints, window, size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x
