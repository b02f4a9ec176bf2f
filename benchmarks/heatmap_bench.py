"""How fast is a training batch's (noisy input, target) heatmap pair, per backend?

For a batch of B windows (T=5, K=25, 56x56, float32) it times a full ops.noisy_pair per available backend
against, in the same run:
  (a) the original study's way: numpy zero maps and one scipy.ndimage.gaussian_filter per heatmap;
  (b) a dense PyTorch broadcast: exp over the full grid for every map;
  (c) the memory floor: zero-filling the same number of bytes, allocated the same way (two tensors). The
      fill uses ordinary (cached) stores, which read every line before writing it once the bytes outgrow
      the cache; the C++ kernel streams its stores past the cache and can beat this "floor";
  (d) the device's copy bandwidth: torch's own copy of the same number of bytes (it reads them and writes
      them, so a kernel writing at the same bandwidth takes about half of (d): "x of copy" near 0.5).
Timed alone, a batch writes into memory the previous batch left in the cache; inside training, after the
model's work, it does not: benchmarks/train_step_bench.py times the data path there.
Prints a table (median ms, windows/s, x faster than (a), x of the floor (c), x of the copy (d)) and writes
--json. On a GPU it uses CUDA events and reports GB/s; without one it prints the bytes the Triton kernel moves
and the time that implies at an H100's ~3 TB/s. --skip-study leaves (a) out (seconds per call at batch 1024).

    python benchmarks/heatmap_bench.py [--batch-size 16] [--repeats 30] [--skip-study] [--json out.json]
"""
import functools
import os
import sys

import numpy as np
import scipy.ndimage as ndi
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (bench_parser, copy_floor, device_name, fast_backends, markdown_table,  # noqa: E402
                    pick_device, time_interleaved, time_ms, write_json)

from posedenoise import ops  # noqa: E402
from posedenoise.memory import keep_freed_memory  # noqa: E402

T, K, S = 5, 25, 56
SIGMAS = (1.0, 1.5, 2.0, 2.5, 3.0)
H100_BYTES_PER_S = 3.0e12
COPY = "(d) copy: torch's copy of the same bytes"


def study_way(coords, visible, rng):
    """The original implementation: shift with numpy's RNG, then one scipy filter per heatmap."""
    B = coords.shape[0]
    shifts = np.rint(rng.normal(0.0, 3.0, size=coords.shape)).astype(np.int64)
    noisy = np.clip(coords + shifts, 0, S - 1)
    sigma_in = rng.choice(SIGMAS, size=(B, T))
    inputs = np.zeros((B, T, K, S, S), np.float32)
    targets = np.zeros((B, T, K, S, S), np.float32)
    for b in range(B):
        for t in range(T):
            for k in range(K):
                for out, (x, y), s in ((inputs, noisy[b, t, k], sigma_in[b, t]), (targets, coords[b, t, k], 1.0)):
                    z = np.zeros((S, S), np.float32)
                    z[y, x] = 255.0 * visible[b, t, k]
                    out[b, t, k] = ndi.gaussian_filter(z, s, mode="nearest", truncate=4.0)
    return inputs, targets


def dense_broadcast(coords, visible, gen):
    """Every map as exp over the whole grid, with torch's RNG for the noise (no 'nearest' border)."""
    shifts = torch.round(torch.randn(coords.shape, generator=gen, device=coords.device) * 3.0)
    noisy = (coords + shifts).clamp(0, S - 1)
    sig = torch.tensor(SIGMAS, device=coords.device)[
        torch.randint(0, 5, coords.shape[:2], generator=gen, device=coords.device)][..., None, None, None]
    grid = torch.arange(S, device=coords.device, dtype=torch.float32)

    def maps(c, s):
        dx = (grid - c[..., 0, None]) ** 2                                    # (B, T, K, W)
        dy = (grid - c[..., 1, None]) ** 2                                    # (B, T, K, H)
        g = torch.exp(-(dy[..., :, None] + dx[..., None, :]) / (2 * s * s))   # (B, T, K, H, W)
        return 255.0 / (2 * torch.pi * s * s) * g * visible[..., None, None]

    return maps(noisy, sig), maps(coords.float(), torch.ones_like(sig))


