"""The keypoint cache: every video's frames in heatmap space, in one uncompressed .npz.

Arrays: coords (F, 25, 2) int16 in [0, 55]; visible (F, 25) bool; video_starts, video_lengths (V,) int64;
names, sources, official_splits (V,) str ("" for none); layout (0-d str), version (0-d int). The videos'
frames lie back to back: video v is frames video_starts[v] : video_starts[v] + video_lengths[v]. The .npz is
uncompressed so that load_cache() memory-maps coords and visible straight from the file: a cache far larger
than RAM opens instantly (only the small per-video arrays are read). It is written atomically (temporary
file, then rename), so a failed or killed write leaves no partial cache.

Other kinds of cache file (a paired cache: posedenoise/data/paired.py) carry a `kind` field; every kind is
opened through one table, OPENERS, where the module of each kind registers its opener (open_cache).
"""
from __future__ import annotations

import os
import struct
import zipfile
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from .. import files
from ..layout import POSE25
from .errors import DataError
from .preprocess import to_heatmap_space
from .raw import RawVideo

FORMAT_VERSION = 1
_MAKE_ONE = "python -m posedenoise.prepare makes one (--generic FILE for keypoints in the generic format)"


@dataclass
class KeypointCache:
    coords: np.ndarray           # (F, K, 2) int16, heatmap pixels (x, y)
    visible: np.ndarray          # (F, K) bool
    video_starts: np.ndarray     # (V,) int64: first frame of each video in the flat arrays
    video_lengths: np.ndarray    # (V,) int64
    names: List[str]
    sources: List[str]
    official_splits: List[Optional[str]]
    layout: str = "pose25"

    @property
    def num_frames(self) -> int:
        return int(self.coords.shape[0])

    @property
    def num_videos(self) -> int:
        return len(self.names)

    @property
    def source(self) -> np.ndarray:
        """(V,) str: the source of each video ("penn_action", "brace", "generic", "synthetic")."""
        return np.array(self.sources, dtype=str)


def synthetic_cache(num_videos: int = 200, frames=(60, 150), seed: int = 0) -> KeypointCache:
    """A cache of generated motion (posedenoise.data.synthetic), preprocessed like the real sources."""
    from .synthetic import generate_videos
    try:
        videos = generate_videos(num_videos, frames, seed=seed)
    except ValueError as e:
        raise DataError(str(e)) from None
    return build_cache(videos)


def build_cache(videos: Sequence[RawVideo], size: int = 56) -> KeypointCache:
    """Preprocess (SPEC section 2) every video and concatenate them."""
    if not videos:
        raise DataError("no videos to put in the cache")
    coords, visible = [], []
    K = len(POSE25)
    for v in videos:
        F = len(v.xy)
        if np.shape(v.xy) != (F, K, 2) or np.shape(v.visible) != (F, K):
            raise DataError(f"{v.source}/{v.name}: xy {np.shape(v.xy)}, visible {np.shape(v.visible)}: "
                            f"expected (F, {K}, 2) and (F, {K})")
        c, vis = to_heatmap_space(v.xy, v.visible, size)
        coords.append(c)
        visible.append(vis)
    lengths = np.array([len(c) for c in coords], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return KeypointCache(np.concatenate(coords), np.concatenate(visible), starts, lengths,
                         [v.name for v in videos], [v.source for v in videos],
                         [v.official_split for v in videos])


def save_cache(cache: KeypointCache, path: str) -> None:
    with files.atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, coords=np.ascontiguousarray(cache.coords), visible=np.ascontiguousarray(cache.visible),
                     video_starts=cache.video_starts, video_lengths=cache.video_lengths,
                     names=np.array(cache.names, dtype=str), sources=np.array(cache.sources, dtype=str),
                     official_splits=np.array([s or "" for s in cache.official_splits], dtype=str),
                     layout=np.array(cache.layout), version=np.array(FORMAT_VERSION))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)          # mkstemp makes 0600; a cache is an ordinary shared file


def _memmap_member(path: str, info: zipfile.ZipInfo) -> np.ndarray:
    """Memory-map one stored (uncompressed) .npy member of a zip file."""
    with zipfile.ZipFile(path) as zf, zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        shape, fortran, dtype = (np.lib.format.read_array_header_1_0(f) if version == (1, 0)
                                 else np.lib.format.read_array_header_2_0(f))
        header = f.tell()
    with open(path, "rb") as raw:
        raw.seek(info.header_offset + 26)
        name_len, extra_len = struct.unpack("<HH", raw.read(4))
    offset = info.header_offset + 30 + name_len + extra_len + header
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


