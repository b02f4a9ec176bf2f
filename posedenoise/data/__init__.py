"""Data: readers -> preprocessing -> keypoint cache -> windows -> batches.

Readers (penn_action, brace, generic, synthetic) produce RawVideo records in the 25-keypoint layout, in
source pixels; preprocess maps every frame onto the 56 x 56 heatmap grid (SPEC section 2); cache writes and
memory-maps one .npz; windows enumerates windows with stable ids, splits them and gathers batches.
Every problem with the input raises DataError, whose message names the file and what was expected.
"""
from .cache import KeypointCache, build_cache, load_cache, save_cache, synthetic_cache
from .errors import DataError
from .raw import RawVideo
from .windows import Batches, Dataset, open_data, window_table
from . import paired  # noqa: F401,E402  registers the paired cache's opener (cache.OPENERS)

__all__ = ["Batches", "DataError", "Dataset", "KeypointCache", "RawVideo", "build_cache", "load_cache",
           "open_data", "save_cache", "synthetic_cache", "window_table"]
