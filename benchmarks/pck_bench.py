"""How fast is evaluation: argmax + PCK of a batch of predicted heatmaps, per backend?

For B windows (T=5, K=25, 56x56 float32) it times ops.pck_from_heatmaps per available backend against,
in the same run:
  (a) the original study's way: a Python loop with np.argmax + np.unravel_index per heatmap, then PCK in numpy;
  (b) the read floor: one pass summing the same tensor (torch.sum).
Prints a table (median ms, x faster than (a), x of the floor (b)) and writes --json.

    python benchmarks/pck_bench.py [--batch-size 16] [--repeats 50] [--json out.json]
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import markdown_table, time_ms, write_json  # noqa: E402

from posedenoise import ops  # noqa: E402
from posedenoise.layout import POSE25, torso_indices  # noqa: E402

T, K, S = 5, 25, 56
ALPHAS = (0.05, 0.1, 0.2)


def study_way(heatmaps, gt, visible):
    """Per-heatmap argmax in a Python loop, then torso PCK with numpy, as the original evaluation did."""
    F = heatmaps.shape[0]
    pred = np.zeros((F, K, 2))
    for f in range(F):
        for k in range(K):
            y, x = np.unravel_index(np.argmax(heatmaps[f, k]), (S, S))
            pred[f, k] = (x, y)
    (ls, lh), (rs, rh) = torso_indices()
    ok = visible[:, ls] & visible[:, lh] & visible[:, rs] & visible[:, rh]
    L = (np.linalg.norm(gt[:, ls] - gt[:, lh], axis=-1) + np.linalg.norm(gt[:, rs] - gt[:, rh], axis=-1)) / 2
    ok &= L > 0
    d = np.linalg.norm(pred - gt, axis=-1)
    valid = visible & ok[:, None]
    return [((d <= a * L[:, None]) & valid).sum() / valid.sum() for a in ALPHAS]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--batch-size", type=int, default=16, help="windows per batch")
    ap.add_argument("--repeats", type=int, default=50, help="timed runs per method (the study's way: a tenth)")
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    dev = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                       ("cpu" if args.device == "auto" else args.device))
    F = args.batch_size * T
    g = torch.Generator().manual_seed(0)
    # Noisy-input-like maps: rendered Gaussians (as models output) rather than uniform noise.
    coords = torch.randint(0, S, (args.batch_size, T, K, 2), generator=g)
    visible = torch.rand(args.batch_size, T, K, generator=g) > 0.1
    heat, _ = ops.noisy_pair(coords, torch.ones_like(visible), torch.arange(args.batch_size), k=1,
                             sigma_choices=(1.0, 1.5, 2.0, 2.5, 3.0), seed=0, epoch=0)
    heat = heat.reshape(F, K, S, S).to(dev)
    gt = coords.reshape(F, K, 2).float().to(dev)
    vis = visible.reshape(F, K).to(dev)
    timer = dict(repeats=args.repeats, device=dev.type)

    h_np, gt_np, vis_np = heat.cpu().numpy(), gt.cpu().numpy(), vis.cpu().numpy()
    results = {"(a) study: numpy loop per heatmap": time_ms(lambda: study_way(h_np, gt_np, vis_np),
                                                             repeats=max(3, args.repeats // 10), warmup=1),
               "(b) floor: torch.sum over the maps": time_ms(lambda: heat.sum(), **timer)}
    avail = ops.available_backends()["available"]
    for be in ("triton", "cpp", "torch"):
        if not avail[be] or (be == "triton" and dev.type != "cuda") or (be == "cpp" and dev.type != "cpu"):
            continue
        results[f"posedenoise {be} (fused)"] = time_ms(lambda: ops.pck_from_heatmaps(heat, gt, vis, backend=be),
                                                       **timer)
    # Same numbers from every path (checked here so a fast wrong path cannot look good).
    ref = study_way(h_np, gt_np, vis_np)
    ours = ops.pck_from_heatmaps(heat, gt, vis).overall.tolist()
    assert np.allclose(ref, ours), (ref, ours)

    study, floor = results["(a) study: numpy loop per heatmap"], results["(b) floor: torch.sum over the maps"]
    nbytes = heat.numel() * 4
    payload = {"device": str(dev), "frames": F, "maps": F * K, "bytes_read": nbytes,
               "threads": torch.get_num_threads(), "pck": dict(zip(map(str, ALPHAS), ours)), "results": {}}
    rows = []
    for name, ms in results.items():
        row = {"ms": round(ms, 3), "x_faster_than_study": round(study / ms, 1), "x_of_floor": round(ms / floor, 2)}
        payload["results"][name] = row
        rows.append([name] + list(row.values()))
    print(f"argmax + PCK of {args.batch_size} windows ({F * K} maps of {S}x{S} fp32, {nbytes / 1e6:.1f} MB) on "
          f"{dev}, {torch.get_num_threads()} threads, median of {args.repeats} runs")
    print(markdown_table(["method", "median ms", "x faster than (a)", "x of floor (b)"], rows))
    if args.json:
        write_json(args.json, payload)


if __name__ == "__main__":
    main()
