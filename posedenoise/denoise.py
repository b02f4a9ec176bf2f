"""Denoise one person's keypoints over a whole video: python -m posedenoise.denoise CHECKPOINT INPUT OUTPUT

INPUT is a pose estimator's output for one video, in its own image pixels (--frame image, the default):
  a COCO-format keypoint results .json (mmpose, Detectron2: image_id, keypoints, score, optional track_id),
  mmpose's saved predictions .json (instance_info: frame_id, instances with keypoints and keypoint_scores),
  a folder of OpenPose per-frame .json files (BODY_25), or arrays: a .npy (F, K, 2|3) or an .npz's array
  'keypoints' (or --key NAME) with optional 'frame_size' and 'layout' (posedenoise.data.estimators). One
  person is taken (by track id, else by score and continuity) and stderr says which.
Each frame is cropped by the pretraining rule (the box of the estimator's present keypoints, 10% per side,
made square; averaged over --box-smooth N frames each side, default 4) onto the 56 x 56 grid, the model runs
on sliding windows of 5 frames (frame step from the checkpoint's setup; overlaps averaged), and its sub-pixel
keypoints go back through each frame's box to image pixels. --frame crop / stretch: the input is already a
person crop of frame_size (one scale; two scales with stretch). --frame grid: heatmaps (F, 25, 56, 56) or
keypoints (F, 25, 2|3) already on the grid, the old interface: its output adds the denoised heatmaps.

A keypoint is missed where its confidence is not above --min-confidence (default 0). The model's output there
is its estimate (a model finetuned on paired data has learned to fill a miss; a pretrained one has seen only
keypoints present in some frame); --missing fill (default) returns it, marked in 'filled'; --missing nan
returns NaN there. A miss in a gap the windows cannot see across (some window over the frame holds the
keypoint in none of its frames) is NaN either way: there the model's output was never trained. Keypoints of
the input's layout that the model does not know (pose25 lacks them) come back as the estimator gave them,
with denoised[k] False.

OUTPUT (.npz) holds:
  keypoints (F, K, 2) float64  x, y in the input's pixels and layout (--frame grid: heatmap pixels, float32)
  filled    (F, K) bool        missed by the estimator, filled by the model (NaN in keypoints with --missing nan)
  present   (F, K) bool        output by the estimator (confidence above --min-confidence)
  denoised  (K,) bool          the keypoint went through the model
  boxes     (F, 4) float64     per frame (sx, sy, ox, oy): image px = grid px * s + o
  layout    0-d str            the input's layout
  raw       (F, K, 3) float64  the estimator's keypoints as read (the person taken): x, y, confidence
  heatmaps  (F, 25, 56, 56)    --frame grid only: the denoised heatmaps (all zero for missing keypoints)
  visible   (F, 25) bool       --frame grid only: present in the input (as 'present')
"""
from __future__ import annotations

import math
import os
import sys
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
from .data.paired import AMPLITUDE, BOX_SMOOTH
from .models.inputs import as_triples
from .sequences import answerable, run_sequence

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
    frame: str = field(default="image", metadata={
        "help": "what INPUT's pixels are: 'image' (a full frame: crop by the pretraining rule), 'crop' or 'stretch' "
                "(a person crop of frame_size, one or two scales), 'grid' (already the 56 x 56 heatmap grid)",
        "choices": ["image", "crop", "stretch", "grid"]})
    box_smooth: int = field(default=BOX_SMOOTH, metadata={
        "help": "--frame image: average each crop box with N frames each side (0: each frame its own box, which "
                "jitters with the estimate)"})
    missing: str = field(default="fill", metadata={
        "help": "a missed keypoint: 'fill' returns the model's estimate, marked in 'filled'; 'nan' returns NaN",
        "choices": ["fill", "nan"]})
    layout: Optional[str] = field(default=None, metadata={
        "help": "the input's keypoint layout where its shape leaves it open (25 keypoints: pose25 or openpose25)"})
    video: Optional[str] = field(default=None, metadata={
        "help": "which video of an OpenPose folder (its file prefix) or of a COCO ground truth"})
    batch_size: int = field(default=16, metadata={"help": "windows per forward pass"})
    device: str = field(default="auto", metadata={"help": "where to run", "choices": ["auto", "cpu", "cuda"]})

    def __post_init__(self):
        if self.batch_size < 1:
            raise cli.InputError(f"--batch-size: expected a positive integer, got {self.batch_size}")
        if self.box_smooth < 0:
            raise cli.InputError(f"--box-smooth: expected an integer >= 0, got {self.box_smooth}")
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
        # The models learned maps of the simulation's mass (255, a blurred delta; prepare --paired scales an
        # estimator's maps so): scaled by 255 / the median mass of the present maps, as prepare does per data set.
        mass = maps.sum(dim=(2, 3))[visible]
        scale = AMPLITUDE / float(mass.median()) if mass.numel() and float(mass.median()) > 0 else 1.0
        return maps * visible[..., None, None] * scale, visible
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


