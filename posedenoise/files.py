"""Atomic file writes: a temporary file in the target's folder, flushed and fsynced, then os.replace.

A reader (or a run resumed after a kill, SIGKILL included) sees either the old file or the new one, never
a partial write. A kill during a write leaves its temporary file behind (no cleanup runs under SIGKILL);
sweep_temp_files removes those when the folder's owner starts again.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from contextlib import contextmanager
from typing import Any, Iterable, List

# Temporary files are ".<target name>.<8 random characters>.tmp": mkstemp's random part is 8 characters
# from [a-z0-9_]. The pattern matches only names that atomic_path makes, so sweeping never touches a
# user's own *.tmp files.
_TMP_SUFFIX = ".tmp"
_TMP_NAME = re.compile(r"\..+\.[a-z0-9_]{8}" + re.escape(_TMP_SUFFIX))


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yields a temporary path beside `path`; on success it replaces `path`, on error it is removed.

    An OSError while making, writing or renaming the temporary file (a folder that refuses files, a full
    disk) is raised naming `path`: the temporary file's name means nothing to the user, and a failed write
    names no file at all."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=_TMP_SUFFIX, dir=folder)
        os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private; give it the usual permissions
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        ours = e.filename is None or (os.path.dirname(os.fsdecode(e.filename)) == folder
                                      and _TMP_NAME.fullmatch(os.path.basename(os.fsdecode(e.filename))))
        if e.errno is None or not ours:
            raise                      # about another file (e.g. a folder of `path` that is a file): as it is
        raise OSError(e.errno, e.strerror, path) from e
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)


def sweep_temp_files(folder: str | os.PathLike) -> List[str]:
    """Remove the temporary files that killed atomic writes left in `folder` (not its subfolders); returns
    their paths. Call it only where no other process writes: when a run takes its directory over."""
    folder = os.fspath(folder)
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    removed = []
    for name in sorted(names):
        path = os.path.join(folder, name)
        if _TMP_NAME.fullmatch(name) and os.path.isfile(path) and not os.path.islink(path):
            os.remove(path)
            removed.append(path)
    return removed


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
