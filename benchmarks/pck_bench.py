"""How fast is evaluation: argmax + PCK of a batch of predicted heatmaps, per backend?

For B windows (T=5, K=25, 56x56 float32) it times ops.pck_from_heatmaps per available backend against,
in the same run:
  (a) the original study's way: a Python loop with np.argmax + np.unravel_index per heatmap, then PCK in numpy;
  (b) the read floor: one pass summing the same tensor (torch.sum);
  (c) the device's copy bandwidth: torch's own copy of the same number of bytes (it reads and writes them,
      so a kernel reading at the same bandwidth takes about half of (c): "x of copy" near 0.5).
It also times heatmap_argmax alone, which reads every map (the fused PCK skips maps that do not count).
Prints a table (median ms, x faster than (a), x of the floor (b), x of the copy (c)) and writes --json.
--cold evicts the caches before every call (maps from DRAM); by default the maps are warm, as right after a
model wrote them. --skip-study leaves (a) out (seconds per call at batch 1024).

    python benchmarks/pck_bench.py [--batch-size 16] [--repeats 50] [--cold] [--skip-study] [--json out.json]
"""
import functools
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (bench_parser, cache_flusher, copy_floor, device_name, fast_backends,  # noqa: E402
                    markdown_table, pick_device, time_interleaved, time_ms, write_json)

from posedenoise import ops  # noqa: E402
from posedenoise.layout import torso_indices  # noqa: E402

T, K, S = 5, 25, 56
ALPHAS = (0.05, 0.1, 0.2)
STUDY = "(a) study: numpy loop per heatmap"
FLOOR = "(b) floor: torch.sum over the maps"
COPY = "(c) copy: torch's copy of the same bytes"


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
    ap = bench_parser(__doc__, 50, "timed runs per method (the study's way: a tenth)")
    ap.add_argument("--visible", type=float, default=0.9,
                    help="fraction of ground-truth keypoints visible (maps of keypoints that do not count, "
                         "and of frames without a torso, are not read)")
    ap.add_argument("--cold", action="store_true",
                    help="evict the caches before every timed call, so the maps come from DRAM (by default "
                         "they sit in the cache, as right after the model wrote them)")
    ap.add_argument("--skip-study", action="store_true", help="leave out (a), the study's way (slow at large batches)")
    args = ap.parse_args(argv)
    dev = pick_device(args.device)
    F = args.batch_size * T
    g = torch.Generator().manual_seed(0)
    # Noisy-input-like maps: rendered Gaussians (as models output) rather than uniform noise, rendered on the
    # device (every backend renders the same bits; the CPU would take seconds at batch 1024).
    coords = torch.randint(0, S, (args.batch_size, T, K, 2), generator=g).to(dev)
    visible = (torch.rand(args.batch_size, T, K, generator=g) < args.visible).to(dev)
    heat, _ = ops.noisy_pair(coords, torch.ones_like(visible), torch.arange(args.batch_size, device=dev), k=1,
                             sigma_choices=(1.0, 1.5, 2.0, 2.5, 3.0), seed=0, epoch=0)
    heat = heat.reshape(F, K, S, S)
    gt = coords.reshape(F, K, 2).float()
    vis = visible.reshape(F, K)
    timer = dict(repeats=args.repeats, warmup=args.warmup, device=dev.type,
                 before=cache_flusher(dev) if args.cold else None)
    nbytes = heat.numel() * 4

    # The slow references alone (a run of them between the fast methods would evict the maps from the
    # cache); the floor and the fast backends interleaved, so they see the same machine.
    results = {}
    if not args.skip_study:
        h_np, gt_np, vis_np = heat.cpu().numpy(), gt.cpu().numpy(), vis.cpu().numpy()
        results[STUDY] = time_ms(lambda: study_way(h_np, gt_np, vis_np),
                                 **dict(timer, repeats=max(3, args.repeats // 10)))
    fast = {FLOOR: heat.sum, COPY: copy_floor(nbytes, dev)}
    runs = fast_backends(dev)
    for be in runs:
        fast[f"posedenoise {be} (fused)"] = functools.partial(ops.pck_from_heatmaps, heat, gt, vis, backend=be)
        fast[f"posedenoise {be} heatmap_argmax (every map)"] = functools.partial(ops.heatmap_argmax, heat,
                                                                                 backend=be)
    results.update(time_interleaved(fast, **timer))
    results["posedenoise torch (fused)"] = time_ms(
        functools.partial(ops.pck_from_heatmaps, heat, gt, vis, backend="torch"), **timer)

    # Same numbers from every path (checked here so a fast wrong path cannot look good).
    pcks = {be: ops.pck_from_heatmaps(heat, gt, vis, backend=be) for be in runs + ["torch"]}
    ours = pcks["torch"].overall.tolist()
    if not args.skip_study:
        ref = study_way(h_np, gt_np, vis_np)
        assert np.allclose(ref, ours), (ref, ours)
    assert all(torch.equal(r.hits, pcks["torch"].hits) for r in pcks.values())

    study, floor, copy = results.get(STUDY), results[FLOOR], results[COPY]
    read = int(pcks["torch"].counts.sum())
    payload = {"device": str(dev), "device_name": device_name(dev), "frames": F, "maps": F * K,
               "maps_read_by_fused_pck": read, "bytes": nbytes, "cold_caches": args.cold,
               "threads": torch.get_num_threads(), "copy_GB_per_s": round(2 * nbytes / copy / 1e6, 1),
               "pck": dict(zip(map(str, ALPHAS), ours)), "results": {}}
    rows = []
    for name, ms in results.items():
        row = {"ms": round(ms, 3), "x_faster_than_study": round(study / ms, 1) if study else None,
               "x_of_floor": round(ms / floor, 2), "x_of_copy": round(ms / copy, 3)}
        if dev.type == "cuda":
            row["GB_per_s"] = round(nbytes / ms / 1e6, 1)
        payload["results"][name] = row
        rows.append([name] + ["-" if v is None else v for v in row.values()])
    print(f"argmax + PCK of {args.batch_size} windows ({F * K} maps of {S}x{S} fp32, {nbytes / 1e6:.1f} MB) on "
          f"{device_name(dev)}, {torch.get_num_threads()} threads, {'cold' if args.cold else 'warm'} caches, median "
          f"of {args.repeats} runs (floors and fast paths interleaved; (c) copies at {payload['copy_GB_per_s']} "
          f"GB/s, read + write). The fused PCK reads the {read} maps that count ({read / (F * K):.0%}: visible, in "
          "a frame with a torso); the floors and heatmap_argmax read all.")
    header = ["method", "median ms", "x faster than (a)", "x of floor (b)", "x of copy (c)"]
    print(markdown_table(header + (["GB/s"] if dev.type == "cuda" else []), rows))
    if args.json:
        write_json(args.json, payload)


if __name__ == "__main__":
    main()
