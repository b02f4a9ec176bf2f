"""Look at what a model does: python -m posedenoise.inspect RUN_OR_DENOISED [flags]

RUN (a run directory or checkpoint file): draws windows of a split as the model sees them under the split's
fixed test noise. Per frame (5 columns) three rows: the noisy input, the model's prediction, the clean
target. Heatmaps show the window's keypoints in one image, a colour per keypoint (each map scaled to its own
maximum, so a blurred map shows its spread, not its height), and the skeleton through each map's argmax. Only
keypoints visible in some frame of the window are drawn and listed in the key: the others (those a data set
lacks, e.g. Penn Action's 12) have no target, and a model's maps for them are untrained.
A coordinate model (DeciWatch, the classical filters) has no heatmaps: its row draws the predicted skeleton
over the dimmed input, and the target row the true skeleton. Under the input and prediction of each frame:
the mean per-keypoint error in px (argmax or coordinates vs ground truth, visible keypoints only) and the
three worst keypoints, whose error is also drawn as a line from the prediction to the truth.
  --window N   window N of the split (0 = its first)
  --worst N    the N windows with the highest mean error, of the split's first --max-windows (default all):
               one PNG, N blocks stacked top to bottom, the worst first

DENOISED.npz (an output of posedenoise.denoise) with --input RAW (the input given to denoise, which the
output does not hold, read as denoise reads it: an .npz's 'heatmaps' or 'keypoints', or --key): x and y over
time of the --keypoints, raw input against denoised.
"""
from __future__ import annotations

import argparse
import colorsys
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
from .denoise import read_input
from .evaluate import open_run
from .evaluation import EVAL_EPOCH, SETUPS, batch_inputs
from .layout import LAYOUTS, POSE25, SKELETON25

PROG = "posedenoise.inspect"
MAX_WORST = 20          # blocks in one PNG: 20 are already 15,300 px tall
DPI = 100
# Window figure, in pixels at DPI: a left margin for row labels, 5 panels (with the error text below each),
# a keypoint key on the right. Every block has the same height, so --worst N is N times --window's height.
LABEL_PX, CELL_PX, TEXT_PX, TITLE_PX, KEY_PX = 80, 190, 62, 40, 130
BLOCK_PX = (LABEL_PX + 5 * CELL_PX + KEY_PX, TITLE_PX + 3 * (CELL_PX + TEXT_PX))   # (width, height)
# Trajectory figure: a header for the legend, then one row (x, y) per keypoint.
TRAJ_WIDTH_PX, TRAJ_HEAD_PX, TRAJ_ROW_PX = 1000, 50, 210
# A colour per keypoint: hues 7/25 of the circle apart in keypoint order, so that neighbours (a left and a
# right joint, a joint and the next along the limb) never look alike.
COLOURS = np.array([colorsys.hsv_to_rgb((7 * i % 25) / 25, 0.85, 1.0) for i in range(25)])
EDGES = [(POSE25.index(a), POSE25.index(b)) for a, b in SKELETON25]


