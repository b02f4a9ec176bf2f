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


# How PyTorch's OpenMP threads wait for work between parallel regions. libgomp's default spins for a while
# first: fastest on an idle machine, but once other processes want the cores the spinning burns the time
# slices that the working threads need. Measured on 2 cores (1 epoch of synthetic data; README "Threads"):
# DeciWatch idle 4.4 s spinning, 9.5 s PASSIVE; beside busy processes 16-85 s spinning, 6-16 s PASSIVE;
# conv3d alike either way. PASSIVE bounds the worst case. A value the user set wins.
OMP_WAIT_POLICY = "PASSIVE"


def openmp_wait_policy() -> None:
    """Entry points call this before importing torch: libgomp reads OMP_WAIT_POLICY once, when torch loads it."""
    os.environ.setdefault("OMP_WAIT_POLICY", OMP_WAIT_POLICY)


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
    import torch  # here, not at the top: entry points import cli before torch (see passive_openmp)
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
