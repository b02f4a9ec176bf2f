"""Denoise a whole sequence: python -m posedenoise.denoise CHECKPOINT INPUT OUTPUT [flags]

INPUT is an estimator's output for one video, as .npy or .npz (the first array, or --key), in heatmap space:
  heatmaps (F, K, 56, 56): a keypoint's confidence is the maximum of its map;
  keypoints (F, K, 3) = (x, y, confidence), or (F, K, 2) = (x, y) all present, in heatmap pixels [0, 55].
A keypoint is missing where its confidence is not above --min-confidence (default 0: a confidence of 0,
or an all-zero map, is missing). Missing keypoints enter the model as all-zero maps, as in training;
keypoints are rendered into heatmaps with --sigma. Keypoints outside [0, 55] are clipped to the border,
with a warning that counts them (image pixels must be mapped to heatmap space first). The model runs on
sliding windows of 5 frames (frame step from the checkpoint's setup), start stride 1; each frame's outputs
over all windows that hold it are averaged. A sequence shorter than one window is padded by repeating its
edge frames.

OUTPUT (.npz) holds:
  heatmaps  (F, K, 56, 56) float32  the denoised heatmaps (a coordinate model's, e.g. DeciWatch's, are
                                     rendered from its keypoints with sigma 1, as its training targets);
                                     all zero for missing keypoints
  keypoints (F, K, 2) float32       (x, y) in heatmap pixels within [0, 55]: the argmax of the denoised
                                     heatmaps, or the coordinate model's mean output clipped to the grid
                                     (its heatmaps peak at the rounded keypoint); NaN for missing keypoints
  visible   (F, K) bool             the keypoint was present in the input (the model's output for a
                                     missing keypoint is untrained: training ignores missing keypoints)
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from . import cli
if __name__ == "__main__":   # a command, not an import: set how OpenMP waits before torch loads OpenMP
    cli.openmp_wait_policy()

import torch

from . import files, ops
from .evaluate import load_checkpoint, model_from_state
from .evaluation import SETUPS
from .noise import MIN_SIGMA, check_sigma

PROG = "posedenoise.denoise"


@dataclass
class DenoiseConfig:
    checkpoint: str = field(default="", metadata={"help": "a run directory or a checkpoint file"})
    input: str = field(default="", metadata={"help": ".npy/.npz of heatmaps (F,K,56,56) or keypoints (F,K,2|3)"})
    output: str = field(default="", metadata={"help": "output .npz (heatmaps, keypoints, visible)"})
    key: Optional[str] = field(default=None, metadata={"help": "array name inside an .npz input (default: the first)"})
    sigma: float = field(default=2.0, metadata={"help": "Gaussian sigma for rendering keypoint input"})
    min_confidence: float = field(default=0.0, metadata={
        "help": "a keypoint is missing unless its confidence (3rd value, or a heatmap's maximum) is above this"})
    batch_size: int = field(default=16, metadata={"help": "windows per forward pass"})
    device: str = field(default="auto", metadata={"help": "where to run", "choices": ["auto", "cpu", "cuda"]})

    def __post_init__(self):
        if self.batch_size < 1:
            raise cli.InputError(f"--batch-size: expected a positive integer, got {self.batch_size}")
        if not math.isfinite(self.min_confidence):
            raise cli.InputError(f"--min-confidence: expected a number, got {self.min_confidence}")


def load_input(path: str, key: Optional[str], size: int, num_keypoints: int, sigma: float, min_conf: float):
    """-> (heatmaps (F, K, size, size) float32, visible (F, K) bool), from heatmaps or keypoints; InputError
    for a file that is neither. Missing keypoints (confidence <= min_conf) have all-zero maps."""
    if not os.path.isfile(path):
        raise cli.InputError(f"{path}: no such file")
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as e:  # truncated, pickled objects, not numpy at all: whatever np.load raises
        raise cli.InputError(f"{path}: not a readable .npy/.npz file ({type(e).__name__}: {e})") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        names = list(loaded.keys())
        if not names or (key is not None and key not in names):
            raise cli.InputError(f"{path}: expected an array named {key!r}, found {names}" if key
                                 else f"{path}: empty .npz")
        arr = loaded[key or names[0]]
    else:
        arr = loaded
    if not np.issubdtype(arr.dtype, np.number) or arr.ndim not in (3, 4) or arr.shape[1] != num_keypoints:
        raise cli.InputError(f"{path}: expected heatmaps (F, {num_keypoints}, {size}, {size}) or keypoints "
                             f"(F, {num_keypoints}, 2 or 3), got {arr.dtype} {arr.shape}")
    if not np.isfinite(arr).all():
        raise cli.InputError(f"{path}: contains NaN or infinite values")
    if arr.ndim == 4:
        if arr.shape[2:] != (size, size):
            raise cli.InputError(f"{path}: expected {size}x{size} heatmaps, got {arr.shape[2:]}")
        maps = torch.from_numpy(arr.astype(np.float32))
        visible = maps.amax(dim=(2, 3)) > min_conf
        return maps * visible[..., None, None], visible
    if arr.shape[2] not in (2, 3):
        raise cli.InputError(f"{path}: keypoints need 2 (x, y) or 3 (x, y, confidence) values, got {arr.shape[2]}")
    xy = torch.from_numpy(arr[..., :2].astype(np.float32))
    # Strictly above: a confidence of 0 marks a missing keypoint (as in the generic reader), also at the default.
    visible = torch.from_numpy(arr[..., 2] > min_conf) if arr.shape[2] == 3 else torch.ones(xy.shape[:2], dtype=torch.bool)
    outside = int((((xy < 0) | (xy > size - 1)).any(-1) & visible).sum())
    if outside:
        cli.warn(PROG, f"{path}: {outside} of {int(visible.sum())} present keypoints lie outside the heatmap grid "
                       f"[0, {size - 1}] and were clipped to its border (keypoints must be in {size} x {size} "
                       "heatmap pixels, not image pixels)")
    return ops.render_heatmaps(xy, visible, sigma, size=size), visible


@torch.no_grad()
def denoise_sequence(model, heatmaps: torch.Tensor, *, window: int = 5, step: int = 1, batch_size: int = 16):
    """heatmaps (F, K, H, W) -> (denoised (F, K, H, W) or None, keypoints (F, K, 2)), overlaps averaged.

    Window j covers frames j, j + step, ..., j + (window - 1) * step of the edge-padded sequence. A coordinate
    model's keypoints are clipped to the grid [0, W - 1] x [0, H - 1]: it regresses them freely and can
    overshoot (seen: -192 to 239), while heatmap space has nothing outside."""
    F = heatmaps.shape[0]
    span = (window - 1) * step + 1
    # At least `step` windows, or some frames lie between every window's frames (step 2: odd frames of a
    # 9-frame sequence) and would get no output at all.
    pad = max(0, span + step - 1 - F)
    left = pad // 2
    idx = (torch.arange(F + pad) - left).clamp(0, F - 1)                  # edge frames repeated
    seq = heatmaps[idx]
    n_win = seq.shape[0] - span + 1
    frames = torch.arange(n_win)[:, None] + torch.arange(window)[None, :] * step   # (n_win, T)
    coords_kind = model.output_kind == "coords"
    acc = torch.zeros((seq.shape[0],) + ((seq.shape[1], 2) if coords_kind else seq.shape[1:]))
    hits = torch.zeros(seq.shape[0])
    dev = next(iter(model.parameters()), torch.empty(0)).device
    for lo in range(0, n_win, batch_size):
        f = frames[lo:lo + batch_size]                                     # (b, T)
        out = model(seq[f].to(dev)).float().cpu()                          # (b, T, K, ...) per frame
        acc.index_add_(0, f.reshape(-1), out.reshape((-1,) + out.shape[2:]))
        hits.index_add_(0, f.reshape(-1), torch.ones(f.numel()))
    mean = acc / hits.view((-1,) + (1,) * (acc.dim() - 1))
    mean = mean[left:left + F]
    if coords_kind:
        H, W = heatmaps.shape[-2:]
        return None, torch.stack([mean[..., 0].clamp(0, W - 1), mean[..., 1].clamp(0, H - 1)], dim=-1)
    return mean, ops.heatmap_argmax(mean)


@cli.command(PROG)
def main(argv=None):
    cfg = cli.parse(DenoiseConfig, argv, PROG, __doc__.split("\n\n")[0], positional=("checkpoint", "input", "output"))
    dev = cli.device(cfg.device)
    cli.check_backend(None, dev)             # POSEDENOISE_BACKEND, if set, renders keypoint input
    out = cli.npz_output(cfg.output, "OUTPUT")
    state, ckpt = load_checkpoint(cfg.checkpoint, dev, needs=())
    model = model_from_state(state, dev, ckpt)
    size = getattr(model, "size", 56)
    if not check_sigma(cfg.sigma, size):     # the range ops.render_heatmaps renders
        raise cli.InputError(f"--sigma: expected a number in [{MIN_SIGMA}, {size}], got {cfg.sigma}")
    heatmaps, visible = load_input(cfg.input, cfg.key, size, getattr(model, "num_keypoints", 25), cfg.sigma,
                                   cfg.min_confidence)
    step = SETUPS[state["config"]["setup"]]["step"]
    denoised, keypoints = denoise_sequence(model, heatmaps, step=step, batch_size=cfg.batch_size)
    if denoised is None:  # a coordinate model: render its keypoints at the targets' sigma
        denoised = ops.render_heatmaps(keypoints, visible, 1.0, size=size)
    # A missing keypoint's output is untrained (the loss ignores it): no map, no coordinates.
    denoised = denoised * visible[..., None, None]
    keypoints = keypoints.masked_fill(~visible[..., None], float("nan"))
    with files.atomic_path(out) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, heatmaps=denoised.numpy().astype(np.float32), keypoints=keypoints.numpy().astype(np.float32),
                     visible=visible.numpy())
    print(f"denoised {heatmaps.shape[0]} frames ({int(visible.sum())} of {visible.numel()} keypoints present) -> {out}")


if __name__ == "__main__":
    main()
