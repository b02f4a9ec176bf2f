"""The data layer's one exception type: its message names the file and what was expected."""
from ..cli import InputError


class DataError(InputError):
    """Bad input data: a missing or corrupt file, a wrong field or shape, an unknown layout. An InputError
    (a ValueError): every command reports it as one line, exit code 2 (posedenoise.cli.command)."""
