"""pose-mlp: a whole-pose residual MLP over the window's keypoints, posedenoise's own model (not the study's).

It reads what the classical filters read, each keypoint's position in every frame and whether it was detected
(models/inputs.py: the argmax of its map, or the noisy keypoints themselves while training), and starts as
the best of them: its output is the mean of each keypoint's present frames (the mean filter, missing frames
left out) plus a residual that an MLP computes from the whole window at once, every keypoint and frame
jointly, so it can use the skeleton (a wrist follows its elbow) and the motion (a mean lags a moving limb)
that a per-keypoint filter cannot see. The last layer starts at zero, so step 0 is the mean filter and
training can only move away from it where that lowers the loss.

Input features, per window (B windows): each frame's offset from its keypoint's present mean, in units of
OFFSET_PX pixels (T*K*2); the presence flags (T*K); the mean itself, centred on the map and scaled to
[-1, 1] (K*2; a keypoint present nowhere has 0 here and no offsets). Hidden: `depth` Linear + ReLU layers of
`width`. Output: T*K*2 offsets (OFFSET_PX units) added to the mean: sub-pixel (x, y) in heatmap pixels for
every frame, (B, T, K, 2). Measured behind the design (../shared/LEARNED_VS_FILTER.md): a 3 x 1024 MLP on
these inputs passes the mean filter on Penn Action within minutes on one CPU thread, where DeciWatch at
the study's batch of 16 only reaches it; it needs many windows seen, hence its recipe's batch of 256.

Its training recipe (RECIPE; the trainer's defaults for this model, each overridable by a flag): batch 256,
Adam at 1e-3 with a cosine decay over the run (no plateau schedule), 30 epochs of fresh noise (about 10,500
steps on Penn Action); the demo: 20 epochs of every synthetic window.
"""
import torch
import torch.nn as nn

from .init import glorot_
from .inputs import fill_missing, read_coords

OFFSET_PX = 4.0   # offsets from the mean are a few pixels (shifts of 3k px): this unit keeps features near 1


class PoseMLP(nn.Module):
    """Heatmaps (B, T, K, H, W) or (x, y, present) triples (B, T, K, 3) -> coordinates (B, T, K, 2)."""

    input_kind = "coords"
    output_kind = "coords"
    # The demo (synthetic data) trains on all its 20,408 windows (None): 45 steps an epoch at this batch.
    RECIPE = {"batch_size": 256, "epochs": 30, "schedule": "cosine", "synthetic_epochs": 20,
              "synthetic_windows": None}
    ZERO_INIT = ("out.weight",)   # the rest is the study's Glorot rule

    def __init__(self, num_keypoints: int = 25, window: int = 5, size: int = 56, width: int = 1024, depth: int = 3):
        super().__init__()
        if width < 1 or depth < 1:
            raise ValueError(f"pose-mlp: expected width >= 1 and depth >= 1, got width={width}, depth={depth}")
        self.num_keypoints, self.window, self.size = num_keypoints, window, size
        T, K = window, num_keypoints
        layers, n_in = [], T * K * 3 + K * 2
        for _ in range(depth):
            layers += [nn.Linear(n_in, width), nn.ReLU()]
            n_in = width
        self.hidden = nn.Sequential(*layers)
        self.out = nn.Linear(n_in, T * K * 2)
        glorot_(self)
        nn.init.zeros_(self.out.weight)       # step 0 is the mean filter over the present frames

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xy, present = read_coords(x)                                               # (B, T, K, 2), (B, T, K)
        B, T, K, _ = xy.shape
        if (T, K) != (self.window, self.num_keypoints):
            raise ValueError(f"pose-mlp: input has shape {tuple(x.shape)}; the model was built for "
                             f"window={self.window}, num_keypoints={self.num_keypoints}")
        filled, mean, any_present = fill_missing(xy, present)                      # mean (B, 1, K, 2)
        centre = (self.size - 1) / 2
        anchor = (mean - centre) / centre * any_present[..., None]                 # (B, 1, K, 2) in [-1, 1]
        offsets = (filled - mean) / OFFSET_PX                                      # (B, T, K, 2)
        feats = torch.cat([offsets.flatten(1), present.to(xy.dtype).flatten(1), anchor.flatten(1)], dim=1)
        residual = self.out(self.hidden(feats)).view(B, T, K, 2)
        return mean + residual * OFFSET_PX
