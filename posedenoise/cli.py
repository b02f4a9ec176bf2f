"""Command-line flags generated from a config dataclass, type-checked, unknown flags rejected.

Each field becomes `--field-name`; its type comes from the annotation, its help text from
`field(metadata={"help": ...})`, its choices from metadata "choices". Errors are one line and exit code 2.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import typing
from typing import Any, Optional, Sequence


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


class OneLineParser(argparse.ArgumentParser):
    """argparse prints the usage block and the error; a user needs the error, in one line."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def fail(prog: str, message: str) -> "typing.NoReturn":
    """The same one-line error for problems found after parsing (bad files, bad combinations)."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    sys.exit(2)


def warn(prog: str, message: str) -> None:
    """One line on stderr for input that was used, but changed (e.g. clipped): the user should know."""
    print(f"{prog}: warning: {message}", file=sys.stderr, flush=True)


def device(prog: str, choice: str):
    """--device auto | cpu | cuda -> torch.device; cuda without a CUDA device is a one-line error that says so
    (rather than a failure further on, e.g. while loading a checkpoint onto it)."""
    import torch  # here, not at the top: entry points import cli before torch (see openmp_wait_policy)
    if choice == "cuda" and not torch.cuda.is_available():
        fail(prog, "--device cuda: no CUDA device is available (torch.cuda.is_available() is False); "
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
        t = _base_type(f.type)
        help_text = f.metadata.get("help", "")
        if f.name in positional:
            parser.add_argument(f.name, type=_typed(t), help=help_text)
        elif t is bool:
            parser.add_argument(f"--{f.name.replace('_', '-')}", action="store_true", help=help_text)
        else:
            parser.add_argument(f"--{f.name.replace('_', '-')}", type=_typed(t), default=f.default,
                                choices=f.metadata.get("choices"), help=help_text,
                                metavar=f.metadata.get("metavar"))
    return parser


def parse(cls, argv: Optional[Sequence[str]], prog: str, description: str, positional: Sequence[str] = ()) -> Any:
    parser = build_parser(cls, prog, description, positional)
    ns = parser.parse_args(argv)
    try:
        return cls(**vars(ns))
    except ValueError as e:  # __post_init__ validation
        parser.error(str(e))
