"""Whole sequences: a model (or a classical filter) run over a video's sliding windows, and scores in the
estimator's own image pixels.

`run_sequence` is what `denoise` does to a user's video and what the image-pixel report does to every test
video of paired data, so the report scores exactly what a user gets: windows of T frames (frame step from
the setup) start at every frame of the edge-padded sequence, and each frame's outputs over all windows that
hold it are averaged.

Image-pixel scores (paired data with `to_image`, posedenoise/data/paired.py): a model's prediction on the grid
goes back through its frame's crop, image px = grid px * s + o, and is compared with the ground truth mapped
the same way (sub-pixel, as the user gave it); the classical filters run on the estimator's own sub-pixel
keypoints in image pixels, as a user would run them, with the options validation chose. Reported apart:
  detected  visible ground truth the estimator output (confidence > 0): where the estimator, every filter
            and the model all give an answer;
  missed    visible ground truth the estimator did not output: the estimator has no answer; a filter fills
            it with the mean of the keypoint's present frames in the window, a model with its output; both
            only where every window holding the frame has the keypoint somewhere (answerable; elsewhere no
            answer, as denoise returns NaN there).
Statistics: mean, median and 90th percentile of the Euclidean error in image px, and PCK at ALPHAS with each
frame's threshold alpha x its torso in image px (the mean of the two shoulder-hip distances of the ground
truth; frames missing one of the four are left out of PCK, not of the error statistics).
"""
from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np
import torch

from . import ops
from .evaluation import ALPHAS, SETUPS
from .layout import torso_indices
from .models.inputs import as_triples

SIZE = 56


@torch.no_grad()
def run_sequence(model, x: torch.Tensor, *, window: int = 5, step: int = 1, batch_size: int = 16,
                 size: Optional[int] = SIZE):
    """x (F, K, ...): a video's heatmaps (F, K, H, W) or (x, y, present) triples (F, K, 3), as the model reads
    them -> (denoised heatmaps (F, K, H, W) or None for a coordinate model, keypoints (F, K, 2) float32).

    Window j covers frames j, j + step, ..., j + (window - 1) * step of the edge-padded sequence. A coordinate
    model's keypoints are clipped to the grid [0, size - 1]: it regresses them freely and can overshoot
    (seen: -192 to 239), while the crop has nothing outside; size None: not clipped (a filter on image px)."""
    F = x.shape[0]
    span = (window - 1) * step + 1
    # At least `step` windows, or some frames lie between every window's frames (step 2: odd frames of a
    # 9-frame sequence) and would get no output at all.
    pad = max(0, span + step - 1 - F)
    left = pad // 2
    idx = (torch.arange(F + pad) - left).clamp(0, F - 1)                  # edge frames repeated
    seq = x[idx]
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
    mean = (acc / hits.view((-1,) + (1,) * (acc.dim() - 1)))[left:left + F]
    if coords_kind:
        return None, mean if size is None else mean.clamp(0, size - 1)
    return mean, ops.heatmap_argmax(mean)


def error_stats(pred: np.ndarray, gt: np.ndarray, use: np.ndarray, torso: np.ndarray) -> dict:
    """pred, gt (N, K, 2) image px; use (N, K) bool: what counts; torso (N,) image px, NaN where the frame
    has none. -> {"n", "mean", "median", "p90" (px), "pck": {alpha: share}} (None where nothing counts)."""
    err = np.linalg.norm(np.asarray(pred, np.float64) - gt, axis=-1)
    e = err[use]
    framed = use & np.isfinite(torso)[:, None]
    out = {"n": int(use.sum()), "mean": None, "median": None, "p90": None,
           "pck": {f"{a:g}": None for a in ALPHAS}}
    if e.size:
        out.update(mean=float(e.mean()), median=float(np.median(e)), p90=float(np.percentile(e, 90)))
    if framed.any():
        thr = np.broadcast_to(torso[:, None], err.shape)[framed]
        out["pck"] = {f"{a:g}": float((err[framed] <= a * thr).mean()) for a in ALPHAS}
    return out


