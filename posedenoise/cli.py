"""The command layer: flags generated from a config dataclass, and one way to fail on bad input.

Each field becomes `--field-name`; its type comes from the annotation, its help text from
`field(metadata={"help": ...})`, its choices from metadata "choices". Unknown flags are rejected.

Bad input (a flag, a file, a combination) is the user's to fix: the project's checks raise InputError
(DataError is one; both live in posedenoise.errors, below every layer, and cli names InputError for the
commands), and `command`, which wraps every entry point's main, prints it as one line naming the flag or
file, with exit code 2. OS errors on the user's files (read-only, full, a file where a folder should be)
get the same line. Any other exception is a bug in posedenoise and keeps its traceback.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import sys
import typing
from typing import Any, Optional, Sequence

from .errors import InputError  # noqa: F401  (the error type lives at the bottom; here for the commands)


# How PyTorch's OpenMP threads wait for work between parallel regions. libgomp's default spins 300,000 times
# first: fastest on an idle machine, but once other processes want the cores the spinning burns the time
# slices the working threads need; PASSIVE (no spinning) pays a sleep and a wake-up for every parallel region.
# A short spin (GOMP_SPINCOUNT=1000, tens of microseconds) keeps most of both. DeciWatch, 1 epoch of
# synthetic data, 2 cores, seconds (README "Threads"): idle 4.1-4.9 default, 4.8-4.9 short, 9.2 PASSIVE;
# beside 1 busy process 14-16 default, 10.4-10.9 short, 6.2 PASSIVE; beside 2: 19-20, 12.8-13.7, 11.7-14.0.
# The short spin has the smallest worst case (1.7x the best, against 2.2x for PASSIVE and 2.6x or, in other
# runs, up to 13x for the default). conv3d is alike under all three. A policy or spin count the user set wins.
GOMP_SPINCOUNT = "1000"


def openmp_wait_policy() -> None:
    """Entry points call this before importing torch: libgomp reads its settings once, when torch loads it."""
    if "OMP_WAIT_POLICY" not in os.environ:
        os.environ.setdefault("GOMP_SPINCOUNT", GOMP_SPINCOUNT)


def command(prog: str):
    """Decorator for a command's main(argv): InputError and OS errors on files outside posedenoise become
    one line on stderr, `prog: error: ...`, and exit code 2. Nothing else is caught: a bug shows its traceback."""
    def wrap(main):
        @functools.wraps(main)
        def run(argv=None):
            try:
                return main(argv)
            except InputError as e:
                fail(prog, str(e))
            except BrokenPipeError:
                # The reader of our output left (`... | head`): not an error of ours. Python's advice: point
                # stdout at devnull so that the flush at exit does not raise again.
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                sys.exit(1)
            except OSError as e:
                if not _users_file(e.filename):
                    raise
                where = f"{e.filename} -> {e.filename2}" if e.filename2 else f"{e.filename}"
                fail(prog, f"{where}: {e.strerror or e}")
        return run
    return wrap


def _users_file(filename) -> bool:
    """An OS error names a file: the user's (their data, their output folder), or one of posedenoise's own or
    the Python installation's, where a failure is a broken install or a bug and keeps its traceback."""
    if filename is None or isinstance(filename, int):   # no path, or a file descriptor
        return False
    path = os.path.realpath(os.fsdecode(filename))
    ours = {os.path.dirname(os.path.realpath(__file__)), os.path.realpath(sys.prefix),
            os.path.realpath(sys.base_prefix)}
    return not any(path == d or path.startswith(d + os.sep) for d in ours)


def check_seed(seed: int, flag: str = "--seed") -> None:
    """Seeds key numpy's and Philox's generators, which take unsigned 32-bit integers."""
    if not 0 <= seed < 2**32:
        raise InputError(f"{flag}: expected an integer in [0, 2**32), got {seed}")


def check_output(path: str, label: str, kind: str = "file") -> None:
    """Before any work: can `path` (a "file" or a "dir") be written? Raises InputError naming `label` (the
    flag, e.g. "--out") and the reason. Up front, so that a long run does not fail at its first write, and
    without writing anything (os.access: it answers for root, ACLs, read-only mounts and immutable folders).
    A failure it cannot foresee (a full disk) still ends as one line: an OS error on the user's file."""
    name = f"{label} {path}" if label else path
    if kind == "dir" and os.path.exists(path) and not os.path.isdir(path):
        raise InputError(f"{name}: is a file; expected a directory")
    if kind == "file" and os.path.isdir(path):
        raise InputError(f"{name}: is a directory; expected a file name")
    raw = path if kind == "dir" else os.path.dirname(path) or "."
    if ".." in raw.split(os.sep) and not os.path.isdir(raw):
        # abspath would fold "missing/.." away, but the system resolves "missing" first and fails at the write
        raise InputError(f"{name}: cannot write there: {raw} does not lead to a folder (a '..' after a folder "
                         "that does not exist)")
    folder = os.path.abspath(path if kind == "dir" else os.path.dirname(os.path.abspath(path)))
    existing = folder
    while not os.path.exists(existing):          # the folders to be made: the nearest existing one must allow it
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise InputError(f"{name}: cannot write there: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{name}: cannot write there: {existing} is not writable (permissions or a read-only "
                         "file system)")


