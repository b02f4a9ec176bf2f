"""Shared test setup.

TRITON_INTERPRET=1 must be set before triton or posedenoise is imported: it lets the Triton kernels run
on CPU tensors (the interpreter), which is how they are tested on a machine without a GPU.
"""
import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import pathlib  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

SHARED = pathlib.Path(__file__).resolve().parents[1].parent / "shared"
PENN_ACTION = SHARED / "data" / "penn_action"
BRACE = SHARED / "data" / "brace"


def backends_here():
    """Every backend that can run on CPU tensors in this process."""
    from posedenoise.ops import available_backends
    return [b for b, ok in available_backends()["available"].items() if ok]


@pytest.fixture
def penn_action_dir():
    if not (PENN_ACTION / "labels").is_dir():
        pytest.skip(f"real Penn Action labels not found at {PENN_ACTION}")
    return PENN_ACTION


requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
