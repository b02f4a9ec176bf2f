"""Bidirectional ConvLSTM heatmap denoisers, after UniPose-LSTM (Artacho and Savakis, CVPR 2020).

The cell is the ConvLSTM of Shi et al. (NeurIPS 2015) with peepholes:
    i = sigmoid(W_xi * x + W_hi * h + w_ci o c_{t-1} + b_i)
    f = sigmoid(W_xf * x + W_hf * h + w_cf o c_{t-1} + b_f)
    c = f o c_{t-1} + i o tanh(W_xc * x + W_hc * h + b_c)
    o = sigmoid(W_xo * x + W_ho * h + w_co o c_t + b_o)
    h = o o tanh(c)
with 3x3 'same' convolutions (K -> K per gate; the four gates are one conv of 4K channels for x and one
for h), per-pixel peephole weights w_c* and biases b_* of shape (K, H, W). One cell runs forward through
the window and one backward. Per frame each direction's hidden state goes through its own trunk
Conv3x3(K -> 128), Conv3x3(128 -> 128), Conv3x3(128 -> 128), each with ReLU (SPEC: "each direction's
hidden state goes through"; separate trunks keep the two directions' features independent until the merge).
merge="sum": per direction Conv1x1(128 -> 128), Conv1x1(128 -> K), ReLU after each, summed.
merge="concat": concatenation (256 channels), Conv1x1(256 -> 128), Conv1x1(128 -> K), ReLU after each.
Deviation: the peephole weights are 3-D tensors and so get Glorot initialisation like every weight with
more than one dimension (the study's rule), not zeros.
"""
import torch
import torch.nn as nn

from .init import glorot_


class ConvLSTMCell(nn.Module):
    def __init__(self, channels: int, size: int):
        super().__init__()
        self.conv_x = nn.Conv2d(channels, 4 * channels, 3, padding=1, bias=False)
        self.conv_h = nn.Conv2d(channels, 4 * channels, 3, padding=1, bias=False)
        self.peephole = nn.Parameter(torch.empty(3, channels, size, size))    # i, f, o
        self.bias = nn.Parameter(torch.empty(4, channels, size, size))        # i, f, c, o

    def forward(self, x, state):
        h, c = state                                                          # (B, K, H, W) each
        gi, gf, gc, go = (self.conv_x(x) + self.conv_h(h)).chunk(4, dim=1)
        i = torch.sigmoid(gi + self.peephole[0] * c + self.bias[0])
        f = torch.sigmoid(gf + self.peephole[1] * c + self.bias[1])
        c = f * c + i * torch.tanh(gc + self.bias[2])
        o = torch.sigmoid(go + self.peephole[2] * c + self.bias[3])
        return o * torch.tanh(c), c


def _trunk(k: int, width: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(k, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1),
                         nn.ReLU(), nn.Conv2d(width, width, 3, padding=1), nn.ReLU())


def _head(cin: int, width: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, width, 1), nn.ReLU(), nn.Conv2d(width, k, 1), nn.ReLU())


class BiConvLSTM(nn.Module):
    """(B, T, K, H, W) -> (B, T, K, H, W)."""

    output_kind = "heatmaps"

    def __init__(self, num_keypoints: int = 25, window: int = 5, size: int = 56, merge: str = "sum",
                 width: int = 128):
        super().__init__()
        if merge not in ("sum", "concat"):
            raise ValueError(f"merge: expected 'sum' or 'concat', got {merge!r}")
        K = num_keypoints
        self.num_keypoints, self.window, self.size, self.merge = K, window, size, merge
        self.cells = nn.ModuleList([ConvLSTMCell(K, size), ConvLSTMCell(K, size)])     # forward, backward
        self.trunks = nn.ModuleList([_trunk(K, width), _trunk(K, width)])
        if merge == "sum":
            self.heads = nn.ModuleList([_head(width, width, K), _head(width, width, K)])
        else:
            self.heads = nn.ModuleList([_head(2 * width, width, K)])
        glorot_(self)

    def _run(self, cell, frames):
        h = c = torch.zeros_like(frames[0])
        out = []
        for x in frames:
            h, c = cell(x, (h, c))
            out.append(h)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, K, H, W = x.shape
        frames = list(x.unbind(1))
        fwd = torch.stack(self._run(self.cells[0], frames), 1)                  # (B, T, K, H, W)
        bwd = torch.stack(self._run(self.cells[1], frames[::-1])[::-1], 1)
        feats = [trunk(h.reshape(B * T, K, H, W)) for trunk, h in zip(self.trunks, (fwd, bwd))]
        if self.merge == "sum":
            y = self.heads[0](feats[0]) + self.heads[1](feats[1])
        else:
            y = self.heads[0](torch.cat(feats, 1))
        return y.view(B, T, K, H, W)


class BiConvLSTMSum(BiConvLSTM):
    def __init__(self, **kw):
        super().__init__(merge="sum", **kw)


class BiConvLSTMConcat(BiConvLSTM):
    def __init__(self, **kw):
        super().__init__(merge="concat", **kw)
