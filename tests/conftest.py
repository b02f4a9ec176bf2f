"""Shared test setup.

Without a CUDA device, TRITON_INTERPRET=1 is set before triton or posedenoise is imported: the Triton kernels
then run on CPU tensors (the interpreter), which is how they are tested on a machine without a GPU. With one,
they run compiled, on CUDA tensors (tests/test_gpu.py), and the CPU tests use the C++ and torch backends.
"""
import os
import pathlib

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

SHARED = pathlib.Path(__file__).resolve().parents[1].parent / "shared"
PENN_ACTION = SHARED / "data" / "penn_action"
BRACE = SHARED / "data" / "brace"

_NOTES = []


def terminal_note(text: str) -> None:
    """Printed at the end of the run, also under -q (e.g. the registers of the compiled Triton kernels)."""
    _NOTES.append(text)


def pytest_terminal_summary(terminalreporter):
    for text in _NOTES:
        terminalreporter.write_line(text)


def backends_here():
    """Every backend that runs on CPU tensors in this process (Triton only under the interpreter)."""
    from posedenoise.ops import available_backends
    interpreted = os.environ.get("TRITON_INTERPRET") == "1"
    return [b for b, ok in available_backends()["available"].items() if ok and (b != "triton" or interpreted)]


@pytest.fixture
def penn_action_dir():
    if not (PENN_ACTION / "labels").is_dir():
        pytest.skip(f"real Penn Action labels not found at {PENN_ACTION}")
    return PENN_ACTION


requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
