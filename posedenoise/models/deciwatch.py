"""DeciWatch (Zeng et al., "DeciWatch: A Simple Baseline for 10x Efficient 2D and 3D Pose Estimation",
ECCV 2022): sample, denoise, recover, on coordinates.

Input heatmaps (B, T, K, H, W) -> argmax coordinates (posedenoise.ops.heatmap_argmax under no_grad, so the
model sees exactly what the evaluation of a heatmap model sees; or the (x, y, present) triples the trainer
feeds a coordinate model, models/inputs.py), a missing keypoint's frames filled with the mean of its present
frames (as the filters read them: an all-zero map is no detection, not the point (0, 0)), normalised and
flattened to (B, T, 2K). Normalisation (`normalise`):
  "window" (default): each keypoint's offset from its mean over the sampled frames, in units of
      OFFSET_PX = 4 pixels; the output is mapped back the same way. The residual connections then carry
      offsets of about one unit, and averaging is a small step from the identity.
  "map" (the study's): divided by size - 1, to [0, 1].
Measured (benchmarks/deciwatch_ablation.py: Penn Action, k = 1, interval 1, batch 16, 2,000 steps;
validation MSE in px^2 over all elements, where the noisy input scores 3.72 and the present-frame mean 1.13):
with "map" at the study's lr 1e-3 the model stays at or above the identity whatever else changes (4.01 as it
was, with Glorot heads and missing keypoints read as (0, 0); 3.96 with them filled; 3.74 with zero heads; 3.62
also without dropout): it never learns to average. At lr 1e-4 it learns, slowly (3.40 after 1,000 steps, 1.95
after 2,000): post-norm layers at 1e-3 without warm-up are part of the limit. With "window" it passes the
mean within 500 steps (1.11 at 500, 1.01 at 2,000, zero heads; 1.29 at 500 with Glorot heads).
- Sampling: frames 0, N, 2N, ..., T - 1 with interval N (default 4); (T - 1) % N == 0 is required so that
  both ends are sampled, and is checked at construction (for T = 5, N = 5 cannot work).
- DenoiseNet: the unsampled frames are zeroed; Linear(2K -> d) + sinusoidal positional encoding over the
  window; a transformer encoder over all T positions with the unsampled frames masked as keys
  (src_key_padding_mask); Linear(d -> 2K) plus the (zeroed) input as residual.
- RecoverNet: linear interpolation of the denoised samples to all T frames; Conv1d(2K -> d, kernel 5,
  padding 2) over time + the same positional encoding; a transformer decoder whose cross-attention reads
  the encoder memory (unsampled frames masked, memory_key_padding_mask); Linear(d -> 2K) plus the
  interpolation as residual.
Output: coordinates (B, T, K, 2), (x, y) in heatmap pixels. Sizes as in the study: d = 128, 4 heads,
feed-forward 256, 5 encoder and 5 decoder layers (post-norm, ReLU), dropout 0.1.

Deviations from the official code, with reasons: one window of T frames is the whole sequence (the study
denoises 5-frame windows; the official model slides a longer window over a video); missing keypoints are not
masked in the input but filled (above), because the study's loss already ignores them;
torch's nn.Transformer layers (post-norm) stand in for the official DETR-style ones (standard, fused kernels,
compile cleanly), so the positional encoding is added once to the layer inputs rather than to the queries and
keys of every layer; initialisation is the study's (Glorot uniform for every weight with more than one
dimension, zero biases, LayerNorm scales one) except the two output layers, which start at zero: both end
in a residual, so the model starts as its input (the denoised samples) and their interpolation. Glorot-random
heads, scaled by 55 px under "map", put the first predictions about 113 px off (a first loss of ~3,800 px^2
against the identity's ~4).
"""
import math

import torch
import torch.nn as nn

from .init import glorot_
from .inputs import fill_missing, read_coords

OFFSET_PX = 4.0          # normalise="window": offsets from the window's mean in this unit (shifts are 3k px)
NORMALISE = ("window", "map")


def sample_indices(window: int, interval: int) -> torch.Tensor:
    """The frames DeciWatch sees: 0, N, 2N, ..., window - 1 (long, (S,) with S = (window - 1) / N + 1)."""
    if window < 2:
        raise ValueError(f"deciwatch: window must be at least 2 frames (both ends are sampled), got {window}")
    if interval < 1 or (window - 1) % interval:
        valid = [n for n in range(1, window) if (window - 1) % n == 0]
        raise ValueError(f"deciwatch: the sampling interval N={interval} must divide window - 1 = {window - 1} "
                         f"so that both ends of the window are sampled (so N=5 cannot work for a 5-frame "
                         f"window); valid intervals for window={window}: {valid}")
    return torch.arange(0, window, interval)


