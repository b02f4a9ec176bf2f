"""The heatmap models' averaging ceiling: how close can a heatmap model get to the mean filter by averaging maps?

A temporal filter averages each keypoint's argmax coordinates over the window. A heatmap model (conv3d: one
Conv3d(K -> K, kernel n x n x n, padding 'same') + ReLU) can only average the noisy maps themselves, weighted
over time and space, and is scored on the argmax of what it outputs. This script measures, on the test split
under the evaluation's own fixed noise (evaluation.batch_inputs, epoch 0, the same windows, the same PCK op),
the best such averaging can do:

  (a) identity: the argmax of each frame's noisy map (what evaluation reports as the identity);
  (b) the mean filter: the mean of each keypoint's argmax coordinates over the frames where it is present
      (and, for comparison, the mean over all 5 frames, a missing frame's all-zero map read as (0, 0));
  (c) averaged maps: the mean of the window's 5 noisy maps, blurred by a Gaussian of sigma s (truncated at
      4 s, zero beyond the map's border), its argmax for every frame;
  (d) what a 'same' Conv3d of kernel n (n in 5, 7, 9, 11, 13; kernel n x n x n, as conv3d's --model-arg
      kernel=n builds it) can express by averaging: frame t gets the uniform mean of frames t - r .. t + r,
      r = (n - 1) / 2, cut at the window's ends (the zero padding: an edge frame of a kernel-5 model sees 3
      frames), blurred by a Gaussian of sigma s truncated to the n x n kernel (s = box: uniform); the best s
      per n from a grid (chosen on the same windows: an upper bound of this family, not a held-out score);
  (e) normalised maps averaged: each map divided by its own peak before (c). Not linear, so no conv3d
      expresses it; it shows what the peak heights cost (a sigma-1 map's peak is 9x a sigma-3 map's, so the
      plain average follows the sharpest frame rather than the mean position).

The argmax of a blurred average is unchanged by a positive scale, a bias and the ReLU, and the keypoints'
channels need not mix, so (d) covers every uniform-in-time, Gaussian-in-space kernel a conv3d can hold; a
kernel outside that family (non-uniform time weights, other spatial profiles) is not covered.

Windows: --windows of the test split, evenly spaced over it (every video of the split contributes), in
batches through data.Batches in test order. Deterministic: no sampling; blurs are float32 matrix products
(1 and 2 threads gave identical results; another BLAS could in principle move an argmax tie). Integer argmax,
ties to the first index (ops.heatmap_argmax). Prints a table last; writes --json (atomically) and --markdown.

    OMP_NUM_THREADS=1 python benchmarks/heatmap_ceiling.py --data penn.npz --json ceiling.json --markdown ceiling.md
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch

from posedenoise import cli, files, ops
from posedenoise.data import Batches, open_data
from posedenoise.errors import InputError
from posedenoise.evaluation import ALPHAS, EVAL_EPOCH, SETUPS, batch_inputs, overall_dict, run_noise
from posedenoise.metrics import PCKResult

T, SIZE = 5, 56
AVERAGE_SIGMAS = (0, 1, 2, 3, 4, 6, 8)                         # (c) and (e): pixels
KERNELS = (5, 7, 9, 11, 13)                                    # (d): conv3d kernel sizes
KERNEL_SIGMAS = (0, 0.5, 1, 1.5, 2, 3, 4, "box")               # (d): the spatial Gaussian, truncated to the kernel
BOX = "box"


# ---------------------------------------------------------------------------------------------------------
# The averaging operators (shapes: maps (..., H, W); a blur is B @ M @ B with B a symmetric (H, H) band)
# ---------------------------------------------------------------------------------------------------------


def blur_matrix(s, radius: int, size: int = SIZE) -> torch.Tensor:
    """(size, size) float32: B[i, j] = g(i - j) for |i - j| <= radius, else 0 (zero padding, as a 'same'
    convolution), g a Gaussian of sigma s (s = 0: no blur; s = "box": uniform), weights summing to 1."""
    d = np.arange(-radius, radius + 1, dtype=np.float64)
    if s == BOX:
        g = np.ones_like(d)
    elif s == 0:
        g = (d == 0).astype(np.float64)
    else:
        g = np.exp(-0.5 * (d / float(s)) ** 2)
    g /= g.sum()
    i = np.arange(size)
    diff = i[None, :] - i[:, None]
    m = np.where(np.abs(diff) <= radius, g[np.clip(diff + radius, 0, 2 * radius)], 0.0)
    return torch.tensor(m, dtype=torch.float32)


def blur(maps: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """maps (..., H, W) -> matrix @ maps @ matrix (matrix symmetric): the separable blur of every map."""
    H, W = maps.shape[-2:]
    rows = (maps.reshape(-1, W) @ matrix).reshape(-1, H, W)
    return torch.matmul(matrix, rows).reshape(maps.shape)


def gaussian_radius(s) -> int:
    """(c)'s truncation: 4 sigma, as scipy.ndimage.gaussian_filter's default."""
    return 0 if s == 0 else int(math.ceil(4 * float(s)))


def frame_spans(reach: int, window: int = T) -> List[Tuple[int, int]]:
    """Frames (first, last) that output frame t of a 'same' temporal kernel of half-width `reach` sees."""
    return [(max(0, t - reach), min(window - 1, t + reach)) for t in range(window)]


def present_mean(xy: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """(b): xy (B, T, K, 2), present (B, T, K) -> every frame the mean over the keypoint's present frames
    (a keypoint present in no frame keeps its input: it is not counted, its ground truth is missing)."""
    w = present.to(xy.dtype)[..., None]
    n = w.sum(1, keepdim=True)
    mean = (xy * w).sum(1, keepdim=True) / n.clamp(min=1)
    return torch.where(n > 0, mean.expand_as(xy), xy)


# ---------------------------------------------------------------------------------------------------------
# The measurement
# ---------------------------------------------------------------------------------------------------------


class _Windows:
    """The chosen test windows as a split of their own, for data.Batches (ids in test order)."""

    def __init__(self, data, ids: torch.Tensor):
        self.data, self.ids = data, ids
        self.num_windows = data.num_windows

    def split_ids(self, split: str) -> torch.Tensor:
        return self.ids

    def gather(self, ids):
        return self.data.gather(ids)


def chosen_windows(data, n: int) -> torch.Tensor:
    """n test windows evenly spaced over the test split (all of them if n >= its size), in test order."""
    ids = data.split_ids("test")
    if n >= len(ids):
        return ids
    return ids[torch.from_numpy(np.floor(np.arange(n) * (len(ids) / n)).astype(np.int64))]


def labels() -> List[tuple]:
    out = [("identity",), ("mean", "present"), ("mean", "all")]
    out += [("average", s) for s in AVERAGE_SIGMAS] + [("normalised", s) for s in AVERAGE_SIGMAS]
    out += [("kernel", n, s) for n in KERNELS for s in KERNEL_SIGMAS]
    return out


class Ceiling:
    """Sums of PCK per method over batches of windows; `add` one batch, `result` at the end."""

    def __init__(self):
        self.sums: Dict[tuple, PCKResult] = {}
        self.matrices = {("average", s): blur_matrix(s, gaussian_radius(s)) for s in AVERAGE_SIGMAS}
        self.matrices.update({("kernel", n, s): blur_matrix(s, (n - 1) // 2) for n in KERNELS for s in KERNEL_SIGMAS})

    def _add(self, label, result):
        self.sums[label] = self.sums[label] + result if label in self.sums else result

    def add(self, x: torch.Tensor, gt: torch.Tensor, visible: torch.Tensor) -> None:
        """x: noisy input maps (B, T, K, H, W); gt (B, T, K, 2) float32; visible (B, T, K) bool."""
        self._add(("identity",), ops.pck_from_heatmaps(x, gt, visible, alphas=ALPHAS))   # evaluation's own path
        for label, pred in self.predictions(x, visible):
            self._add(label, ops.pck(pred, gt, visible, alphas=ALPHAS))

    def predictions(self, x: torch.Tensor, visible: torch.Tensor):
        """(label, predicted coordinates (B, T, K, 2)) of every method but the identity, for one batch.

        Only the maps of keypoints visible in some frame of their window are blurred and read: the others are
        all zero and never counted (Penn Action fills 13 of the 25), so their prediction (0, 0) changes nothing."""
        xy = ops.heatmap_argmax(x, check_nan=False)                                      # (B, T, K, 2)
        present = x.flatten(-2).amax(-1) > 0                                             # all-zero map: missing
        yield ("mean", "present"), present_mean(xy, present)
        yield ("mean", "all"), xy.mean(1, keepdim=True).expand_as(xy)
        counted = visible.any(1)                                                         # (B, K)
        B, K = counted.shape

        def argmax(maps, matrix=None):
            """maps (N, H, W) of the counted (window, keypoint) pairs, blurred by matrix -> (B, K, 2)."""
            out = torch.zeros(B, K, 2)
            out[counted] = ops.heatmap_argmax((maps if matrix is None else blur(maps, matrix)).contiguous(),
                                              check_nan=False)
            return out

        spans = sorted({span for n in KERNELS for span in frame_spans((n - 1) // 2)})
        means = {span: x[:, span[0]:span[1] + 1].mean(1)[counted] for span in spans}     # (N, H, W) each
        peak = x.flatten(-2).amax(-1)[..., None, None]
        normalised = torch.where(peak > 0, x / peak.clamp(min=1e-30), x).mean(1)[counted]
        whole = (0, T - 1)
        for s in AVERAGE_SIGMAS:
            m = self.matrices[("average", s)] if s else None
            yield ("average", s), argmax(means[whole], m)[:, None].expand(-1, T, -1, -1)
            yield ("normalised", s), argmax(normalised, m)[:, None].expand(-1, T, -1, -1)
        for n in KERNELS:
            frames = frame_spans((n - 1) // 2)
            for s in KERNEL_SIGMAS:
                m = self.matrices[("kernel", n, s)] if s != 0 else None
                per_span = {span: argmax(means[span], m) for span in dict.fromkeys(frames)}
                yield ("kernel", n, s), torch.stack([per_span[span] for span in frames], dim=1)

    def result(self) -> dict:
        """The JSON of one k: every method's test PCK ({alpha: value})."""
        r = {label: overall_dict(self.sums[label]) for label in labels()}
        out = {"identity": r[("identity",)], "mean_filter": r[("mean", "present")],
               "mean_all_frames": r[("mean", "all")],
               "average_blur": [{"s": s, "pck": r[("average", s)]} for s in AVERAGE_SIGMAS],
               "normalised_average_blur": [{"s": s, "pck": r[("normalised", s)]} for s in AVERAGE_SIGMAS],
               "kernels": []}
        def score(g):    # by PCK@0.2, then 0.1, then 0.05 (None: nothing counted, last); max keeps the first tie
            return tuple(-1.0 if g["pck"][a] is None else g["pck"][a] for a in ("0.2", "0.1", "0.05"))

        for n in KERNELS:
            grid = [{"s": s, "pck": r[("kernel", n, s)]} for s in KERNEL_SIGMAS]
            best = max(grid, key=score)
            out["kernels"].append({"kernel": n, "temporal_reach": (n - 1) // 2, "best_s": best["s"],
                                   "pck": best["pck"], "grid": grid})
        out["keypoints_counted"] = int(self.sums[("identity",)].counts.sum())
        return out


