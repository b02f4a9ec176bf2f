"""Timing helpers shared by the benchmark scripts: warm-up, median of many runs, CUDA events on a GPU."""
import argparse
import json
import os
import statistics
import time

import torch


def time_ms(fn, *, repeats=30, warmup=3, device="cpu", before=None):
    """Median wall time of fn() in milliseconds (CUDA events on a GPU), after `warmup` calls.
    before(), if given, runs untimed ahead of every call (to evict the caches, say)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if before is not None:
            before()
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def time_interleaved(fns, *, repeats=30, warmup=3, device="cpu", before=None):
    """{name: median ms} of several callables timed in rotation (one call of each per round), so that a
    machine that speeds up or slows down during the run (shared CPUs do) moves every method alike and the
    ratios between them stay honest."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(time_ms(fn, repeats=1, warmup=0, device=device, before=before))
    return {name: statistics.median(t) for name, t in times.items()}


def cache_flusher(device, nbytes=256 << 20):
    """A callable that writes nbytes (default: several times any L3 or GPU L2), so the next read of a
    tensor comes from DRAM rather than from the cache its producer left it in."""
    buf = torch.empty(nbytes // 4, dtype=torch.float32, device=device)
    return lambda: buf.fill_(1.0)


def bench_parser(doc, repeats, repeats_help):
    """The options every benchmark script shares; scripts add their own."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--batch-size", type=int, default=16, help="windows per batch")
    ap.add_argument("--repeats", type=int, default=repeats, help=repeats_help)
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    return ap


def pick_device(name):
    """"auto" is CUDA when there is a GPU, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def write_json(path, payload):
    """Atomic: a temporary file beside the target, then rename."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2)
    os.replace(tmp, path)