def load_cache(path: str) -> KeypointCache:
    """Open a cache written by save_cache(); coords and visible are memory-mapped."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such cache file")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = {i.filename[:-4]: i for i in zf.infolist() if i.filename.endswith(".npy")}
        need = ("coords", "visible", "video_starts", "video_lengths", "names", "sources", "official_splits",
                "layout", "version")
        missing = [k for k in need if k not in infos]
        if missing:
            raise DataError(f"{path}: not a posedenoise keypoint cache (missing fields {missing}); {_MAKE_ONE}")
        with np.load(path, allow_pickle=False) as z:
            small = {k: z[k] for k in need if k not in ("coords", "visible")}
        if int(small["version"]) != FORMAT_VERSION:
            raise DataError(f"{path}: cache format version {int(small['version'])}, expected {FORMAT_VERSION}")
        if any(infos[k].compress_type != zipfile.ZIP_STORED for k in ("coords", "visible")):
            raise DataError(f"{path}: coords/visible are compressed; expected an uncompressed .npz")
        coords, visible = _memmap_member(path, infos["coords"]), _memmap_member(path, infos["visible"])
    except DataError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, struct.error) as e:
        raise DataError(f"{path}: not a readable keypoint cache ({type(e).__name__}: {e}); {_MAKE_ONE}") from None
    K = len(POSE25)
    starts, lengths = small["video_starts"].astype(np.int64), small["video_lengths"].astype(np.int64)
    if coords.ndim != 3 or coords.shape[1:] != (K, 2) or visible.shape != coords.shape[:2]:
        raise DataError(f"{path}: coords {coords.shape} / visible {visible.shape}: expected (F, {K}, 2) / (F, {K})")
    if coords.dtype.kind not in "iu" or visible.dtype != np.bool_:
        raise DataError(f"{path}: coords {coords.dtype} / visible {visible.dtype}: expected integer / bool")
    if (len(starts) != len(lengths) or (lengths < 0).any()
            or not np.array_equal(starts, np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)[:len(starts)])
            or int(lengths.sum()) != coords.shape[0]):
        raise DataError(f"{path}: video_starts/video_lengths do not tile the {coords.shape[0]} frames back to back")
    if not len(small["names"]) == len(small["sources"]) == len(small["official_splits"]) == len(starts):
        raise DataError(f"{path}: names/sources/official_splits do not have one entry per video ({len(starts)})")
    return KeypointCache(coords, visible, starts, lengths, small["names"].tolist(), small["sources"].tolist(),
                         [s or None for s in small["official_splits"].tolist()], str(small["layout"]))


# --- opening a cache file by its kind ---------------------------------------------------------------------

KEYPOINTS = "keypoints"   # the kind of a file without a `kind` field: a keypoint cache (save_cache)
# kind -> opener(path, **windows) -> a Dataset (posedenoise.data.windows) of the file's windows. Each kind's
# module registers its own (windows.py: keypoint caches; paired.py: paired caches), so the general window code
# knows no particular kind. The data package imports every kind's module: the table is full once it is loaded.
OPENERS: Dict[str, Callable[..., object]] = {}


def register_opener(kind: str, opener: Callable[..., object]) -> None:
    """open_cache opens files of `kind` with opener(path, T=, step=, split=, seed=, num_windows=, name=)."""
    OPENERS[kind] = opener


def cache_kind(path: str) -> str:
    """A cache file's kind: its `kind` field, or KEYPOINTS where it has none (also for a file that is not a
    zip at all: load_cache then says what is wrong with it). Reads no frame array."""
    try:
        with zipfile.ZipFile(path) as zf:
            if "kind.npy" not in zf.namelist():
                return KEYPOINTS
        with np.load(path, allow_pickle=False) as z:
            return str(z["kind"])
    except (zipfile.BadZipFile, OSError):
        return KEYPOINTS
    except (ValueError, EOFError, struct.error) as e:
        raise DataError(f"{path}: field 'kind' is not readable ({type(e).__name__}: {e})") from None


def open_cache(path: str, **windows):
    """The Dataset of a cache file, opened by the opener registered for its kind."""
    kind = cache_kind(path)
    if kind not in OPENERS:
        raise DataError(f"{path}: a cache of kind {kind!r}; expected one of {sorted(OPENERS)}")
    return OPENERS[kind](path, **windows)