def measure(data, ids: torch.Tensor, k: float, setup: int, *, seed: int = 0, batch_size: int = 100,
            progress=None, warm_up: bool = False) -> dict:
    """Every method's PCK on windows `ids` of `data` at (k, setup), under the test split's fixed noise
    (warm_up: compute, return nothing)."""
    noise = run_noise({"setup": setup, "k": k, "seed": seed})
    ceiling = Ceiling()
    batches = Batches(_Windows(data, ids), "test", batch_size, "cpu", epoch=EVAL_EPOCH, seed=seed, shuffle=False,
                      drop_last=False)
    for i, (coords, visible, wid) in enumerate(batches):
        out = batch_inputs(data, coords, visible, wid, "coords", epoch=EVAL_EPOCH, **noise)
        x, gt = out[0], (out[2] if len(out) > 2 else coords)     # (x, y, the coords scored against)
        ceiling.add(x, gt.to(torch.float32), visible)
        if progress:
            progress(i + 1, len(batches))
    return None if warm_up else ceiling.result()


def main(argv: Sequence[str] = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--data", default="penn.npz", help="a keypoint cache (python -m posedenoise.prepare)")
    ap.add_argument("--windows", type=int, default=3000, help="test windows, evenly spaced over the test split")
    ap.add_argument("--ks", default="1,2", help="comma-separated shifting scalars k")
    ap.add_argument("--setup", type=int, default=1, choices=sorted(SETUPS))
    ap.add_argument("--seed", type=int, default=0, help="the splits' and the noise's seed (train's default)")
    ap.add_argument("--batch-size", type=int, default=100, help="windows per batch (memory, not results)")
    ap.add_argument("--json", help="write the results here (atomically)")
    ap.add_argument("--markdown", help="write the table here, as Markdown")
    args = ap.parse_args(argv)
    try:
        ks = [float(v) for v in args.ks.split(",")]
    except ValueError:
        ap.error(f"--ks: expected numbers separated by commas, got {args.ks!r}")
    if args.windows < 1 or args.batch_size < 1:
        ap.error("--windows and --batch-size: expected positive integers")
    t_start = time.perf_counter()
    try:                                       # bad input: one line, before the work
        for flag in ("json", "markdown"):
            if getattr(args, flag):
                cli.check_output(getattr(args, flag), f"--{flag}")
        data = open_data(args.data, step=SETUPS[args.setup]["step"], split="video", seed=args.seed)
    except InputError as e:                    # DataError is one
        ap.error(str(e))
    ids = chosen_windows(data, args.windows)
    measure(data, ids[:2], ks[0], args.setup, seed=args.seed, batch_size=2, warm_up=True)   # extension, tables, BLAS
    t0 = time.perf_counter()
    results = []
    for k in ks:
        t = time.perf_counter()
        shown = lambda i, n: print(f"\rk = {k:g}: batch {i}/{n}", end="", file=sys.stderr, flush=True)  # noqa: E731
        results.append({"k": k, **measure(data, ids, k, args.setup, seed=args.seed, batch_size=args.batch_size,
                                          progress=shown if sys.stderr.isatty() else None),
                        "seconds": round(time.perf_counter() - t, 1)})
        print(f"\rk = {k:g}: {len(ids)} windows in {results[-1]['seconds']:.0f} s", file=sys.stderr, flush=True)
    doc = {
        "what": "heatmap averaging ceiling (benchmarks/heatmap_ceiling.py)",
        "command": {"script": os.path.abspath(__file__), "data": os.path.abspath(args.data), "windows": args.windows,
                    "ks": args.ks, "setup": args.setup, "seed": args.seed,
                    "json": os.path.abspath(args.json) if args.json else None,
                    "markdown": os.path.abspath(args.markdown) if args.markdown else None},
        "setup": args.setup, "seed": args.seed, "split": "video", "windows": len(ids),
        "test_windows": int(len(data.split_ids("test"))), "alphas": list(ALPHAS),
        "average_sigmas": list(AVERAGE_SIGMAS), "kernels": list(KERNELS), "kernel_sigmas": list(KERNEL_SIGMAS),
        "results": results, "threads": torch.get_num_threads(), "torch": torch.__version__,
        "seconds": round(time.perf_counter() - t0, 1), "seconds_with_warmup": round(time.perf_counter() - t_start, 1),
    }
    from posedenoise.results import ceiling_markdown
    if args.json:
        files.write_json(args.json, doc)
    if args.markdown:
        files.write_text(args.markdown, ceiling_markdown(doc, heading="# The heatmap models' averaging ceiling") + "\n")
    print(f"{len(ids)} of {doc['test_windows']} test windows, setup {args.setup}, {doc['threads']} threads, "
          f"{doc['seconds']:.0f} s")
    print(ceiling_markdown(doc, heading=None, short=True))
    return doc


if __name__ == "__main__":
    main()
