"""Denoise a whole sequence: python -m posedenoise.denoise CHECKPOINT INPUT OUTPUT [flags]

INPUT is an estimator's output for one video, in heatmap space: a .npy's array, or an .npz's array named
'heatmaps' or 'keypoints' (or --key NAME):
  heatmaps (F, K, 56, 56): a keypoint's confidence is the maximum of its map;
  keypoints (F, K, 3) = (x, y, confidence), or (F, K, 2) = (x, y) all present, in heatmap pixels [0, 55].
An .npz holding ground truth 'gt' is paired data (posedenoise/data/paired.py), not an estimator's output: its
'gt' is never read; its 'heatmaps' or 'keypoints' are, when they are already in heatmap space (56 x 56 maps
or frame_size 56 x 56, 25 keypoints of layout pose25), and stderr says so; otherwise it is refused.
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
    key: Optional[str] = field(default=None, metadata={
        "help": "array name inside an .npz input (default: 'heatmaps' or 'keypoints', whichever it holds)"})
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


INPUT_NAMES = ("heatmaps", "keypoints")   # the arrays an .npz input is read by (paired data's names too)


def _paired_output_problem(z, name: str, arr: np.ndarray, size: int) -> Optional[str]:
    """Why array `name` of a paired-data file (paired.py's format) is not in heatmap space; None if it is."""
    layout = str(z["layout"]) if "layout" in z.files else None
    if layout not in (None, "pose25"):
        return f"its layout is {layout}, not pose25"
    if name == "heatmaps" and arr.ndim == 4 and arr.shape[2:] != (size, size):
        return f"its 'heatmaps' are {arr.shape[3]} x {arr.shape[2]}, not {size} x {size}"
    if name == "keypoints":
        if "frame_size" not in z.files:
            return "its 'keypoints' have no frame_size, so their frame is unknown"
        frame = np.asarray(z["frame_size"]).ravel().tolist()
        if frame != [size, size]:
            return f"its 'keypoints' are in a frame of frame_size {frame}, not the {size} x {size} grid"
    return None


def read_input(path: str, key: Optional[str], size: int = 56, label: str = ""):
    """-> (array, note): the estimator's output INPUT holds, a .npy's array or an .npz's `key` (default: its
    'heatmaps' or 'keypoints'). Paired data (an .npz with ground truth 'gt') gives its estimator output only
    where that is in heatmap space, its 'gt' never; `note` then says which array was read, for the caller to
    warn once the array has passed its checks (else None). InputError naming `label` and the file otherwise."""
    where = f"{label} {path}" if label else path
    if not os.path.isfile(path):
        raise cli.InputError(f"{where}: no such file")
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as e:  # truncated, pickled objects, not numpy at all: whatever np.load raises
        raise cli.InputError(f"{where}: not a readable .npy/.npz file ({type(e).__name__}: {e})") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        return loaded, None
    with loaded as z:
        names = list(z.files)
        paired = "gt" in names
        refuse = (f"{where}: paired data with ground truth ('gt'), not an estimator's output: denoise takes the "
                  f"estimator's output, its 'heatmaps' or 'keypoints' array in heatmap space ({size} x {size})")
        if key is not None:
            if key not in names:
                raise cli.InputError(f"{where}: expected an array named {key!r} (--key), found {names}")
            if paired and key == "gt":
                raise cli.InputError(f"{refuse}; --key gt names the ground truth")
            name = key
        else:
            found = [n for n in INPUT_NAMES if n in names]
            if len(found) > 1:
                raise cli.InputError(f"{where}: holds both 'heatmaps' and 'keypoints'; choose one with --key")
            if not found:
                raise cli.InputError(f"{refuse}; this file has neither (found {names})" if paired else
                                     f"{where}: expected an array named 'heatmaps' (F, K, {size}, {size}) or "
                                     f"'keypoints' (F, K, 2 or 3), or --key NAME; found {names}")
            name = found[0]
        try:
            arr = z[name]
            problem = _paired_output_problem(z, name, arr, size) if paired else None
        except Exception as e:  # a damaged member, pickled objects: whatever numpy raises
            raise cli.InputError(f"{where}: not a readable .npz file ({type(e).__name__}: {e})") from None
    if problem:
        raise cli.InputError(f"{refuse}; {problem}")
    note = (f"{where}: paired data (with ground truth 'gt'): read its estimator output {name!r} {arr.shape}, "
            "in heatmap space; 'gt' is not used") if paired else None
    return arr, note


def load_input(path: str, key: Optional[str], size: int, num_keypoints: int, sigma: float, min_conf: float):
    """-> (heatmaps (F, K, size, size) float32, visible (F, K) bool), from heatmaps or keypoints (read_input);
    InputError for a file that is neither. Missing keypoints (confidence <= min_conf) have all-zero maps."""
    arr, note = read_input(path, key, size)
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
        if note:
            cli.warn(PROG, note)
        return maps * visible[..., None, None], visible
    if arr.shape[2] not in (2, 3):
        raise cli.InputError(f"{path}: keypoints need 2 (x, y) or 3 (x, y, confidence) values, got {arr.shape[2]}")
    if note:
        cli.warn(PROG, note)
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
