"""Atomic file writes: a temporary file in the target's folder, flushed and fsynced, then os.replace.

A reader (or a run resumed after a kill, SIGKILL included) sees either the old file or the new one, never
a partial write.
"""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from typing import Any, Iterable


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yields a temporary path beside `path`; on success it replaces `path`, on error it is removed."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private; give it the usual permissions
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)


def write_json(path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, default=_jsonable) + "\n")


def write_jsonl(path, rows: Iterable[Any]) -> None:
    write_text(path, "".join(json.dumps(r, default=_jsonable) + "\n" for r in rows))


def torch_save(path, obj: Any) -> None:
    import torch
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _jsonable(x):
    """numpy / torch scalars and arrays as plain JSON values."""
    if hasattr(x, "tolist"):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")
