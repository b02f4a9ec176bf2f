"""Data: readers (Penn Action, synthetic motion) -> preprocessing -> keypoint cache -> windows -> batches."""
from .cache import KeypointCache, build_cache, load_cache, save_cache
from .errors import DataError
from .raw import RawVideo
from .windows import Batches, Dataset, open_data

__all__ = ["Batches", "DataError", "Dataset", "KeypointCache", "RawVideo", "build_cache", "load_cache",
           "open_data", "save_cache"]
