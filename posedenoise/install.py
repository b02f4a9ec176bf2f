"""What the install recorded about itself: the C++ extension's build (written by setup.py at build time).

On the bottom floor with the error types (tests/test_imports.py): ops asks it why the extension is missing,
and the package's build_info() reports it.
"""
import json
import os


def build_status() -> str:
    """What the install said about the C++ extension (written by setup.py at build time)."""
    path = os.path.join(os.path.dirname(__file__), "_build_status.json")
    try:
        with open(path) as f:
            return json.load(f)["reason"]
    except (OSError, ValueError, KeyError):
        return "no build record: the package was not installed with `pip install -e .`"
