"""conv3d: one 3D convolution over (time, y, x) with the keypoints as channels, then ReLU.

Source: the study's simplest temporal heatmap denoiser (SPEC section 6); no paper architecture to follow.
Conv3d(K -> K, kernel (5, 5, 5), padding 'same'), so every output voxel sees +-2 frames and +-2 pixels of
every keypoint's map; ReLU keeps the output a non-negative heatmap. Initialisation: Glorot uniform weight,
zero bias (the study's rule). No deviation.
"""
import torch
import torch.nn as nn

from .init import glorot_


class Conv3d(nn.Module):
    """(B, T, K, H, W) -> (B, T, K, H, W). Works for any T, H, W (`window` and `size` are recorded)."""

    output_kind = "heatmaps"

    def __init__(self, num_keypoints: int = 25, window: int = 5, size: int = 56, kernel: int = 5):
        super().__init__()
        self.num_keypoints, self.window, self.size = num_keypoints, window, size
        self.conv = nn.Conv3d(num_keypoints, num_keypoints, kernel, padding="same")
        glorot_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x.transpose(1, 2))            # (B, K, T, H, W)
        return torch.relu(y).transpose(1, 2)        # (B, T, K, H, W)