def read_track(cfg: DenoiseConfig, size: int):
    """INPUT in image pixels -> (Track (posedenoise.data.estimators), its frames on the grid: grid_video's
    arrays). The paired format's ground truth is never read."""
    from .data import DataError
    from .data.estimators import read_track as read
    from .data.paired import grid_video
    if cfg.key == "gt":
        raise cli.InputError(f"INPUT {cfg.input}: --key gt names ground truth, not an estimator's output")
    try:
        track = read(cfg.input, layout=cfg.layout, video=cfg.video, key=cfg.key)
        T, K = track.keypoints.shape[:2]
        hidden = np.zeros((T, K, 3))                               # no ground truth at inference
        kp = track.keypoints.copy()
        kp[..., 2] = np.where(kp[..., 2] > cfg.min_confidence, np.maximum(kp[..., 2], 1e-6), 0.0)
        grid = grid_video(hidden, track.layout, keypoints=kp, frame_size=track.frame_size, frame=cfg.frame,
                          smooth=cfg.box_smooth, where=cfg.input)
    except DataError as e:
        raise cli.InputError(str(e)) from None
    return track, grid


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
    step = SETUPS[state["config"]["setup"]]["step"]
    if cfg.frame == "grid":
        return denoise_grid(cfg, model, size, step, out)
    track, grid = read_track(cfg, size)
    print(f"{PROG}: {cfg.input}: the person taken: {track.chosen}", file=sys.stderr)
    present = torch.from_numpy(grid["confidence"] > 0)                    # (F, 25)
    est = torch.from_numpy(grid["est"])
    coords = getattr(model, "input_kind", "heatmaps") == "coords"
    x = as_triples(est, present) if coords else ops.render_heatmaps(est, present, cfg.sigma, size=size)
    _, keypoints = run_sequence(model, x, step=step, batch_size=cfg.batch_size, size=size)
    to_image = grid["to_image"]
    image = keypoints.double().numpy() * to_image[:, None, :2] + to_image[:, None, 2:]     # (F, 25, 2)
    # Back to the input's layout: keypoints the model does not know come back as the estimator gave them.
    from .layout import source_to_target
    target = source_to_target(track.layout)
    src = np.array(list(target), dtype=np.int64)
    dst = np.array(list(target.values()), dtype=np.int64)
    F, K = track.keypoints.shape[:2]
    result = track.keypoints[..., :2].astype(np.float64).copy()
    result[:, src] = image[:, dst]
    seen = track.keypoints[..., 2] > cfg.min_confidence
    denoised = np.zeros(K, bool)
    denoised[src] = True
    # A miss is filled only where every window over the frame holds the keypoint somewhere: elsewhere (a long
    # gap, a keypoint never output in the video) the model's output was never trained; no guess is better.
    fillable = answerable(torch.from_numpy(seen), step=step).numpy()
    gap = ~seen & ~fillable & denoised[None, :]
    filled = ~seen & fillable & denoised[None, :]
    result[gap] = np.nan
    if cfg.missing == "nan":
        result[~seen] = np.nan
    clipped = int(grid["clipped"])
    with files.atomic_path(out) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, keypoints=result, filled=filled if cfg.missing == "fill" else np.zeros_like(filled),
                     present=seen, denoised=denoised, boxes=to_image, layout=np.array(track.layout),
                     raw=track.keypoints)
    finetuned = bool(state["config"].get("init"))
    fills = int(filled.sum())
    print(f"denoised {F} frames, {int(seen[:, denoised].sum())} of {F * int(denoised.sum())} keypoints present, "
          f"{fills} missed ones " + ("filled (marked in 'filled')" if cfg.missing == "fill" else "left NaN")
          + (f", {int(gap.sum())} in gaps longer than a window left NaN" if gap.any() else "")
          + (f", {clipped} outside their smoothed box clipped to it" if clipped else "") + f", in image pixels -> {out}")
    if fills and cfg.missing == "fill" and not finetuned:
        cli.warn(PROG, f"{cfg.checkpoint}: not finetuned on paired data (no --init in its config): its estimates "
                       "for missed keypoints are untrained; --missing nan leaves them out")


def denoise_grid(cfg: DenoiseConfig, model, size: int, step: int, out: str) -> None:
    """--frame grid: heatmaps or keypoints already on the 56 x 56 grid (load_input)."""
    heatmaps, visible = load_input(cfg.input, cfg.key, size, getattr(model, "num_keypoints", 25), cfg.sigma,
                                   cfg.min_confidence)
    # every model reads heatmaps (a coordinate model their argmax and presence: models/inputs.py)
    denoised, keypoints = run_sequence(model, heatmaps, step=step, batch_size=cfg.batch_size, size=size)
    if denoised is None:  # a coordinate model: render its keypoints at the targets' sigma
        denoised = ops.render_heatmaps(keypoints, visible, 1.0, size=size)
    denoised = denoised * visible[..., None, None]
    filled = ~visible
    if cfg.missing == "nan":
        keypoints = keypoints.masked_fill(~visible[..., None], float("nan"))
        filled = torch.zeros_like(visible)
    F = heatmaps.shape[0]
    with files.atomic_path(out) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, heatmaps=denoised.numpy().astype(np.float32), keypoints=keypoints.numpy().astype(np.float32),
                     visible=visible.numpy(), present=visible.numpy(), filled=filled.numpy(),
                     denoised=np.ones(visible.shape[1], bool), boxes=np.tile([1.0, 1.0, 0.0, 0.0], (F, 1)),
                     layout=np.array("pose25"))
    print(f"denoised {F} frames ({int(visible.sum())} of {visible.numel()} keypoints present) -> {out}")


if __name__ == "__main__":
    main()