def npz_output(path: str, label: str) -> str:
    """An output named by the user, as the .npz it becomes ('.npz' appended if absent), checked as by
    check_output. A directory is refused rather than DIR.npz written beside it: the user meant a file inside
    it, or made a mistake; either way a file they did not name would appear."""
    if os.path.isdir(path):
        raise InputError(f"{label} {path}: is a directory; expected a file name "
                         f"(e.g. {os.path.join(path, 'out.npz')})")
    out = path if path.endswith(".npz") else path + ".npz"
    check_output(out, label)
    return out


def check_backend(choice: Optional[str], device, label: str = "--backend") -> None:
    """Up front: the kernel backend named by `choice` (or POSEDENOISE_BACKEND) runs on `device`, rather than
    the first batch failing. ops.resolve_backend raises ValueError/RuntimeError for a name it does not know or
    a backend this machine lacks; here, where only the user's choice is resolved, that is the user's input."""
    from . import ops   # here, not at the top: entry points import cli before torch (see openmp_wait_policy)
    source = label if choice else "POSEDENOISE_BACKEND" if os.environ.get("POSEDENOISE_BACKEND") else None
    if source is None:
        return                                   # chosen by device: always runs
    try:
        ops.resolve_backend(choice, device)
    except (ValueError, RuntimeError) as e:
        raise InputError(f"{source}: {e}") from None


class OneLineParser(argparse.ArgumentParser):
    """argparse prints the usage block and the error; a user needs the error, in one line."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def fail(prog: str, message: str) -> "typing.NoReturn":
    """The one-line error of `command`, as argparse's own (OneLineParser) for bad flags. A message quoting
    another library's error may span lines: it is joined into one."""
    print(f"{prog}: error: {' '.join(line.strip() for line in message.splitlines())}", file=sys.stderr)
    sys.exit(2)


def warn(prog: str, message: str) -> None:
    """One line on stderr for input that was used, but changed (e.g. clipped): the user should know."""
    print(f"{prog}: warning: {message}", file=sys.stderr, flush=True)


def device(choice: str):
    """--device auto | cpu | cuda -> torch.device; cuda without a CUDA device is an InputError that says so
    (rather than a failure further on, e.g. while loading a checkpoint onto it)."""
    import torch  # here, not at the top: entry points import cli before torch (see openmp_wait_policy)
    if choice == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is available (torch.cuda.is_available() is False); "
                         "use --device cpu or auto")
    return torch.device("cuda" if choice != "cpu" and torch.cuda.is_available() else "cpu")


def _base_type(annotation):
    if isinstance(annotation, str):
        annotation = eval(annotation, vars(typing))  # annotations are strings under `from __future__`
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return args[0] if typing.get_origin(annotation) is typing.Union and len(args) == 1 else annotation


def _typed(t):
    def convert(text):
        try:
            return t(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {t.__name__}, got {text!r}") from None
    convert.__name__ = t.__name__
    return convert


def build_parser(cls, prog: str, description: str, positional: Sequence[str] = ()) -> OneLineParser:
    parser = OneLineParser(prog=prog, description=description,
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for f in dataclasses.fields(cls):
        if not f.init:                           # derived from the flags (__post_init__), not a flag itself
            continue
        t = _base_type(f.type)
        help_text = f.metadata.get("help", "")
        if f.name in positional:
            parser.add_argument(f.name, type=_typed(t), help=help_text)
        elif t is bool:
            parser.add_argument(f"--{f.name.replace('_', '-')}", action="store_true", help=help_text)
        elif typing.get_origin(t) is list:   # a repeatable flag: each use appends one value
            parser.add_argument(f"--{f.name.replace('_', '-')}", action="append", type=_typed(typing.get_args(t)[0]),
                                default=[], help=help_text, metavar=f.metadata.get("metavar"))
        else:
            parser.add_argument(f"--{f.name.replace('_', '-')}", type=_typed(t), default=f.default,
                                choices=f.metadata.get("choices"), help=help_text,
                                metavar=f.metadata.get("metavar"))
    return parser


def parse(cls, argv: Optional[Sequence[str]], prog: str, description: str, positional: Sequence[str] = ()) -> Any:
    """Flags -> cls(...); cls.__post_init__ checks values and raises InputError (see `command`)."""
    return cls(**vars(build_parser(cls, prog, description, positional).parse_args(argv)))
