"""Bidirectional ConvLSTM heatmap denoisers, after UniPose-LSTM (Artacho and Savakis, CVPR 2020).

The cell is the ConvLSTM of Shi et al. (NeurIPS 2015) with peepholes (* is a 3x3 'same' convolution, o the
elementwise product):
    i_t = sigmoid(W_xi * x_t + W_hi * h_{t-1} + w_ci o c_{t-1} + b_i)
    f_t = sigmoid(W_xf * x_t + W_hf * h_{t-1} + w_cf o c_{t-1} + b_f)
    g_t = tanh(W_xc * x_t + W_hc * h_{t-1} + b_c)
    c_t = f_t o c_{t-1} + i_t o g_t
    o_t = sigmoid(W_xo * x_t + W_ho * h_{t-1} + w_co o c_t + b_o)
    h_t = o_t o tanh(c_t)
K -> K channels per gate; the four gates are fused into one Conv2d(K -> 4K) for x and one for h. The
peephole weights w_c* and the biases b_* are per pixel, (K, H, W) each. h_0 = c_0 = 0.

One cell runs forward through the window and one (its own parameters) backward. Per frame, each
direction's hidden state goes through its own trunk Conv3x3(K -> 128), Conv3x3(128 -> 128),
Conv3x3(128 -> 128), ReLU after each. The trunk is NOT shared between directions: the SPEC gives every
stage before the merge per direction ("each direction then has ..." for the sum heads), and separate
trunks keep the two directions' features independent until the merge, as a Keras Bidirectional wrapper
around the whole per-direction stack would (about 0.3 M more parameters than one shared trunk).
- merge="sum" (biconvlstm-sum): per direction Conv1x1(128 -> 128) + ReLU, Conv1x1(128 -> K) + ReLU; the two
  directions' outputs are summed.
- merge="concat" (biconvlstm-concat): the two 128-channel maps are concatenated (256 channels), then
  Conv1x1(256 -> 128) + ReLU, Conv1x1(128 -> K) + ReLU.

Initialisation (the study's rule, posedenoise.models.init.glorot_): Glorot uniform for every weight with more
than one dimension, and that includes the (K, H, W) peephole weights (the original ConvLSTM papers do not
prescribe their initialisation; zeros would also be defensible); every bias is zero, the per-pixel (K, H, W)
biases included. Deviation from UniPose-LSTM: no backbone or decoder (the input already is heatmaps), and
the LSTM is bidirectional with the two merges the study compares.
"""
import torch
import torch.nn as nn

from .init import glorot_


class ConvLSTMCell(nn.Module):
    """One step of the peephole ConvLSTM: x_t (B, K, H, W), (h, c) (B, K, H, W) each -> (h_t, c_t)."""

    def __init__(self, channels: int, size: int):
        super().__init__()
        K, S = channels, size
        self.conv_x = nn.Conv2d(K, 4 * K, 3, padding="same", bias=False)   # gates i, f, g, o from x
        self.conv_h = nn.Conv2d(K, 4 * K, 3, padding="same", bias=False)   # ... and from h
        # Zeros, not torch.empty: a cell used on its own must not compute on whatever memory held (NaN at
        # times). The models re-initialise them (glorot_) without an extra draw from the RNG here.
        self.w_ci = nn.Parameter(torch.zeros(K, S, S))                     # peepholes, per pixel
        self.w_cf = nn.Parameter(torch.zeros(K, S, S))
        self.w_co = nn.Parameter(torch.zeros(K, S, S))
        self.bias = nn.Parameter(torch.zeros(4 * K, S, S))                 # b_i, b_f, b_c, b_o stacked

    def forward(self, x, state):
        h, c = state                                                       # (B, K, H, W) each
        gi, gf, gg, go = (self.conv_x(x) + self.conv_h(h) + self.bias).chunk(4, dim=1)
        i = torch.sigmoid(gi + self.w_ci * c)
        f = torch.sigmoid(gf + self.w_cf * c)
        c = f * c + i * torch.tanh(gg)
        o = torch.sigmoid(go + self.w_co * c)
        return o * torch.tanh(c), c


def _trunk(k: int, width: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(k, width, 3, padding="same"), nn.ReLU(),
                         nn.Conv2d(width, width, 3, padding="same"), nn.ReLU(),
                         nn.Conv2d(width, width, 3, padding="same"), nn.ReLU())


def _head(cin: int, width: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, width, 1), nn.ReLU(), nn.Conv2d(width, k, 1), nn.ReLU())


def _run(cell: ConvLSTMCell, frames) -> torch.Tensor:
    """Run a cell over frames (a list of (B, K, H, W)) in the given order; hidden states (B, T, K, H, W)."""
    h = c = torch.zeros_like(frames[0])
    hs = []
    for x in frames:
        h, c = cell(x, (h, c))
        hs.append(h)
    return torch.stack(hs, 1)


class BiConvLSTM(nn.Module):
    """Bidirectional peephole ConvLSTM + per-frame conv trunk and heads: (B, T, K, H, W) -> same shape.

    `merge` is "sum" or "concat"; the subclasses BiConvLSTMSum and BiConvLSTMConcat fix it for the registry.
    Works for any window length T >= 1 (`window` is recorded, not enforced).
    """

    output_kind = "heatmaps"
    merge = "sum"

    def __init__(self, num_keypoints: int = 25, window: int = 5, size: int = 56, merge: str = None,
                 width: int = 128):
        super().__init__()
        merge = self.merge if merge is None else merge
        if merge not in ("sum", "concat"):
            raise ValueError(f"biconvlstm: merge must be 'sum' or 'concat', got {merge!r}")
        K = num_keypoints
        self.num_keypoints, self.window, self.size, self.merge = K, window, size, merge
        self.cells = nn.ModuleList([ConvLSTMCell(K, size), ConvLSTMCell(K, size)])   # forward, backward
        self.trunks = nn.ModuleList([_trunk(K, width), _trunk(K, width)])
        if merge == "sum":
            self.heads = nn.ModuleList([_head(width, width, K), _head(width, width, K)])
        else:
            self.heads = nn.ModuleList([_head(2 * width, width, K)])
        glorot_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, K, H, W = x.shape
        frames = list(x.unbind(1))                                     # T x (B, K, H, W)
        fwd = _run(self.cells[0], frames)                              # (B, T, K, H, W)
        bwd = _run(self.cells[1], frames[::-1]).flip(1)                # (B, T, K, H, W), back in time order
        feats = [trunk(h.reshape(B * T, K, H, W)) for trunk, h in zip(self.trunks, (fwd, bwd))]  # (BT, 128, H, W)
        if self.merge == "sum":
            y = self.heads[0](feats[0]) + self.heads[1](feats[1])      # (BT, K, H, W)
        else:
            y = self.heads[0](torch.cat(feats, 1))
        return y.view(B, T, K, H, W)


class BiConvLSTMSum(BiConvLSTM):
    """biconvlstm-sum: the two directions' heads are summed."""
    merge = "sum"


class BiConvLSTMConcat(BiConvLSTM):
    """biconvlstm-concat: the two directions' trunk features are concatenated before one head."""
    merge = "concat"
