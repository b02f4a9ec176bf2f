"""DeciWatch (Zeng et al., ECCV 2022): sample, denoise, recover, on coordinates.

Input heatmaps (B, T, K, H, W) -> argmax coordinates (posedenoise.ops.heatmap_argmax, no gradient: the
model sees exactly what a heatmap model's evaluation sees), normalised to [0, 1] by dividing by size - 1.
- Sampling: frames 0, N, 2N, ..., T - 1 (interval N; (T - 1) % N == 0 is required).
- DenoiseNet: Linear(2K -> d) + sinusoidal positional encoding over the window, a transformer encoder over
  all T positions with the unsampled frames masked as keys, Linear(d -> 2K), plus the input (residual).
- RecoverNet: linear interpolation of the denoised samples to all T frames, Conv1d(2K -> d, 5, padding 2)
  over time + positional encoding, a transformer decoder attending to the encoder's memory (unsampled
  frames masked), Linear(d -> 2K), plus the interpolation (residual).
Output: coordinates (B, T, K, 2) in heatmap pixels. Sizes as the study: d = 128, 4 heads, feed-forward 256,
5 encoder and 5 decoder layers, dropout 0.1. Deviation from the official code: one window of T frames is
the whole sequence (the official model slides over longer ones); missing keypoints are not masked in the
input (their argmax is whatever the all-zero map gives, (0, 0)), and the loss ignores them.
"""
import math

import torch
import torch.nn as nn

from .. import ops
from .init import glorot_


def sample_indices(window: int, interval: int) -> torch.Tensor:
    """Frames DeciWatch sees: 0, N, 2N, ..., window - 1."""
    if interval < 1 or (window - 1) % interval:
        raise ValueError(f"deciwatch: the sampling interval N={interval} must divide window - 1 = {window - 1} "
                         f"so that both ends are sampled (for a {window}-frame window, N=5 cannot work; "
                         f"use N=4, 2 or 1)")
    return torch.arange(0, window, interval)


def interpolate(samples: torch.Tensor, idx: torch.Tensor, window: int) -> torch.Tensor:
    """Linear interpolation in time: samples (B, S, D) at frames idx (S,) -> (B, window, D)."""
    t = torch.arange(window, device=samples.device)
    right = torch.searchsorted(idx.to(samples.device), t, right=False).clamp(1, len(idx) - 1)   # (T,)
    left = right - 1
    t0, t1 = idx.to(samples.device)[left], idx.to(samples.device)[right]
    w = ((t - t0).to(samples.dtype) / (t1 - t0).to(samples.dtype))[None, :, None]
    return samples[:, left] * (1 - w) + samples[:, right] * w


def positional_encoding(length: int, dim: int) -> torch.Tensor:
    """The sinusoidal encoding of Vaswani et al.: (length, dim)."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
    return pe


class DeciWatch(nn.Module):
    output_kind = "coords"

    def __init__(self, num_keypoints: int = 25, window: int = 5, size: int = 56, interval: int = 4,
                 hidden: int = 128, heads: int = 4, feedforward: int = 256, layers: int = 5, dropout: float = 0.1):
        super().__init__()
        self.num_keypoints, self.window, self.size = num_keypoints, window, size
        self.register_buffer("idx", sample_indices(window, interval), persistent=False)
        seen = torch.zeros(window, dtype=torch.bool)
        seen[self.idx] = True
        self.register_buffer("unseen", ~seen, persistent=False)                      # (T,)
        self.register_buffer("pe", positional_encoding(window, hidden), persistent=False)
        D = 2 * num_keypoints
        layer = dict(d_model=hidden, nhead=heads, dim_feedforward=feedforward, dropout=dropout, batch_first=True)
        self.embed = nn.Linear(D, hidden)
        self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(**layer), layers, enable_nested_tensor=False)
        self.denoise_out = nn.Linear(hidden, D)
        self.recover_in = nn.Conv1d(D, hidden, 5, padding=2)
        self.decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(**layer), layers)
        self.recover_out = nn.Linear(hidden, D)
        glorot_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, K = x.shape[:3]
        scale = self.size - 1
        with torch.no_grad():
            xy = ops.heatmap_argmax(x) / scale                                         # (B, T, K, 2)
        seq = xy.reshape(B, T, 2 * K) * (~self.unseen)[None, :, None]                   # unseen frames zeroed
        mask = self.unseen[None].expand(B, T)                                          # True = ignored key
        memory = self.encoder(self.embed(seq) + self.pe, src_key_padding_mask=mask)    # (B, T, d)
        denoised = self.denoise_out(memory) + seq                                      # (B, T, 2K)
        coarse = interpolate(denoised[:, self.idx], self.idx, T)                       # (B, T, 2K)
        tgt = self.recover_in(coarse.transpose(1, 2)).transpose(1, 2) + self.pe        # (B, T, d)
        out = self.recover_out(self.decoder(tgt, memory, memory_key_padding_mask=mask)) + coarse
        return out.view(B, T, K, 2) * scale
