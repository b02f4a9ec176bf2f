"""The data layer's one exception type: its message names the file and what was expected."""


class DataError(ValueError):
    """Bad input data: a missing or corrupt file, a wrong field or shape, an unknown layout."""