def sample_mask(window: int, interval: int) -> torch.Tensor:
    """(window,) bool, True at the sampled frames 0, N, 2N, ..., window - 1."""
    mask = torch.zeros(window, dtype=torch.bool)
    mask[sample_indices(window, interval)] = True
    return mask


def interpolate(samples: torch.Tensor, interval: int) -> torch.Tensor:
    """Linear interpolation in time between samples N frames apart: (B, S, D) -> (B, (S - 1) N + 1, D).

    Frame t = kN + r (0 <= r < N) is (1 - r/N) * samples[k] + (r/N) * samples[k + 1]; the sampled frames are
    returned exactly. (A gather rather than F.interpolate(mode="linear", align_corners=True), which computes
    the same: with it, the backward that inductor generated for this model on CPU crashed with a segmentation
    fault in its fused upsample_linear1d-backward kernel, torch 2.13; a two-line repro did not crash.)
    """
    S = samples.shape[1]
    if S == 1:
        return samples
    t = torch.arange((S - 1) * interval + 1, device=samples.device)
    k = torch.div(t, interval, rounding_mode="floor").clamp(max=S - 2)          # left sample of frame t
    w = ((t - k * interval).to(samples.dtype) / interval)[None, :, None]        # (1, T, 1), weight of the right
    return samples[:, k] * (1 - w) + samples[:, k + 1] * w


def positional_encoding(length: int, dim: int) -> torch.Tensor:
    """The sinusoidal encoding of Vaswani et al.: (length, dim)."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
    return pe


class DeciWatch(nn.Module):
    """Heatmaps (B, T, K, H, W) -> denoised coordinates (B, T, K, 2), (x, y) in heatmap pixels."""

    input_kind = "coords"
    output_kind = "coords"
    ZERO_INIT = ("denoise_out.weight", "recover_out.weight")   # residual heads: start as the input

    def __init__(self, num_keypoints: int = 25, window: int = 5, size: int = 56, interval: int = 4,
                 hidden: int = 128, heads: int = 4, feedforward: int = 256, layers: int = 5, dropout: float = 0.1,
                 normalise: str = "window"):
        super().__init__()
        if normalise not in NORMALISE:
            raise ValueError(f"deciwatch: normalise must be one of {NORMALISE}, got {normalise!r}")
        self.normalise = normalise
        self.num_keypoints, self.window, self.size, self.interval = num_keypoints, window, size, interval
        seen = sample_mask(window, interval)                                            # (T,), checks N
        self.register_buffer("seen", seen, persistent=False)
        self.register_buffer("pe", positional_encoding(window, hidden), persistent=False)   # (T, d)
        D = 2 * num_keypoints
        layer = dict(d_model=hidden, nhead=heads, dim_feedforward=feedforward, dropout=dropout, batch_first=True)
        # DenoiseNet
        self.denoise_in = nn.Linear(D, hidden)
        self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(**layer), layers, enable_nested_tensor=False)
        self.denoise_out = nn.Linear(hidden, D)
        # RecoverNet
        self.recover_in = nn.Conv1d(D, hidden, 5, padding=2)
        self.decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(**layer), layers)
        self.recover_out = nn.Linear(hidden, D)
        glorot_(self)
        for name in self.ZERO_INIT:
            nn.init.zeros_(self.get_parameter(name))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1:3] != (self.window, self.num_keypoints) or (x.dim() == 5 and x.shape[3:] != (self.size,) * 2):
            raise ValueError(f"deciwatch: input x (B, T, K, H, W) or (B, T, K, 3) has shape {tuple(x.shape)}; the "
                             f"model was built for window={self.window}, num_keypoints={self.num_keypoints}, "
                             f"size={self.size}")
        xy, present = read_coords(x)                                                # (B, T, K, 2), (B, T, K)
        B, T, K, _ = xy.shape
        # Filled from the sampled frames only: the others stay unseen, even through a missing keypoint's fill.
        xy, mean, _ = fill_missing(xy, present & self.seen[None, :, None])          # mean (B, 1, K, 2)
        origin, unit = (mean, OFFSET_PX) if self.normalise == "window" else (0.0, self.size - 1)
        seq = ((xy - origin) / unit).reshape(B, T, 2 * K) * self.seen[None, :, None]   # unseen frames zeroed
        ignore = (~self.seen)[None].expand(B, T)                                    # (B, T), True = masked key
        memory = self.encoder(self.denoise_in(seq) + self.pe, src_key_padding_mask=ignore)   # (B, T, d)
        denoised = self.denoise_out(memory) + seq                                   # (B, T, 2K)
        coarse = interpolate(denoised[:, ::self.interval], self.interval)           # (B, T, 2K)
        tgt = self.recover_in(coarse.transpose(1, 2)).transpose(1, 2) + self.pe     # (B, T, d)
        out = self.recover_out(self.decoder(tgt, memory, memory_key_padding_mask=ignore)) + coarse
        return out.view(B, T, K, 2) * unit + origin
