"""The data layer's one exception type: its message names the file and what was expected.

DataError is defined in posedenoise.errors (the bottom layer: the noise tables raise it too); the data layer
names it here."""
from ..errors import DataError

__all__ = ["DataError"]
