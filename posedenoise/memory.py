"""Keep freed CPU memory in the process (glibc), for the entry points that render a batch per step.

A noisy pair of 16 windows is two 25 MB tensors. With glibc's default, adaptive thresholds, blocks that
size are often handed back to the OS when freed and page-faulted back in by the next batch: ~12,000 minor
faults, 8-14 ms on a 2-core machine, ten times the cost of writing the bytes. Raising the mmap threshold to
its maximum (32 MiB on 64-bit) and the trim threshold far above it keeps such blocks in the heap for reuse.
This changes a process-wide setting, so only entry points (train, benchmarks) call it, never an import.
"""
import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024
TRIM_THRESHOLD = 1 << 30


def keep_freed_memory() -> bool:
    """Tune glibc malloc as described above; returns False (and changes nothing) where it is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