def image_torso(gt: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """(N, K, 2) image px, (N, K) -> (N,) the mean of the two shoulder-hip distances, NaN without all four."""
    (ls, lh), (rs, rh) = torso_indices()
    ok = visible[:, ls] & visible[:, lh] & visible[:, rs] & visible[:, rh]
    length = (np.linalg.norm(gt[:, ls] - gt[:, lh], axis=-1) + np.linalg.norm(gt[:, rs] - gt[:, rh], axis=-1)) / 2
    return np.where(ok & (length > 0), length, np.nan)


def _to_image(grid: np.ndarray, to_image: np.ndarray) -> np.ndarray:
    return np.asarray(grid, np.float64) * to_image[:, None, :2] + to_image[:, None, 2:]


def image_report(methods: Dict[str, torch.nn.Module], data, split: str = "test", *, batch_size: int = 64,
                 show: bool = False) -> Optional[dict]:
    """Image-pixel scores of the estimator and of every method ({label: model or filter}) on `split`'s videos
    of paired data (a PairedDataset split by video; None for data without `to_image` or split by window).
    -> {"videos", "frames", "detected": {label: error_stats}, "missed": {label: error_stats},
        "filled": {label: missed keypoints given an answer}}; the estimator's label is "estimator"."""
    paired = getattr(data, "paired", None)
    if paired is None or paired.to_image is None or getattr(data, "video_part", None) is None:
        return None
    from .data.windows import SPLITS
    videos = np.flatnonzero(data.video_part == SPLITS.index(split))
    step = data.step
    preds: Dict[str, List[np.ndarray]] = {label: [] for label in ["estimator", *methods]}
    frames_all, windows = [], []
    it = videos
    if show:
        from tqdm import tqdm
        it = tqdm(videos, desc=f"{split} videos (image px)", unit="video", leave=False, dynamic_ncols=True)
    for v in it:
        a, n = int(paired.video_starts[v]), int(paired.video_lengths[v])
        frames = np.arange(a, a + n)
        frames_all.append(frames)
        t = np.asarray(paired.to_image[frames], np.float64)
        est = _to_image(paired.est[frames], t)                               # the estimator's own, image px
        preds["estimator"].append(est)
        inputs = {"coords": data.frame_inputs(frames, "coords")}
        present = inputs["coords"][..., 2:]
        inputs["image"] = as_triples(torch.from_numpy(est), present[..., 0] > 0)
        windows.append(answerable(present[..., 0] > 0, window=data.T, step=step))
        for label, model in methods.items():
            # A classical filter runs on the estimator's sub-pixel keypoints in image pixels, as a user would
            # run it (a frame's crop would add its box's jitter); a model on the grid, as it was trained.
            kind = "image" if _is_filter(model) else getattr(model, "input_kind", "heatmaps")
            if kind not in inputs:
                inputs[kind] = data.frame_inputs(frames, kind)
            out = run_sequence(model, inputs[kind], window=data.T, step=step, batch_size=batch_size,
                               size=None if kind == "image" else SIZE)[1].numpy()
            preds[label].append(out if kind == "image" else _to_image(out, t))
    if not frames_all:
        return None
    frames = np.concatenate(frames_all)
    to_image = np.asarray(paired.to_image[frames], np.float64)
    gt = _to_image(paired.gt[frames], to_image)
    visible = np.asarray(paired.visible[frames])
    detected = visible & (np.asarray(paired.confidence[frames]) > 0)
    missed = visible & ~detected
    torso = image_torso(gt, visible)
    fillable = torch.cat(windows).numpy()
    report = {"split": split, "videos": int(len(videos)), "frames": int(len(frames)), "detected": {}, "missed": {}, "filled": {}}
    for label, parts in preds.items():
        pred = np.concatenate(parts)
        report["detected"][label] = error_stats(pred, gt, detected, torso)
        if label == "estimator":
            continue
        # Filters and models alike answer a missed keypoint only where every window holding the frame has it
        # somewhere (answerable): a filter has nothing else to average, and a model's output for a keypoint
        # absent from its whole window was never trained (denoise returns NaN there).
        answered = missed & fillable
        report["missed"][label] = error_stats(pred, gt, answered, torso)
        report["filled"][label] = int(answered.sum())
    report["missed_total"] = int(missed.sum())
    return report


def _is_filter(model) -> bool:
    from .models.filters import TemporalFilter
    return isinstance(model, TemporalFilter)


def answerable(present: torch.Tensor, *, window: int = 5, step: int = 1) -> torch.Tensor:
    """present (F, K) bool -> (F, K) bool: the keypoint is present in some frame of every window that
    run_sequence runs over the frame (edge padding included). Where it is not, some window saw nothing of it:
    a filter leaves it as it came, and a model's output there was never trained (the loss counts a keypoint
    only where the ground truth has it, and an estimator misses one for a whole window rarely)."""
    x = torch.cat([torch.zeros(present.shape + (2,)), present[..., None].float()], dim=-1)
    return run_sequence(_PresentInWindow(), x, window=window, step=step)[1][..., 0] == 1


class _PresentInWindow(torch.nn.Module):
    """(b, T, K, 3) triples -> (b, T, K, 2): 1 where the keypoint is present in some frame of the window.
    Run through run_sequence, its average is 1 exactly where every window holding a frame has it."""
    output_kind = "coords"

    def forward(self, x):
        return (x[..., 2] > 0).any(1, keepdim=True).expand(x.shape[:3]).float()[..., None].expand(*x.shape[:3], 2)


def image_table(report: dict, order: Optional[List[str]] = None) -> str:
    """Markdown: per method, detected keypoints (mean / median / 90th pct px, PCK) and missed ones."""
    order = order or list(report["detected"])
    f = lambda v, d=2: "n/a" if v is None else f"{v:.{d}f}"  # noqa: E731
    head = ("| | detected: mean px | median px | 90th pct px | " + " | ".join(f"PCK@{a:g}" for a in ALPHAS)
            + " | missed: filled | mean px | median px | PCK@0.2 |")
    rows = [head, "|---" * (5 + len(ALPHAS) + 3) + "|"]
    for label in order:
        d = report["detected"][label]
        m = report["missed"].get(label)
        miss = (f"{report['filled'][label]} of {report['missed_total']} | {f(m['mean'])} | {f(m['median'])} | "
                f"{f(m['pck']['0.2'], 3)}") if m else f"0 of {report['missed_total']} | n/a | n/a | n/a"
        rows.append(f"| {label} | {f(d['mean'])} | {f(d['median'])} | {f(d['p90'])} | "
                    + " | ".join(f(d["pck"][f"{a:g}"], 3) for a in ALPHAS) + f" | {miss} |")
    title = (f"image pixels: {report['videos']} {report.get('split', 'test')} videos, {report['frames']} frames, "
             f"{report['detected']['estimator']['n']} detected and {report['missed_total']} missed visible keypoints")
    return title + "\n" + "\n".join(rows)


def paired_image_report(net, label: str, fitted: dict, data, split: str = "test", *,
                        show: bool = False) -> Optional[dict]:
    """image_report of a model (`label`) beside the estimator and every filter fit_filters chose on validation
    (posedenoise.evaluation), on paired data's test videos; None for data that is not paired with `to_image`."""
    if getattr(getattr(data, "paired", None), "to_image", None) is None:
        return None
    from .models import build
    filters = {f"{name} filter": build(name, **f["options"]) for name, f in fitted["filters"].items()}
    was_training = net.training
    net.eval()
    try:
        return image_report({label: net, **filters}, data, split, show=show)
    finally:
        net.train(was_training)
