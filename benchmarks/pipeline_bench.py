"""Is loading ever the bottleneck? Batches per second of the data pipeline alone, on the real Penn Action cache.

Times one pass of posedenoise.data.Batches over the training windows (a (seed, epoch) shuffle, then per
batch a vectorised gather of (B, T, 25, 2) coords and (B, T, 25) visibility from the memory-mapped cache,
as CPU tensors: what the trainer hands to .to(device) and ops.noisy_pair), median of several passes, and, in
the same run, the floor: one torch.randint of the same shape per batch (no gather at all). Also the time to
open the cache (memory-map) and to build the window table and split.

    python benchmarks/pipeline_bench.py [--penn-action ../shared/data/penn_action] [--cache /tmp/penn.npz]
                                        [--batch-size 16] [--passes 5] [--step 1] [--device cpu]
                                        [--json out.json]
"""
import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import markdown_table, write_json  # noqa: E402

from posedenoise.data import Batches, Dataset, build_cache, load_cache, save_cache  # noqa: E402
from posedenoise.data.penn_action import read_folder  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def one_pass(make, max_batches, device):
    """Seconds and batch count of one pass (at most max_batches batches) over a fresh iterable."""
    t0 = time.perf_counter()
    n = 0
    for batch in make():
        n += 1
        if n >= max_batches:
            break
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0, n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--penn-action", default=os.path.join(HERE, "..", "..", "shared", "data", "penn_action"),
                    help="Penn Action folder (read only if --cache does not exist yet)")
    ap.add_argument("--cache", default="/tmp/penn_action_cache.npz", help="cache to load, or to write first")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--step", type=int, default=1, choices=(1, 2))
    ap.add_argument("--passes", type=int, default=5, help="timed passes (the median is reported)")
    ap.add_argument("--max-batches", type=int, default=2000, help="batches per pass (0: the whole epoch)")
    ap.add_argument("--device", default="cpu", help="where the batches go (cpu, cuda): cuda adds the copy to the GPU")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()

    if not os.path.isfile(args.cache):
        t0 = time.perf_counter()
        save_cache(build_cache(read_folder(args.penn_action)), args.cache)
        print(f"prepared {args.cache} in {time.perf_counter() - t0:.1f}s")
    t0 = time.perf_counter()
    cache = load_cache(args.cache)
    t_open = time.perf_counter() - t0
    t0 = time.perf_counter()
    data = Dataset(cache, step=args.step, seed=0, name=args.cache)
    t_table = time.perf_counter() - t0
    n_train = len(data.split_ids("train"))
    B = args.batch_size
    device = torch.device(args.device)
    limit = args.max_batches or 10**12

    def pipeline(epoch=[0]):  # a new shuffle each pass, like a new epoch
        epoch[0] += 1
        return Batches(data, "train", B, device, epoch=epoch[0], seed=0, shuffle=True, drop_last=True)

    def floor():
        shape = (B, data.T, 25, 2)
        return (torch.randint(0, 56, shape).to(device) for _ in range(len(pipeline([0]))))

    rows, results = [], {}
    for label, make in (("pipeline (shuffle + gather)", pipeline), ("floor (randint, no gather)", floor)):
        one_pass(make, min(limit, 50), device)                                   # warm-up: page in the cache
        runs = [one_pass(make, limit, device) for _ in range(args.passes)]
        rates = [n / s for s, n in runs]
        med = statistics.median(rates)
        results[label] = {"batches_per_s": med, "windows_per_s": med * B, "batches_per_pass": runs[0][1],
                          "passes": args.passes}
        rows.append([label, f"{med:,.0f}", f"{med * B:,.0f}", runs[0][1]])
    coords, visible, ids = next(iter(pipeline()))
    batch_bytes = coords.numel() * coords.element_size() + visible.numel() + ids.numel() * 8
    rows.append(["(pipeline / floor)",
                 f"{results[rows[0][0]]['batches_per_s'] / results[rows[1][0]]['batches_per_s']:.2f}x", "", ""])
    print(f"cache {args.cache}: {cache.num_videos} videos, {cache.num_frames} frames; open {t_open * 1e3:.1f} ms, "
          f"window table + split {t_table * 1e3:.1f} ms; {n_train} train windows (T=5, step {args.step}); "
          f"batch {B} = {batch_bytes} bytes; device {device}")
    print(markdown_table(["what", "batches/s (median)", "windows/s", "batches per pass"], rows))
    if args.json:
        write_json(args.json, {"cache": args.cache, "device": str(device), "batch_size": B, "step": args.step,
                               "open_ms": t_open * 1e3,
                               "table_ms": t_table * 1e3, "train_windows": n_train, "batch_bytes": batch_bytes,
                               "results": results})


if __name__ == "__main__":
    main()
