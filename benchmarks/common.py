"""Timing helpers shared by the benchmark scripts: warm-up, median of many runs, CUDA events on a GPU, and the
floors a kernel is measured against (the device's own copy of the same bytes)."""
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


def copy_floor(nbytes, device):
    """A callable that copies nbytes from one buffer to another with torch's own copy (Tensor.copy_): the
    device's copy bandwidth, measured in the same run as the kernel it is the floor of. A copy reads and
    writes nbytes each, so it moves 2 * nbytes (a kernel that only writes, or only reads, nbytes at the
    same bandwidth takes about half its time)."""
    n = max(1, nbytes // 4)
    src = torch.ones(n, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    return lambda: dst.copy_(src)


def fast_backends(device):
    """The posedenoise backends timed as the fast paths on `device`: Triton on CUDA tensors, the C++ kernels
    on CPU tensors (Triton's interpreter, on CPU tensors, is a test harness: seconds per batch)."""
    from posedenoise import ops
    avail = ops.available_backends()["available"]
    return [be for be in ("triton", "cpp") if avail[be] and (be == "triton") == (device.type == "cuda")]


def bench_parser(doc, repeats, repeats_help):
    """The options every benchmark script shares; scripts add their own."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--batch-size", type=int, default=16, help="windows per batch")
    ap.add_argument("--repeats", type=int, default=repeats, help=repeats_help)
    ap.add_argument("--warmup", type=int, default=3, help="untimed calls of each method first")
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    return ap


def pick_device(name):
    """"auto" is CUDA when there is a GPU, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def device_name(device):
    """The device in words: the GPU's name, or the CPU and its threads."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


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