def main(argv=None):
    ap = bench_parser(__doc__, 30, "timed runs per method (the study's way: a fifth)")
    ap.add_argument("--default-malloc", action="store_true",
                    help="leave glibc's malloc thresholds alone (every batch then page-faults its 50 MB back in)")
    ap.add_argument("--skip-study", action="store_true", help="leave out (a), the study's way (slow at large batches)")
    args = ap.parse_args(argv)
    tuned = False if args.default_malloc else keep_freed_memory()
    dev = pick_device(args.device)
    B = args.batch_size
    g = torch.Generator().manual_seed(0)
    coords = torch.randint(0, S, (B, T, K, 2), generator=g)
    visible = torch.rand(B, T, K, generator=g) > 0.2
    wid = torch.arange(B)
    nbytes = 2 * B * T * K * S * S * 4
    c_dev, v_dev, w_dev = coords.to(dev), visible.to(dev), wid.to(dev)
    timer = dict(repeats=args.repeats, warmup=args.warmup, device=dev.type)

    results = {}
    rng = np.random.default_rng(0)
    if not args.skip_study:
        results["(a) study: numpy + scipy per heatmap"] = time_ms(
            lambda: study_way(coords.numpy(), visible.numpy(), rng), repeats=max(3, args.repeats // 5), warmup=1)
    gen = torch.Generator(device=dev).manual_seed(0)
    results["(b) dense torch broadcast"] = time_ms(lambda: dense_broadcast(c_dev, v_dev, gen), **timer)
    # The floor and the fast backends interleaved, so they see the same machine (the slow ones alone).
    def floor():  # a fresh (input, target) pair of buffers, zero-filled: the bytes the kernels write
        return [torch.empty((B, T, K, S, S), device=dev).zero_() for _ in range(2)]
    fast = {"(c) floor: zero-fill the same bytes": floor, COPY: copy_floor(nbytes, dev)}
    for be in fast_backends(dev):
        fast[f"posedenoise {be}"] = functools.partial(ops.noisy_pair, c_dev, v_dev, w_dev, k=1,
                                                      sigma_choices=SIGMAS, seed=0, epoch=0, backend=be)
    results.update(time_interleaved(fast, **timer))
    results["posedenoise torch"] = time_ms(functools.partial(
        ops.noisy_pair, c_dev, v_dev, w_dev, k=1, sigma_choices=SIGMAS, seed=0, epoch=0, backend="torch"), **timer)

    study = results.get("(a) study: numpy + scipy per heatmap")
    floor, copy = results["(c) floor: zero-fill the same bytes"], results[COPY]
    rows, payload = [], {"device": str(dev), "device_name": device_name(dev), "batch_windows": B,
                         "bytes_written": nbytes, "threads": torch.get_num_threads(),
                         "malloc_keeps_freed_memory": tuned,
                         "copy_GB_per_s": round(2 * nbytes / copy / 1e6, 1), "results": {}}
    for name, ms in results.items():
        row = {"ms": round(ms, 3), "windows_per_s": round(B / ms * 1e3, 1),
               "x_faster_than_study": round(study / ms, 1) if study else None, "x_of_floor": round(ms / floor, 2),
               "x_of_copy": round(ms / copy, 3)}
        if dev.type == "cuda":
            row["GB_per_s"] = round(nbytes / ms / 1e6, 1)
        payload["results"][name] = row
        rows.append([name] + ["-" if v is None else v for v in row.values()])
    header = ["method", "median ms", "windows/s", "x faster than (a)", "x of floor (c)", "x of copy (d)"]
    if dev.type == "cuda":
        header.append("GB/s")
    print(f"noisy pair of {B} windows (T={T}, K={K}, {S}x{S} fp32: {nbytes / 1e6:.1f} MB written) on "
          f"{device_name(dev)}, {torch.get_num_threads()} threads, median of {args.repeats} runs (floors and fast "
          f"paths interleaved), malloc {'keeps freed memory' if tuned else 'default'} (see posedenoise/memory.py); "
          f"(d) copies at {payload['copy_GB_per_s']} GB/s (read + write)")
    if dev.type != "cuda":
        ideal_us = nbytes / H100_BYTES_PER_S * 1e6
        payload["triton_ideal_h100_us"] = round(ideal_us, 1)
        print(f"Triton kernel (no GPU here): moves {nbytes / 1e6:.1f} MB of stores and ~{B * T * K * 9 / 1e3:.0f} "
              f"KB of loads from memory (plus 224 B profile rows from a 75 KB table that stays in L2); at ~3 TB/s "
              f"that is {ideal_us:.1f} us per batch on an H100.")
    print(markdown_table(header, rows))
    if args.json:
        write_json(args.json, payload)


if __name__ == "__main__":
    main()