@dataclass
class InspectConfig:
    source: str = field(default="", metadata={
        "help": "a run directory or checkpoint file (draw windows), or a posedenoise.denoise output .npz "
                "(plot trajectories)"})
    out: Optional[str] = field(default=None, metadata={
        "help": "PNG to write (default: inspect-<split>-window<N>.png / -worst<N>.png in the run directory, "
                "or <DENOISED>-trajectories.png beside the .npz)", "metavar": "PNG"})
    split: str = field(default="test", metadata={"help": "run: which split", "choices": ["train", "val", "test"]})
    window: Optional[int] = field(default=None, metadata={
        "help": "run: draw window N of the split (default 0)", "metavar": "N"})
    worst: Optional[int] = field(default=None, metadata={
        "help": f"run: draw the N windows with the highest mean keypoint error (N <= {MAX_WORST}), worst first",
        "metavar": "N"})
    max_windows: Optional[int] = field(default=None, metadata={
        "help": "run, with --worst: scan only the split's first M windows (default: all)", "metavar": "M"})
    data: Optional[str] = field(default=None, metadata={
        "help": "run: read the windows from here (as posedenoise.evaluate --data)", "metavar": "DATA"})
    batch_size: int = field(default=32, metadata={"help": "run: windows per forward pass while scanning"})
    device: str = field(default="auto", metadata={"help": "where to run", "choices": ["auto", "cpu", "cuda"]})
    keypoints: Optional[str] = field(default=None, metadata={
        "help": "trajectories: comma-separated keypoint names (default: nose,left_wrist,right_wrist)",
        "metavar": "NAMES"})
    input: Optional[str] = field(default=None, metadata={
        "help": "trajectories: the raw input given to posedenoise.denoise (.npy/.npz heatmaps or keypoints)",
        "metavar": "RAW"})
    key: Optional[str] = field(default=None, metadata={
        "help": "trajectories: array name in an .npz --input (default: 'heatmaps' or 'keypoints', as denoise)",
        "metavar": "NAME"})

    def __post_init__(self):
        self.trajectories = self.source.endswith(".npz") and not os.path.isdir(self.source)
        mode, other = ("a denoise output", ("window", "worst", "max_windows", "data")) if self.trajectories \
            else ("a run", ("keypoints", "input", "key"))
        for name in other:
            if getattr(self, name) is not None:
                raise cli.InputError(f"--{name.replace('_', '-')}: does not apply to {mode} ({self.source})")
        for name in ("worst", "max_windows", "batch_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise cli.InputError(f"--{name.replace('_', '-')}: expected a positive integer, got {value}")
        if self.window is not None and self.worst is not None:
            raise cli.InputError("--window, --worst: give one of them")
        if self.worst is not None and self.worst > MAX_WORST:
            raise cli.InputError(f"--worst: expected at most {MAX_WORST} windows in one figure, got {self.worst}")
        if self.max_windows is not None and self.worst is None:
            raise cli.InputError("--max-windows: applies to --worst only")
        if self.out is not None and not self.out.lower().endswith(".png"):
            raise cli.InputError(f"--out {self.out}: expected a .png file name")


# ---- windows of a run ----------------------------------------------------------------------------------

def rendered_source(data, noise: dict, dev, output_kind: str):
    """The data source: window ids -> (x, y, coords, visible) on `dev`. x: the noisy input heatmaps under the
    split's fixed noise (what evaluate scores), or paired data's estimator output; y: the target heatmaps,
    None for a coordinate model (its target is coords)."""
    def load(ids: torch.Tensor):
        coords, visible = data.gather(ids)
        coords, visible, wid = coords.to(dev), visible.to(dev), ids.to(dev)
        x, y, coords = batch_inputs(data, coords, visible, wid, output_kind, epoch=EVAL_EPOCH, **noise)
        return x, y, coords, visible
    return load


def keypoint_errors(out: torch.Tensor, output_kind: str, coords: torch.Tensor):
    """-> (predicted (B, T, K, 2) coords, their distance to the ground truth (B, T, K) in px)."""
    pred = out.float() if output_kind == "coords" else ops.heatmap_argmax(out)
    return pred, (pred - coords.float()).norm(dim=-1)


def mean_error(err: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """(B, T, K) errors -> (B,) mean over the visible keypoints; NaN for a window with none."""
    v = visible.flatten(1).float()
    return (err.flatten(1) * v).sum(1) / v.sum(1)


@torch.no_grad()
def window_errors(model, load, ids: torch.Tensor, batch_size: int, show: bool) -> torch.Tensor:
    """Mean keypoint error (px) of each window in `ids`, batch by batch (a progress bar if `show`)."""
    starts = range(0, len(ids), batch_size)
    if show:
        from tqdm import tqdm
        starts = tqdm(starts, desc="scanning", unit="batch", leave=False, dynamic_ncols=True)
    out = []
    for lo in starts:
        x, _, coords, visible = load(ids[lo:lo + batch_size])
        out.append(mean_error(keypoint_errors(model(x), model.output_kind, coords)[1], visible).cpu())
    return torch.cat(out)


def worst_windows(errors: torch.Tensor, n: int) -> torch.Tensor:
    """Positions of the n largest errors, largest first (ties: the earlier window); NaN (nothing visible) last."""
    return torch.sort(errors.nan_to_num(nan=-float("inf")), descending=True, stable=True).indices[:n]


def _short(name: str) -> str:
    return name.replace("left_", "L ").replace("right_", "R ").replace("foot_index", "toe").replace("_", " ")


def _overlay(maps: np.ndarray, shown: np.ndarray) -> np.ndarray:
    """(K, H, W) heatmaps -> (H, W, 3) RGB of the keypoints `shown` (K,) bool: each map scaled to its maximum,
    tinted, screen-blended (overlaps brighten instead of clipping)."""
    maps = maps[shown]
    peak = maps.max(axis=(1, 2), keepdims=True)
    m = np.where(peak > 0, maps / np.where(peak > 0, peak, 1), 0).clip(0, 1)
    return 1 - np.prod(1 - m[..., None] * COLOURS[shown][:, None, None, :], axis=0)


def _panel(ax, image, xy, vis, err=None, gt=None):
    """One frame: the image (or black), the skeleton through `xy`, and below it the error text."""
    ax.imshow(np.zeros((56, 56, 3)) if image is None else image, interpolation="nearest")
    ax.set_xlim(-0.5, 55.5), ax.set_ylim(55.5, -0.5), ax.set_xticks([]), ax.set_yticks([])
    for a, b in EDGES:
        if vis[a] and vis[b]:
            ax.plot(xy[[a, b], 0], xy[[a, b], 1], color="white", lw=1, alpha=0.75)
    ax.scatter(xy[vis, 0], xy[vis, 1], s=12, c=COLOURS[vis], edgecolors="black", linewidths=0.4, zorder=3)
    if err is None:
        return
    e = np.where(vis, err, -1)
    if not vis.any():
        ax.set_xlabel("no visible keypoint", fontsize=7)
        return
    worst = [k for k in np.argsort(-e, kind="stable")[:3] if e[k] > 0]
    for k in worst:   # how far off, and where: a line from the prediction to the truth (a white x)
        ax.plot([xy[k, 0], gt[k, 0]], [xy[k, 1], gt[k, 1]], color=COLOURS[k], lw=1.5, zorder=4)
        ax.scatter([gt[k, 0]], [gt[k, 1]], marker="x", s=22, color="white", linewidths=1.2, zorder=5)
    # A coordinate model regresses freely and can land off the map; say so, or the panel just looks sparse.
    off = int((vis & ((xy < -0.5) | (xy > 55.5)).any(-1)).sum())
    lines = [f"mean {err[vis].mean():.2f} px" + (f", {off} off the map" if off else "")]
    lines += [f"{_short(POSE25[k])} {e[k]:.1f}" for k in worst]
    ax.set_xlabel("\n".join(lines), fontsize=7, linespacing=1.1, labelpad=2)


def draw_windows(path: str, blocks: list, output_kind: str, step: int):
    """blocks: dicts of one window's numpy arrays (x, y, out, pred, in_xy, err, in_err, gt, vis) and its title.
    Writes the PNG; returns the figure. A block draws (maps, key) only the keypoints visible in some frame of
    its window: the others (a data set's missing keypoints, e.g. Penn Action's 12) have no target, and a
    model's maps for them are untrained."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    W, H = BLOCK_PX[0], BLOCK_PX[1] * len(blocks)
    fig = Figure(figsize=(W / DPI, H / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    rows = ("noisy input", "prediction" + (" (coords)" if output_kind == "coords" else ""),
            "target" + (" (coords)" if output_kind == "coords" else ""))
    for n, b in enumerate(blocks):
        top = n * BLOCK_PX[1]
        shown = b["vis"].any(0)                                     # (K,): visible in some frame
        fig.text(LABEL_PX / W, 1 - (top + TITLE_PX * 0.45) / H, b["title"], fontsize=9, weight="bold", va="center")
        for r in range(3):
            y0 = top + TITLE_PX + r * (CELL_PX + TEXT_PX)
            for t in range(5):
                ax = fig.add_axes(((LABEL_PX + t * CELL_PX + 5) / W, 1 - (y0 + CELL_PX - 8) / H,
                                   (CELL_PX - 10) / W, (CELL_PX - 10) / H))
                vis = b["vis"][t]
                if r == 0:
                    _panel(ax, _overlay(b["x"][t], shown), b["in_xy"][t], vis, b["in_err"][t], b["gt"][t])
                    ax.set_title(f"frame t+{t * step}", fontsize=8, pad=3)
                elif r == 1 and output_kind == "coords":   # no maps: the skeleton over the dimmed input
                    _panel(ax, 0.35 * _overlay(b["x"][t], shown), b["pred"][t], vis, b["err"][t], b["gt"][t])
                elif r == 1:
                    _panel(ax, _overlay(b["out"][t], shown), b["pred"][t], vis, b["err"][t], b["gt"][t])
                else:
                    _panel(ax, None if b["y"] is None else _overlay(b["y"][t], shown), b["gt"][t], vis)
                if t == 0:
                    ax.set_ylabel(rows[r], fontsize=9)
        # The keypoint colour key, beside the block: the keypoints drawn, and how many are not.
        key = fig.add_axes(((W - KEY_PX + 8) / W, 1 - (top + BLOCK_PX[1] - 10) / H, (KEY_PX - 10) / W,
                            (BLOCK_PX[1] - TITLE_PX - 20) / H))
        key.set_axis_off(), key.set_xlim(0, 1), key.set_ylim(len(POSE25), -1)
        for row, k in enumerate(np.flatnonzero(shown)):
            key.scatter([0.06], [row], s=30, color=COLOURS[k], edgecolors="black", linewidths=0.4)
            key.text(0.16, row, POSE25[k], fontsize=7, va="center")
        if not shown.all():
            key.text(0.06, int(shown.sum()) + 0.5, f"{int((~shown).sum())} more: not\nvisible in this window",
                     fontsize=7, va="top", color="0.4")
    with files.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return fig


def inspect_run(cfg: InspectConfig) -> str:
    dev = cli.device(cfg.device)
    what = f"worst{cfg.worst}" if cfg.worst else f"window{cfg.window or 0}"
    state, _, model, data, noise, out = open_run(cfg.source, dev, cfg.data, cfg.out,
                                                 f"inspect-{cfg.split}-{what}.png", "figure")
    tc = state["config"]
    load = rendered_source(data, noise, dev, model.output_kind)
    ids = data.split_ids(cfg.split)
    if cfg.worst:
        scanned = ids[:cfg.max_windows]
        if cfg.worst > len(scanned):
            raise cli.InputError(f"--worst: asked for {cfg.worst} windows, but {len(scanned)} are scanned "
                                 f"(the {cfg.split} split has {len(ids)})")
        errors = window_errors(model, load, scanned, cfg.batch_size, show=sys.stderr.isatty())
        picks = worst_windows(errors, cfg.worst)
        labels = [f"worst {i + 1} of {len(scanned)}: " for i in range(len(picks))]
    else:
        n = cfg.window or 0
        if not 0 <= n < len(ids):
            raise cli.InputError(f"--window: expected an index in [0, {len(ids)}) of the {cfg.split} split's "
                                 f"{len(ids)} windows, got {n}")
        picks, labels = torch.tensor([n]), [""]
    with torch.no_grad():
        x, y, coords, visible = load(ids[picks])
        out_ = model(x)
        pred, err = keypoint_errors(out_, model.output_kind, coords)
        in_xy, in_err = keypoint_errors(x, "heatmaps", coords)
    means = [mean_error(e, visible).tolist() for e in (err, in_err)]
    arrays = dict(x=x, y=y, out=None if model.output_kind == "coords" else out_, pred=pred, in_xy=in_xy, err=err,
                  in_err=in_err, gt=coords.float(), vis=visible)
    arrays = {k: None if v is None else v.cpu().numpy() for k, v in arrays.items()}
    step, blocks = SETUPS[tc["setup"]]["step"], []
    for i, (pos, label) in enumerate(zip(picks.tolist(), labels)):
        wid = int(ids[pos])
        video = int(data.window_video[wid])
        first = int(data.window_start[wid] - data.cache.video_starts[video])   # frame within its video
        frames = f"frames {first}-{first + 4 * step}" + (f" every {step}" if step > 1 else "")
        title = (f"{label}{cfg.split} window {pos} (id {wid}; video {data.cache.names[video]!r}, {frames})   "
                 f"{tc['model']}: mean error {means[0][i]:.2f} px, noisy input {means[1][i]:.2f} px")
        print(title)   # the windows drawn, as text: to find them again, or to compare runs
        blocks.append({k: None if a is None else a[i] for k, a in arrays.items()} | {"title": title})
    draw_windows(out, blocks, model.output_kind, step)
    return out


# ---- trajectories of a denoise output ------------------------------------------------------------------

def _jitter(xy: np.ndarray) -> float:
    """Mean |frame-to-frame change| (px) of one keypoint's (F, 2) track over frames present in both: what a
    denoiser should lower without lagging behind the motion."""
    step = np.linalg.norm(np.diff(xy, axis=0), axis=-1)
    step = step[np.isfinite(step)]
    return float(step.mean()) if len(step) else float("nan")


def _image_trajectories(cfg: InspectConfig, d: dict):
    """A denoise output in image pixels -> (denoised (F, K, 2), raw (F, K, 2) NaN where missed, shown (F, K))."""
    try:
        den, raw, present = d["keypoints"], d["raw"], d["present"]
    except KeyError as e:
        raise cli.InputError(f"{cfg.source}: not a posedenoise.denoise output: missing array {e}") from None
    if raw.shape[:2] != den.shape[:2] or present.shape != den.shape[:2]:
        raise cli.InputError(f"{cfg.source}: arrays 'raw' {raw.shape}, 'keypoints' {den.shape} and 'present' "
                             f"{present.shape} do not describe the same frames and keypoints")
    return den, np.where(present[..., None], raw[..., :2], np.nan), np.isfinite(den).all(-1)


def _grid_trajectories(cfg: InspectConfig, d: dict):
    """A denoise --frame grid output and its --input -> (denoised, raw, visible), in heatmap pixels."""
    if cfg.input is None:
        raise cli.InputError(f"--input: required with a denoise --frame grid output ({cfg.source} does not hold "
                             "the raw input)")
    try:
        den, vis = d["keypoints"], d["visible"]
    except KeyError as e:
        raise cli.InputError(f"{cfg.source}: not a posedenoise.denoise output: missing array {e}") from None
    K = len(POSE25)
    if den.ndim != 3 or den.shape[1:] != (K, 2) or vis.shape != den.shape[:2]:
        raise cli.InputError(f"{cfg.source}: expected keypoints (F, {K}, 2) and visible (F, {K}), got "
                             f"{den.shape} and {vis.shape}")
    raw, note = read_input(cfg.input, cfg.key, label="--input")    # the array denoise read, by denoise's rule
    if raw.ndim == 4 and raw.shape[1:] == (K, 56, 56) and np.issubdtype(raw.dtype, np.number):
        raw = ops.heatmap_argmax(torch.from_numpy(raw.astype(np.float32))).numpy()   # what the model read
    elif raw.ndim == 3 and raw.shape[1] == K and raw.shape[2] in (2, 3) and np.issubdtype(raw.dtype, np.number):
        raw = raw[..., :2].astype(np.float32).clip(0, 55)   # as denoise clipped it
    else:
        raise cli.InputError(f"--input {cfg.input}: expected heatmaps (F, {K}, 56, 56) or keypoints (F, {K}, 2 or 3), "
                             f"got {raw.dtype} {raw.shape}")
    if len(raw) != len(den):
        raise cli.InputError(f"--input {cfg.input}: {len(raw)} frames, but {cfg.source} has {len(den)}: not its input")
    if note:
        cli.warn(PROG, note)
    return den, np.where(vis[..., None], raw, np.nan), vis        # missing keypoints: gaps, as in the output


def inspect_trajectories(cfg: InspectConfig) -> str:
    names = [n.strip() for n in (cfg.keypoints or "nose,left_wrist,right_wrist").split(",") if n.strip()]
    out = cfg.out or cfg.source[:-len(".npz")] + "-trajectories.png"
    cli.check_output(out, "--out" if cfg.out else "figure (choose another with --out)")
    if not os.path.isfile(cfg.source):
        raise cli.InputError(f"{cfg.source}: no such file")
    try:
        with np.load(cfg.source, allow_pickle=False) as d:
            arrays = {k: d[k] for k in d.files}
    except Exception as e:   # not an .npz: whatever numpy raises
        raise cli.InputError(f"{cfg.source}: not a posedenoise.denoise output ({type(e).__name__}: {e})") from None
    if "raw" in arrays:       # image pixels: the output holds the estimator's keypoints it denoised
        layout, (den, raw, vis) = str(arrays["layout"]), _image_trajectories(cfg, arrays)
    else:
        layout, (den, raw, vis) = "pose25", _grid_trajectories(cfg, arrays)
    keys = list(LAYOUTS[layout])
    unknown = [n for n in names if n not in keys]
    if unknown or not names:
        raise cli.InputError(f"--keypoints: unknown keypoint {unknown[0] if unknown else '(none given)'!r}; "
                             f"expected comma-separated names of {layout}: {', '.join(keys)}")
    idx = [keys.index(n) for n in names]
    den, raw, vis = den[:, idx], raw[:, idx], vis[:, idx]
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    H = TRAJ_HEAD_PX + TRAJ_ROW_PX * len(names)
    fig = Figure(figsize=(TRAJ_WIDTH_PX / DPI, H / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(names), 2, squeeze=False, sharex=True)
    fig.subplots_adjust(left=0.07, right=0.98, top=1 - TRAJ_HEAD_PX / H, bottom=45 / H, hspace=0.45, wspace=0.15)
    frames = np.arange(len(den))
    for row, name in enumerate(names):
        k = row
        jit = _jitter(raw[:, k]), _jitter(den[:, k])
        for c, axis in enumerate("xy"):
            ax = axes[row, c]
            ax.plot(frames, raw[:, k, c], color="0.6", lw=0.9, marker=".", ms=3, label="the estimator's (raw input)")
            ax.plot(frames, den[:, k, c], color="tab:blue", lw=1.6, label="denoised")
            ax.set_ylabel(f"{axis} (px)", fontsize=8)
            ax.tick_params(labelsize=7)
            present = bool(vis[:, k].any())
            jitter = f"   jitter {jit[0]:.2f} -> {jit[1]:.2f} px/frame" if c == 0 and present else ""
            ax.set_title(f"{name} {axis}{jitter}", fontsize=9, loc="left")
            if not present:   # say so, rather than an empty plot with a made-up y range
                ax.text(0.5, 0.5, "missing in every frame", transform=ax.transAxes, ha="center", color="0.4")
                ax.set_yticks([])
            if axis == "y":
                ax.invert_yaxis()   # image rows: down is larger, as in the heatmaps
    for ax in axes[-1]:
        ax.set_xlabel("frame", fontsize=8)
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="upper center", ncol=2, fontsize=9, frameon=False)
    with files.atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return out


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """--help shows the module docstring as written (its layout lists the modes) and the flags' defaults
    (those that are None have their meaning in the help text)."""

    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)


@cli.command(PROG)
def main(argv=None):
    parser = cli.build_parser(InspectConfig, PROG, __doc__, positional=("source",))
    parser.formatter_class = _HelpFormatter
    cfg = InspectConfig(**vars(parser.parse_args(argv)))   # as cli.parse, with the whole docstring as help
    out = inspect_trajectories(cfg) if cfg.trajectories else inspect_run(cfg)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
