"""The record every reader and generator produces, before preprocessing (SPEC section 2)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass
class RawVideo:
    name: str                   # unique within its source, e.g. "0001" for Penn Action's labels/0001.mat
    source: str                 # "penn_action", "brace", "synthetic", "generic"
    xy: np.ndarray              # (F, 25, 2) float32 (x, y) in source pixels, in the POSE25 layout
    visible: np.ndarray         # (F, 25) bool; False for keypoints the source lacks or did not see
    official_split: Optional[str] = None   # the source's own split, if it has one ("train" / "test")
